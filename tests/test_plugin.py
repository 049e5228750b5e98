"""The plugin itself, driven with pytester: options, markers, placement
parametrization, bad input, keep-on-failure, and that the conformance
verdicts fail when OVN misbehaves."""

import ast
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_ovnlb import lab as lab_mod
from pytest_ovnlb.engine import install, records, topology

ROOT = Path(__file__).resolve().parent.parent


needs_lab = pytest.mark.lab

PLACEMENT_TESTS = """
import pytest

def test_unmarked(placement):
    pass

@pytest.mark.switch
def test_switch_only(placement):
    assert placement == "switch"

@pytest.mark.router
def test_router_only(placement):
    assert placement == "router"

@pytest.mark.dgp
def test_dgp_only(placement):
    assert placement == "dgp"

@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
def test_everywhere(placement):
    pass

def test_without_lb():
    pass
"""


INI_TWINS = [  # ini key, value in the ini file, the setting it must give
    ("ovn_topology", "single", "single"),
    ("ovn_backend", "fake-multinode", "fake-multinode"),
    ("ovnlb_keep_on_failure", "true", True),
    ("ovn_fmn_prepare_host", "true", True),
    ("ovnlb_samples", "50100", 50100),
    ("ovnlb_ready_timeout", "12.5", 12.5),
    ("ovnlb_evidence_dir", "proofs", "proofs"),
    ("ovn_central_root", "/srv/ovn-old", "/srv/ovn-old"),
    ("ovn_chassis_root", "/srv/ovn-new", "/srv/ovn-new"),
    ("ovn_upgrade_from", "/srv/ovn-old", "/srv/ovn-old"),
    ("ovn_upgrade_procedure", "fail-safe", "fail-safe"),
]


@pytest.mark.parametrize("ini, value, expected", INI_TWINS)
def test_ini_twin_sets_the_option(pytester, ini, value, expected):
    """The ini key alone (no option on the command line) sets the value."""
    pytester.makeini(f"[pytest]\n{ini} = {value}\n")
    pytester.makeconftest(f"""
def pytest_configure(config):
    from pytest_ovnlb.plugin.options import setting
    kind = type({expected!r})
    print("VALUE", repr(setting(config, {ini!r}, kind)))
""")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines([f"VALUE {expected!r}"])


def test_every_option_has_an_ini_twin_tested():
    from pytest_ovnlb.plugin.options import OPTIONS
    keys = {ini for _, ini, *_ in OPTIONS} | {"ovnlb_keep_on_failure", "ovn_fmn_prepare_host"}
    missing = (keys - {ini for ini, *_ in INI_TWINS}
               - {"ovn_fmn_dir", "ovn_fmn_runtime", "ovn_root"}  # paths checked by preflight
               # tests/test_report.py sets these in an ini file
               - {"ovnlb_report", "ovnlb_exempt", "ovnlb_skip_exit_code"})
    assert not missing, f"options whose ini twin no test sets: {sorted(missing)}"


def test_markers_are_registered(pytester):
    out = pytester.runpytest("--markers").stdout.str()
    assert all(f"@pytest.mark.{m}:" in out for m in ("router", "switch", "dgp"))


def test_placement_parametrization_follows_markers(pytester):
    pytester.makepyfile(PLACEMENT_TESTS)
    result = pytester.runpytest("--collect-only", "-q")
    ids = {line.split("::")[1] for line in result.stdout.lines if "::" in line}
    # dgp runs only where marked
    assert ids == {"test_unmarked[router]", "test_unmarked[switch]",
                   "test_switch_only[switch]", "test_router_only[router]",
                   "test_dgp_only[dgp]", "test_everywhere[router]", "test_everywhere[switch]",
                   "test_everywhere[dgp]", "test_without_lb"}


FAMILY_TESTS = """
import pytest

def test_both(family):
    pass

@pytest.mark.ipv6
def test_v6_only(family):
    pass

@pytest.mark.switch
@pytest.mark.ipv4
def test_switch_v4(placement, family):
    pass
"""


def test_family_parametrization_follows_markers(pytester):
    pytester.makepyfile(FAMILY_TESTS)
    result = pytester.runpytest("--collect-only", "-q")
    ids = {line.split("::")[1] for line in result.stdout.lines if "::" in line}
    assert ids == {"test_both[ipv4]", "test_both[ipv6]", "test_v6_only[ipv6]",
                   "test_switch_v4[switch-ipv4]"}
    out = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.ipv4:" in out and "@pytest.mark.ipv6:" in out
    for family in ("ipv4", "ipv6"):
        for how in ("-m", "-k"):
            result = pytester.runpytest(how, family, "--collect-only", "-q")
            ids = {line.split("::")[1] for line in result.stdout.lines if "::" in line}
            assert ids and all(i.endswith(f"{family}]") for i in ids), (how, ids)


@pytest.mark.parametrize("marker", ["router", "switch", "dgp"])
def test_marker_selection_is_disjoint(pytester, marker):
    """Each run carries only its own placement's marker, even a test marked
    for several placements."""
    pytester.makepyfile(PLACEMENT_TESTS)
    result = pytester.runpytest("-m", marker, "--collect-only", "-q")
    ids = {line.split("::")[1] for line in result.stdout.lines if "::" in line}
    assert ids and all(i.endswith(f"[{marker}]") for i in ids)


def test_ini_sets_topology(pytester):
    pytester.makeini("[pytest]\novn_topology = nowhere\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # the file that says so is named
    result.stderr.fnmatch_lines([f"ERROR: ovn_topology = nowhere ({pytester.path}/tox.ini): "
                                 "unknown topology 'nowhere' (known: lab, single)"])


def test_unknown_topology_is_one_line_usage_error(pytester):
    pytester.makepyfile(PLACEMENT_TESTS)
    result = pytester.runpytest("--ovn-topology=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == ["ERROR: --ovn-topology=nowhere (command line): unknown topology "
                      "'nowhere' (known: lab, single)"]


def test_unknown_backend_is_usage_error(pytester):
    result = pytester.runpytest("--ovn-backend=cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend 'cloud' (known: netns, fake-multinode)*"])


