"""Parent side of the traffic agent: start one per node and drive it."""

import itertools
import json
import math
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Optional

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class AgentError(Exception):
    """The agent refused a request, died, or did not answer in time."""


@dataclass(frozen=True)
class Result:
    """One sample: which backend answered, or why none did.  peer is the
    address the backend saw: a.b.c.d for IPv4 (even on its dual-stack
    socket), compressed for IPv6."""

    backend: Optional[str] = None
    port: Optional[int] = None
    peer: Optional[str] = None
    peer_port: Optional[int] = None
    local_port: Optional[int] = None
    error: Optional[str] = None

    @property
    def ok(self):
        return self.error is None

    @property
    def target(self):
        return f"{self.backend}:{self.port}" if self.ok else None

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Packet:
    """One captured packet; src and dst in compressed form."""

    src: str
    dst: str
    sport: int
    dport: int
    flags: str
    direction: str


class Agent:
    def __init__(self, name, proc, log_path=None):
        self.name = name
        self.proc = proc
        self.log_path = log_path
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, node_name: str, enter_cmd: list[str],
              log_path: Optional[str] = None) -> "Agent":
        """Spawn an agent inside a node; enter_cmd enters it, e.g.
        ["ip", "netns", "exec", "ns1"]."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        cmd = list(enter_cmd) + [
            sys.executable, "-m", "pytest_ovnlb.traffic.agent", "--name", node_name]
        stderr = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr,
                                    env=env, close_fds=True)
        finally:
            if log_path:
                stderr.close()
        agent = cls(node_name, proc, log_path)
        try:
            agent.call("ping", timeout=30)
        except AgentError:
            agent.close()
            raise
        return agent

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def call(self, op, timeout=None, **params):
        """Send one request and wait for its response.

        timeout bounds the wait here and is not sent; an op's own "timeout"
        field is passed as op_timeout.
        """
        if "op_timeout" in params:
            params["timeout"] = params.pop("op_timeout")
        if timeout is None:
            timeout = _default_timeout(op, params)
        with self._lock:
            rid = next(self._ids)
            try:
                self.proc.stdin.write(
                    json.dumps({"id": rid, "op": op, **params}).encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                raise self._died(op) from None
            while True:
                try:
                    line = self._lines.get(timeout=timeout)
                except queue.Empty:
                    raise AgentError(
                        f"agent {self.name}: no answer to {op} within {timeout:.0f}s"
                    ) from None
                if line is None:
                    self._lines.put(None)  # later calls see the death too
                    raise self._died(op)
                resp = json.loads(line)
                if resp.get("id") == rid:
                    break
                # else: a late answer to an earlier call that timed out
        if not resp.get("ok"):
            raise AgentError(f"agent {self.name}: {op}: {resp.get('error')}")
        return resp

    def _died(self, op):
        try:
            code = self.proc.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        msg = f"agent {self.name} died during {op} (exit code {code})"
        tail = self._log_tail()
        return AgentError(msg + (":\n" + tail if tail else ""))

    def _log_tail(self, lines=20):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- convenience -------------------------------------------------------

    def ping(self):
        return self.call("ping")

    def serve(self, port, proto="tcp", name=None):
        params = {"name": name} if name else {}
        self.call("serve", proto=proto, port=port, **params)

    def unserve(self, port, proto="tcp"):
        self.call("unserve", proto=proto, port=port)

    def drop_connections(self) -> int:
        """Reset the open connections of this agent's servers; how many."""
        return self.call("drop_connections")["dropped"]

    def fresh(self, host, port, count, proto="tcp", concurrency=16,
              timeout=2.0, stop=None, size=0) -> list[Result]:
        """count samples, each on a new connection (new source port).
        host is an IPv4 or IPv6 address, as text or an ipaddress object.
        `size`: each reply carries that many bytes more (and a UDP request
        too), and one that arrives short is a `bad-reply`.  `timeout` is per
        connection: the default 2 s holds the kernel's retransmission of an
        unanswered SYN (after 1 s), so one dropped SYN is retried as a real
        client would.

        stop(results so far) -> bool ends sampling early once it says the
        outcome is settled (e.g. checks.settled); then fewer than count come
        back.  Samples are taken in batches, the first one round of
        `concurrency`, each next one twice as large: a broken path costs
        one round of timeouts, a working one a few extra round trips.  A
        stop rule with `looks` (sample counts) is asked at each of them:
        batches are cut to reach them exactly.  A stop rule with
        `counted(results)` says which samples count towards `count` and its
        looks (checks.Settled: the answered ones); sampling goes on until
        they are reached, or the rule stops it."""
        if stop is None:
            return self._fresh(host, port, count, proto, concurrency, timeout, size)
        results: list[Result] = []
        batch = max(1, concurrency)
        looks = getattr(stop, "looks", [])
        counted = getattr(stop, "counted", len)
        while (have := counted(results)) < count:
            n = min([batch, count - have] + [at - have for at in looks if at > have])
            results += self._fresh(host, port, n, proto, concurrency, timeout, size)
            if counted(results) < count and stop(results):
                break
            batch *= 2
        return results

    def _fresh(self, host, port, count, proto, concurrency, timeout, size=0):
        resp = self.call("fresh", proto=proto, host=str(host), port=port, count=count,
                         concurrency=concurrency, op_timeout=timeout, size=size)
        return [Result.from_dict(r) for r in resp["results"]]

    def session(self, host, port, timeout=2.0):
        """A keep-alive HTTP session from this node to host:port."""
        return Session(self, host, port, timeout)

    def hold(self, flows: list[dict]) -> None:
        """Start held flows in the background (agent.Holds): each a dict
        with id, kind ("tcp": one long-lived connection, "udp": one source
        port, "new": a stream of new connections), host, port, interval and
        timeout (seconds)."""
        self.call("hold_start", flows=[{**f, "host": str(f["host"])} for f in flows])

    def unhold(self) -> dict[str, list]:
        """End every held flow: {flow id: its events, [[sent, answered,
        server, error], ...], the unfinished ones left out}."""
        return self.call("hold_stop", timeout=20)["flows"]

    def capture(self, proto, dst=None, dport=None, iface=None):
        """Context manager recording matching IPv4 and IPv6 packets on an
        interface; dst matches however the address is written."""
        return Capture(self, proto, dst, dport, iface)

    def solicit(self, source, targets, timeout=1.0, to=None) -> dict[str, list[str]]:
        """Ask who has each of `targets` (ARP for IPv4, neighbour
        solicitation for IPv6) from the interface holding address `source`,
        three times over `timeout` seconds, broadcast (to the solicited-node
        group) or unicast to MAC `to`: {target: MACs that answered}, targets
        in compressed form.  Returns once each has an answer."""
        resp = self.call("solicit", source=str(source), targets=[str(t) for t in targets],
                         op_timeout=timeout, to=to)
        return resp["answers"]

    def close(self):
        """Close stdin (the agent exits), kill it if it lingers. Idempotent."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(2)
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _default_timeout(op, params):
    t = float(params.get("timeout", 2.0))
    count = int(params.get("count", 1))
    if op == "fresh":
        rounds = math.ceil(count / max(1, int(params.get("concurrency", 16))))
        return rounds * t + 10
    if op == "session_get":
        return count * t + 10
    return 10 + t


_ids = itertools.count(1)


class Session:
    def __init__(self, agent, host, port, timeout):
        self.agent = agent
        self.sid = f"s{next(_ids)}"
        agent.call("session_open", sid=self.sid, host=str(host), port=port,
                   op_timeout=timeout)
        self.timeout = timeout
        self.closed = False

    def get(self, count=1):
        resp = self.agent.call("session_get", sid=self.sid, count=count,
                               timeout=count * self.timeout + 10)
        return [Result.from_dict(r) for r in resp["results"]]

    def close(self):
        if not self.closed:
            self.closed = True
            self.agent.call("session_close", sid=self.sid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Capture:
    def __init__(self, agent, proto, dst, dport, iface):
        self.agent = agent
        self.cid = f"c{next(_ids)}"
        self.params = {"proto": proto, "dst": dst and str(dst), "dport": dport,
                       "iface": iface}
        self.packets = []

    def __enter__(self):
        self.agent.call("capture_start", cid=self.cid, **self.params)
        return self

    def __exit__(self, *exc):
        resp = self.agent.call("capture_stop", cid=self.cid)
        self.packets = [Packet(**p) for p in resp["packets"]]
