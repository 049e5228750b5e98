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
import functools
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import threading

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
                close, length = _parse_head(buf[:end])
            except ValueError:
                self.transport.close()
                return
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length:]
            if close:
                # Let the client close first: the TIME_WAIT state then stays
                # with the client, whose connect() skips such ports, instead
                # of piling up here where a reused client port would hit it.
                self.transport.write(self.last)
                self.buf = b""
                asyncio.get_running_loop().call_later(10, self.transport.close)
                return
            self.transport.write(self.keep)
        if len(buf) > 65536:
            self.transport.close()
        self.buf = buf


def _parse_head(head):
    """(close after reply?, request body length) for one request head."""
    lines = head.decode("latin-1").split("\r\n")
    version = lines[0].rsplit(" ", 1)[-1].upper()
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip().lower()
    conn = fields.get("connection", "")
    close = "close" in conn or (version != "HTTP/1.1" and "keep-alive" not in conn)
    return close, int(fields.get("content-length") or 0)


def _peer(host):
    """A client's address as it knows it: a dual-stack socket sees an IPv4
    client as ::ffff:a.b.c.d."""
    addr = ipaddress.ip_address(host)
    return (getattr(addr, "ipv4_mapped", None) or addr).compressed


def _reply(name, port, peer, peer_port):
    body = {"backend": name, "port": port, "peer": peer, "peer_port": peer_port}
    return json.dumps(body).encode() + b"\n"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server):
        self.server = server

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(
            _reply(self.server.name, self.server.port, _peer(addr[0]), addr[1]),
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

    def _run(self, coro):
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def serve(self, proto, port, name):
        key = (proto, port)
        if key in self.servers:
            raise OpError(f"already serving {proto}/{port}")
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        # One socket for both families; IPv4 only where IPv6 is disabled.
        try:
            sock, addr = socket.socket(socket.AF_INET6, kind), "::"
        except OSError:
            sock, addr = socket.socket(socket.AF_INET, kind), "0.0.0.0"
        try:
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((addr, port))
            if proto == "tcp":
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
        if proto == "tcp":
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


_PORTS = None


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


def _bound(host, kind, ports):
    """A socket towards `host` bound to the next usable port of `ports`."""
    for port in ports:
        sock = socket.socket(_family(host), kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
            return sock
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRNOTAVAIL, "no free source port left")


async def _tcp_sample(loop, host, port, box, ports):
    while True:
        sock = _bound(host, socket.SOCK_STREAM, ports)
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
        await loop.sock_sendall(
            sock, b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % _url_host(host).encode())
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
    return json.loads(body)


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


async def _udp_sample(loop, host, port, box, ports):
    sock = _bound(host, socket.SOCK_DGRAM, ports)
    try:
        sock.setblocking(False)
        # Connected, so an ICMP port unreachable shows up as ECONNREFUSED.
        sock.connect((host, port))
        box["local_port"] = sock.getsockname()[1]
        sock.send(b"?\n")
        data = await loop.sock_recv(sock, 65536)
    finally:
        sock.close()
    return json.loads(data)


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


async def _fresh(proto, host, port, count, concurrency, timeout):
    loop = asyncio.get_running_loop()
    sample = _tcp_sample if proto == "tcp" else _udp_sample
    global _PORTS
    if _PORTS is None:
        _PORTS = _source_ports()
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
            reply = await asyncio.wait_for(sample(loop, host, port, box, ports), timeout)
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


# --- command loop ---------------------------------------------------------------

class Agent:
    def __init__(self, name):
        self.name = name
        self.servers = Servers()
        self.sessions = Sessions()
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
        if op == "capture_start":
            return self._capture_start(req)
        if op == "capture_stop":
            cap = self.captures.pop(req["cid"], None)
            if cap is None:
                raise OpError(f"no capture {req['cid']}")
            return {"packets": cap.stop()}
        raise OpError(f"unknown op {op!r}")

    def _fresh(self, req):
        args = (_proto(req), req["host"], int(req["port"]), int(req["count"]),
                int(req.get("concurrency", 16)), float(req.get("timeout", 2.0)))
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
        self.servers.close()


def _proto(req):
    proto = req.get("proto", "tcp")
    if proto not in ("tcp", "udp"):
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