def test_missing_ovn_is_one_line_usage_error(pytester, monkeypatch):
    pytester.makepyfile("def test_x(ovn_lab):\n    pass\n")
    monkeypatch.setenv("PATH", "/nonexistent")
    install.find.cache_clear()
    try:
        result = pytester.runpytest()
    finally:
        install.find.cache_clear()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: OVN/OVS programs not found on PATH: ovsdb-server "
                                 "(package openvswitch-switch)*"])


@needs_lab
def test_report_header_names_versions(pytester):
    result = pytester.runpytest()
    found = install.find()
    result.stdout.fnmatch_lines([f"ovnlb: OVN {found.ovn_version}, OVS {found.ovs_version};*"])


def test_lab_that_cannot_be_built_errors_each_test_under_xdist(pytester):
    """A worker whose lab fails errors its tests with the reason; it never
    exits mid-test (the controller would only report a crashed item)."""
    pytester.makeconftest(
        "from pytest_ovnlb.errors import LabError\n"
        "from pytest_ovnlb.lab import Lab\n"
        "def up(*args, **kw):\n"
        "    raise LabError('chassis ubuntu2 broken on purpose')\n"
        "Lab.up = staticmethod(up)\n")
    pytester.makepyfile("\n".join(f"def test_{i}(ovn_lab):\n    pass\n" for i in range(4)))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "crash" not in out, out
    assert result.parseoutcomes() == {"errors": 4}, out
    assert out.count("ovnlb: chassis ubuntu2 broken on purpose") >= 4, out


def _copy_suite(pytester, *files):
    for name in ("conftest.py",) + files:
        shutil.copy(ROOT / "conformance" / name, pytester.path / name)


@needs_lab
def test_keep_on_failure_leaves_lab_and_says_how_to_reach_it(pytester):
    pytester.makepyfile("def test_fails(ovn_lab):\n    assert False, 'on purpose'\n")
    result = pytester.runpytest_subprocess("--ovn-topology=single", "--ovnlb-keep-on-failure")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    kept = [line for line in result.stdout.lines if "kept after failures" in line]
    assert len(kept) == 1, result.stdout.str()
    name = kept[0].split("lab ")[1].split()[0]
    record = records.load(name)
    try:
        assert record.owner_pid is None and record.state == "ready"
        assert "run directory" in result.stdout.str()  # the failure names the lab's logs
    finally:
        lab_mod.destroy(record)


@needs_lab
def test_lab_is_removed_after_a_failing_run(pytester):
    """...and the failures describe it once: its whole status under the
    first, one line naming that one under the others."""
    pytester.makepyfile("\n".join(f"def test_fails_{i}(ovn_lab):\n    assert False\n"
                                   for i in range(3)))
    result = pytester.runpytest_subprocess("--ovn-topology=single")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert out.count("run directory (databases, sockets, logs)") == 1, out
    assert len(re.findall(r"^lab pytest\d+: its status is under the first failure, "
                          r"test_lab_is_removed_after_a_failing_run.py::test_fails_0$",
                          out, re.M)) == 2, out
    # The failure report describes the lab: "lab NAME: topology single ..."
    name = next(line.split()[1].rstrip(":") for line in result.stdout.lines
                if line.startswith("lab pytest"))
    assert name not in [r.name for r in records.all_records()]
    assert not list(Path("/run/netns").glob(f"ovnlb-{name}-*"))


# --- the verdicts have teeth: break OVN's behaviour, watch the suite fail ----
#
# Every conformance test is mapped (TEETH) to a breakage (BREAKS) under which
# it must fail, and for the reason its own message states.  A breakage is a
# conftest.py added to a copy of the suite: a change in the Northbound DB,
# an option, the conntrack state or the servers that makes OVN (or the lab)
# behave the way a broken build would.

def _every_lb(body: str) -> str:
    """conftest code that runs `body` (which may change `kw`, the factory's
    arguments) around every load balancer the tests create."""
    return f"""
@pytest.fixture(autouse=True)
def break_every_lb(monkeypatch):
    from pytest_ovnlb.traffic.harness import LoadBalancers
    create = LoadBalancers.__call__
    def broken(self, servers, **kw):
{body}
    monkeypatch.setattr(LoadBalancers, "__call__", broken)
"""


# conftest code: remember every factory (`made`) and wrap a method.
_TRACKED = """
@pytest.fixture(autouse=True)
def break_it(monkeypatch):
    from pytest_ovnlb.traffic.client import Session
    from pytest_ovnlb.traffic.harness import Hub, LoadBalancers
    made = []
    create = LoadBalancers.__call__
    def track(self, servers, **kw):
        if self not in made:
            made.append(self)
        return create(self, servers, **kw)
    monkeypatch.setattr(LoadBalancers, "__call__", track)
{body}
"""

def _option_ignored(key: str) -> str:
    """conftest code: every load balancer made and edited without options:KEY."""
    return f"""
@pytest.fixture(autouse=True)
def ignore_option(monkeypatch):
    from pytest_ovnlb.traffic.harness import LoadBalancers
    create, set_options = LoadBalancers.__call__, LoadBalancers.set_options
    def drop(options):
        return {{k: v for k, v in (options or {{}}).items() if k != {key!r}}}
    def created(self, servers, **kw):
        kw["options"] = drop(kw.get("options"))
        return create(self, servers, **kw)
    def edited(self, lb, options):
        return set_options(self, lb, drop(options))
    monkeypatch.setattr(LoadBalancers, "__call__", created)
    monkeypatch.setattr(LoadBalancers, "set_options", edited)
"""


