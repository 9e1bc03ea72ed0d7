"""10 list-fanout: one 4 KB post to a mailing list of N subscribers at remote domains, every
remote domain routed to one smtp-sink; the time from the list server's 250 to the post
until the sink has answered 250 for all N copies. dlist + dsmtp against mlmmj + Postfix.

    fanout    N subscribers (--fanout-members, 10,000) at 100 domains; each side gives
              every subscriber a copy of its own with a VERP envelope sender
              (list-bounces+user=domain@...), so the sink counts N transactions on both
              sides; also the peak PSS of the list manager (dlist / mlmmj's processes) and
              of the whole side while it runs
    memory    dmail alone: dlist's peak PSS and RSS while it distributes one post to a list
              of --fanout-big members (100,000), and the time it takes

dmail: dsmtp (smarthost [127.0.0.1]:SINK, no DNS) and dlist (lists.dat: `list fan`,
access_post anyone, dmarc_rewrite never: no DNS) with the members file written
beforehand; dlist hands the post to dsmtp in one XVERP transaction and dsmtp makes the
per-recipient copies.

Peer: Postfix (relayhost [127.0.0.1]:SINK) and mlmmj set up the standard way:
mlmmj-make-ml makes the list (answers given on its stdin), the alias it prints
(`fan: "|/usr/bin/mlmmj-receive -L DIR/fan/"`) in Postfix's alias_maps, run as nobody
(default_privs) who owns the list directory (mlmmj's README, option 1), the subscribers
in subscribers.d as mlmmj-sub writes them, control/smtpport and relayhost pointing
mlmmj-send at that same Postfix. Postfix makes the VERP copies (mlmmj's `verp postfix`
tunable: XVERP, maxverprecips 100 recipients a transaction; smtpd_authorized_verp_clients
127.0.0.0/8), the faster of mlmmj's two ways; --fanout-mlmmj-verp mlmmj measures the other,
mlmmj's default (mlmmj-send makes each copy itself, one SMTP transaction each).

Before every run both sides are stopped, their queues emptied and started again; after
every run the queue must drain and the sink must have N more messages (more: duplicates,
reported).
"""

import os
import shutil
import smtplib
import subprocess
import time

import procs
import servers

SIDES = ("dmail", "peer")
DOMAIN = "bench.test"
LIST = "fan"
MB = 1024.0
STALL_SECS = 30.0
DRAIN_SECS = 60.0
MLMMJ_MAKE_ML = "/usr/bin/mlmmj-make-ml"
MLMMJ_RECEIVE = "/usr/bin/mlmmj-receive"


def members(n):
    """n subscriber addresses at 100 remote domains."""
    return ["s%06d@d%02d.fanout.test" % (i, i % 100) for i in range(n)]


