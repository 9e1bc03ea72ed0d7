"""8 filters: the c=50 delivery workload of 1 (smtp-source, one message per connection,
delivered msg/s into the local mbox) with inbound filters, dsmtp against Postfix, each
side in turn, in three configurations:

    plain   as workload 1 (no filter), measured again in this run
    dnsbl   two DNSBL zones, zone1.bench and zone2.bench, served by a private dnsmasq on
            a loopback address (port 53) that answers NXDOMAIN for every name in them:
            the client 127.0.0.1 is not listed, mail is accepted, the lookups are paid
            dsmtp:   rbl_reject zone1.bench,zone2.bench; dns_host ADDR; no forward_from_ip
                     (dsmtp asks no DNSBL for those), max_per_ip above the concurrency
            Postfix: smtpd_recipient_restrictions = reject_rbl_client zone1.bench,
                     reject_rbl_client zone2.bench, permit_mynetworks,
                     reject_unauth_destination; its master runs in a mount namespace of
                     its own where /etc/resolv.conf is "nameserver ADDR" (bind mount),
                     so its (unchrooted) smtpd asks the dnsmasq
            dnsmasq's query log is read after every run: queries per 100 messages
    milter  rspamd (Debian's, its own configuration in the run directory) as a milter on
            127.0.0.1:PORT: a proxy worker with milter = yes and self_scan, the normal,
            controller and fuzzy workers and the fuzzy_check and dkim_signing modules
            off, its DNS pointed at a dead local port; milter_headers adds
            X-Rspamd-Queue-Id and X-Spamd-Result (also for local clients), which the
            harness counts in the mailboxes to show rspamd scanned every message
            dsmtp:   milters inet:127.0.0.1:PORT; milter_default_action accept
            Postfix: smtpd_milters = inet:127.0.0.1:PORT; milter_default_action = accept
            When dsmtp does not know the setting milters (bin/dsmtp -t exits 78 on an
            unknown setting) only Postfix runs: the dmail cell is "-" with a note, and
            that missing figure does not fail the run.

The cost of each filter is reported against the same side's plain median.
"""

import os
import re
import socket
import struct
import subprocess
import time

import clients
import procs
import servers
import workloads

SIDES = ("dmail", "peer")
CONFIGS = ("plain", "dnsbl", "milter")
ZONES = ("zone1.bench", "zone2.bench")
DNS_ADDRS = ["127.0.0.54"] + ["127.0.53.%d" % i for i in range(54, 64)]
MARK = "mark.bench"  # the harness's own marker queries (not counted)
GOAL = ("ratio>=", 5)


# --------------------------------------------------------------------------- DNS

