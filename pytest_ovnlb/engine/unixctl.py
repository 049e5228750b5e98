"""`ovs-appctl`, from this process, through a daemon's control socket: a
process per call would cost more than the call (some run around every test).
"""

from __future__ import annotations

import os
from pathlib import Path

from ovs.unixctl.client import UnixctlClient

from pytest_ovnlb.errors import LabError


def pidfile_socket(rundir: str | Path, daemon: str) -> str:
    """The control socket of `daemon` running from `rundir`: DAEMON.PID.ctl."""
    try:
        pid = Path(rundir, f"{daemon}.pid").read_text().strip()
    except OSError as exc:
        raise LabError(f"{daemon}: no pidfile in {rundir} ({exc.strerror})") from None
    return str(Path(rundir, f"{daemon}.{pid}.ctl"))


def call(path: str, command: str, *args: str) -> str:
    """COMMAND ARGS to the daemon listening on control socket `path`; its
    answer, or LabError with the daemon's complaint in one line."""
    daemon = Path(path).name.split(".")[0]
    error, client = UnixctlClient.create(path)
    if error:
        raise LabError(f"cannot reach {daemon} ({path}): {os.strerror(error)}")
    try:
        error, failure, body = client.transact(command, list(args))
    finally:
        client.close()
    if error or failure:
        text = " ".join((failure or os.strerror(error)).split())
        raise LabError(f"{daemon}: {command}: {text}")
    return body
