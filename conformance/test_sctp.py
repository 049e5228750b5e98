"""protocol=sctp: SCTP associations to a VIP are balanced like TCP
connections: each new association (a new source port) reaches one of the
servers at its own address and port, with the source the server would
see over TCP (the client's address through a switch, the gateway router's
SNAT address through edge1), and the answer comes back from the VIP.

An association here is its setup both ways through conntrack: INIT and
INIT-ACK, whose state cookie names the server (the traffic agent speaks
SCTP over raw sockets where the lab's kernel has none, and uses the
kernel's SCTP sockets where it has).

The datapath must track SCTP with its ports to translate the VIP's port:
OVS's userspace conntrack does so since OVS 3.2.0; before, it keeps SCTP
associations as address pairs (ports 0) and forwards the INIT with the
VIP's port unchanged.  Where that is what the datapath shows, the test is
skipped, saying what was observed."""

import ipaddress
import re

import pytest

from pytest_ovnlb.verdicts import checks

SAMPLES = 32


def translated(lab, lb) -> list[str]:
    """Every chassis's conntrack entries of SCTP to the VIP translated to one
    of its servers (orig destination the VIP, reply source a server)."""
    vip = ipaddress.ip_address(lb.vip).compressed
    servers = {ipaddress.ip_address(s.ip).compressed for s in lb.servers}
    found = []
    for chassis in lab.topology.chassis:
        out = lab.run(chassis.name, ["ovs-appctl", "dpctl/dump-conntrack"],
                      capture_output=True, text=True, timeout=30).stdout
        found += [f"{chassis.name}: {line.strip()}" for line in out.splitlines()
                  if line.startswith("sctp,") and f"dst={vip}," in line
                  and re.search(r"reply=\(src=([^,]+),", line).group(1) in servers]
    return found


@pytest.mark.ovnlb(needs=("sctp_lb",))
def test_sctp_associations_spread_over_servers(ovn_case):
    node = ovn_case.client("internal")
    lb = ovn_case.lb(ovn_case.servers(2), protocol="sctp")
    results = ovn_case.fresh(node, lb, SAMPLES, proto="sctp", timeout=1.0)
    if not all(r.ok for r in results):
        entries = translated(ovn_case.lab, lb)
        if entries and all("sport=0,dport=0" in e for e in entries):
            versions = ovn_case.lab.versions
            pytest.skip(
                f"the {versions.datapath} datapath (OVS {versions.ovs}) cannot balance SCTP: "
                f"its conntrack translates SCTP to a server's address but tracks it without "
                f"ports, so the VIP's port is never translated (observed: {entries[0]}; "
                f"associations to {lb.vip_key}: {checks.summary(results)})")
    seen = ovn_case.expect_served(results, lb, node, what="SCTP associations to the VIP")
    ovn_case.expect_sources(lb, node, seen, {t: {ovn_case.source(node)} for t in lb.targets},
                            "the source the servers saw")
