"""Health-check verdicts: the Southbound Service_Monitor rows ovn-northd
makes for each backend of a VIP with a health check, and the status
ovn-controller gives them."""

from __future__ import annotations

from pytest_ovnlb.verdicts import Unmet


def monitors(sb) -> list[tuple]:
    """Service_Monitor rows: (ip, port, logical_port, protocol, status)."""
    return sorted((r.ip, r.port, r.logical_port, (r.protocol or ["tcp"])[0],
                   (r.status or [""])[0]) for r in sb.rows("Service_Monitor"))


def wait_status(sb, names, wanted: dict, protocol: str, timeout: float, why: str):
    """Return once each server of `wanted` has one `protocol` monitor, in its
    wanted status (woken by Southbound changes); else Unmet showing every row."""
    def statuses():
        rows = monitors(sb)
        return {s.endpoint: [m[4] for m in rows
                             if m[:4] == (s.ip, s.port, names.nb(s.vm), protocol)]
                for s in wanted}

    expected = {s.endpoint: [status] for s, status in wanted.items()}
    try:
        sb.wait(lambda: statuses() == expected, timeout, why)
    except TimeoutError:
        rows = "\n".join(f"  {m}" for m in monitors(sb)) or "  (none)"
        raise Unmet(f"{why}: after {timeout:.0f}s the {protocol.upper()} Service_Monitor "
                    f"status is {statuses()}, expected {expected}; every Service_Monitor "
                    f"row (ip, port, logical_port, protocol, status):\n{rows}") from None
