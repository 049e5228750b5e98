"""Traffic agent that runs inside one node (a network namespace).

Protocol: one JSON request per line on stdin, one JSON response per line on
stdout. Every request has an "id" that is echoed back; a response is either
{"id", "ok": true, ...} or {"id", "ok": false, "error": "<one line>"}.
Requests are handled in order. Backend servers run on an asyncio loop in a
background thread. The agent exits, closing every socket, at EOF on stdin.
"""

import argparse
import asyncio
import errno
import fcntl
import functools
import ipaddress
import json
import os
import random
import re
import select
import socket
import struct
import sys
import threading
import time

import requests

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
TCP_FLAGS = "FSRPAUEC"  # bit 0 .. bit 7 of the TCP flags byte


class OpError(Exception):
    """A request that cannot be done; its message goes back to the caller."""


# --- error classification -------------------------------------------------

_ERRNO_KINDS = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "reset",
    errno.EPIPE: "reset",
    errno.ECONNABORTED: "reset",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
}


def _chain(exc):
    """The exception and everything it wraps (requests and urllib3 nest)."""
    seen, todo = [], [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None)]
        todo += list(e.args)
    return seen


def classify(exc):
    """Map an exception to one of the error kinds of a result."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, (requests.Timeout, TimeoutError, asyncio.TimeoutError)):
            return "timeout"
        if isinstance(e, OSError) and e.errno in _ERRNO_KINDS:
            return _ERRNO_KINDS[e.errno]
        if isinstance(e, ConnectionRefusedError):
            return "refused"
        # http.client.RemoteDisconnected is a ConnectionResetError without errno.
        if isinstance(e, ConnectionError):
            return "reset"
    for e in chain:
        if isinstance(e, ValueError):
            return "bad-reply"
    return "other: " + " ".join(f"{type(exc).__name__}: {exc}".split())


# --- backend servers --------------------------------------------------------

class _HttpConn(asyncio.Protocol):
    """One accepted connection. The reply only depends on the peer, so it is
    built once per connection; requests are parsed just enough for framing."""

    def __init__(self, server):
        self.server = server
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport
        self.server.conns.add(transport)
        host, port = transport.get_extra_info("peername")[:2]
        body = _reply(self.server.name, self.server.port, _peer(host), port)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: %d\r\n" % len(body)
        self.keep = head + b"Connection: keep-alive\r\n\r\n" + body
        self.last = head + b"Connection: close\r\n\r\n" + body

    def connection_lost(self, exc):
        self.server.conns.discard(self.transport)

    def data_received(self, data):
        buf = self.buf + data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            try:
                close, length, pad = _parse_head(buf[:end])
            except ValueError:
                self.transport.close()
                return
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length:]
            if pad:  # a reply of a size asked for: built for this request
                host, port = self.transport.get_extra_info("peername")[:2]
                body = _reply(self.server.name, self.server.port, _peer(host), port, pad)
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: %s\r\n\r\n"
                    % (len(body), b"close" if close else b"keep-alive") + body)
                if close:
                    self.buf = b""
                    asyncio.get_running_loop().call_later(10, self.transport.abort)
                    return
                continue
            if close:
                # Let the client close first: the TIME_WAIT state then stays
                # with the client, whose connect() skips such ports, instead
                # of piling up here where a reused client port would hit it.
                # A client gone without closing is reset, not sent a FIN: a
                # FIN nobody acknowledges would hold the port pair for minutes.
                self.transport.write(self.last)
                self.buf = b""
                asyncio.get_running_loop().call_later(10, self.transport.abort)
                return
            self.transport.write(self.keep)
        if len(buf) > 65536:
            self.transport.close()
        self.buf = buf


def _parse_head(head):
    """(close after reply?, request body length, reply padding asked for by
    `?pad=N` in the path) for one request head."""
    lines = head.decode("latin-1").split("\r\n")
    version = lines[0].rsplit(" ", 1)[-1].upper()
    # only a request line with a query can ask for padding (the hot path has none)
    pad = re.search(r"[?&]pad=(\d+)", lines[0]) if "?" in lines[0] else None
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip().lower()
    conn = fields.get("connection", "")
    close = "close" in conn or (version != "HTTP/1.1" and "keep-alive" not in conn)
    return close, int(fields.get("content-length") or 0), int(pad.group(1)) if pad else 0


def _peer(host):
    """A client's address as it knows it: a dual-stack socket sees an IPv4
    client as ::ffff:a.b.c.d."""
    addr = ipaddress.ip_address(host)
    return (getattr(addr, "ipv4_mapped", None) or addr).compressed


def _reply(name, port, peer, peer_port, pad=0):
    """Who answered, to whom; with `pad`, that many more bytes (a reply
    larger than one packet, to carry across the path's MTU)."""
    body = {"backend": name, "port": port, "peer": peer, "peer_port": peer_port}
    if pad:
        body["pad"] = "x" * pad
    return json.dumps(body).encode() + b"\n"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server):
        self.server = server

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        # "?N\n" then N bytes: a reply padded with N bytes too
        pad = re.match(rb"\?(\d+)\n", data)
        self.transport.sendto(
            _reply(self.server.name, self.server.port, _peer(addr[0]), addr[1],
                   int(pad.group(1)) if pad else 0),
            addr)