BREAKS = {
    # Each chassis resolves the template variables meant for another one.
    "template_vars_on_another_chassis": (None, """
@pytest.fixture(autouse=True)
def rotate_chassis(monkeypatch):
    from pytest_ovnlb.traffic.harness import LoadBalancers
    template_vars = LoadBalancers.template_vars
    def rotated(self, values):
        chassis = list(values)
        return template_vars(self, dict(zip(chassis[1:] + chassis[:1], values.values())))
    monkeypatch.setattr(LoadBalancers, "template_vars", rotated)
"""),
    # options:neighbor_responder is ignored: the router answers as by default.
    "neighbor_responder_ignored": (None, _option_ignored("neighbor_responder")),
    # options:add_route is ignored: neighbour routers get no route to the VIP.
    "add_route_ignored": (None, _option_ignored("add_route")),
    # options:ct_flush is ignored: a removed server keeps its connections
    # (switch only: on a router it needs a newer OVN than the default here).
    "ct_flush_ignored": ("switch", _option_ignored("ct_flush")),
    # An SCTP load balancer made for TCP: SCTP to the VIP is not translated.
    "sctp_as_tcp": (None, _every_lb("""
        if kw.get("protocol") != "sctp":
            return create(self, servers, **kw)
        self.hub.serve(servers, "sctp")
        return create(self, servers, **{**kw, "protocol": "tcp", "serve": False})""")),
    # A load balancer put in a Load_Balancer_Group whose group never reaches
    # the datapath: as if the group were ignored.
    "lb_group_not_attached": (None, _every_lb("""
        lb = create(self, servers, **kw)
        if lb.group:
            from pytest_ovnlb.engine.logical import drop_references
            nb = self.lab.nb
            group = next(r for r in nb.rows("Load_Balancer_Group") if r.name == lb.group)
            with nb.transaction() as txn:
                drop_references(nb, txn, group)
            self.sync()
        return lb""")),
    # A grouped load balancer also applied directly, as if the datapath kept
    # it: detaching the group (or emptying it) changes nothing.
    "lb_group_member_also_direct": (None, _every_lb("""
        lb = create(self, servers, **kw)
        if lb.group:
            api, routers = self.lab.nb.api, {r.name for r in self.lab.topology.routers}
            for datapath in lb.attached:
                add = api.lr_lb_add if datapath in routers else api.ls_lb_add
                add(self.lab.names.nb(datapath), lb.name).execute(check_error=True)
            self.sync()
        return lb""")),
    # The gateway router ignores options:lb_force_snat_ip.
    "lb_force_snat_ip_ignored": (None, """
@pytest.fixture(autouse=True)
def ignore_lb_force_snat_ip(ovn_lab, monkeypatch):
    api = ovn_lab.nb.api
    db_set = api.db_set
    def broken(table, record, *col_values, **kw):
        if table == "Logical_Router":
            col_values = [(c, {k: v for k, v in val.items() if k != "lb_force_snat_ip"})
                          if c == "options" else (c, val) for c, val in col_values]
        return db_set(table, record, *col_values, **kw)
    monkeypatch.setattr(api, "db_set", broken)
"""),
    # lb_force_snat_ip=router_ip SNATs to the router's external port, whatever
    # port leads to the servers.
    "router_ip_as_external_port": (None, """
@pytest.fixture(autouse=True)
def router_ip_external(ovn_lab, monkeypatch):
    api, topo = ovn_lab.nb.api, ovn_lab.topology
    port = next(p for p in topo.router("edge1").ports if p.switch == topo.provider.switch)
    external = " ".join(ip.split("/")[0] for ip in (port.ip, port.ip6))
    db_set = api.db_set
    def broken(table, record, *col_values, **kw):
        col_values = [(c, {k: external if v == "router_ip" else v for k, v in val.items()})
                      if c == "options" else (c, val) for c, val in col_values]
        return db_set(table, record, *col_values, **kw)
    monkeypatch.setattr(api, "db_set", broken)
"""),
    # options:skip_snat is ignored: the router's lb_force_snat_ip applies.
    "skip_snat_ignored": (None, _every_lb("""
        kw["options"] = {k: v for k, v in (kw.get("options") or {}).items() if k != "skip_snat"}
        return create(self, servers, **kw)""")),
    # options:hairpin_snat_ip is ignored: a self-balanced server sees the VIP.
    "hairpin_snat_ip_ignored": ("switch", _every_lb("""
        kw["options"] = {k: v for k, v in (kw.get("options") or {}).items()
                         if k != "hairpin_snat_ip"}
        return create(self, servers, **kw)""")),
    # One load balancer's hairpin_snat_ip applies to every later VIP too.
    "hairpin_snat_ip_on_every_vip": ("switch", _every_lb("""
        hairpin = (kw.get("options") or {}).get("hairpin_snat_ip") or getattr(
            self, "hairpin", None)
        if hairpin:
            self.hairpin = hairpin
            kw["options"] = {**(kw.get("options") or {}), "hairpin_snat_ip": hairpin}
        return create(self, servers, **kw)""")),
    # A VIP without a port balances only one port (its first server's).
    "portless_vip_one_port": (None, _every_lb("""
        lb = create(self, servers, **kw)
        if kw.get("ports") is False:
            from pytest_ovnlb.traffic.harness import endpoint
            port, api = servers[0].port, self.lab.nb.api
            ips = list(dict.fromkeys(b.ip for b in servers))
            row = api.lb_get(lb.name).execute(check_error=True)
            with self.lab.nb.transaction() as txn:
                txn.add(api.db_remove("Load_Balancer", row.uuid, "vips", lb.vip_key))
                vips = {endpoint(lb.vip, port): ",".join(endpoint(ip, port) for ip in ips)}
                txn.add(api.db_set("Load_Balancer", row.uuid, ("vips", vips)))
            self.sync()
        return lb""")),
    # A dual-stack row's second VIP is balanced to its first server only.
    "second_vip_one_server": (None, """
@pytest.fixture(autouse=True)
def break_second_vip(monkeypatch):
    from pytest_ovnlb.traffic.harness import LoadBalancers
    add_vip = LoadBalancers.add_vip
    def broken(self, lb, family):
        twin = add_vip(self, lb, family)
        api = self.lab.nb.api
        row = api.lb_get(lb.name).execute(check_error=True)
        vips = dict(row.vips, **{twin.vip_key: twin.servers[0].endpoint})
        api.db_set("Load_Balancer", row.uuid, ("vips", vips)).execute(check_error=True)
        self.sync()
        return twin
    monkeypatch.setattr(LoadBalancers, "add_vip", broken)
"""),
    # Every connection from one client to one backend: hash on the source only.
    "one_server": (None, _every_lb("""
        lb = create(self, servers, **kw)
        api = self.lab.nb.api
        row = api.lb_get(lb.name).execute(check_error=True)
        api.db_set("Load_Balancer", row.uuid, ("selection_fields", ["ip_src"])).execute(
            check_error=True)
        self.sync()
        return lb""")),
    # A build that loses about 15 % of new connections, the same ones
    # whatever TCP retransmits: the servers' VMs drop what comes from the
    # first 9677 of the clients' 64512 source ports (1024-65535, see
    # engine/sysctls.py; the agent picks them at random).
    "connections_lost": ("switch", """
@pytest.fixture(autouse=True)
def lose_connections(ovn_lab):
    rules = [(tool, "INPUT", "-p", proto, "--sport", "1024:10700", "-j", "DROP")
             for tool in ("iptables", "ip6tables") for proto in ("tcp", "udp")]
    for vm in ovn_lab.topology.roles.servers:
        for tool, *rule in rules:
            ovn_lab.run(vm, [tool, "-A", *rule], check=True)
    yield
    for vm in ovn_lab.topology.roles.servers:
        for tool, *rule in rules:
            ovn_lab.run(vm, [tool, "-D", *rule], check=True)
"""),
    # The gateway router forgets its SNAT: servers answer vm3 directly
    # through tenant1, bypassing edge1's un-DNAT, so connections fail.
    "no_snat": (None, """
@pytest.fixture(autouse=True)
def drop_snat(ovn_lab):
    api = ovn_lab.nb.api
    snat = ovn_lab.topology.router("edge1").snat
    for network, _ in snat:
        api.lr_nat_del("edge1", "snat", network).execute(check_error=True)
    yield
    for network, external in snat:
        api.lr_nat_add("edge1", "snat", external, network).execute(check_error=True)
"""),
    # The gateway router SNATs its own external network too (proxy mode for
    # everyone): an external client is no longer seen with its address.
    "snat_external": (None, """
@pytest.fixture(autouse=True)
def snat_external(ovn_lab):
    api, router = ovn_lab.nb.api, ovn_lab.names.nb("edge1")
    nets = (("10.127.0.129", "10.127.0.128/25"), ("fd00:127::129", "fd00:127::/64"))
    for external, network in nets:
        api.lr_nat_add(router, "snat", external, network).execute(check_error=True)
    ovn_lab.sync()
    yield
    for _, network in nets:
        api.lr_nat_del(router, "snat", network).execute(check_error=True)
"""),
    # A switch VIP served by the gateway router instead: its SNAT shows.
    "switch_vip_on_gateway_router": (None, _every_lb("""
        if self.placement == "switch" and kw.get("attach_to") is None:
            kw["attach_to"] = ["edge1"]
        return create(self, servers, **kw)""")),
    # Hairpinned connections come from another address than the VIP.
    "no_hairpin": ("switch", _every_lb("""
        kw["options"] = {"hairpin_snat_ip": "172.16.255.140 fd00:10:1::140"}
        return create(self, servers, **kw)""")),
    # options:reject is ignored: connections to a VIP without servers hang.
    "reject_ignored": (None, _every_lb("""
        kw.pop("options", None)
        return create(self, servers, **kw)""")),
    # Every lab interface at the underlay's MTU, as if no room were left for
    # the Geneve header: full-size packets are lost in the tunnels.
    "mtu_without_tunnel_room": ("tcp", """
@pytest.fixture(autouse=True)
def full_size_mtu(ovn_lab):
    from pytest_ovnlb.engine.links import iproute
    for ns in ovn_lab.record.namespaces:
        with iproute(ns) as r:
            for link in r.get_links():
                if link.get("IFLA_MTU") == ovn_lab.topology.mtu:
                    r.link("set", index=link["index"], mtu=ovn_lab.topology.underlay_mtu)
"""),
    # A VIP without servers answers with a reset, as if options:reject were set.
    "empty_lb_rejects": (None, _every_lb("""
        kw["options"] = {**(kw.get("options") or {}), "reject": "true"}
        return create(self, servers, **kw)""")),
    # options:affinity_timeout is ignored: a client's connections spread.
    "affinity_ignored": (None, _every_lb("""
        kw.pop("options", None)
        return create(self, servers, **kw)""")),
    # selection_fields is ignored: one client's connections spread.
    "selection_fields_ignored": (None, _every_lb("""
        kw.pop("selection_fields", None)
        return create(self, servers, **kw)""")),
    # The switch load balancer also acts on the client's switch.
    "switch_lb_everywhere": (None, _every_lb("""
        kw["attach_to"] = ["inside", "dmz"]
        return create(self, servers, **kw)""")),
    # A distributed router's load balancer also acts east-west: its VIP is
    # balanced on the client's switch as well, on every chassis.
    "dgp_lb_on_client_switch_too": ("dgp", _every_lb("""
        if self.placement == "dgp" and kw.get("attach_to") is None:
            kw["attach_to"] = ["dgp1", "inside"]
        return create(self, servers, **kw)""")),
    # A distributed gateway port's load balancer proxied like a gateway
    # router's with forced SNAT: it lands on edge1 (which answers for the VIP,
    # inside its subnet) with lb_force_snat_ip=router_ip.
    "dgp_lb_proxied": ("dgp", """
@pytest.fixture(autouse=True)
def proxy_dgp_lbs(monkeypatch, ovn_lab):
    from pytest_ovnlb.traffic.harness import LoadBalancers
    create = LoadBalancers.__call__
    def proxied(self, servers, **kw):
        if self.placement == "dgp" and kw.get("attach_to") is None:
            kw["attach_to"] = ["edge1"]
        return create(self, servers, **kw)
    monkeypatch.setattr(LoadBalancers, "__call__", proxied)
    api = ovn_lab.nb.api
    api.db_set("Logical_Router", "edge1", ("options", {"lb_force_snat_ip": "router_ip"})).execute(
        check_error=True)
    yield
    api.db_remove("Logical_Router", "edge1", "options", "lb_force_snat_ip").execute(
        check_error=True)
"""),
    # A switch's other_config is never set.
    "switch_config_ignored": ("switch", """
@pytest.fixture(autouse=True)
def ignore_switch_config(monkeypatch):
    import contextlib
    from pytest_ovnlb.traffic.harness import LoadBalancers
    monkeypatch.setattr(LoadBalancers, "switch_config",
                        lambda self, switch, config: contextlib.nullcontext())
"""),
    # options:gateway_mtu on a router port is ignored: nothing is too large.
    "gateway_mtu_ignored": ("router", """
@pytest.fixture(autouse=True)
def ignore_gateway_mtu(monkeypatch):
    import contextlib
    from pytest_ovnlb.traffic.harness import LoadBalancers
    monkeypatch.setattr(LoadBalancers, "router_port_options",
                        lambda self, router, switch, options: contextlib.nullcontext())
"""),
    # A load balancer meant for the client's switch lands on the servers'.
    "client_switch_lb_misplaced": (None, _every_lb("""
        if kw.get("attach_to") == ["inside"]:
            kw["attach_to"] = ["dmz"]
        return create(self, servers, **kw)""")),
    # A health check that has no effect: no ip_port_mappings, so northd
    # makes no Service_Monitor and nothing is probed.
    # (switch only: every run waits out its timeouts; one placement shows the teeth)
    "health_check_unmapped": ("switch", _every_lb("""
        lb = create(self, servers, **kw)
        if kw.get("health_check") is not None:
            api = self.lab.nb.api
            row = api.lb_get(lb.name).execute(check_error=True)
            api.db_clear("Load_Balancer", row.uuid, "ip_port_mappings").execute(
                check_error=True)
            self.sync()
        return lb""")),
    # A stopped server is dropped from the VIP (as if a health
    # check ran): nothing is refused any more.
    "stopped_backend_dropped": (None, _TRACKED.format(body="""
    stop = Hub.stop
    def stop_and_drop(self, server, proto="tcp"):
        stop(self, server, proto)
        for lbs in made:
            for lb in list(lbs.created):
                lbs.set_servers(lb, [s for s in lb.servers if s != server])
    monkeypatch.setattr(Hub, "stop", stop_and_drop)""")),
    # Halfway through a keep-alive connection, its server leaves the VIP and
    # conntrack is flushed: the established connection cannot stay.
    "pinned_backend_moved": (None, _TRACKED.format(body="""
    get = Session.get
    def get_and_move(self, count=1):
        if count < 2:
            return get(self, count)
        first = get(self, count // 2)
        pinned = {r.target for r in first if r.ok}
        for lbs in made:
            for lb in list(lbs.created):
                lbs.set_servers(lb, [s for s in lb.servers if s.target not in pinned])
            lbs.lab.backend.flush_conntrack()
        return first + get(self, count - count // 2)
    monkeypatch.setattr(Session, "get", get_and_move)""")),
    # An upgrade run (needs $OVNLB_UPGRADE_ROOT, else skipped) whose fail-safe
    # procedure restarts OVS while the controllers are still pinned to the old
    # northd: nothing puts the flows back.  Set before collection, when the
    # run plans its path.
    "ovs_under_pinned_controllers": (None, """
import os
from pytest_ovnlb.model import upgrades
upgrades.STEPS["fail-safe"] = ("pin", "central", "ovs", "controllers")

def pytest_configure(config):
    if os.environ.get("OVNLB_UPGRADE_ROOT"):
        config.option.ovn_upgrade_from = "/"
        config.option.ovn_root = os.environ["OVNLB_UPGRADE_ROOT"]
        config.option.ovn_upgrade_procedure = "fail-safe"
"""),
}

