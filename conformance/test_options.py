"""Load balancer options whose effect is exact, each checked only on the OVN
releases that have it (see pytest_ovnlb/versions.py)."""

from pytest_ovnlb import checks


def test_selection_fields_ip_src_pins_a_client(ovn_lbs, ovn_hub, client_node, requires,
                                               placement):
    """Hashing on the source address only: every new connection of one
    client reaches the same backend."""
    requires("selection_fields")
    lb = ovn_lbs(ovn_hub.backends(3), selection_fields=["ip_src"])
    results = ovn_hub.fresh(client_node("internal"), lb.vip, lb.port, 200)
    assert all(r.ok for r in results), f"connections failed: {checks.summary(results)}"
    assert len({r.target for r in results}) == 1, (
        f"selection_fields=ip_src spread one client over backends: {checks.summary(results)}")


def test_reject_answers_a_vip_without_backends(ovn_lbs, ovn_hub, client_node, requires,
                                               placement):
    """options:reject=true: connections to a VIP with no backends are
    refused at once (TCP RST) instead of hanging."""
    requires("reject_no_backends")
    lb = ovn_lbs([], options={"reject": "true"})
    results = ovn_hub.fresh(client_node("internal"), lb.vip, lb.port, 16, timeout=1.0)
    assert checks.tally(results) == {"error:refused": 16}, (
        f"{lb.vip_key} has no backends and reject=true: {checks.summary(results)}")