class _Server:
    def __init__(self, name, port):
        self.name, self.port = name, port
        self.conns = set()
        self.handle = None  # asyncio Server (tcp) or transport (udp)


class Servers:
    """Backend servers on one event loop in a daemon thread."""

    def __init__(self):
        self.loop = None
        self.servers = {}
        self.raw_sctp = None  # RawSctpServers, where the kernel has no SCTP

    def _run(self, coro):
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def serve(self, proto, port, name):
        key = (proto, port)
        if key in self.servers:
            raise OpError(f"already serving {proto}/{port}")
        if proto == "sctp" and not kernel_sctp():
            if self.raw_sctp is None:
                self.raw_sctp = RawSctpServers()
            self.servers[key] = server = _Server(name, port)
            server.handle = self.raw_sctp.serve(port, name)
            return
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        number = socket.IPPROTO_SCTP if proto == "sctp" else 0
        # One socket for both families; IPv4 only where IPv6 is disabled.
        try:
            sock, addr = socket.socket(socket.AF_INET6, kind, number), "::"
        except OSError:
            sock, addr = socket.socket(socket.AF_INET, kind, number), "0.0.0.0"
        try:
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((addr, port))
            if proto != "udp":
                sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        server = _Server(name, port)
        server.handle = self._run(self._start(proto, sock, server))
        self.servers[key] = server

    async def _start(self, proto, sock, server):
        loop = asyncio.get_running_loop()
        if proto != "udp":
            return await loop.create_server(
                lambda: _HttpConn(server), sock=sock, backlog=1024)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(server), sock=sock)
        return transport

    def unserve(self, proto, port):
        server = self.servers.pop((proto, port), None)
        if server is None:
            raise OpError(f"not serving {proto}/{port}")
        self._run(self._stop(server))

    async def _stop(self, server):
        server.handle.close()
        for transport in list(server.conns):
            transport.abort()
        # Let the scheduled socket closes run before answering.
        for _ in range(3):
            await asyncio.sleep(0)

    def drop(self):
        """Reset every open connection of every server; how many there were."""
        return self._run(self._drop())

    async def _drop(self):
        dropped = 0
        for server in self.servers.values():
            for transport in list(server.conns):
                transport.abort()
                dropped += 1
        for _ in range(3):  # let the scheduled socket closes run
            await asyncio.sleep(0)
        return dropped

    def close(self):
        for proto, port in list(self.servers):
            self.unserve(proto, port)


# --- fresh-connection client -----------------------------------------------

async def _writable(loop, sock):
    fut = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_writer(fd)


def _source_ports():
    """The local port range in random order, round after round, for the
    agent's whole life.  New connections take the next free one: the
    kernel's own choice would hand a refused connection's port (no
    TIME_WAIT) straight back, with the same 5-tuple and so the same backend,
    skewing a sample towards whatever refused."""
    # This range, despite its path, is IPv6's too.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = map(int, f.read().split())
    ports = list(range(low, high + 1))
    while True:
        random.shuffle(ports)
        yield from ports


class _Ports:
    """One _source_ports() for the whole agent, shared by the threads that
    open connections (`fresh` on the main thread, held flows on theirs): a
    port comes back only after every other one was handed out."""

    def __init__(self):
        self.lock, self.ports = threading.Lock(), None

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:  # a generator cannot be advanced from two threads at once
            if self.ports is None:
                self.ports = _source_ports()
            return next(self.ports)


_PORTS = _Ports()