# conformance test -> (breakage, what its failure message must say)
TEETH = {
    "test_upgrade_keeps_load_balanced_traffic": (
        "ovs_under_pinned_controllers", r"ovs: .*(stalled|no new connection served)"),
    "test_template_lb_resolves_per_chassis": (
        "template_vars_on_another_chassis", r"\^\w+ as \w+ resolves it: "),
    "test_neighbor_responder_decides_who_answers_for_a_vip": (
        "neighbor_responder_ignored", "neighbor_responder=(all|none): "),
    "test_add_route_gives_neighbour_routers_a_route_to_the_vip": (
        "add_route_ignored", "add_route=true gave .* no route"),
    "test_ct_flush_ends_connections_of_a_removed_server": (
        "ct_flush_ignored", "with ct_flush=true, .* should end its established connection"),
    "test_udp_health_check_takes_dead_server_out_and_back": (
        "health_check_unmapped", "UDP Service_Monitor status is"),
    "test_sctp_associations_spread_over_servers": (
        "sctp_as_tcp", "SCTP associations to the VIP"),
    "test_lb_group_serves_like_direct_attachment": (
        "lb_group_not_attached", "through Load_Balancer_Group .*: connections failed"),
    "test_lb_group_detached_stops_serving": (
        "lb_group_member_also_direct", "the VIP still answered"),
    "test_lb_force_snat_ip_for_every_client": (
        "lb_force_snat_ip_ignored", "with lb_force_snat_ip=.*, servers should see"),
    "test_lb_force_snat_router_ip_is_the_port_towards_the_servers": (
        "router_ip_as_external_port", "port towards them"),
    "test_skip_snat_exempts_one_load_balancer": (
        "skip_snat_ignored", "with skip_snat=true, servers should see"),
    "test_hairpin_snat_ip_replaces_the_vip": (
        "hairpin_snat_ip_ignored", "with hairpin_snat_ip=.*expected sources per server"),
    "test_hairpin_snat_ip_is_per_vip": (
        "hairpin_snat_ip_on_every_vip", "the VIP without hairpin_snat_ip, sharing"),
    "test_vip_without_port_keeps_every_destination_port": (
        "portless_vip_one_port", "of a VIP without a port"),
    "test_both_vips_of_one_load_balancer_behave_alike": (
        "second_vip_one_server", "VIP of a dual-stack load balancer"),
    "test_gateway_router_spreads_new_connections": ("one_server", "NOT consistent"),
    "test_client_switch_spreads_new_connections": (
        "connections_lost", r"AssertionError: lost \d+ of \d+ connections \(timeout \d+\): "
        r"more than a 1 % loss rate explains \(p<?=.*\): VIP "),
    "test_udp_flows_spread_over_servers": ("one_server", "NOT consistent"),
    "test_health_check_takes_dead_server_out_and_back": (
        "health_check_unmapped", "Service_Monitor status is"),
    "test_dead_server_keeps_its_share_as_refusals": (
        "stopped_backend_dropped", "its share should be refused"),
    "test_selection_fields_ip_src_pins_a_client": (
        "selection_fields_ignored", "spread one client over servers"),
    "test_reject_answers_a_vip_without_servers": ("reject_ignored", "reject=true"),
    "test_payloads_larger_than_the_mtu_cross_every_path": (
        "mtu_without_tunnel_room", "replies of \\d+ bytes more, larger than the MTU"),
    "test_vip_without_servers_drops_its_connections": (
        "empty_lb_rejects", "no servers and no reject option, so it should drop"),
    "test_affinity_timeout_keeps_a_client_on_its_server": (
        "affinity_ignored", "should reach one server"),
    "test_lb_on_client_switch_serves_client": (
        "client_switch_lb_misplaced", "connections failed or a server unused"),
    "test_lb_only_on_server_switch_does_not_serve_other_switch": (
        "switch_lb_everywhere", "answered a client"),
    "test_server_switch_lb_ignores_traffic_from_router_port": (
        "switch_lb_everywhere", "the VIP answered"),
    "test_gateway_router_keeps_external_client_address": (
        "snat_external", "should see the external client"),
    "test_gateway_router_snats_internal_client": ("no_snat", "connections failed"),
    "test_gateway_port_keeps_external_client_address": (
        "dgp_lb_proxied", "should see the external client .* through the distributed gateway"),
    "test_gateway_port_lb_serves_only_what_enters_through_it": (
        "dgp_lb_on_client_switch_too", "on a chassis without the gateway port was answered"),
    "test_gateway_port_spreads_external_clients": ("one_server", "NOT consistent"),
    "test_stateless_acls_need_the_switch_option_to_keep_balancing": (
        "switch_config_ignored", "with enable-stateless-acl-with-lb=true beside stateless ACLs"),
    "test_gateway_mtu_teaches_a_server_behind_a_vip_the_path_mtu": (
        "gateway_mtu_ignored", r"with gateway_mtu=1300 on edge1's port to outside, vm\d "
                               r"should have been told the path MTU"),
    "test_switch_lb_keeps_client_address": ("switch_vip_on_gateway_router", "servers should see"),
    "test_server_reaching_the_vip": ("no_hairpin", "expected sources"),
    "test_keepalive_requests_all_reach_one_server": (
        "pinned_backend_moved",
        "requests failed|spread over servers|had to reconnect|more than one client port"),
    "test_established_connection_survives_server_list_changes": (
        "pinned_backend_moved", "established connection moved"),
}


