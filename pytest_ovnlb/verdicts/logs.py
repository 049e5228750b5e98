"""Daemon logs judged as OVN's own tests judge them (`check_logs`): a WARN,
ERR or EMER line that a lab daemon writes while a test runs is a failure
of that test, unless this table explains it.  Each entry says which
daemon, what the line says, why it is expected, and for which OVN versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_ovnlb.model.versions import Version

LEVELS = re.compile(r"\|(WARN|ERR|EMER)\|")


@dataclass(frozen=True)
class Allowed:
    name: str
    daemon: str  # the log's daemon ("ovn-controller", ...; "*": any)
    pattern: str  # searched in the line
    why: str
    below: Version | None = None  # only OVN versions before this one
    mixed: bool = False  # only while daemons of different releases run together

    def explains(self, daemon: str, line: str, ovn: Version, mixed: bool = False) -> bool:
        return ((self.daemon in ("*", daemon)) and (self.below is None or ovn < self.below)
                and (mixed or not self.mixed) and re.search(self.pattern, line) is not None)


ALLOWED = (
    # What OVN's check_logs lets pass too.
    Allowed("peer_went_away", "*", r"Broken pipe|reset by peer",
            "a client (ovn-nbctl, ovn-sbctl, an IDL) closed its connection first"),
    Allowed("long_poll_interval", "*", r"Unreasonably long \d+ms poll interval|"
            r"faults: \d+ minor|disk: \d+ reads|context switches: \d+ voluntary|"
            r"blocked \d+ ms waiting for .* to quiesce|Dropped \d+ log messages",
            "the machine was busy: timing, not behaviour"),
    Allowed("no_kernel_datapath", "ovs-vswitchd",
            r"failed to enumerate system datapaths: No such file or directory",
            "no openvswitch kernel module here (userspace datapath): the dpctl commands "
            "the lab uses (conntrack flush) look for kernel datapaths too"),
    Allowed("revalidator_races", "ovs-vswitchd",
            r"\(revalidator\d*\)\|WARN\|.*(failed to (put|flow_get|flow_del)|"
            r"Failed to acquire udpif_key)",
            "the userspace datapath's revalidators race with datapath flows that go "
            "meanwhile (the lab purges them and flushes conntrack between tests); seen "
            "on a loaded machine; OVN's own system tests filter the same lines"),
    Allowed("geneve_options_after_restart", "ovs-vswitchd",
            r"Invalid Geneve tunnel metadata",
            "a restarted ovs-vswitchd (the lab's repair after a crash) receives tunnelled "
            "packets before ovn-controller has given it back OVN's Geneve option table"),
    Allowed("controller_start", "ovn-controller",
            r"failed to initialize representor VIF plug provider|"
            r"Failed to locate tunnel to reach main chassis|"
            r"failed to enumerate system datapaths: No such file",
            "what an ovn-controller logs as it starts (a restart: an upgrade step, a crash "
            "repair): no hardware offload nor kernel datapath here (newer controllers "
            "probe it), and a gateway port's flows computed before its tunnels to the "
            "other chassis are up"),
    Allowed("exit_with_recirculations", "ovs-vswitchd",
            r"recirc_id \d+ left allocated when ofproto \(br-\w+\) is destructed",
            "an ovs-vswitchd asked to exit (an upgrade's `ovs` step) tears its bridges "
            "down while datapath flows still hold recirculation ids: said about the "
            "process that is exiting, before the new one starts"),
    # Daemons of different releases together: an upgrade under way, or a
    # lab with --ovn-central-root/--ovn-chassis-root.
    Allowed("newer_than_its_database", "*", r"\(database needs upgrade\?\)",
            "a daemon newer than the database it reads (new controllers under an old "
            "central, or beside their chassis's old OVS): the intermediate state of OVN's "
            "rolling upgrade, in which it ignores what the old schema lacks", mixed=True),
    Allowed("action_unknown_to_older_ovs", "ovs-vswitchd",
            r"unknown OpenFlow\d+ action|bad action at offset",
            "a newer ovn-controller sends an OpenFlow action its chassis's older "
            "ovs-vswitchd does not know, which rejects that flow (seen: 25.03.0 "
            "controllers on OVS 3.1.0; traffic still passes)", mixed=True),
    Allowed("template_without_values", "*",
            r'bad IP address "\[?ovnlb_|error parsing .*\^ovnlb_',
            "a template load balancer on a chassis with no value for its template "
            "variables: that chassis cannot parse its flows, which is the template's "
            "point (the template tests leave a chassis without values on purpose)"),
    Allowed("stale_service_check", "ovn-controller",
            r"handle service check: Service monitor not found",
            "a health check reply (IPv6 among them) finds no Service_Monitor in "
            "ovn-controller's pinctrl, so it is dropped while the check itself works; "
            "seen on 23.03.1, not on 25.03.0 or 26.03.1 (the fix not identified)",
            below=Version.parse("25.3.0")),
)


def complaints(daemon: str, text: str, ovn: Version, mixed: bool = False) -> list[str]:
    """The WARN/ERR/EMER lines of `text` (a daemon's log) that no entry of
    ALLOWED explains for OVN version `ovn`, daemons of one release or `mixed`."""
    return [line for line in text.splitlines()
            if LEVELS.search(line)
            and not any(a.explains(daemon, line, ovn, mixed) for a in ALLOWED)]
