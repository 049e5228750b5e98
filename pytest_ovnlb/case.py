"""What a conformance test works with, and the outcomes it expects.

`ovn_case` (a fixture) carries the lab, the servers, the load balancer
factory, the run's placement and address family, and the test's
declaration.  Each `expect_*` checks one kind of outcome, records the
measurement for the run's report and, when it does not hold, fails with the
one shape of message a packager can act on (which VIP, where placed, which
client, expected versus observed, which OVN/OVS).  Outcomes that depend on
the version under test are asked of the version table through `holds()`,
only for behaviours the test declares, so a test cannot depend on one it
does not report.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_ovnlb.model.placements import PLACEMENTS, Placement
from pytest_ovnlb.reporting import features, measure
from pytest_ovnlb.traffic.client import Result
from pytest_ovnlb.verdicts import checks


class Case:
    def __init__(self, lab, hub, lbs, item: pytest.Item):
        self.lab, self.hub, self.lbs, self.item = lab, hub, lbs, item
        self.placement: str = lbs.placement
        self.family: int = lbs.family
        self.roles = lab.topology.roles

    @property
    def where(self) -> Placement:
        return PLACEMENTS[self.placement]

    # --- the scenario -----------------------------------------------------
    def client(self, role: str = "served") -> str:
        """The node playing `role`: "internal" (a VM on another switch than
        the servers), "external" (a host on the provider network), or
        "served", the client this placement serves."""
        role = self.where.served if role == "served" else role
        node = self.roles.client(role)
        if node is None:
            pytest.skip(f"topology {self.lab.topology.name} has no {role} client")
        return node

    def servers(self, k: int):
        return self.lbs.servers(k)

    def lb(self, servers, **kw):
        return self.lbs(servers, **kw)

    def fresh(self, node: str, lb, count: int, **kw) -> list[Result]:
        """`count` new connections (flows) from `node` to the load balancer's VIP."""
        return self.hub.connect(node, lb.vip, lb.port, count, **kw)

    def holds(self, behaviour: str) -> bool:
        """Whether the version under test shows `behaviour`, which the test
        must declare it proves (an outcome it expects either way)."""
        if behaviour not in features.of(self.item):
            raise AssertionError(
                f"{self.item.nodeid} asks the version table about {behaviour!r} without "
                f"declaring it: add it to its @pytest.mark.ovnlb(proves=...)")
        versions = self.lab.versions
        return bool(features.supported(behaviour, versions.ovn, versions.ovs))

    def source(self, node: str, family: int | None = None) -> str:
        """The address (of `family`, by default the run's) a server sees for
        client `node` at this placement: a gateway router SNATs the internal
        client; otherwise the client's own."""
        family = family or self.family
        if node == self.roles.internal_client and self.where.internal_source == "snat":
            return self.roles.snat_ip(family)
        # the address the client's kernel picks towards this placement's VIP
        return self.lab.topology.address(node, family,
                                         toward=self.roles.vip(self.placement, family))

    # --- the expectations -------------------------------------------------
    def message(self, what: str, lb, node: str, expected, observed) -> str:
        return f"{what}: " + checks.context(lb, self.placement, node, expected, observed,
                                            self.lab)

    def expect_served(self, results: Sequence[Result], lb, node: str,
                      by: str | None = None, what: str = "connections failed or a server "
                      "unused") -> dict[str, set[str]]:
        """Every connection answered, every server of `lb` used (or, with
        `by`, all by that one target); returns the sources each server saw."""
        wanted = {by} if by else set(lb.targets)
        ok = all(r.ok for r in results) and checks.tally(results).keys() == wanted
        expected = (f"every connection served by {by}" if by else
                    f"every connection served, by {sorted(lb.targets)}")
        assert ok, self.message(what, lb, node, expected, results)
        return checks.peers_by_server(results)

    def expect_sources(self, lb, node: str, seen: dict[str, set[str]],
                       expected: dict[str, set[str]], what: str) -> None:
        """The source addresses each server saw are `expected`."""
        measure.current().sources(seen, expected, client=node)
        assert seen == expected, self.message(what, lb, node, f"sources {expected}",
                                              f"sources {seen}")

    def expect_split(self, lb, node: str, samples: int, what: str, **kw) -> None:
        """New connections from `node` spread over `lb`'s servers as OVS's
        dp_hash select group shares them (chi-square, α of the suite), and
        few enough are lost (their own test): `samples` answers planned,
        sampling stops once the verdict is settled; every server used."""
        shares = checks.dp_hash_shares(lb.targets, self.lab.versions.ovs)
        results = self.fresh(node, lb, samples, concurrency=checks.SAMPLING_CONCURRENCY,
                             stop=checks.Settled(shares, samples), **kw)
        verdict = checks.distribution(results, shares, planned=samples)
        measure.current().distribution(verdict, client=node, vip=lb.vip_key,
                                      **({"protocol": kw["proto"]} if "proto" in kw else {}))
        assert verdict.passed, (
            checks.failure(verdict, f"{what}: OVN's split does not match OVS dp_hash shares")
            + ": " + checks.context(lb, self.placement, node,
                                    f"the dp_hash shares of {len(lb.targets)} servers",
                                    f"{len(results)} new connections as counted below",
                                    self.lab) + f"\n{verdict.report()}")
        used = checks.tally(results)
        assert all(used[t] > 0 for t in lb.targets), self.message(
            "a server got nothing", lb, node, f"every one of {sorted(lb.targets)} used",
            results)

    def expect_lost(self, results: Sequence[Result], lb, node: str, error: str,
                    what: str) -> None:
        """Every connection failed with `error` (e.g. "timeout", "refused")."""
        assert checks.tally(results) == {f"error:{error}": len(results)}, self.message(
            what, lb, node, f"every connection error:{error}", results)