def _conformance_tests() -> dict[str, str]:
    """Every conformance test function -> its file."""
    found = {}
    for path in sorted((ROOT / "conformance").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found[node.name] = path.name
    return found


def test_every_conformance_test_has_teeth():
    """A conformance test without a breakage that makes it fail could be
    passing whatever OVN does."""
    tests = _conformance_tests()
    assert sorted(set(tests) - set(TEETH)) == [], "conformance tests without an entry in TEETH"
    assert sorted(set(TEETH) - set(tests)) == [], "TEETH names tests that do not exist"
    assert {b for b, _ in TEETH.values()} == set(BREAKS), "breakages used by no test, or unknown"


@needs_lab
@pytest.mark.parametrize("breakage", sorted(BREAKS))
def test_suite_fails_when_ovn_misbehaves(pytester, breakage):
    narrow, conftest_extra = BREAKS[breakage]
    tests = _conformance_tests()
    victims = sorted(t for t, (b, _) in TEETH.items() if b == breakage)
    _copy_suite(pytester, *sorted({tests[t] for t in victims}))
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + "\n" + conftest_extra)
    selection = f"({' or '.join(victims)})" + (f" and {narrow}" if narrow else "")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-k", selection, "-p", "no:cacheprovider",
                                           "-n", "2", f"--junitxml={junit}")
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("error", 0) == 0, out
    if outcomes.get("skipped", 0) and not (outcomes.get("failed") or outcomes.get("passed")):
        # e.g. a behaviour newer than the OVN here: its teeth show elsewhere
        reasons = {s.get("message") for s in ElementTree.parse(junit).getroot().iter("skipped")}
        pytest.skip(f"every test {breakage} must fail is skipped here: {'; '.join(reasons)}")
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("skipped", 0) == 0, out
    # Each mapped test failed, every run of it, saying what its TEETH entry says.
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    seen: dict[str, list[str]] = {}
    for case in cases:
        function = case.get("name").split("[")[0]
        failure = case.find("failure")
        seen.setdefault(function, []).append(
            "" if failure is None else (failure.get("message") or "") + (failure.text or ""))
    assert sorted(seen) == victims, out
    # A daemon that crashed is OVN's failure, not the test's own: it shows no
    # teeth.  A known bug of this version (model/versions.py, BUGS) is named
    # as the expected failure it is; any other crash fails this test.
    crashes = [m for messages in seen.values() for m in messages
               if "lab daemon died during the test" in m]
    if crashes and all("a known bug of this version can explain it" in m for m in crashes):
        pytest.xfail(f"OVN crashed under {breakage}, a known bug of this version: "
                     + crashes[0][crashes[0].index("a known bug"):].splitlines()[0])
    assert not crashes, (f"OVN crashed under {breakage}, so the tests could not show that "
                         f"they fail for their own reason:\n{crashes[0]}")
    for function, messages in seen.items():
        symptom = TEETH[function][1]
        for message in messages:
            assert message, f"{function} passed under {breakage}:\n{out}"
            assert re.search(symptom, message), (
                f"{function} failed for another reason than {symptom!r} under {breakage}:\n"
                f"{message}")


