"""The OVN/OVS installation under test: where its programs and schemas are,
and which versions they are.

Programs are looked up on PATH, so a packager's build is tested by putting
its bin directories first.  Schemas are looked up beside the programs
(`<prefix>/share/{ovn,openvswitch}`) before the distribution's paths.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .versions import Version

# program -> Debian package that ships it
PROGRAMS = {
    "ovsdb-server": "openvswitch-switch",
    "ovs-vswitchd": "openvswitch-switch",
    "ovsdb-tool": "openvswitch-common",
    "ovs-vsctl": "openvswitch-common",
    "ovs-appctl": "openvswitch-common",
    "ovn-northd": "ovn-central",
    "ovn-controller": "ovn-host",
    "ovn-nbctl": "ovn-common",
    "ovn-sbctl": "ovn-common",
    "ovn-appctl": "ovn-common",
}
SCHEMAS = {
    "vswitch": ("openvswitch", "vswitch.ovsschema", "openvswitch-common"),
    "nb": ("ovn", "ovn-nb.ovsschema", "ovn-common"),
    "sb": ("ovn", "ovn-sb.ovsschema", "ovn-common"),
}


@dataclass(frozen=True)
class Install:
    programs: dict[str, str]
    schemas: dict[str, str]
    ovn_version: Version
    ovs_version: Version

    def __getitem__(self, program: str) -> str:
        return self.programs[program]

    @property
    def summary(self) -> str:
        return f"OVN {self.ovn_version}, OVS {self.ovs_version}"


def _find_schema(subdir: str, filename: str, bindirs: list[Path]) -> str | None:
    candidates = [b.parent / "share" / subdir / filename for b in bindirs]
    candidates += [Path("/usr/share") / subdir / filename,
                   Path("/usr/local/share") / subdir / filename]
    env = os.environ.get("OVNLB_SCHEMA_DIR")
    if env:
        candidates.insert(0, Path(env) / filename)
    return next((str(c) for c in candidates if c.is_file()), None)


def _version_of(program: str) -> Version:
    out = subprocess.run([program, "--version"], capture_output=True, text=True,
                         timeout=10).stdout
    match = re.search(r"\) (\d+\.\d+\.\d+)|\b(\d+\.\d+\.\d+)", out.splitlines()[0] if out else "")
    if not match:
        raise LabError(f"cannot read the version of {program} from {out.strip()!r}")
    return Version.parse(match.group(1) or match.group(2))


@functools.lru_cache(maxsize=None)
def find(path: str | None = None) -> Install:
    """Locate every program and schema; one clear line if anything is missing."""
    path = path if path is not None else os.environ.get("PATH", "")
    programs, missing = {}, []
    for prog, package in PROGRAMS.items():
        found = shutil.which(prog, path=path)
        if found:
            programs[prog] = found
        else:
            missing.append(f"{prog} (package {package})")
    if missing:
        raise LabError("OVN/OVS programs not found: " + ", ".join(missing)
                       + "; install them or put your build's bin directories on PATH")
    bindirs = sorted({Path(p).parent for p in programs.values()})
    schemas, missing = {}, []
    for key, (subdir, filename, package) in SCHEMAS.items():
        found = _find_schema(subdir, filename, bindirs)
        if found:
            schemas[key] = found
        else:
            missing.append(f"{filename} (package {package})")
    if missing:
        raise LabError("OVSDB schemas not found: " + ", ".join(missing)
                       + "; set OVNLB_SCHEMA_DIR to the directory holding them")
    return Install(programs, schemas,
                   ovn_version=_version_of(programs["ovn-northd"]),
                   ovs_version=_version_of(programs["ovs-vswitchd"]))