def _family(host):
    """The socket family for a destination host."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return socket.AF_INET  # a name, not an address: IPv4 as before
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _url_host(host):
    """host as written in a URL or a Host header: IPv6 in brackets."""
    return f"[{host}]" if _family(host) == socket.AF_INET6 else host


def _bound(host, kind, ports, number=0):
    """A socket towards `host` bound to the next usable port of `ports`."""
    for port in ports:
        sock = socket.socket(_family(host), kind, number)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
            return sock
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRNOTAVAIL, "no free source port left")


async def _tcp_sample(loop, host, port, box, ports, number=0, size=0):
    while True:
        sock = _bound(host, socket.SOCK_STREAM, ports, number)
        sock.setblocking(False)
        err = sock.connect_ex((host, port))
        if err != errno.EADDRNOTAVAIL:  # else this 4-tuple is in TIME_WAIT
            break
        sock.close()
    try:
        # Read the port now: a failed connect releases it.
        box["local_port"] = sock.getsockname()[1] or None
        if err == errno.EINPROGRESS:
            await _writable(loop, sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        path = b"/?pad=%d" % size if size else b"/"
        await loop.sock_sendall(
            sock, b"GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, _url_host(host).encode()))
        data = b""
        while not _complete(data):
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()  # before the server does: see _HttpConn.data_received
    if not data:
        raise ConnectionResetError("connection closed without a reply")
    head, sep, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)
    if not sep or len(status) < 2 or status[1] != b"200":
        raise ValueError("not an HTTP 200 reply")
    return _whole(json.loads(body), size)


def _whole(reply, size):
    """The reply, if it carries the `size` bytes of padding asked for."""
    if size and len(reply.get("pad", "")) != size:
        raise ValueError(f"a reply of {len(reply.get('pad', ''))} padding bytes, not {size}")
    return reply


def _complete(data):
    """Whether `data` holds a whole HTTP reply (head and Content-Length body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


async def _udp_sample(loop, host, port, box, ports, size=0):
    sock = _bound(host, socket.SOCK_DGRAM, ports)
    try:
        sock.setblocking(False)
        # Connected, so an ICMP port unreachable shows up as ECONNREFUSED.
        sock.connect((host, port))
        box["local_port"] = sock.getsockname()[1]
        # with `size`, the request is that large too: both ways across the MTU
        sock.send(b"?%d\n" % size + b"x" * size if size else b"?\n")
        data = await loop.sock_recv(sock, 65536)
    finally:
        sock.close()
    return _whole(json.loads(data), size)


def _result(reply, local_port):
    if not isinstance(reply, dict):
        return {"error": "bad-reply", "local_port": local_port}
    return {
        "backend": reply.get("backend"), "port": reply.get("port"),
        "peer": reply.get("peer"), "peer_port": reply.get("peer_port"),
        "local_port": local_port, "error": None,
    }


# A connection in this lab completes within milliseconds; one still open
# after this long is stalled (a dropped SYN, a missing reply) and stops
# holding a concurrency slot, so stalls wait out their timeouts side by side
# instead of in rounds of `concurrency`.
STALLED = 0.1
# At most this many times `concurrency` connections open at once, so that
# slow answers on a loaded machine cannot snowball into more load.
MAX_OPEN = 8


async def _fresh(proto, host, port, count, concurrency, timeout, size=0):
    loop = asyncio.get_running_loop()
    sample = {"tcp": _tcp_sample, "udp": _udp_sample, "sctp": _sctp_sample}[proto]
    ports = _PORTS
    results = [None] * count
    slots = asyncio.Semaphore(max(1, min(concurrency, count)))
    open_ = asyncio.Semaphore(MAX_OPEN * max(1, concurrency))

    async def one(i):
        held = [True]

        def release():
            if held[0]:
                held[0] = False
                slots.release()

        stalled = loop.call_later(STALLED, release)
        box = {"local_port": None}
        try:
            more = {"size": size} if size else {}
            reply = await asyncio.wait_for(sample(loop, host, port, box, ports, **more),
                                           timeout)
            results[i] = _result(reply, box["local_port"])
        except Exception as e:
            results[i] = {"error": classify(e), "local_port": box["local_port"]}
        finally:
            stalled.cancel()
            release()
            open_.release()

    tasks = []
    for i in range(count):
        await slots.acquire()
        await open_.acquire()
        tasks.append(loop.create_task(one(i)))
    await asyncio.gather(*tasks)
    return results


# --- SCTP ---------------------------------------------------------------------
#
# Where the kernel has SCTP, servers and clients use its one-to-one sockets
# and speak HTTP as over TCP.  Where it has none (socket() fails with
# EPROTONOSUPPORT), the agent speaks the first half of SCTP's handshake
# itself over raw sockets: a client sends an INIT, a server answers an
# INIT-ACK whose state cookie says who answered (the JSON of a web reply),
# or an ABORT for a port it does not serve.  Through a load balancer that is
# an association's setup both ways through conntrack: the INIT translated to
# a backend's address and port, the INIT-ACK back to the VIP's.

SCTP_INIT, SCTP_INIT_ACK, SCTP_ABORT = 1, 2, 6
SCTP_STATE_COOKIE = 7


@functools.lru_cache(maxsize=1)
def kernel_sctp():
    """Whether this node's kernel opens SCTP sockets."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        return True
    except OSError as e:
        if e.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.EAFNOSUPPORT):
            return False
        raise


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_packet(sport, dport, vtag, chunk_type, flags=0, body=b""):
    """An SCTP packet of one chunk, its CRC32c checksum filled in."""
    chunk = struct.pack("!BBH", chunk_type, flags, 4 + len(body)) + body
    chunk += b"\0" * (-len(chunk) % 4)
    packet = struct.pack("!HHII", sport, dport, vtag, 0) + chunk
    return packet[:8] + struct.pack("<I", crc32c(packet)) + packet[12:]


def sctp_init_body(tag, params=b""):
    """INIT or INIT-ACK fields: initiate tag, window, streams, initial TSN."""
    return struct.pack("!IIHHI", tag, 65535, 1, 1, tag) + params


def sctp_parse(data, family):
    """(sport, dport, vtag, chunk type, chunk body) of a packet a raw socket
    read (IPv4 raw sockets hand over the IP header too), or None."""
    if family == socket.AF_INET:
        data = data[(data[0] & 0x0F) * 4:] if data else b""
    if len(data) < 16:
        return None
    sport, dport, vtag = struct.unpack_from("!HHI", data)
    kind, _, length = struct.unpack_from("!BBH", data, 12)
    return sport, dport, vtag, kind, data[16:12 + max(4, length)]


def _raw_sctp(family):
    sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_SCTP)
    sock.setblocking(False)
    return sock


class RawSctpServers:
    """Answers INITs to the served ports on raw sockets, in a thread."""

    def __init__(self):
        self.ports = {}  # port -> name
        self.socks = [_raw_sctp(socket.AF_INET), _raw_sctp(socket.AF_INET6)]
        threading.Thread(target=self._run, daemon=True).start()

    def serve(self, port, name):
        self.ports[port] = name
        ports = self.ports

        class Handle:
            def close(self):
                ports.pop(port, None)
        return Handle()

    def _run(self):
        while True:
            for sock in select.select(self.socks, [], [])[0]:
                try:
                    data, addr = sock.recvfrom(65536)
                except BlockingIOError:
                    continue
                self._answer(sock, data, addr)

    def _answer(self, sock, data, addr):
        parsed = sctp_parse(data, sock.family)
        if not parsed:
            return
        sport, dport, vtag, kind, body = parsed
        if kind != SCTP_INIT or vtag != 0 or len(body) < 16:
            return
        tag = struct.unpack_from("!I", body)[0]
        name = self.ports.get(dport)
        if name is None:
            reply = sctp_packet(dport, sport, tag, SCTP_ABORT)
        else:
            cookie = _reply(name, dport, _peer(addr[0]), sport)
            param = struct.pack("!HH", SCTP_STATE_COOKIE, 4 + len(cookie)) + cookie
            param += b"\0" * (-len(param) % 4)
            ours = random.getrandbits(32) or 1
            reply = sctp_packet(dport, sport, tag, SCTP_INIT_ACK,
                                body=sctp_init_body(ours, param))
        sock.sendto(reply, (addr[0], 0))


async def _sctp_raw_sample(loop, host, port, box, ports):
    """An INIT to host:port from the next port of `ports`: the state cookie
    of the INIT-ACK that comes back from host:port (refused on an ABORT)."""
    family = _family(host)
    sock = _raw_sctp(family)
    try:
        sport, tag = next(ports), random.getrandbits(32) or 1
        box["local_port"] = sport
        await loop.sock_sendto(sock, sctp_packet(sport, port, 0, SCTP_INIT,
                                                 body=sctp_init_body(tag)), (host, 0))
        while True:
            data, addr = await loop.sock_recvfrom(sock, 65536)
            parsed = sctp_parse(data, family)
            if not parsed or parsed[1] != sport or parsed[2] != tag:
                continue
            if parsed[3] == SCTP_ABORT:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "ABORT")
            if parsed[3] != SCTP_INIT_ACK:
                continue
            if _text(addr[0]) != _text(host) or parsed[0] != port:
                # an answer that was not translated back to the VIP
                raise ValueError(f"INIT-ACK from {addr[0]} port {parsed[0]}")
            params = parsed[4][16:]
            while len(params) >= 4:
                kind, length = struct.unpack_from("!HH", params)
                if kind == SCTP_STATE_COOKIE:
                    return json.loads(params[4:length])
                params = params[max(4, length + (-length % 4)):]
            raise ValueError("INIT-ACK without a state cookie")
    finally:
        sock.close()


async def _sctp_sample(loop, host, port, box, ports):
    if kernel_sctp():
        return await _tcp_sample(loop, host, port, box, ports, socket.IPPROTO_SCTP)
    return await _sctp_raw_sample(loop, host, port, box, ports)


# --- keep-alive sessions ------------------------------------------------------

def _session_local_port(response):
    """Source port of the TCP connection that carried a streamed response."""
    conn = getattr(response.raw, "connection", None) or getattr(
        response.raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    try:
        return sock.getsockname()[1] if sock else None
    except OSError:
        return None


class Sessions:
    def __init__(self):
        self.sessions = {}

    def open(self, sid, host, port, timeout):
        if sid in self.sessions:
            raise OpError(f"session {sid} already open")
        session = requests.Session()
        session.trust_env = False  # the host's proxy settings are not the lab's
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=1, max_retries=0)
        session.mount("http://", adapter)
        self.sessions[sid] = (session, f"http://{_url_host(host)}:{port}/", timeout)

    def get(self, sid, count):
        """Up to count requests; a failed one ends the list, since the ones
        after it would be on a new connection, not the one under test."""
        session, url, timeout = self._find(sid)
        results = []
        for _ in range(count):
            results.append(self._one(session, url, timeout))
            if results[-1]["error"]:
                break
        return results

    @staticmethod
    def _one(session, url, timeout):
        local_port = None
        try:
            # Streamed, so the connection is still attached when we look.
            response = session.get(url, timeout=timeout, stream=True)
            local_port = _session_local_port(response)
            body = response.content
            if response.status_code != 200:
                return {"error": "bad-reply", "local_port": local_port}
            return _result(json.loads(body), local_port)
        except Exception as e:
            return {"error": classify(e), "local_port": local_port}

    def close(self, sid):
        self._find(sid)[0].close()
        del self.sessions[sid]

    def close_all(self):
        for sid in list(self.sessions):
            self.close(sid)

    def _find(self, sid):
        if sid not in self.sessions:
            raise OpError(f"no session {sid}")
        return self.sessions[sid]


# --- held traffic -------------------------------------------------------------
#
# Traffic kept going in the background while the lab changes under it (an
# upgrade): long-lived TCP connections asking one request every `interval`,
# UDP flows (one source port each) doing the same, and streams of new TCP
# connections, one started every `interval`.  Every request is logged as
# [sent, answered or None, server or None, error or None], times on
# CLOCK_MONOTONIC, which the caller's time.monotonic() reads too.  A held
# TCP connection is never reopened: the first error ends it, as it would
# end a user's session.

class _Flow:
    def __init__(self, spec):
        self.id, self.kind = spec["id"], spec["kind"]
        self.host, self.port = spec["host"], int(spec["port"])
        self.interval = float(spec.get("interval", 0.2))
        self.timeout = float(spec.get("timeout", 30.0))
        self.events = []
        # checked by each loop: before Python 3.12, asyncio.wait_for can
        # swallow the cancellation of a request that completes meanwhile
        self.stopped = False


async def _tcp_held(flow):
    """One connection, one request every interval, until an error ends it."""
    loop = asyncio.get_running_loop()
    request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % _url_host(flow.host).encode()
    sock = None
    try:
        sock = socket.socket(_family(flow.host), socket.SOCK_STREAM)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (flow.host, flow.port)), flow.timeout)
        while not flow.stopped:
            sent, data = time.monotonic(), b""
            event = [sent, None, None, None]
            flow.events.append(event)
            try:
                await loop.sock_sendall(sock, request)
                while not _complete(data):
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536),
                                                   max(0.0, sent + flow.timeout - time.monotonic()))
                    if not chunk:
                        raise ConnectionResetError("closed by the peer")
                    data += chunk
                reply = json.loads(data.partition(b"\r\n\r\n")[2])
                event[1], event[2] = time.monotonic(), reply.get("backend")
            except Exception as e:
                event[1], event[3] = time.monotonic(), classify(e)
                return
            await asyncio.sleep(max(0.0, sent + flow.interval - time.monotonic()))
    except asyncio.CancelledError:
        raise
    except Exception as e:  # the connection was never made
        flow.events.append([time.monotonic(), time.monotonic(), None, classify(e)])
    finally:
        if sock is not None:
            sock.close()


async def _udp_held(flow):
    """One source port, one datagram every interval; an unanswered one is
    logged as a timeout after `interval` and the flow goes on."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(_family(flow.host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((flow.host, flow.port))
        while not flow.stopped:
            sent = time.monotonic()
            event = [sent, None, None, None]
            flow.events.append(event)
            try:
                sock.send(b"?\n")
                reply = json.loads(await asyncio.wait_for(loop.sock_recv(sock, 65536),
                                                          flow.interval))
                event[1], event[2] = time.monotonic(), reply.get("backend")
            except Exception as e:
                event[1], event[3] = time.monotonic(), classify(e)
            await asyncio.sleep(max(0.0, sent + flow.interval - time.monotonic()))
    finally:
        sock.close()


async def _new_stream(flow):
    """A new connection started every interval, each with its own timeout."""
    loop = asyncio.get_running_loop()

    async def one():
        event = [time.monotonic(), None, None, None]
        flow.events.append(event)
        try:
            reply = await asyncio.wait_for(
                _tcp_sample(loop, flow.host, flow.port, {}, _PORTS), flow.timeout)
            event[1], event[2] = time.monotonic(), reply.get("backend")
        except Exception as e:
            event[1], event[3] = time.monotonic(), classify(e)

    tasks = set()
    try:
        while not flow.stopped:
            start = time.monotonic()
            task = loop.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0.0, start + flow.interval - time.monotonic()))
    finally:
        for task in tasks:
            task.cancel()