def post_text(size):
    body = ("x" * 74 + "\n") * max(1, size // 75)
    return ("From: Poster <poster@%s>\nTo: %s@%s\nSubject: fan-out %d\nMessage-ID: "
            "<fanout.%d.%d@%s>\n\n%s" % (DOMAIN, LIST, DOMAIN, time.time_ns(), os.getpid(),
                                         time.time_ns(), DOMAIN, body))


def send_post(port, size):
    """The post through the list's MTA; the monotonic time its 250 was read."""
    with smtplib.SMTP(servers.HOST, port, timeout=30) as c:
        c.sendmail("poster@" + DOMAIN, ["%s@%s" % (LIST, DOMAIN)], post_text(size))
        return time.monotonic()


# --------------------------------------------------------------------------- dmail

class Dlist(servers.Server):
    """dlist with dsmtp's dmail.conf."""

    kind = "dlist"
    label = "dlist"

    def __init__(self, run_dir, bindir, ds):
        super().__init__(run_dir, "dlist")
        self.exe = os.path.join(bindir, "dlist")
        self.ds = ds
        self.log_path = os.path.join(self.dir, "dlist.log")

    def start(self):
        ctl = os.path.join(self.ds.dir, "work", "dlist.ctl")
        if os.path.exists(ctl):
            os.unlink(ctl)
        self.spawn([self.exe, "-f", "-c", self.ds.conf], self.log_path, cwd=self.dir,
                   preexec_fn=procs.raise_nofile)
        deadline = time.monotonic() + servers.START_TIMEOUT
        while not os.path.exists(ctl):
            if not procs.alive(self.pid, self.started):
                raise RuntimeError("dlist exited at start-up:\n%s" % self.log_tail())
            if time.monotonic() > deadline:
                raise RuntimeError("dlist not ready within %.0f s:\n%s"
                                   % (servers.START_TIMEOUT, self.log_tail()))
            time.sleep(0.05)


class DmailSide:
    label = "dsmtp+dlist"

    def __init__(self, ctx, name, extra=()):
        self.ds = servers.Dsmtp(ctx.run_dir, "dsmtp-" + name, ctx.bindir, [
            ("dns_host", "127.0.0.1:9"), ("max_connections", 1000)] + list(extra))
        self.listdir = os.path.join(self.ds.dir, "lists")
        os.makedirs(self.listdir, exist_ok=True)
        servers.write(os.path.join(self.listdir, "lists.dat"),
                      "list %s\n title Fan-out bench\n access_post anyone\n dmarc_rewrite never\n"
                      % LIST)
        self.dl = Dlist(ctx.run_dir, ctx.bindir, self.ds)
        self.dl.dir = os.path.join(ctx.run_dir, "dlist-" + name)
        os.makedirs(self.dl.dir, exist_ok=True)
        self.dl.log_path = os.path.join(self.dl.dir, "dlist.log")
        open(self.ds.users_file, "w").close()
        ctx.track("dsmtp-" + name, self.ds)
        ctx.track("dlist-" + name, self.dl)
        self.port = self.ds.port

    def set_members(self, addrs):
        d = os.path.join(self.ds.dir, "work", "dlist", LIST)
        os.makedirs(d, exist_ok=True)
        servers.write(os.path.join(d, "members"), "".join(a + "\n" for a in addrs), 0o600)

    def queue_files(self):
        out = []
        for sub in ("queue", "dlist"):
            for root, _, files in os.walk(os.path.join(self.ds.dir, "spool", sub)):
                out.extend(os.path.join(root, f) for f in files if not f.startswith("."))
        return out

    def reset(self, sink_port):
        self.stop()
        for f in self.queue_files():
            os.unlink(f)
        self.ds.settings = [kv for kv in self.ds.settings
                            if kv[0] not in ("smarthost", "dlist_path", "dlist_smtp_host")]
        self.ds.settings += [("smarthost", "[%s]:%d" % (servers.HOST, sink_port)),
                             ("dlist_path", self.listdir),
                             ("dlist_smtp_host", "%s:%d" % (servers.HOST, self.ds.port))]
        self.ds.start()
        self.dl.start()

    def list_pids(self):
        return self.dl.pids()

    def pids(self):
        return self.ds.pids() + self.dl.pids()

    def pending(self):
        return len([f for f in self.queue_files() if "/queue/" in f])

    def stop(self):
        self.dl.stop()
        self.ds.stop()


# --------------------------------------------------------------------------- peer

POSTFIX_LIST = """\
# the list's address is local: its alias pipes the post to mlmmj
alias_maps = hash:{dir}/etc/aliases
alias_database =
local_recipient_maps =
recipient_delimiter = +
default_privs = nobody
relayhost = [{host}]:{sink}
"""


class PeerSide:
    label = "mlmmj+Postfix"

    def __init__(self, ctx, name):
        self.pf = servers.Postfix(ctx.run_dir, smtpd_max=200, name="postfix-" + name)
        self.spool = os.path.join(self.pf.dir, "mlmmj")
        self.listdir = os.path.join(self.spool, LIST)
        self.verp = ctx.args.fanout_mlmmj_verp
        self.make_list()
        ctx.track("postfix-" + name, self.pf)
        self.port = self.pf.port

    def make_list(self):
        """mlmmj-make-ml, answering its questions: domain, owner, texts, chown."""
        os.makedirs(self.spool, exist_ok=True)
        r = subprocess.run([MLMMJ_MAKE_ML, "-L", LIST, "-s", self.spool, "-c", "nobody"],
                           input="%s\npostmaster@%s\nen\ny\n" % (DOMAIN, DOMAIN),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not os.path.isdir(os.path.join(self.listdir, "control")):
            raise RuntimeError("mlmmj-make-ml failed (exit %d): %s"
                               % (r.returncode, (r.stdout + r.stderr)[-500:]))
        aliases = os.path.join(self.pf.etc, "aliases")
        servers.write(aliases, '%s: "|%s -L %s/"\n' % (LIST, MLMMJ_RECEIVE, self.listdir))
        if self.verp == "postfix":
            self.control("verp", "postfix")

    def control(self, name, value):
        path = os.path.join(self.listdir, "control", name)
        servers.write(path, "%s\n" % value)
        _, uid, gid = servers.mail_user()
        os.chown(path, uid, gid)

    def set_members(self, addrs):
        """subscribers.d/X holds the addresses starting with X, as mlmmj-sub writes them."""
        d = os.path.join(self.listdir, "subscribers.d")
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        by = {}
        for a in addrs:
            by.setdefault(a[0].lower(), []).append(a)
        _, uid, gid = servers.mail_user()
        for k, v in by.items():
            p = os.path.join(d, k)
            servers.write(p, "".join(a + "\n" for a in v))
            os.chown(p, uid, gid)

    def reset(self, sink_port):
        self.pf.stop()
        self.pf.purge_queue()
        for sub in ("queue", "incoming"):
            d = os.path.join(self.listdir, sub)
            for f in os.listdir(d):
                p = os.path.join(d, f)
                if os.path.isfile(p):
                    os.unlink(p)
        self.control("relayhost", servers.HOST)
        self.control("smtpport", self.pf.port)
        self.pf.main_extra = POSTFIX_LIST.format(dir=self.pf.dir, host=servers.HOST,
                                                 sink=sink_port).splitlines()
        if self.verp == "postfix":  # mlmmj's MAIL FROM ... XVERP=-= (empty by default)
            self.pf.main_extra.append("smtpd_authorized_verp_clients = 127.0.0.0/8")
        self.pf.write_conf()
        r = subprocess.run(["postalias", "-c", self.pf.etc, os.path.join(self.pf.etc, "aliases")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postalias failed: %s" % r.stderr.strip()[-300:])
        self.pf.start()

    def list_pids(self):
        """mlmmj's processes (mlmmj-process and mlmmj-send leave Postfix's tree: they fork
        to the background), found by the list directory on their command line."""
        out, key = [], self.listdir.encode()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if cmd.startswith(b"/usr/bin/mlmmj") and key in cmd:
                out.append(int(name))
        return out

    def pids(self):
        return sorted(set(self.pf.pids() + self.list_pids()))

    def pending(self):
        return self.pf.queue_count()

    def stop(self):
        self.pf.stop()


# --------------------------------------------------------------------------- runs

def fan_run(ctx, side, sk, n):
    """One post to n members through side. Returns a dict of figures."""
    side.reset(sk.port)
    base = sk.count()
    limit = ctx.deadline.cap(max(60.0, n / 100.0))
    peak_list = peak_all = peak_list_rss = 0
    t_post = send_post(side.port, ctx.args.fanout_size)
    t_done, seen, t_seen, last_mem = None, 0, t_post, 0.0
    while True:
        now = time.monotonic()
        got = sk.count() - base
        if got != seen:
            seen, t_seen = got, now
        if got >= n:
            t_done = now
            break
        if now - last_mem >= ctx.args.mem_interval:
            _, lrss, lpss = procs.mem(side.list_pids())
            _, _, apss = procs.mem(side.pids())
            peak_list, peak_all = max(peak_list, lpss), max(peak_all, apss)
            peak_list_rss = max(peak_list_rss, lrss)
            last_mem = now
        if now - t_seen > STALL_SECS:
            raise RuntimeError("%s stalled: %d of %d at the sink, none for %.0f s, %d queued"
                               % (side.label, got, n, now - t_seen, side.pending()))
        if now - t_post > limit:
            raise RuntimeError("%s: %d of %d at the sink after %.0f s"
                               % (side.label, got, n, limit))
        time.sleep(0.01)
    deadline = time.monotonic() + DRAIN_SECS
    while side.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # duplicates arrive now, if any
    got = sk.count() - base
    if got != n:
        ctx.res.note("10: %s: the sink received %d messages for %d members (%s)"
                     % (side.label, got, n, "duplicates" if got > n else "missing"))
    return {"secs": t_done - t_post, "rate": n / (t_done - t_post), "list_pss": peak_list / MB,
            "list_rss": peak_list_rss / MB, "pss": peak_all / MB}


def metrics(ctx):
    a, res = ctx.args, ctx.res
    w = "10 list fan-out x%d" % a.fanout_members
    res.metric("fanout.secs", w, "post's 250 to the last copy at the sink", "s", "lower",
               ("ratio<=", 0.2), "mlmmj+Postfix", digits=2)
    res.metric("fanout.rate", w, "copies at the sink", "msg/s", "higher", ("ratio>=", 5),
               "mlmmj+Postfix")
    res.metric("fanout.list_pss", w, "list manager peak PSS", "MB", "lower", None,
               "mlmmj+Postfix")
    res.metric("fanout.pss", w, "whole side peak PSS", "MB", "lower", None, "mlmmj+Postfix")
    w = "10 list fan-out x%d (dlist)" % a.fanout_big
    res.metric("fanout.big.pss", w, "dlist peak PSS", "MB", "lower", ("abs<=", 20), None)
    res.metric("fanout.big.rss", w, "dlist peak RSS", "MB", "lower", None, None)
    res.metric("fanout.big.secs", w, "post's 250 to the last copy at the sink", "s", "lower",
               None, None, digits=2)
    # with dlist_http_url: each copy its own RFC 8058 one-click URL (dsmtp's XHEADER)
    w = "10 list fan-out x%d one-click" % a.fanout_members
    res.metric("fanout.oc.secs", w, "post's 250 to the last copy at the sink", "s", "lower",
               None, None, digits=2)
    res.metric("fanout.oc.pss", w, "whole side peak PSS", "MB", "lower", None, None)
    w = "10 list fan-out x%d one-click (dlist)" % a.fanout_big
    res.metric("fanout.oc.big.pss", w, "dlist peak PSS", "MB", "lower", ("abs<=", 20), None)
    res.metric("fanout.oc.big.all", w, "whole side peak PSS", "MB", "lower", None, None)
    res.metric("fanout.oc.big.secs", w, "post's 250 to the last copy at the sink", "s",
               "lower", None, None, digits=2)


def oneclick(ctx, sk, sides):
    """The same posts with dlist_http_url set: every copy gets its own one-click
    List-Unsubscribe (RFC 8058) through dsmtp's XHEADER, so dsmtp keeps a header per
    recipient; dmail alone (mlmmj has no per-recipient URL)."""
    a, res = ctx.args, ctx.res
    oc = DmailSide(ctx, "oneclick", [("dlist_http_url", "https://lists.example.test/")])
    sides.append(oc)
    for n, keys in ((a.fanout_members, ("fanout.oc.secs", None, "fanout.oc.pss")),
                    (a.fanout_big, ("fanout.oc.big.secs", "fanout.oc.big.pss",
                                    "fanout.oc.big.all"))):
        ctx.deadline.check("list fan-out one-click")
        oc.set_members(members(n))
        ctx.log("  fan-out x%d one-click ..." % n)
        try:
            r = fan_run(ctx, oc, sk, n)
            ctx.log("    %.2f s, dlist peak PSS %.1f MB, side %.1f MB"
                    % (r["secs"], r["list_pss"], r["pss"]))
        except (RuntimeError, OSError, smtplib.SMTPException) as e:
            ctx.log("    one-click run failed: %s" % e)
            r = {}
        finally:
            oc.stop()
        for key, k in zip(keys, ("secs", "list_pss", "pss")):
            if key is not None:
                res.add(key, "dmail", r.get(k))


def fanout(ctx):
    a, res = ctx.args, ctx.res
    metrics(ctx)
    for need in (servers.SMTP_SINK, MLMMJ_MAKE_ML, MLMMJ_RECEIVE):
        if not os.access(need, os.X_OK):
            raise RuntimeError("no %s (packages postfix, mlmmj)" % need)
    sides = []
    sk = servers.SmtpSink(ctx.run_dir, "smtp-sink-fanout")
    ctx.track("smtp-sink-fanout", sk)
    try:
        dm, peer = DmailSide(ctx, "fanout"), PeerSide(ctx, "fanout")
        sides = [dm, peer]
        addrs = members(a.fanout_members)
        dm.set_members(addrs)
        peer.set_members(addrs)
        res.note("10: %d members at 100 domains, a %d-byte post; dmail: dsmtp smarthost to the "
                 "sink, dlist hands the post over in one XVERP transaction; peer: mlmmj %s "
                 "through Postfix (relayhost = the sink), mlmmj-make-ml's alias run as nobody"
                 % (a.fanout_members, a.fanout_size,
                    "with verp=postfix (XVERP, 100 recipients a transaction)"
                    if a.fanout_mlmmj_verp == "postfix" else
                    "making the VERP copies itself (one SMTP transaction each, its default)"))
        sk.start()
        for i in range(a.pairs):
            for key, side in zip(SIDES, sides):
                ctx.deadline.check("list fan-out")
                ctx.log("  fan-out x%d pair %d/%d %s ..." % (a.fanout_members, i + 1, a.pairs,
                                                           side.label))
                try:
                    r = fan_run(ctx, side, sk, a.fanout_members)
                    ctx.log("    %.2f s (%.0f copies/s), list manager peak PSS %.1f MB, side "
                            "%.1f MB" % (r["secs"], r["rate"], r["list_pss"], r["pss"]))
                except (RuntimeError, OSError, smtplib.SMTPException) as e:
                    ctx.log("    %s failed: %s" % (side.label, e))
                    r = {}
                finally:
                    side.stop()
                for k in ("secs", "rate", "list_pss", "pss"):
                    res.add("fanout." + k, key, r.get(k))
        ctx.deadline.check("list fan-out memory")
        dm.set_members(members(a.fanout_big))
        ctx.log("  fan-out x%d dlist memory ..." % a.fanout_big)
        try:
            r = fan_run(ctx, dm, sk, a.fanout_big)
            ctx.log("    %.2f s, dlist peak PSS %.1f MB, RSS %.1f MB"
                    % (r["secs"], r["list_pss"], r["list_rss"]))
        except (RuntimeError, OSError, smtplib.SMTPException) as e:
            ctx.log("    dlist memory run failed: %s" % e)
            r = {}
        res.add("fanout.big.pss", "dmail", r.get("list_pss"))
        res.add("fanout.big.rss", "dmail", r.get("list_rss"))
        res.add("fanout.big.secs", "dmail", r.get("secs"))
        dm.stop()
        oneclick(ctx, sk, sides)
    finally:
        for side in sides:
            side.stop()
        sk.stop()
        if not a.keep:
            for side in sides:
                if isinstance(side, PeerSide):
                    shutil.rmtree(side.spool, ignore_errors=True)
