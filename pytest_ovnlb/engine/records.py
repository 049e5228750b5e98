"""Records of the labs this tool made, and sweeping the ones nobody owns.

Every lab has a run directory `<base>/<name>/` holding `lab.json` (what it
made: namespaces, topology, owner) plus the daemons' databases, sockets, logs
and pidfiles.  The directory is claimed atomically (rename of a prepared
directory) before anything else is made and removed after everything else is
gone, so a lab killed at any moment can be swept by reading its record.

Owner: a lab being built or used by a process records that process (pid and
start time); when that process is gone, the lab is stale.  A lab handed over
to the user (`ovnlb-lab up`) has no owner and stays until `down`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_ovnlb.engine import procs
from pytest_ovnlb.errors import LabError

NS_PREFIX = "ovnlb-"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,23}$")


def base_dir() -> Path:
    return Path(os.environ.get("OVNLB_RUN_DIR", "/run/ovnlb"))


@dataclass
class Record:
    name: str
    topology: str
    backend: str = "netns"
    namespaces: list[str] = field(default_factory=list)
    owner_pid: int | None = None
    owner_start: int | None = None
    state: str = "building"  # building | ready
    build_seconds: float | None = None
    kept_for: int | None = None  # pytest process that kept it after failures
    ovn_root: str | None = None  # root filesystem of the OVN under test (the central's), if not /
    roots: dict = field(default_factory=dict)  # daemon key -> the root it runs from (None: /)
    names: dict = field(default_factory=dict)  # topology.Names.to_record()
    data: dict = field(default_factory=dict)  # what the backend made, to remove it
    created: float = field(default_factory=time.time)

    @property
    def rundir(self) -> Path:
        return base_dir() / self.name

    def namespace(self, node: str) -> str:
        return f"{NS_PREFIX}{self.name}-{node}"

    @property
    def stale(self) -> bool:
        return self.owner_pid is not None and not procs.alive(self.owner_pid, self.owner_start)

    def save(self, directory: Path | None = None) -> None:
        directory = directory or self.rundir
        tmp = directory / "lab.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(directory / "lab.json")

    def own(self, pid: int | None) -> None:
        """Make `pid` the owner (None: nobody, the lab stays until `down`)."""
        self.owner_pid = pid
        self.owner_start = procs.start_time(pid) if pid else None
        self.save()


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise LabError(f"invalid lab name {name!r}: use 1-24 of a-z, 0-9, _ "
                       "starting with a letter or digit")
    return name


def claim(record: Record) -> None:
    """Create the lab's run directory with its record, or fail if the name is taken."""
    base = base_dir()
    staging = base / f".claim-{record.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for _ in range(10):
        base.mkdir(parents=True, exist_ok=True)
        try:
            staging.mkdir()
            break
        except FileNotFoundError:  # the last lab going down removed `base`
            continue
    record.save(staging)
    try:
        os.rename(staging, record.rundir)  # atomic; fails if the name exists
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise LabError(f"a lab named {record.name!r} already exists "
                       f"(see `ovnlb-lab status --name {record.name}`; "
                       f"`ovnlb-lab down --name {record.name}` removes it)") from None


def load(name: str) -> Record:
    path = base_dir() / check_name(name) / "lab.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} (see `ovnlb-lab list`)") from None
    except (OSError, ValueError) as exc:
        raise LabError(f"unreadable lab record {path}: {exc}") from None
    return Record(**data)


def all_records() -> list[Record]:
    base = base_dir()
    records = []
    for entry in sorted(base.glob("*/lab.json")) if base.is_dir() else ():
        try:
            records.append(Record(**json.loads(entry.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return records


def remove(record: Record) -> None:
    """Drop the lab's run directory: the last step of removing a lab."""
    shutil.rmtree(record.rundir, ignore_errors=True)
    try:
        base_dir().rmdir()  # only when no other lab is left
    except OSError:
        pass


def sweep(destroy, everything: bool = False) -> list[str]:
    """Destroy (with `destroy(record)`) labs whose owner is gone, or all labs
    with `everything`; return their names.  Also removes half-made claims of
    dead processes."""
    swept = []
    for record in all_records():
        if everything or record.stale:
            destroy(record)
            swept.append(record.name)
    base = base_dir()
    for staging in base.glob(".claim-*") if base.is_dir() else ():
        pid = staging.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and procs.alive(int(pid))):
            shutil.rmtree(staging, ignore_errors=True)
    return swept