STOP_WAIT = 2.0  # seconds held flows get to end once stopped


class Holds:
    """Held flows on an event loop of their own, in a daemon thread."""
    RUN = {"tcp": _tcp_held, "udp": _udp_held, "new": _new_stream}

    def __init__(self):
        self.loop, self.flows, self.tasks = None, {}, {}

    def _run(self, coro):
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self, specs):
        flows = [_Flow(s) for s in specs]
        for flow in flows:
            if flow.kind not in self.RUN:
                raise OpError(f"bad held flow kind {flow.kind!r}")
            if flow.id in self.flows:
                raise OpError(f"held flow {flow.id} already running")
        return self._run(self._start(flows))

    async def _start(self, flows):
        for flow in flows:
            self.flows[flow.id] = flow
            self.tasks[flow.id] = asyncio.get_running_loop().create_task(
                self.RUN[flow.kind](flow))
        return {}

    def stop(self):
        """End every held flow: {flow id: its finished events}."""
        return self._run(self._stop())

    async def _stop(self):
        for fid, task in self.tasks.items():
            self.flows[fid].stopped = True
            task.cancel()
        if self.tasks:  # a flow still running after this is left behind
            await asyncio.wait(self.tasks.values(), timeout=STOP_WAIT)
        out = {fid: [e for e in flow.events if e[1] is not None]
               for fid, flow in self.flows.items()}
        self.flows, self.tasks = {}, {}
        return {"flows": out}

    def close(self):
        if self.loop is not None and self.tasks:
            self.stop()


