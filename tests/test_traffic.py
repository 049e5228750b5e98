"""Traffic agent tests on two namespaces joined by a veth (needs root)."""

import errno
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess

import pytest

from pytest_ovnlb.traffic import agent as agent_mod
from pytest_ovnlb.traffic.client import Agent, AgentError

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to create network namespaces")

A_IP, B_IP = "192.0.2.1", "192.0.2.2"
A6_IP, B6_IP = "fd00:ab::1", "fd00:ab::2"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns_pair(request):
    """Namespaces ovnlbt-<pid>-a (192.0.2.1, fd00:ab::1) and -b (192.0.2.2,
    fd00:ab::2)."""
    names = [f"ovnlbt-{os.getpid()}-a", f"ovnlbt-{os.getpid()}-b"]

    def remove():
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    request.addfinalizer(remove)
    for ns in names:
        ip("netns", "add", ns)
    ip("link", "add", "eth0", "netns", names[0], "type", "veth",
       "peer", "name", "eth0", "netns", names[1])
    for addr, addr6, ns in zip((A_IP, B_IP), (A6_IP, B6_IP), names):
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        # nodad: usable at once, not after duplicate address detection.
        ip("-n", ns, "addr", "add", f"{addr6}/64", "dev", "eth0", "nodad")
        ip("-n", ns, "link", "set", "eth0", "up")
    return names


@pytest.fixture
def agents(netns_pair, request, tmp_path):
    """(agent in a, agent in b); b serves tcp 8000 and 8001."""
    started = []

    def stop():
        for agent in started:
            agent.close()

    request.addfinalizer(stop)
    for ns in netns_pair:
        started.append(Agent.start(ns, ["ip", "netns", "exec", ns],
                                   log_path=str(tmp_path / f"{ns}.log")))
    a, b = started
    b.serve(8000)
    b.serve(8001)
    return a, b


def test_fresh_reports_backend_and_peer(agents, netns_pair):
    a, _ = agents
    for port in (8000, 8001):
        results = a.fresh(B_IP, port, 40)
        assert [r.error for r in results] == [None] * 40
        assert {r.target for r in results} == {f"{netns_pair[1]}:{port}"}
        assert {r.peer for r in results} == {A_IP}
        # No NAT here: the server sees our source port.
        assert all(r.peer_port == r.local_port for r in results)
        assert len({r.local_port for r in results}) == 40


def test_refused_after_unserve(agents):
    a, b = agents
    b.unserve(8000)
    results = a.fresh(B_IP, 8000, 5)
    assert [r.error for r in results] == ["refused"] * 5
    assert all(r.local_port for r in results)
    assert a.fresh(B_IP, 8001, 1)[0].ok


