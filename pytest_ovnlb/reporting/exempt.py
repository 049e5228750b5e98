"""Exemption files: tests a packager does not run, each with a reason.

    # comment
    test_options.py::test_affinity_timeout_keeps_a_client_on_its_server[switch]  flaky on our builders (#123)
    test_health_check.py::test_health_check_takes_dead_server_out_and_back  no probes on this datapath

One test per line: its stable id (`FILE::FUNCTION[PARAMS]`, or
`FILE::FUNCTION` for every parametrization), whitespace, the reason.
Exempted tests are not run; they show as "exempted" with the reason in the
report, and as xfail (NOTRUN) in pytest's own output and JUnit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Exemption:
    id: str
    reason: str

    def covers(self, stable_id: str) -> bool:
        return stable_id == self.id or stable_id.startswith(self.id + "[")


def load(path: str) -> list[Exemption]:
    """The file's exemptions; ValueError with one line on bad input."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"exemption file {path}: {exc.strerror}") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if "::" not in parts[0]:
            raise ValueError(f"{path}:{number}: not a test id (FILE::FUNCTION[PARAMS]): {parts[0]!r}")
        if len(parts) < 2:
            raise ValueError(f"{path}:{number}: {parts[0]} has no reason")
        found.append(Exemption(parts[0], parts[1].strip()))
    return found