# --- packet capture -----------------------------------------------------------

def _default_iface():
    for _, name in sorted(socket.if_nameindex()):
        if name != "lo":
            return name
    raise OpError("no interface other than lo")


@functools.lru_cache(maxsize=4096)
def _text(addr):
    """An address (text or packed bytes) in its one compressed spelling;
    cached, as a capture sees the same few addresses over and over."""
    return ipaddress.ip_address(addr).compressed


def parse_frame(frame, pkttype, proto, dst, dport):
    """A packet dict if the Ethernet frame matches the filter, else None."""
    off = 12
    ethertype = struct.unpack_from("!H", frame, off)[0] if len(frame) >= 14 else 0
    while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 6:
        off += 4
        ethertype = struct.unpack_from("!H", frame, off)[0]
    ip = off + 2
    if ethertype == 0x0800 and len(frame) >= ip + 20:
        ipproto, l4 = frame[ip + 9], ip + (frame[ip] & 0x0F) * 4
        addrs = frame[ip + 12:ip + 20]
    elif ethertype == 0x86DD and len(frame) >= ip + 40:
        # Extension headers are not followed: the lab's TCP and UDP come
        # right after the fixed header.
        ipproto, l4 = frame[ip + 6], ip + 40
        addrs = frame[ip + 8:ip + 40]
    else:
        return None
    if ipproto != (6 if proto == "tcp" else 17):
        return None
    if len(frame) < l4 + (14 if proto == "tcp" else 4):
        return None
    half = len(addrs) // 2  # source, then destination
    src, to = _text(addrs[:half]), _text(addrs[half:])
    sport, tport = struct.unpack_from("!HH", frame, l4)
    if (dst and to != _text(dst)) or (dport and tport != dport):
        return None
    flags = ""
    if proto == "tcp":
        bits = frame[l4 + 13]
        flags = "".join(c for i, c in enumerate(TCP_FLAGS) if bits & (1 << i))
    return {"src": src, "dst": to, "sport": sport, "dport": tport,
            "flags": flags,
            "direction": "out" if pkttype == PACKET_OUTGOING else "in"}


