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

from collections.abc import Iterable, Sequence

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

    def fresh(self, node: str, lb, count: int, port: int | None = None,
              **kw) -> list[Result]:
        """`count` new connections (flows) from `node` to the load balancer's
        VIP, at its port or `port`."""
        return self.hub.connect(node, lb.vip, port or lb.port, count, **kw)

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

    def expect(self, ok: bool, lb, node: str, what: str, expected, observed) -> None:
        """What no other expectation covers (a learned path MTU, routing
        flows, neighbour answers, captured packets): `ok`, or fail saying
        `expected` versus `observed`."""
        assert ok, self.message(what, lb, node, expected, observed)

    def expect_served(self, results: Sequence[Result], lb, node: str,
                      by: str | Iterable[str] | None = None,
                      what: str = "") -> dict[str, set[str]]:
        """Every connection answered, every server of `lb` used (or, with
        `by`, exactly that target or those targets); returns the sources each
        server saw.  `what` says which connections, first in the message."""
        wanted = {by} if isinstance(by, str) else set(by or lb.targets)
        ok = all(r.ok for r in results) and checks.tally(results).keys() == wanted
        failed = ("connections failed or a server unused" if by is None else
                  f"connections failed or not served by exactly {', '.join(sorted(wanted))}")
        assert ok, self.message(f"{what}: {failed}" if what else failed, lb, node,
                                f"every connection served, by {sorted(wanted)}", results)
        return checks.peers_by_server(results)

    def expect_sources(self, lb, node: str, seen: dict[str, set[str]],
                       expected: dict[str, set[str]], what: str) -> None:
        """The source addresses each server saw are `expected`."""
        measure.current().sources(seen, expected, label=what, client=node)
        assert seen == expected, self.message(what, lb, node, f"sources {expected}",
                                              f"sources {seen}")

    def expect_split(self, lb, node: str, samples: int, what: str,
                     targets: Sequence[str] | None = None, stopped: str | None = None,
                     **kw) -> None:
        """New connections from `node` spread over `targets` (by default
        `lb`'s servers) as OVS's dp_hash select group shares them
        (chi-square, α of the suite), and few enough are lost (their own
        test): `samples` answers planned, sampling stops once the verdict is
        settled; every share taken.  The share of the `stopped` target (a
        server still balanced to, its port closed) is refused."""
        targets = targets or lb.targets
        shares = {("error:refused" if t == stopped else t): share for t, share in
                  checks.dp_hash_shares(targets, self.lab.versions.ovs).items()}
        results = self.fresh(node, lb, samples, concurrency=checks.SAMPLING_CONCURRENCY,
                             stop=checks.Settled(shares, samples), **kw)
        verdict = checks.distribution(results, shares, planned=samples)
        context = {"protocol": kw["proto"]} if "proto" in kw else {}
        if stopped:
            context["stopped"] = stopped
        measure.current().distribution(verdict, client=node, vip=lb.vip_key, **context)
        expected = f"the dp_hash shares of {len(targets)} servers" + (
            f", {stopped}'s refused" if stopped else "")
        assert verdict.passed, (
            checks.failure(verdict, f"{what}: OVN's split does not match OVS dp_hash shares")
            + ": " + checks.context(lb, self.placement, node, expected,
                                    f"{len(results)} new connections as counted below",
                                    self.lab) + f"\n{verdict.report()}")
        used = checks.tally(results)
        assert all(used[t] > 0 for t in shares), self.message(
            "a server got nothing", lb, node, f"every one of {sorted(shares)} used", results)

    def expect_lost(self, results: Sequence[Result], lb, node: str, what: str,
                    error: str | None = None) -> None:
        """Every connection failed: with `error` ("timeout", "refused") if
        given, else in any way (none answered)."""
        ok = (checks.tally(results) == {f"error:{error}": len(results)} if error else
              not any(r.ok for r in results))
        expected = f"every connection error:{error}" if error else "no connection served"
        assert ok, self.message(what, lb, node, expected, results)

    def expect_pinned(self, results: Sequence[Result], lb, node: str, what: str,
                      first: Result | None = None, one_connection: bool = False) -> None:
        """Every answer from one server, `first`'s if given (an earlier
        answer): a client pinned by hashing or affinity; with
        `one_connection`, requests on one kept-alive connection, which also
        keeps its client port at both ends (`first`'s), so it was never
        reopened."""
        targets = {r.target for r in results}
        ok = all(r.ok for r in results) and len(targets) == 1 and (
            first is None or targets == {first.target})
        observed = checks.summary(results)
        if one_connection:
            local, peer = {r.local_port for r in results}, {r.peer_port for r in results}
            # ports are known for answered requests; None would make every set {None}
            ok = ok and None not in local | peer and len(local) == len(peer) == 1 and (
                first is None or local == {first.local_port})
            observed += (f"; client ports {sorted(local, key=str)}, "
                         f"seen by the server {sorted(peer, key=str)}")
        expected = (f"every answer from {first.target if first else 'one server'}" + (
            f" on one connection (client port {first.local_port if first else 'kept'})"
            if one_connection else ""))
        assert ok, self.message(what, lb, node, expected, observed)