# --- evidence of a failure ---------------------------------------------------

EVIDENCE_TESTS = """
import os, signal, pytest
from pytest_ovnlb.engine.procs import wait_gone

@pytest.mark.switch
@pytest.mark.ipv4
def test_passes_first(ovn_lbs, ovn_hub, placement):
    lb = ovn_lbs(ovn_hub.servers(2))
    assert all(r.ok for r in ovn_hub.connect("vm3", lb.vip, lb.port, 4))

@pytest.mark.switch
@pytest.mark.ipv4
def test_fails_on_purpose(ovn_lbs, ovn_hub, placement):
    lb = ovn_lbs(ovn_hub.servers(2))
    assert ovn_hub.connect("vm3", lb.vip, lb.port, 4)[0].ok
    assert False, "on purpose"

@pytest.mark.switch
@pytest.mark.ipv4
def test_controller_dies(ovn_lab, ovn_lbs, placement):
    pid = ovn_lab.daemon_pids()["ubuntu3/ovn-controller"]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 5)  # dies during the test, not after it
"""


@needs_lab
def test_failure_leaves_evidence_named_in_the_report(pytester):
    """A failing test leaves, under ./ovnlb-evidence/RUN/TEST (the default),
    every item a packager needs, and its report names the folder; a passing
    test leaves nothing; a daemon that dies fails the running test, named
    with its signal, its log kept."""
    pytester.makepyfile(test_ev=EVIDENCE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=2)
    saved = {line.split("saved in ")[1].strip() for line in result.stdout.lines
             if line.startswith("saved in ")}
    runs = list((pytester.path / "ovnlb-evidence").iterdir())
    assert len(runs) == 1, out
    folders = {p.name: p for p in runs[0].iterdir()}
    assert sorted(folders) == ["test_ev.py__test_controller_dies[switch-ipv4]",
                               "test_ev.py__test_fails_on_purpose[switch-ipv4]"]
    assert saved == {str(p) for p in folders.values()}, out  # the report names each

    lab = topology.get("lab")
    vip = lab.roles.switch_vip
    folder = folders["test_ev.py__test_fails_on_purpose[switch-ipv4]"]
    read = lambda name: (folder / name).read_text()  # noqa: E731
    assert re.search(rf"\"{re.escape(vip)}:\d+\"", read("nb-load-balancers.txt"))
    assert "ct_lb" in read("sb-lflows.txt") and vip in read("sb-lflows.txt")
    assert "# ovn-sbctl list Service_Monitor" in read("sb-service-monitors.txt")
    assert "# ovn-sbctl list MAC_Binding" in read("sb-mac-bindings.txt")
    chassis = [c.name for c in lab.chassis]
    assert sorted(p.name for p in (folder / "chassis").iterdir()) == chassis
    assert all("group_id=" in read(f"chassis/{c}/groups.txt") for c in chassis)
    assert all(vip in read(f"chassis/{c}/flows.txt") for c in chassis)
    assert any(f"dst={vip}," in read(f"chassis/{c}/conntrack.txt") for c in chassis)
    assert all("datapath_drop" in read(f"chassis/{c}/coverage.txt") or "events" in read(
        f"chassis/{c}/coverage.txt") for c in chassis)
    assert all("lookups: hit:" in read(f"chassis/{c}/datapath.txt") for c in chassis)
    # every node's kernel counters, read in its namespace (the client sent segments)
    assert sorted(p.name for p in (folder / "nodes").iterdir()) == sorted(
        chassis + ["vm1", "vm2", "vm3"])
    assert re.search(r"^Tcp:OutSegs [1-9]", read("nodes/vm3/kernel-counters.txt"), re.M)
    assert "on purpose" in read("failure.txt")
    logs = {f"central_{d}.log" for d in ("nb", "sb", "northd")} | {
        f"{c}_{d}.log" for c in chassis for d in ("ovsdb-server", "ovs-vswitchd", "ovn-controller")}
    assert {p.name for p in (folder / "logs").iterdir()} == logs
    readme = read("README.txt")
    assert "failed in: call" in readme and "OVN " in readme and vip in readme
    # The lab was built before this test: its logs start at recorded offsets.
    offsets = re.search(r"log offsets at the test's start.*: (.*)", readme).group(1)
    assert "ubuntu1/ovn-controller=" in offsets and "=0," not in offsets, readme

    died = folders["test_ev.py__test_controller_dies[switch-ipv4]"]
    result.stdout.fnmatch_lines(["*lab daemon died during the test: ubuntu3/ovn-controller "
                                 "(pid *) killed by signal 9 (SIGKILL)*"])
    assert "ubuntu3/ovn-controller (pid" in (died / "README.txt").read_text()
    assert (died / "logs" / "ubuntu3_ovn-controller.log").exists()