class _Capture:
    def __init__(self, iface, proto, dst, dport):
        self.filter = (proto, dst, dport)
        self.packets = []
        self.stopping = threading.Event()
        self.sock = socket.socket(
            socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self.sock.bind((iface, ETH_P_ALL))
            self.sock.settimeout(0.1)
        except OSError:
            self.sock.close()
            raise
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            self._read()
        # Drain what arrived before the stop.
        self.sock.setblocking(False)
        while self._read():
            pass

    def _read(self):
        try:
            frame, addr = self.sock.recvfrom(65536)
        except (BlockingIOError, socket.timeout):
            return False
        packet = parse_frame(frame, addr[2], *self.filter)
        if packet:
            self.packets.append(packet)
        return True

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        return self.packets


# --- neighbour solicitation (ARP, IPv6 ND) ------------------------------------

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
SIOCGIFADDR = 0x8915


def _iface_of(source):
    """The interface holding address `source` (text), or OpError."""
    addr = ipaddress.ip_address(source)
    if addr.version == 6:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                fields = line.split()
                if ipaddress.IPv6Address(bytes.fromhex(fields[0])) == addr:
                    return fields[5]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    raw = fcntl.ioctl(s.fileno(), SIOCGIFADDR,
                                      struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue
                if raw[20:24] == addr.packed:
                    return name
    raise OpError(f"no interface holds {source}")


def _mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def _icmp6_checksum(src, dst, payload):
    pseudo = src + dst + struct.pack("!I3xB", len(payload), 58)
    data = pseudo + payload + (b"\0" if len(payload) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def solicitation(mac, source, target, to=None):
    """The Ethernet frame asking who has `target` (ipaddress objects; ARP
    request for IPv4, neighbour solicitation for IPv6) from `mac` (bytes):
    broadcast, to the solicited-node group, or with `to` (a MAC, bytes)
    unicast to that MAC (and for IPv6 to the target itself, as when a
    neighbour's reachability is confirmed)."""
    if target.version == 4:
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, source.packed,
                          b"\0" * 6, target.packed)
        return (to or b"\xff" * 6) + mac + struct.pack("!H", ETH_P_ARP) + arp
    group = ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + target.packed[13:]
    dst = target.packed if to else group
    icmp = struct.pack("!BBH4x16sBB6s", 135, 0, 0, target.packed, 1, 1, mac)
    icmp = icmp[:2] + struct.pack("!H", _icmp6_checksum(source.packed, dst, icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, source.packed, dst)
    return ((to or b"\x33\x33" + group[12:]) + mac + struct.pack("!H", ETH_P_IPV6)
            + ip6 + icmp)


def answer(frame, source, targets):
    """(target, MAC) if `frame` answers a solicitation from `source` for
    one of `targets` (an ARP reply, or a neighbour advertisement), else None."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == ETH_P_ARP and len(frame) >= 42:
        op, sha, spa, tpa = struct.unpack_from("!6xH6s4s6x4s", frame, 14)
        who = ipaddress.IPv4Address(spa)
        if op == 2 and who in targets and tpa == source.packed:
            return who, _mac_text(sha)
    if ethertype == ETH_P_IPV6 and len(frame) >= 14 + 40 + 24:
        nh, dst = frame[14 + 6], frame[14 + 24:14 + 40]
        icmp = frame[14 + 40:]
        if nh != 58 or icmp[0] != 136 or dst != source.packed:
            return None
        who = ipaddress.IPv6Address(icmp[8:24])
        if who not in targets:
            return None
        mac = frame[6:12]
        options = icmp[24:]
        while len(options) >= 8 and options[1]:
            if options[0] == 2:  # target link-layer address
                mac = options[2:8]
            options = options[options[1] * 8:]
        return who, _mac_text(mac)
    return None


def solicit(source, targets, timeout, tries=3, to=None):
    """Ask for each of `targets` from the interface holding `source`, `tries`
    times over `timeout` seconds (unicast to MAC `to`, text, if given):
    {target: [MACs that answered]}.  Waits until every target has answered,
    or the timeout."""
    source = ipaddress.ip_address(source)
    wanted = {ipaddress.ip_address(t) for t in targets}
    if any(t.version != source.version for t in wanted):
        raise OpError("targets and source must be of one address family")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((_iface_of(source.compressed), ETH_P_ALL))
        mac = sock.getsockname()[4][:6]
        to = bytes.fromhex(to.replace(":", "")) if to else None
        frames = [solicitation(mac, source, t, to) for t in sorted(wanted)]
        found = {t: [] for t in wanted}
        begin = time.monotonic()
        deadline = begin + timeout
        sends = [begin + i * timeout / tries for i in range(tries)]
        while not all(found.values()):
            now = time.monotonic()
            if now >= deadline:
                break
            if sends and sends[0] <= now:
                sends.pop(0)
                for frame in frames:
                    sock.send(frame)
            sock.settimeout(max(0.001, min([deadline] + sends[:1]) - now))
            try:
                frame, addr = sock.recvfrom(65536)
            except socket.timeout:
                continue
            got = None if addr[2] == PACKET_OUTGOING else answer(frame, source, wanted)
            if got and got[1] not in found[got[0]]:
                found[got[0]].append(got[1])
        return {t.compressed: macs for t, macs in found.items()}
    finally:
        sock.close()


# --- command loop ---------------------------------------------------------------

class Agent:
    def __init__(self, name):
        self.name = name
        self.servers = Servers()
        self.sessions = Sessions()
        self.holds = Holds()
        self.captures = {}

    def handle(self, req):
        op = req.get("op")
        if op == "ping":
            return {"name": self.name, "pid": os.getpid()}
        if op == "serve":
            self.servers.serve(
                _proto(req), int(req["port"]), req.get("name") or self.name)
            return {}
        if op == "unserve":
            self.servers.unserve(_proto(req), int(req["port"]))
            return {}
        if op == "drop_connections":
            return {"dropped": self.servers.drop()}
        if op == "fresh":
            return self._fresh(req)
        if op == "session_open":
            self.sessions.open(req["sid"], req["host"], int(req["port"]),
                               float(req.get("timeout", 2.0)))
            return {}
        if op == "session_get":
            return {"results": self.sessions.get(req["sid"], int(req.get("count", 1)))}
        if op == "session_close":
            self.sessions.close(req["sid"])
            return {}
        if op == "hold_start":
            return self.holds.start(req["flows"])
        if op == "hold_stop":
            return self.holds.stop()
        if op == "capture_start":
            return self._capture_start(req)
        if op == "solicit":
            return {"answers": solicit(req["source"], req["targets"],
                                       float(req.get("timeout", 1.0)), to=req.get("to"))}
        if op == "capture_stop":
            cap = self.captures.pop(req["cid"], None)
            if cap is None:
                raise OpError(f"no capture {req['cid']}")
            return {"packets": cap.stop()}
        raise OpError(f"unknown op {op!r}")

    def _fresh(self, req):
        args = (_proto(req), req["host"], int(req["port"]), int(req["count"]),
                int(req.get("concurrency", 16)), float(req.get("timeout", 2.0)),
                int(req.get("size", 0)))
        loop = asyncio.new_event_loop()
        try:
            start = loop.time()
            results = loop.run_until_complete(_fresh(*args))
            return {"results": results, "elapsed": loop.time() - start}
        finally:
            loop.close()

    def _capture_start(self, req):
        cid = req["cid"]
        if cid in self.captures:
            raise OpError(f"capture {cid} already running")
        dport = req.get("dport")
        dst = req.get("dst")
        self.captures[cid] = _Capture(
            req.get("iface") or _default_iface(), _proto(req),
            # Checked here: a bad address would only fail in the capture thread.
            dst and _text(dst), int(dport) if dport else None)
        return {}

    def close(self):
        for cap in self.captures.values():
            cap.stop()
        self.sessions.close_all()
        self.holds.close()
        self.servers.close()


def _proto(req):
    proto = req.get("proto", "tcp")
    if proto not in ("tcp", "udp", "sctp"):
        raise OpError(f"bad proto {proto!r}")
    return proto


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)

    # Keep stdout for responses only: anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    agent = Agent(args.name)
    try:
        for line in sys.stdin.buffer:
            if not line.strip():
                continue
            rid = None
            try:
                req = json.loads(line)
                rid = req.get("id")
                resp = {"id": rid, "ok": True, **agent.handle(req)}
            except Exception as e:
                msg = str(e) if isinstance(e, OpError) else f"{type(e).__name__}: {e}"
                resp = {"id": rid, "ok": False, "error": " ".join(msg.split())}
            out.write(json.dumps(resp).encode() + b"\n")
            out.flush()
    finally:
        agent.close()


if __name__ == "__main__":
    main()
