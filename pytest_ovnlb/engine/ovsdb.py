"""Northbound and Southbound access through ovsdbapp.

ovsdbapp keeps its connection in a class attribute, so a second API object
would silently reuse the first lab's connection; each handle therefore gets
its own subclass.  Every transaction raises on error (check_error=True).
Waits on a database are woken by its changes (the IDL's change_seqno),
not by polling.

A remote may list several servers (`unix:A,unix:B,...`: the members of a
clustered database): the IDL connects to the leader among them and moves to
the new one when leadership changes, and a transaction caught in the move
is retried by ovsdbapp within the handle's timeout.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from ovsdbapp import exceptions
from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.ovn_northbound import impl_idl as nb_idl
from ovsdbapp.schema.ovn_southbound import impl_idl as sb_idl

from pytest_ovnlb.errors import LabError

POLL = 0.01
# A server that does not answer within CONNECT_TIMEOUT is reported as such;
# a transaction may take TIMEOUT: long enough for a clustered database to
# elect a new leader (an election timer of 1 s, a few rounds) and for the
# IDL to find it.
CONNECT_TIMEOUT, TIMEOUT = 10.0, 30.0


def describe(exc: BaseException) -> str:
    """An exception as one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _safe_str(self) -> str:
    return getattr(self, "msg", None) or self.message


# ovsdbapp raises some exceptions without the arguments their message needs
# (a TimeoutException() while connecting, wrapped in OvsdbConnectionUnavailable):
# their str() fails, and one reaching pytest ends the run in an INTERNALERROR.
exceptions.OvsdbAppException.__str__ = _safe_str


class _Idl(connection.OvsdbIdl):
    """An IDL that wakes `changed`'s waiters whenever its contents change."""

    changed: threading.Condition | None = None

    def run(self):
        seqno = self.change_seqno
        result = super().run()
        if self.changed is not None and self.change_seqno != seqno:
            with self.changed:
                self.changed.notify_all()
        return result


def _schema_helper(remote: str, schema: str):
    """The schema from the first server of `remote` that gives it within
    CONNECT_TIMEOUT.  ovsdbapp would ask each without a time limit, and a
    paused member (a stopped process's socket still accepts) would hold the
    run forever; a thread left waiting on one ends when it answers."""
    for one in remote.split(","):
        got: dict = {}

        def fetch(one=one, got=got):
            try:
                got["json"] = idlutils.fetch_schema_json(one, schema)
            except Exception as exc:
                got["error"] = exc

        thread = threading.Thread(target=fetch, daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT / len(remote.split(",")))
        if "json" in got:
            return idlutils.create_schema_helper(got["json"])
    raise LabError(f"no server answered with the {schema} schema within "
                   f"{CONNECT_TIMEOUT:g} s")


class _Db:
    api_class: type
    schema: str

    def __init__(self, remote: str, timeout: float = TIMEOUT, where: str = ""):
        self.remote = remote
        # how errors name the server: the node (container) it runs on
        self.where = where or remote
        try:
            idl = _Idl.from_server(remote, self.schema,
                                   helper=_schema_helper(remote, self.schema))
            self.conn = connection.Connection(idl, timeout=min(timeout, CONNECT_TIMEOUT))
            # The connection thread runs the IDL holding conn.lock.
            self.changed = idl.changed = threading.Condition(self.conn.lock)
            api_class = type(f"{self.api_class.__name__}For{id(self)}",
                             (self.api_class,), {"_ovsdb_connection": None})
            self.api = api_class(self.conn)  # connects
            self.conn.timeout = timeout
        except Exception as exc:  # ovsdbapp raises several kinds here
            raise LabError(f"cannot connect to {self.schema} on {self.where}: "
                           f"{describe(exc)}") from None

    def rows(self, table: str) -> list:
        with self.conn.lock:
            return list(self.api.tables[table].rows.values())

    def wait(self, predicate, timeout: float, what: str):
        """Return `predicate()` once it is truthy, evaluating it again after
        each change of the database; TimeoutError names `what`.  The
        predicate runs without the connection's lock, so it may transact."""
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                seen = self.conn.idl.change_seqno
            value = predicate()
            if value:
                return value
            with self.changed:
                while self.conn.idl.change_seqno == seen:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(what)
                    self.changed.wait(left)

    @contextmanager
    def transaction(self):
        with self.api.transaction(check_error=True) as txn:
            yield txn

    def close(self) -> None:
        try:
            self.conn.stop(timeout=2)
        except Exception:
            pass


class Northbound(_Db):
    api_class = nb_idl.OvnNbApiIdlImpl
    schema = "OVN_Northbound"

    def sync(self, timeout: float, chassis: bool = True) -> None:
        """Return once every chassis has installed the current NB contents
        (what `ovn-nbctl --wait=hv sync` does), or with `chassis=False` once
        ovn-northd has put them in the Southbound (`--wait=sb`), bounded by
        `timeout`."""
        with self.conn.lock:
            nb_global = next(iter(self.api.tables["NB_Global"].rows.values()))
            target = nb_global.nb_cfg + 1
        self.api.db_set("NB_Global", nb_global.uuid, ("nb_cfg", target)).execute(
            check_error=True)

        def caught_up():
            with self.conn.lock:
                return (nb_global.hv_cfg if chassis else nb_global.sb_cfg) >= target

        self.wait(caught_up, timeout, f"{'hv' if chassis else 'sb'}_cfg stayed below "
                  f"nb_cfg={target}")


class Southbound(_Db):
    api_class = sb_idl.OvnSbApiIdlImpl
    schema = "OVN_Southbound"

    def chassis_names(self) -> set[str]:
        return {c.name for c in self.rows("Chassis")}


def wait_for(predicate, timeout: float, what: str):
    """Poll `predicate` until it returns something truthy; TimeoutError names
    `what`.  For what is not in a database (a database's own `wait` is woken
    by its changes instead)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(POLL)