ORDER_TESTS = """
import pytest

@pytest.mark.ovnlb(proves=("stickiness",))
def test_a(ovn_lab): pass

@pytest.mark.ovnlb(proves=("distribution",))
def test_b(ovn_lab): pass

@pytest.mark.ovnlb(proves=("health_check",))
def test_c(ovn_lab): pass

@pytest.mark.ovnlb(proves=("distribution",))
def test_d(ovn_lab): pass

@pytest.mark.ovnlb(proves=("distribution",))
def test_e(ovn_lab): pass
"""


@pytest.mark.parametrize("worker, order", [
    # an xdist worker hands out sampling tests alternating with the rest,
    # health checks first among those
    ("gw0", ["test_b", "test_c", "test_d", "test_a", "test_e"]),
    # a serial run keeps the file's order
    (None, ["test_a", "test_b", "test_c", "test_d", "test_e"]),
])
def test_xdist_workers_interleave_sampling_and_waiting(pytester, worker, order):
    if worker:  # as xdist starts a worker: its id in config.workerinput
        pytester.makeconftest("def pytest_configure(config):\n"
                              f"    config.workerinput = {{'workerid': {worker!r}}}\n")
    pytester.makepyfile(ORDER_TESTS)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    seen = [line.split("::")[1] for line in result.stdout.lines if "::" in line]
    assert seen == order