def test_timeout_when_packets_go_nowhere(agents, netns_pair):
    a, _ = agents
    # A bogus MAC makes b drop the frames: no answer at all.
    ip("-n", netns_pair[0], "neigh", "replace", "192.0.2.99",
       "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "permanent")
    for proto in ("tcp", "udp"):
        results = a.fresh("192.0.2.99", 8000, 3, proto=proto, timeout=0.3)
        assert [r.error for r in results] == ["timeout"] * 3


def test_unreachable_without_route(agents):
    a, _ = agents
    # No route to 198.51.100.0/24 in a: fails locally, nothing is sent.
    assert a.fresh("198.51.100.1", 8000, 1)[0].error == "unreachable"


def test_udp_fresh(agents, netns_pair):
    a, b = agents
    b.serve(9000, proto="udp")
    results = a.fresh(B_IP, 9000, 20, proto="udp")
    assert {r.target for r in results} == {f"{netns_pair[1]}:9000"}
    assert {r.peer for r in results} == {A_IP}
    assert len({r.local_port for r in results}) == 20
    b.unserve(9000, proto="udp")
    assert a.fresh(B_IP, 9000, 1, proto="udp")[0].error == "refused"


def test_session_keeps_one_connection(agents):
    a, b = agents
    with a.session(B_IP, 8000) as session:
        results = session.get(50)
        assert all(r.ok for r in results)
        assert len({r.local_port for r in results}) == 1
        assert len({r.peer_port for r in results}) == 1
        assert results[0].local_port == results[0].peer_port

        b.unserve(8000)
        failed = session.get(1)[0]
        assert failed.error in ("refused", "reset")

        # A new connection is visible as a new local port.
        b.serve(8000)
        again = session.get(1)[0]
        assert again.ok
        assert again.local_port not in (None, results[0].local_port)


def test_capture_sees_syn(agents):
    a, b = agents
    with b.capture("tcp", dst=B_IP, dport=8000) as cap_b, \
            a.capture("tcp", dst=B_IP, dport=8000) as cap_a:
        result = a.fresh(B_IP, 8000, 1)[0]
        assert result.ok
    for cap, direction in ((cap_b, "in"), (cap_a, "out")):
        syns = [p for p in cap.packets if p.flags == "S"]
        assert len(syns) == 1
        syn = syns[0]
        assert (syn.src, syn.dst, syn.sport, syn.dport, syn.direction) == (
            A_IP, B_IP, result.local_port, 8000, direction)
        # Only packets towards the filter's destination were kept.
        assert all(p.dport == 8000 and p.dst == B_IP for p in cap.packets)


def test_agent_exits_on_stdin_eof(agents):
    a, b = agents
    pid = b.ping()["pid"]
    assert pid == b.proc.pid  # "ip netns exec" execs, it does not fork
    b.proc.stdin.close()
    assert b.proc.wait(5) == 0
    assert not os.path.exists(f"/proc/{pid}")
    # Its servers went with it.
    assert a.fresh(B_IP, 8000, 1)[0].error == "refused"
    b.close()  # idempotent


def test_agent_error_on_unknown_op(agents):
    a, _ = agents
    with pytest.raises(AgentError, match="unknown op"):
        a.call("no_such_op")
    # Still the same agent, still answering (call() raises on a failed op).
    assert a.ping()["pid"] == a.proc.pid and a.proc.poll() is None


def test_agent_death_is_reported(agents):
    a, _ = agents
    a.proc.kill()
    with pytest.raises(AgentError, match="died"):
        a.ping()


def test_hung_agent_does_not_hang_caller(agents):
    a, _ = agents
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(AgentError, match="no answer"):
            a.call("ping", timeout=0.5)
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    # The late answer to the timed-out call is skipped.
    assert a.ping()["pid"] == a.proc.pid


# --- IPv6 ---------------------------------------------------------------------

def test_fresh_ipv6(agents, netns_pair):
    a, b = agents
    b.serve(9000, proto="udp")
    for proto, port in (("tcp", 8000), ("udp", 9000)):
        # The host as the caller wrote it; the peer comes back compressed.
        results = a.fresh("fd00:ab:0:0::2", port, 20, proto=proto)
        assert [r.error for r in results] == [None] * 20
        assert {r.target for r in results} == {f"{netns_pair[1]}:{port}"}
        assert {r.peer for r in results} == {A6_IP}
        assert all(r.peer_port == r.local_port for r in results)
        assert len({r.local_port for r in results}) == 20


def test_dual_stack_server_shows_plain_ipv4_peer(agents):
    a, b = agents
    b.serve(9000, proto="udp")
    # The same servers answer both families; an IPv4 client is not ::ffff:...
    # (hosts given as ipaddress objects work as well as text).
    v4, v6 = ipaddress.ip_address(B_IP), ipaddress.ip_address(B6_IP)
    for proto, port in (("tcp", 8000), ("udp", 9000)):
        assert {r.peer for r in a.fresh(v4, port, 5, proto=proto)} == {A_IP}
        assert {r.peer for r in a.fresh(v6, port, 5, proto=proto)} == {A6_IP}


def test_session_ipv6(agents):
    a, _ = agents
    with a.session(ipaddress.ip_address(B6_IP), 8000) as session:
        results = session.get(10)
    assert [r.error for r in results] == [None] * 10
    assert {r.peer for r in results} == {A6_IP}
    assert len({r.local_port for r in results}) == 1
    assert results[0].local_port == results[0].peer_port


def test_capture_sees_ipv6_syn(agents):
    a, b = agents
    # The filter matches however the address is written.
    with b.capture("tcp", dst="FD00:AB:0::0:2", dport=8000) as cap_b, \
            a.capture("tcp", dst=ipaddress.ip_address(B6_IP), dport=8000) as cap_a:
        result = a.fresh(B6_IP, 8000, 1)[0]
        assert result.ok
    for cap, direction in ((cap_b, "in"), (cap_a, "out")):
        syns = [p for p in cap.packets if p.flags == "S"]
        assert [(p.src, p.dst, p.sport, p.dport, p.direction) for p in syns] == [
            (A6_IP, B6_IP, result.local_port, 8000, direction)]
        assert all(p.dport == 8000 and p.dst == B6_IP for p in cap.packets)


def _ipv6_frame(next_header, l4):
    """Ethernet + IPv6 fd00:ab::1 -> fd00:ab::2 + l4."""
    eth = b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", 0x86DD)
    ip6 = struct.pack("!IHBB", 6 << 28, len(l4), next_header, 64)
    ip6 += socket.inet_pton(socket.AF_INET6, A6_IP)
    ip6 += socket.inet_pton(socket.AF_INET6, B6_IP)
    return eth + ip6 + l4


def test_parse_frame_ipv6():
    # TCP 40000 -> 8000, data offset 5 words, SYN+ACK.
    tcp = struct.pack("!HHIIBBHHH", 40000, 8000, 1, 0, 5 << 4, 0x12, 65535, 0, 0)
    frame = _ipv6_frame(6, tcp)
    expected = {"src": A6_IP, "dst": B6_IP, "sport": 40000, "dport": 8000,
                "flags": "SA", "direction": "in"}
    for dst in (None, B6_IP, "fd00:00ab:0000:0000:0000:0000:0000:0002"):
        assert agent_mod.parse_frame(frame, 0, "tcp", dst, 8000) == expected
    assert agent_mod.parse_frame(frame, 4, "tcp", None, None)["direction"] == "out"
    assert agent_mod.parse_frame(frame, 0, "tcp", "fd00:ab::3", None) is None
    assert agent_mod.parse_frame(frame, 0, "tcp", B_IP, None) is None
    assert agent_mod.parse_frame(frame, 0, "tcp", None, 8001) is None
    assert agent_mod.parse_frame(frame, 0, "udp", None, None) is None
    # Cut before the TCP flags byte (Ethernet 14 + IPv6 40 + 13).
    assert agent_mod.parse_frame(frame[:67], 0, "tcp", None, None) is None

    udp = struct.pack("!HHHH", 40000, 9000, 8, 0)
    assert agent_mod.parse_frame(_ipv6_frame(17, udp), 0, "udp", B6_IP, 9000) == {
        **expected, "dport": 9000, "flags": ""}
    # TCP behind an extension header (hop-by-hop, 0) is not looked for.
    assert agent_mod.parse_frame(_ipv6_frame(0, b"\x06\0" + bytes(6) + tcp),
                                 0, "tcp", None, None) is None


def test_url_host_brackets_ipv6():
    assert agent_mod._url_host(B6_IP) == f"[{B6_IP}]"
    assert agent_mod._url_host(B_IP) == B_IP


def test_server_falls_back_to_ipv4(monkeypatch):
    # Only a kernel booted with ipv6.disable=1 refuses AF_INET6 sockets (a
    # namespace's disable_ipv6 does not), so the refusal is faked in-process.
    class NoIPv6(socket.socket):
        def __init__(self, family=-1, *args, **kwargs):
            if family == socket.AF_INET6:
                raise OSError(errno.EAFNOSUPPORT, "IPv6 disabled")
            super().__init__(family, *args, **kwargs)

    monkeypatch.setattr(agent_mod.socket, "socket", NoIPv6)
    servers = agent_mod.Servers()
    try:
        servers.serve("tcp", 0, "here")  # any free port, on this host's lo
        listener = servers.servers[("tcp", 0)].handle.sockets[0]
        assert listener.family == socket.AF_INET
        with socket.create_connection(("127.0.0.1", listener.getsockname()[1]), 5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            reply = b""
            while not agent_mod._complete(reply):
                chunk = c.recv(65536)
                assert chunk, reply
                reply += chunk
        assert json.loads(reply.partition(b"\r\n\r\n")[2])["peer"] == "127.0.0.1"
    finally:
        servers.close()
        if servers.loop:  # its thread, else left running in this process
            servers.loop.call_soon_threadsafe(servers.loop.stop)


@pytest.mark.parametrize("server, client", [(B_IP, A_IP), (B6_IP, A6_IP)])
def test_sctp_fresh(agents, netns_pair, server, client):
    """SCTP samples (over raw sockets where the kernel has no SCTP): the
    server's name and port, the client's address and port as it saw them;
    a port nobody serves refuses (ABORT)."""
    a, b = agents
    b.serve(9000, proto="sctp")
    results = a.fresh(server, 9000, 24, proto="sctp")
    assert [r.error for r in results] == [None] * 24
    assert {r.target for r in results} == {f"{netns_pair[1]}:9000"}
    assert {r.peer for r in results} == {client}
    assert all(r.peer_port == r.local_port for r in results)
    assert len({r.local_port for r in results}) == 24
    b.unserve(9000, proto="sctp")
    assert {r.error for r in a.fresh(server, 9000, 4, proto="sctp", timeout=1.0)} == {"refused"}


def test_sctp_checksum_is_crc32c():
    assert agent_mod.crc32c(b"123456789") == 0xE3069283  # RFC 3720's check value
    packet = agent_mod.sctp_packet(1, 2, 0, agent_mod.SCTP_INIT,
                                   body=agent_mod.sctp_init_body(7))
    zeroed = packet[:8] + b"\0" * 4 + packet[12:]
    assert struct.unpack_from("<I", packet, 8)[0] == agent_mod.crc32c(zeroed)
    assert agent_mod.sctp_parse(packet, socket.AF_INET6)[:4] == (1, 2, 0, agent_mod.SCTP_INIT)


def _mac(ns):
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", "eth0"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]["address"]


@pytest.mark.parametrize("source, target, absent", [
    (A_IP, B_IP, "192.0.2.99"), (A6_IP, B6_IP, "fd00:ab::99")])
def test_solicit_names_who_answers(agents, netns_pair, source, target, absent):
    """ARP / neighbour solicitation, broadcast and unicast: the neighbour's
    kernel answers for its address with its MAC, nobody for a free one."""
    a, _ = agents
    mac = _mac(netns_pair[1])
    for to in (None, mac):
        answers = a.solicit(source, [target, absent], timeout=0.3, to=to)
        assert answers == {ipaddress.ip_address(target).compressed: [mac],
                           ipaddress.ip_address(absent).compressed: []}, to