def dns_query(addr, name, timeout=1.0):
    """One A query over UDP to addr:53. Returns the RCODE, or None without an answer."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, (addr, 53))
        data = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


def free_dns_addr():
    """A loopback address whose UDP and TCP port 53 are free (another run or a system
    resolver may hold 127.0.0.54)."""
    for addr in DNS_ADDRS:
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((addr, 53))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return addr
    raise RuntimeError("no free port 53 on any of %s" % ", ".join(DNS_ADDRS))


class Dnsmasq(servers.Server):
    """dnsmasq on ADDR:53 answering NXDOMAIN for every name under ZONES, nothing else
    (no upstream, no /etc/hosts), every query logged to a file."""

    kind = "dnsmasq"
    label = "dnsmasq"

    def __init__(self, run_dir, name="dnsmasq"):
        super().__init__(run_dir, name)
        self.addr = None
        self.log_path = os.path.join(self.dir, "queries.log")
        self._offset = 0
        self._marks = 0

    def start(self):
        self.addr = free_dns_addr()
        cmd = ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
               "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
               "--listen-address=" + self.addr, "--port=53",
               "--pid-file=", "--user=root", "--log-queries",
               "--log-facility=" + self.log_path, "--cache-size=0"]
        cmd += ["--local=/%s/" % z for z in ZONES + (MARK,)]
        self.spawn(cmd, os.path.join(self.dir, "dnsmasq.out"))
        deadline = time.monotonic() + servers.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited %d at start-up: %s"
                                   % (self.proc.returncode, self.out_tail()))
            rc = dns_query(self.addr, "1.0.0.127." + ZONES[0], timeout=0.2)
            if rc == 3:
                self.queries()  # the probe does not count
                return
            if rc is not None:
                raise RuntimeError("dnsmasq answered RCODE %d, not NXDOMAIN" % rc)
        raise RuntimeError("dnsmasq did not answer on %s:53 within %d s: %s"
                           % (self.addr, servers.START_TIMEOUT, self.out_tail()))

    def out_tail(self):
        try:
            with open(os.path.join(self.dir, "dnsmasq.out"), "rb") as f:
                return f.read()[-1000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def queries(self):
        """{client address: queries under ZONES} logged since the last call. A marker
        query under MARK first, and its line awaited: what came before it is in the log."""
        self._marks += 1
        mark = "m%d.%s" % (self._marks, MARK)
        dns_query(self.addr, mark, timeout=1.0)
        needle = (" %s from" % mark).encode()
        data = b""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except OSError:
                return {}
            if needle in data or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        end = data.rfind(b"\n") + 1
        self._offset += end
        out = {}
        for m in re.finditer(rb"query\[\w+\] (\S+) from (\S+)", data[:end]):
            name = m.group(1).decode("ascii", "replace").lower().rstrip(".")
            if any(name.endswith("." + z) for z in ZONES):
                k = m.group(2).decode("ascii", "replace")
                out[k] = out.get(k, 0) + 1
        return out


# --------------------------------------------------------------------------- rspamd

RSPAMD_LOCAL = {
    "worker-proxy.inc": 'bind_socket = "{addr}:{port}";\nmilter = yes;\ntimeout = 120s;\n'
                        'upstream "local" {{\n  default = yes;\n  self_scan = yes;\n}}\n',
    "worker-normal.inc": "enabled = false;\n",
    "worker-controller.inc": "enabled = false;\n",
    "worker-fuzzy.inc": "enabled = false;\n",
    "fuzzy_check.conf": "enabled = false;\n",
    "dkim_signing.conf": "enabled = false;\n",
    "options.inc": 'dns {{\n  nameserver = ["127.0.0.1:9"];\n  timeout = 0.5s;\n'
                   '  retransmits = 1;\n}}\n',
    "logging.inc": 'type = "file";\nfilename = "{dir}/rspamd.log";\nlevel = "notice";\n',
    "milter_headers.conf": 'use = ["x-spamd-result", "x-rspamd-queue-id"];\n'
                           "skip_local = false;\nskip_authenticated = false;\n",
}
RSPAMD_HEADER = b"\nX-Rspamd-Queue-Id:"


class Rspamd(servers.Server):
    """rspamd -f with Debian's rspamd.conf and local.d/ of its own (RSPAMD_LOCAL):
    one proxy worker as a milter on 127.0.0.1:port."""

    kind = "rspamd"
    label = "rspamd"

    def __init__(self, run_dir, name="rspamd"):
        super().__init__(run_dir, name)
        self.port = procs.free_ports(1)[0]
        self.log_path = os.path.join(self.dir, "rspamd.log")
        for d in ("local.d", "db", "run"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)

    def start(self):
        for name, text in RSPAMD_LOCAL.items():
            servers.write(os.path.join(self.dir, "local.d", name),
                          text.format(addr=servers.HOST, port=self.port, dir=self.dir))
        _, uid, gid = servers.mail_user()
        servers.chown_tree(self.dir, uid, gid)
        cmd = ["/usr/bin/rspamd", "-f", "-u", "nobody", "-g", "nogroup",
               "-c", "/etc/rspamd/rspamd.conf",
               "--var=LOCAL_CONFDIR=" + self.dir, "--var=DBDIR=" + os.path.join(self.dir, "db"),
               "--var=RUNDIR=" + os.path.join(self.dir, "run"), "--var=LOGDIR=" + self.dir]
        self.spawn(cmd, os.path.join(self.dir, "rspamd.out"), cwd=self.dir)
        self._wait_port("rspamd", 90)  # it compiles its rules first: slow on a loaded machine


def count_header(path, header=RSPAMD_HEADER):
    try:
        with open(path, "rb") as f:
            return f.read().count(header)
    except OSError:
        return 0


# --------------------------------------------------------------------------- the MTAs

def dsmtp_knows_milters(ds, port):
    """(True, "") if dsmtp -t knows the milter settings, else (False, why)."""
    saved = list(ds.settings)
    ds.settings = saved + [("milters", "inet:%s:%d" % (servers.HOST, port)),
                           ("milter_default_action", "accept")]
    try:
        ds.write_conf()
        r = subprocess.run([ds.exe, "-c", ds.conf, "-t"], capture_output=True, text=True,
                           timeout=30)
    finally:
        ds.settings = saved
        ds.write_conf()
    out = r.stdout + r.stderr
    # -t exits 78 on an unknown setting, or (older builds) 0 with a warning
    if r.returncode == 78 or "unknown setting 'milters'" in out:
        return False, "dsmtp does not know milters"
    if r.returncode == 0:
        return True, ""
    return False, "dsmtp -t exited %d: %s" % (r.returncode, out.strip()[:200])


def configure(cfg, ds, pf, base, dns_addr, milter_port):
    ds.settings = list(base) + [("dns_host", dns_addr)]
    pf.main_extra = []
    if cfg == "dnsbl":
        ds.settings.append(("rbl_reject", ",".join(ZONES)))
        pf.main_extra = ["smtpd_recipient_restrictions = %s, permit_mynetworks, "
                         "reject_unauth_destination"
                         % ", ".join("reject_rbl_client " + z for z in ZONES)]
    elif cfg == "milter":
        ds.settings += [("milters", "inet:%s:%d" % (servers.HOST, milter_port)),
                        ("milter_default_action", "accept")]
        pf.main_extra = ["smtpd_milters = inet:%s:%d" % (servers.HOST, milter_port),
                         "milter_default_action = accept"]


def pct(x, base):
    if x is None or not base:
        return "?"
    return "%+.0f %%" % ((x / base - 1.0) * 100.0)


def filters(ctx):
    a, res = ctx.args, ctx.res
    n, c = a.filters_messages, a.filters_conc
    w = "8 filters c=%d x%d" % (c, n)
    for cfg in CONFIGS:
        res.metric("filters.%s.deliver" % cfg, w, "%s: delivered" % cfg, "msg/s", "higher",
                   None if cfg == "plain" else GOAL, "Postfix")
    limit = max(1000, c + 100)
    base = [("max_connections", limit), ("max_per_ip", limit)]
    ds = servers.Dsmtp(ctx.run_dir, "dsmtp-filters", ctx.bindir, list(base))
    with open(ds.users_file, "w") as f:
        f.write("bench:%s\n" % clients.yescrypt("bench-smtp-unused", cost=1))
    pf = servers.Postfix(ctx.run_dir, smtpd_max=max(100, c + 50), name="postfix-filters")
    dq = Dnsmasq(ctx.run_dir)
    rs = Rspamd(ctx.run_dir)
    for name, srv in (("dsmtp-filters", ds), ("postfix-filters", pf), ("dnsmasq", dq),
                      ("rspamd", rs)):
        ctx.track(name, srv)
    try:
        dq.start()
        resolv = os.path.join(pf.dir, "resolv.conf")
        servers.write(resolv, "nameserver %s\noptions attempts:1 timeout:2\n" % dq.addr)
        # Postfix's smtpd reads /etc/resolv.conf: in the master's own mount namespace that
        # is this file; the system's stays as it is
        pf.wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv]
        known, why = dsmtp_knows_milters(ds, rs.port)
        res.note("8: each configuration on fresh servers; dnsmasq %s:53 answers NXDOMAIN for "
                 "every name under %s (the client is not listed); dsmtp: %s; Postfix: its "
                 "master in a mount namespace where /etc/resolv.conf names the dnsmasq. "
                 "rspamd %s as a milter (proxy worker, self_scan, DNS to a dead port)."
                 % (dq.addr, " and ".join(ZONES),
                    "max_per_ip %d, no forward_from_ip" % limit, rs.port))
        sides = {"dmail": (ds, "bench@bench.test", ds.mbox("bench")),
                 "peer": (pf, "nobody@bench.test", pf.mbox("nobody"))}
        for cfg in CONFIGS:
            ctx.deadline.check("filters " + cfg)
            configure(cfg, ds, pf, base, dq.addr, rs.port)
            run_sides = list(SIDES)
            if cfg == "milter":
                if not known:
                    run_sides = ["peer"]
                    res.by_key["filters.milter.deliver"].note["dmail"] = why
                    res.note("8: milter: %s: the dmail figure is missing (not a failure of "
                             "the run), Postfix is measured alone" % why)
                rs.start()
            for srv, _, _ in sides.values():
                srv.stop()
            queries = {s: 0 for s in SIDES}
            dq.queries()
            for side in run_sides:
                sides[side][0].start()
                time.sleep(0.3)  # the lookups of the probe's connection, if any, are sent
                # the start-up port probe is a connection from 127.0.0.1 too: dsmtp asks
                # the zones then and answers the run from its cache
                queries[side] += sum(dq.queries().values())
            if cfg == "dnsbl":
                ctx.log("    DNSBL queries at start-up (port probe): %s" % ", ".join(
                    "%s %d" % (sides[s][0].label, queries[s]) for s in run_sides))
            delivered = {s: 0 for s in SIDES}
            scanned = {s: 0 for s in SIDES}
            for i in range(a.pairs):
                for side in run_sides:
                    srv, rcpt, mbox = sides[side]
                    ctx.log("  filters %s c=%d x%d pair %d/%d %s ..."
                            % (cfg, c, n, i + 1, a.pairs, srv.label))
                    dq.queries()
                    try:
                        r = workloads.smtp_run(ctx, srv, rcpt, mbox, n, c)
                    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                        ctx.log("    %s failed: %s" % (srv.label, e))
                        r = {}
                    q = sum(dq.queries().values())
                    hd = count_header(mbox)
                    res.add("filters.%s.deliver" % cfg, side, r.get("deliver"))
                    if r:
                        queries[side] += q
                        delivered[side] += n
                        scanned[side] += hd
                        ctx.log("    %.0f msg/s delivered, %.0f accepted; %d DNSBL queries, "
                                "%d messages with rspamd's headers"
                                % (r["deliver"], r["accept"], q, hd))
            for srv, _, _ in sides.values():
                srv.stop()
            if cfg == "dnsbl":
                res.note("8: dnsbl: DNSBL queries at the dnsmasq per 100 messages: %s "
                         "(counted from each server's start, whose port probe is a connection "
                         "from 127.0.0.1 too; dsmtp keeps each zone's \"not listed\" answer "
                         "for 60 s, Postfix's smtpd caches within one smtpd process)"
                         % ", ".join("%s %.2f (%d for %d messages)" % (
                             sides[s][0].label, 100.0 * queries[s] / delivered[s], queries[s],
                             delivered[s]) for s in SIDES if delivered[s]))
                for s in SIDES:
                    if delivered[s] and not queries[s]:
                        res.note("8: dnsbl: %s asked the dnsmasq nothing: its DNSBL check "
                                 "was not exercised" % sides[s][0].label)
            if cfg == "milter":
                res.note("8: milter: messages with rspamd's X-Rspamd-Queue-Id in the "
                         "mailboxes: %s" % ", ".join(
                             "%s %d of %d" % (sides[s][0].label, scanned[s], delivered[s])
                             for s in run_sides))
                rs.stop()
        costs = []
        for cfg in CONFIGS[1:]:
            parts = []
            for s in SIDES:
                b = res.by_key["filters.plain.deliver"].median(s)
                x = res.by_key["filters.%s.deliver" % cfg].median(s)
                parts.append("%s %s" % ("dmail" if s == "dmail" else "Postfix", pct(x, b)))
            costs.append("%s: %s" % (cfg, ", ".join(parts)))
        res.note("8: cost against the same side's plain median: " + "; ".join(costs))
    finally:
        for srv in (ds, pf, rs, dq):
            srv.stop()