STALE_CLIENT = r"""
import socket, struct, sys
va, pa, vb, pb, sport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def bound(timeout):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", sport))
    s.settimeout(timeout)
    return s
s = bound(3)
s.connect((va, pa))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: the server keeps it open
print("A", b'"backend"' in s.recv(4096), flush=True)
sys.stdin.readline()
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()  # a reset that cannot reach the server any more: the port is free here only
print("gone", flush=True)
sys.stdin.readline()
s = bound(2)
try:
    s.connect((vb, pb))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    print("B", b'"backend"' in s.recv(4096), flush=True)
except OSError as e:
    print("B", repr(e), flush=True)
"""

STALE_TESTS = """
import subprocess, sys
import pytest

@pytest.mark.switch
@pytest.mark.ipv4
def test_reset_forgets_connections_of_gone_clients(ovn_lab, ovn_hub, ovn_lbs, placement):
    server = ovn_hub.servers(2)[1:]
    a, b = ovn_lbs(server), ovn_lbs(server)
    client = subprocess.Popen(
        ovn_lab.enter_prefix("vm3") + [sys.executable, "stale_client.py", a.vip, str(a.port),
                                        b.vip, str(b.port), "45123"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().split() == ["A", "True"]
        ovn_lbs.remove(a)
        ovn_lab.backend.flush_conntrack()
        client.stdin.write("\\n"); client.stdin.flush()
        assert client.stdout.readline().split() == ["gone"]
        assert ovn_hub.reset() == 1  # the server still held the connection
        assert ovn_hub.reset() == 0
        client.stdin.write("\\n"); client.stdin.flush()
        assert client.stdout.readline().split() == ["B", "True"]
    finally:
        client.kill()
"""


@needs_lab
def test_hub_reset_forgets_connections_of_gone_clients(pytester):
    """A client gone without the server knowing (its reset lost) leaves the
    server holding the connection.  A later connection from the same client
    port through another VIP to that server then meets it: the server's
    challenge ACK makes OVS 3.1's userspace conntrack judge the client's
    reset and retransmitted SYNs invalid, and OVN drops them, so the
    connection stalls (seen: without the reset, B times out with two
    conntrack_tcp_seq_chk_failed on the client's chassis).  Each test's
    reset drops what servers hold, and then the new connection succeeds."""
    pytester.makepyfile(test_stale=STALE_TESTS)
    (pytester.path / "stale_client.py").write_text(STALE_CLIENT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)


@needs_lab
def test_readme_example_test_runs(pytester):
    """The README's example test, as written there, passes on the lab in
    every parametrization (both placements, both families)."""
    text = (ROOT / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S)
                   if "def test_spread" in block)
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "-n", "2",
                                           timeout=300)
    result.assert_outcomes(passed=4)
    for param in ("router-ipv4", "router-ipv6", "switch-ipv4", "switch-ipv6"):
        result.stdout.fnmatch_lines([f"*PASSED*test_spread[[]{param}[]]*"])


@needs_lab
def test_servers_of_another_family_than_the_vip_are_an_error(pytester):
    """OVN takes a mixed-family load balancer, and every connection to it
    fails: the factory refuses it at once, naming both families."""
    pytester.makepyfile("""
import pytest

@pytest.mark.switch
@pytest.mark.ipv6
def test_mixed(ovn_lbs, ovn_hub, placement):
    ovn_lbs(ovn_hub.servers(2))
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*a load balancer with the IPv6 VIP * cannot have the IPv4 "
                                 "servers *:8000, *:8000: take them from ovn_lbs.servers(k)*"])
    assert result.duration < 60


# --- one declaration per test: what it proves, what it needs -----------------

DECLARED_TESTS = """
import pytest

@pytest.mark.switch
@pytest.mark.ipv4
@pytest.mark.ovnlb(needs=("switch_lb",))
def test_needs_what_every_ovn_has(ovn_case):
    pass

@pytest.mark.switch
@pytest.mark.ipv4
@pytest.mark.ovnlb(needs=("gateway_mtu",))
def test_needs_a_future_behaviour(ovn_case):
    raise AssertionError("ran although OVN lacks what it needs")

@pytest.mark.switch
@pytest.mark.ipv4
@pytest.mark.ovnlb(proves=("distribution",))
def test_asks_about_an_undeclared_behaviour(ovn_case):
    ovn_case.holds("lb_template")

@pytest.mark.switch
@pytest.mark.ipv4
@pytest.mark.ovnlb(proves=("lb_template",))
def test_asks_about_a_declared_behaviour(ovn_case):
    assert ovn_case.holds("lb_template") in (True, False)
"""


@needs_lab
def test_a_declaration_drives_skips_and_guards_the_version_table(pytester, monkeypatch):
    """`needs` skips with the version table's reason where the OVN under test
    lacks the behaviour (here gateway_mtu made newer than any OVN); a test
    asking about a behaviour it does not declare fails, saying so."""
    pytester.makepyfile(test_declared=DECLARED_TESTS)
    pytester.makeconftest("""
import dataclasses
from pytest_ovnlb.model import versions
b = versions.BEHAVIOURS["gateway_mtu"]
versions.BEHAVIOURS["gateway_mtu"] = dataclasses.replace(b, since=versions.Version(99, 3, 0))
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*asks the version table about 'lb_template' without declaring it*",
        "*SKIPPED*OVN * predates 99.03.0: options:gateway_mtu*"])


def test_the_selection_marker_is_not_declared_by_hand(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ovnlb_feature(name="stickiness")
        def test_x():
            pass
    """)
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "declare features with @pytest.mark.ovnlb(proves=...)" in result.stderr.str()


def test_conformance_tests_declare_once_and_ask_only_through_the_case():
    """No conformance test reads the version table or skips on a version by
    itself: what it needs and proves is its declaration, version-dependent
    outcomes come through ovn_case.holds()."""
    suite = ROOT / "conformance"
    for path in sorted(suite.glob("*.py")):
        text = path.read_text()
        for call in ("requires(", "expects(", "ovnlb_feature(", "versions.ovn <", "Version("):
            assert call not in text, f"{path.name} uses {call}"
