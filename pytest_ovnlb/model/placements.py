"""Where a load balancer can be placed, one row each: the marker that selects
it, the feature every run there proves, where its VIPs live, the client it
serves, and the source address a server sees.  A new placement is a new row
(and, in a topology, the roles its row names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    name: str  # the marker (@pytest.mark.NAME) and the run's id
    feature: str  # what every run at this placement proves
    what: str  # in words, for messages and skips
    default: bool  # runs for a test marked with no placement
    datapath_role: str  # the topology role whose datapath holds its load balancers
    vips: tuple[str, str]  # the topology roles of its IPv4 and IPv6 VIPs
    served: str  # the client it serves: "internal" (a VM) or "external"
    # the source a server sees for an internal client: "snat" (the router's
    # SNAT address) or "client" (the client's own address)
    internal_source: str
    # where the load balancing runs: on the client's chassis ("client") or
    # on the chassis the router is bound to ("gateway")
    balanced_on: str


PLACEMENTS = {p.name: p for p in (
    Placement("router", "gateway_router_lb", "gateway router", True, "gateway_router",
              ("router_vip", "router_vip6"), "internal", "snat", "gateway"),
    Placement("switch", "switch_lb", "the client's logical switch", True, "client_switch",
              ("switch_vip", "switch_vip6"), "internal", "client", "client"),
    Placement("dgp", "dgp_lb", "distributed gateway port", False, "dgp_router",
              ("dgp_vip", "dgp_vip6"), "external", "client", "gateway"),
)}
DEFAULT = tuple(p.name for p in PLACEMENTS.values() if p.default)
FAMILIES = {"ipv4": 4, "ipv6": 6}
