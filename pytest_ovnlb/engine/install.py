"""The OVN/OVS installation under test: where its programs and schemas are,
how to run them, and which versions they are.

Two kinds of installation:
- on this machine (the distribution's packages, or a packager's build put
  first on PATH): programs are looked up on PATH, schemas beside them
  (`<prefix>/share/{ovn,openvswitch}`) before the distribution's paths;
- in a root filesystem (`ovn_root`, e.g. another Debian release made with
  debootstrap): programs run under `chroot`, each in a private mount
  namespace where /dev, /proc, /sys and /run are bound into the root, so the
  lab's run directory has the same path inside and out and nothing is left
  mounted when the program exits.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model.versions import Version

# program -> Debian package that ships it
PROGRAMS = {
    "ovsdb-server": "openvswitch-switch",
    "ovs-vswitchd": "openvswitch-switch",
    "ovsdb-tool": "openvswitch-common",
    "ovs-vsctl": "openvswitch-common",
    "ovs-appctl": "openvswitch-common",
    "ovs-ofctl": "openvswitch-common",  # failure evidence: groups and flows
    "ovn-northd": "ovn-central",
    "ovn-controller": "ovn-host",
    "ovn-nbctl": "ovn-common",
    "ovn-sbctl": "ovn-common",
}
SCHEMAS = {
    "vswitch": ("openvswitch", "vswitch.ovsschema", "openvswitch-common"),
    "nb": ("ovn", "ovn-nb.ovsschema", "ovn-common"),
    "sb": ("ovn", "ovn-sb.ovsschema", "ovn-common"),
}
# Runs a daemon "$@" from directory $0 with core dumps allowed up to the hard
# limit: the kernel's default core_pattern ("core") then leaves a crashed
# daemon's core in that directory.  The shell is the root filesystem's own
# under chroot, so it works there too.
_DAEMON = 'ulimit -c "$(ulimit -H -c)"; cd "$0" && exec "$@"'
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Runs "$@" chrooted into $1 with the host's /dev, /proc, /sys and /run bound
# in (private mounts: they vanish with the program's mount namespace).
_CHROOT = ('root=$1; shift; for d in dev proc sys run; do '
           'mount --rbind "/$d" "$root/$d" || exit 126; done; exec chroot "$root" "$@"')


@dataclass(frozen=True)
class Install:
    programs: dict[str, str]  # paths as the program sees them (inside `root`)
    schemas: dict[str, str]
    ovn_version: Version
    ovs_version: Version
    root: str | None = None

    def __getitem__(self, program: str) -> str:
        return self.programs[program]

    def command(self, program: str, *args: str, cwd: str | None = None) -> list[str]:
        """argv that runs `program` of this installation; with `cwd`, a
        daemon: from that directory, core dumps allowed."""
        argv = [self.programs[program], *args]
        if cwd is not None:
            argv = ["/bin/sh", "-c", _DAEMON, cwd, *argv]
        if self.root is None:
            return argv
        return ["unshare", "--mount", "--propagation", "slave",
                "sh", "-c", _CHROOT, "ovnlb-chroot", self.root, *argv]

    def host_path(self, program: str) -> str:
        """Where `program` is as this machine sees it (for gdb)."""
        return (self.root or "") + self.programs[program]

    @property
    def summary(self) -> str:
        where = f" in {self.root}" if self.root else ""
        return f"OVN {self.ovn_version}, OVS {self.ovs_version}{where}"


def _find_schema(subdir: str, filename: str, prefixes: list[Path],
                 use_env: bool) -> Path | None:
    candidates = [p / "share" / subdir / filename for p in prefixes]
    env = os.environ.get("OVNLB_SCHEMA_DIR")
    if env and use_env:
        candidates = [Path(d) / filename for d in env.split(":")] + candidates
    return next((c for c in candidates if c.is_file()), None)


def _version(install: Install, program: str) -> Version:
    try:
        out = subprocess.run(install.command(program, "--version"), capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError(f"cannot run {program} --version: {exc}") from None
    first = out.splitlines()[0] if out else ""
    match = re.search(r"(\d+\.\d+\.\d+)", first)
    if not match:
        raise LabError(f"cannot read the version of {program} from {first!r}")
    return Version.parse(match.group(1))


def find(root: str | None = None, path: str | None = None) -> Install:
    """Locate every program and schema (in `root` if given, else on `path`,
    by default PATH); one clear line if anything is missing."""
    return at(root or os.environ.get("OVNLB_OVN_ROOT") or None, path)


def at(root: str | None, path: str | None = None) -> Install:
    """The installation in `root` (None or "/": this machine's, on PATH),
    whatever $OVNLB_OVN_ROOT says: what a lab's record names."""
    if root is not None and os.path.abspath(root) == "/":
        root = None
    return _find(root, os.environ.get("PATH", "") if path is None else path)


@functools.lru_cache(maxsize=None)
def _find(root: str | None, path: str) -> Install:
    if root is not None:
        root = os.path.abspath(root)
        if not os.path.isdir(root):
            raise LabError(f"OVN root {root} is not a directory")
        if not shutil.which("unshare") or not shutil.which("chroot"):
            raise LabError("running an OVN root needs unshare and chroot (package util-linux, coreutils)")
    inside = (lambda p: Path(root + str(p))) if root else Path  # noqa: E731
    programs, missing = {}, []
    for prog, package in PROGRAMS.items():
        if root:
            found = next((f"{d}/{prog}" for d in ROOT_PATH.split(":")
                          if os.access(inside(f"{d}/{prog}"), os.X_OK)), None)
        else:
            found = shutil.which(prog, path=path)
        if found:
            programs[prog] = found
        else:
            missing.append(f"{prog} (package {package})")
    where = f"in {root}" if root else "on PATH"
    if missing:
        hint = ("install those packages in it" if root else
                "install them or put your build's bin directories first on PATH")
        raise LabError(f"OVN/OVS programs not found {where}: " + ", ".join(missing)
                       + f"; {hint}")
    # Schemas: beside the programs (<prefix>/share), then the usual places.
    prefixes = sorted({Path(p).parent.parent for p in programs.values()})
    prefixes += [Path("/usr"), Path("/usr/local")]
    schemas, missing = {}, []
    for key, (subdir, filename, package) in SCHEMAS.items():
        found = _find_schema(subdir, filename, [inside(p) for p in prefixes], root is None)
        if found:
            schemas[key] = str(found)[len(root):] if root else str(found)
        else:
            missing.append(f"{filename} (package {package})")
    if missing:
        raise LabError(f"OVSDB schemas not found {where}: " + ", ".join(missing)
                       + "; set OVNLB_SCHEMA_DIR to the directories holding them")
    install = Install(programs, schemas, Version(0, 0), Version(0, 0), root)
    return Install(programs, schemas, _version(install, "ovn-northd"),
                   _version(install, "ovs-vswitchd"), root)


find.cache_clear = _find.cache_clear  # type: ignore[attr-defined]
