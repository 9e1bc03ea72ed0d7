"""9 relay-dkim: the volume run of workload 7 (smtp-source, C clients, 2 KB, one remote
recipient each, through the MTA into Postfix's smtp-sink) with every message DKIM-signed
with the same rsa-2048 key, each side in turn:

    dsmtp    dkim_sign bench.test bench KEY (its built-in signer; the clients are in
             forward_from_ip, so their mail is signed)
    Postfix  OpenDKIM (Debian's opendkim, the standard set-up) as a milter on
             127.0.0.1:PORT: Mode s, Domain bench.test, Selector bench, KeyFile KEY,
             Canonicalization relaxed/relaxed, InternalHosts 127.0.0.1, RequireSafeKeys
             no (the run directory is under /var/tmp);
             smtpd_milters = inet:127.0.0.1:PORT, milter_default_action = tempfail

Honesty checks: after the volume runs one message of each side goes into bench/sink.py,
which keeps its text, and must carry a DKIM-Signature that Python's dkim module
(python3-dkim) verifies against the key's public half. dsmtp's signing cost per message
is its own count (tellsmtp stats: dkim_sign_cpu_microseconds_total / dkim_signed_total,
the thread pool's CPU time for the signatures).
"""

import asyncio
import base64
import os
import re
import subprocess

import procs
import relay
import servers

SIDES = ("dmail", "peer")
SIGN_DOMAIN = "bench.test"
SELECTOR = "bench"
OPENDKIM = "/usr/sbin/opendkim"


def make_key(d):
    """An rsa-2048 key in d (mode 0600): (path, the p= of its DNS record)."""
    path = os.path.join(d, "dkim.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", path], check=True, capture_output=True,
                   timeout=60)
    os.chmod(path, 0o600)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout
    return path, base64.b64encode(der).decode()


class OpenDkim(servers.Server):
    """opendkim -f with a configuration of its own, signing as a milter on 127.0.0.1."""

    kind = "opendkim"
    label = "opendkim"

    def __init__(self, run_dir, key):
        super().__init__(run_dir, "opendkim")
        self.port = procs.free_ports(1)[0]
        self.key = key
        self.log_path = os.path.join(self.dir, "opendkim.out")

    def start(self):
        conf = os.path.join(self.dir, "opendkim.conf")
        servers.write(conf, "\n".join([
            "Mode s", "Domain %s" % SIGN_DOMAIN, "Selector %s" % SELECTOR,
            "KeyFile %s" % self.key, "Socket inet:%d@%s" % (self.port, servers.HOST),
            "Canonicalization relaxed/relaxed", "InternalHosts 127.0.0.1",
            "OversignHeaders From", "UserID %s" % servers.mail_user()[0],
            # the run directory is under /var/tmp, which everybody may write to
            "RequireSafeKeys no",
            "PidFile %s" % os.path.join(self.dir, "opendkim.pid"), "Syslog no",
            "Background no", ""]))
        _, uid, gid = servers.mail_user()
        servers.chown_tree(self.dir, uid, gid)
        self.spawn([OPENDKIM, "-f", "-x", conf], self.log_path, cwd=self.dir)
        self._wait_port("opendkim")


def dsmtp_stats(ctx, ds):
    """{name: value} of tellsmtp stats for ds."""
    tell = os.path.join(ctx.bindir, "tellsmtp")
    r = subprocess.run([tell, "-c", ds.conf, "stats"], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("tellsmtp stats exited %d: %s" % (r.returncode, r.stderr[-300:]))
    out = {}
    for ln in r.stdout.splitlines():
        parts = ln.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def sample(ctx, srv, pubkey, tag):
    """One message through srv into bench/sink.py: its DKIM signatures verified by
    python3-dkim. Returns the number of signatures that verify (each side makes one)."""
    import dkim as pydkim  # python3-dkim

    port = procs.free_ports(1)[0]
    relay.reset(ctx, srv, port)
    subject = "relay-dkim-sample-%s" % tag

    async def go(s):
        fut = s.waiter(subject)
        await relay.submit(srv.port, ["sample@" + relay.DOMAIN], subject, ctx.args.smtp_size)
        return await asyncio.wait_for(fut, relay.IO_TIMEOUT)

    txn = relay.with_sink(port, go, keep=True)
    raw = txn.data
    record = ("v=DKIM1; k=rsa; p=%s" % pubkey).encode()

    want = ("%s._domainkey.%s" % (SELECTOR, SIGN_DOMAIN)).encode()

    def dnsfunc(name, timeout=5):
        name = name.encode() if isinstance(name, str) else name
        return record if name.rstrip(b".").lower() == want else b""

    n = len(re.findall(rb"(?im)^DKIM-Signature:", raw))
    good = 0
    for i in range(n):
        try:
            if pydkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc):
                good += 1
        except pydkim.ValidationError:
            pass
    relay.drain(ctx, srv, "the DKIM sample")
    return good, n


def relay_dkim(ctx):
    a, res = ctx.args, ctx.res
    w = "9 relay dkim c=%d x%d" % (a.relay_conc, a.relay_messages)
    res.metric("relaydkim.rate", w, "relayed, rsa-2048 signed", "msg/s", "higher",
               ("ratio>=", 5), "Postfix+OpenDKIM")
    res.metric("relaydkim.accept", w, "accepted (250s)", "msg/s", "higher", None,
               "Postfix+OpenDKIM")
    res.metric("relaydkim.cost", w, "dsmtp signing CPU per message", "us", "lower", None,
               None)
    if not os.access(servers.SMTP_SINK, os.X_OK):
        raise RuntimeError("no %s (package postfix)" % servers.SMTP_SINK)
    if not os.access(OPENDKIM, os.X_OK):
        raise RuntimeError("no %s (package opendkim)" % OPENDKIM)
    ds = pf = od = None
    try:
        ds, pf, sk = relay.make_servers(ctx, "relay-dkim")  # each run restarts dsmtp: its
        # stats then count that run alone
        key, pubkey = make_key(ds.dir)
        ds.settings.append(("dkim_sign", "%s %s %s" % (SIGN_DOMAIN, SELECTOR, key)))
        od = OpenDkim(ctx.run_dir, os.path.join(ctx.run_dir, "opendkim", "dkim.key"))
        with open(key, "rb") as src, open(od.key, "wb") as dst:
            dst.write(src.read())
        os.chmod(od.key, 0o600)
        ctx.track("opendkim", od)
        od.start()
        pf.milter_main = ["smtpd_milters = inet:%s:%d" % (servers.HOST, od.port),
                          "milter_default_action = tempfail"]
        res.note("9: the volume run of 7 with DKIM signing (rsa-2048, relaxed/relaxed, one "
                 "key): dsmtp's dkim_sign against Postfix with OpenDKIM %d as a milter "
                 "(milter_default_action = tempfail)" % od.port)
        sk.start()
        for i in range(a.pairs):
            for side, srv in zip(SIDES, (ds, pf)):
                ctx.deadline.check("relay dkim")
                ctx.log("  relay dkim c=%d x%d pair %d/%d %s ..."
                        % (a.relay_conc, a.relay_messages, i + 1, a.pairs, srv.label))
                try:
                    r = relay.volume_run(ctx, srv, sk, a.relay_messages, a.relay_conc)
                    msg = ("    %.0f msg/s relayed, %.0f accepted; sink got %d, queue left %d"
                           % (r["rate"], r["accept"], r["got"], r["left"]))
                    if side == "dmail":
                        st = dsmtp_stats(ctx, ds)
                        n = st.get("dkim_signed_total", 0)
                        us = st.get("dkim_sign_cpu_microseconds_total", 0)
                        if n < a.relay_messages:
                            raise RuntimeError("dsmtp signed %d of %d messages"
                                               % (n, a.relay_messages))
                        res.add("relaydkim.cost", "dmail", us / n)
                        msg += "; %d signed, %.0f us of CPU each" % (n, us / n)
                    ctx.log(msg)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    ctx.log("    %s failed: %s" % (srv.label, e))
                    r = {}
                for k in ("rate", "accept"):
                    res.add("relaydkim." + k, side, r.get(k))
        sk.stop()
        for side, srv in zip(SIDES, (ds, pf)):
            try:
                good, n = sample(ctx, srv, pubkey, side)
            except (RuntimeError, OSError, asyncio.TimeoutError, ImportError) as e:
                good, n = 0, 0
                ctx.log("  relay dkim sample %s failed: %r" % (srv.label, e))
            ctx.log("  relay dkim sample %s: %d of %d signatures verify"
                    % (srv.label, good, n))
            res.note("9: %s's sample message: %d DKIM-Signature field(s), %d verified by "
                     "python3-dkim" % (srv.label, n, good))
            if good < 1:
                raise RuntimeError("%s's mail was not validly signed: the comparison would "
                                   "not be fair" % srv.label)
    finally:
        for srv in (ds, pf, od):
            if srv is not None:
                srv.stop()
