"""7 relay: the MTA as a relay, dsmtp against Postfix, each side in turn.

    volume    smtp-source (C clients, 2 KB, one remote recipient each) -> the MTA
              -> Postfix's smtp-sink on 127.0.0.1; relayed msg/s = N / (first submission
              to the sink's count reaching N); peak PSS/RSS of the MTA meanwhile
    latency   one message at a time: the MTA's 250 -> the sink's 250 (bench/sink.py
              timestamps it), p50/p99 over K messages after one untimed message
    many      one message to 1,000 recipients at one destination: transactions and
              recipients per transaction at the sink, time from the MTA's 250 to the
              sink's 250 for the last of them

dsmtp: smarthost [127.0.0.1]:SINK, forward_from_ip 127.0.0.0/8, max_rcpts 1000 (Postfix's
smtpd_recipient_limit), no DNS. Postfix: relayhost = [127.0.0.1]:SINK, mynetworks
127.0.0.0/8. Both fsync what they queue (their defaults). Before every run the MTA is
stopped, its queue emptied, and it is started again (a refused connect marks a
destination dead in Postfix's qmgr and in dsmtp's outq); after every run its queue
must drain (bounded wait, reported if not) and the sink must have received each
message once (more is reported as duplicates).
"""

import asyncio
import os
import subprocess
import time

import clients
import procs
import servers
import sink as pysink

SIDES = ("dmail", "peer")
DOMAIN = "relay.test"
MB = 1024.0
DRAIN_SECS = 60.0
STALL_SECS = 30.0  # a volume run fails when the sink gets nothing this long after the end
IO_TIMEOUT = 30.0


def percentile(sorted_vals, q):
    i = min(len(sorted_vals) - 1, int(len(sorted_vals) * q))
    return sorted_vals[i]


# --------------------------------------------------------------------------- the MTAs

def dsmtp_queue(ds):
    q = os.path.join(ds.dir, "spool", "queue")
    out = []
    for root, _, files in os.walk(q):
        out.extend(os.path.join(root, f) for f in files)
    return out


def queue_count(srv):
    return srv.queue_count() if isinstance(srv, servers.Postfix) else len(dsmtp_queue(srv))


def point_at(srv, port):
    """Set srv's relay target to 127.0.0.1:port (written at its next start)."""
    if isinstance(srv, servers.Postfix):
        srv.main_extra = (["relayhost = [%s]:%d" % (servers.HOST, port)]
                          + getattr(srv, "milter_main", []))
    else:
        srv.settings = [kv for kv in srv.settings if kv[0] != "smarthost"]
        srv.settings.append(("smarthost", "[%s]:%d" % (servers.HOST, port)))


def reset(ctx, srv, port):
    """Stop srv, empty its queue, point it at port, start it: a fresh MTA with no
    destination marked dead and nothing left from the previous run."""
    srv.stop()
    if isinstance(srv, servers.Postfix):
        srv.purge_queue()
    else:
        for f in dsmtp_queue(srv):
            os.unlink(f)
    left = queue_count(srv)
    if left:
        raise RuntimeError("%s: %d queue files left after purging" % (srv.label, left))
    point_at(srv, port)
    srv.start()


def drain(ctx, srv, what):
    """Wait (bounded) until srv's queue is empty; a note if it is not."""
    deadline = time.monotonic() + ctx.deadline.cap(DRAIN_SECS)
    while queue_count(srv) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = queue_count(srv)
    if left:
        msg = ("7: %s: %d queue files still there %.0f s after %s (purged before the next "
               "run)" % (srv.label, left, DRAIN_SECS, what))
        ctx.log("    " + msg)
        ctx.res.note(msg)
    return left


def make_servers(ctx, name="relay"):
    ds = servers.Dsmtp(ctx.run_dir, "dsmtp-" + name, ctx.bindir, [
        ("max_connections", 1000), ("max_per_ip", 1000), ("forward_from_ip", "127.0.0.0/8"),
        ("max_rcpts", 1000), ("dns_host", "127.0.0.1:9")])
    if ctx.args.relay_queue_retry:
        ds.settings.append(("queue_retry", ctx.args.relay_queue_retry))
    with open(ds.users_file, "w") as f:
        f.write("bench:%s\n" % clients.yescrypt("bench-smtp-unused", cost=1))
    pf = servers.Postfix(ctx.run_dir, smtpd_max=max(100, ctx.args.relay_conc + 50),
                         name="postfix-" + name)
    sk = servers.SmtpSink(ctx.run_dir, "smtp-sink-" + name)
    ctx.track("dsmtp-" + name, ds)
    ctx.track("postfix-" + name, pf)
    ctx.track("smtp-sink-" + name, sk)
    return ds, pf, sk


# --------------------------------------------------------------------------- volume

def volume_run(ctx, srv, sk, n, conc):
    """One smtp-source run through srv into smtp-sink. Returns a dict of figures."""
    a = ctx.args
    reset(ctx, srv, sk.port)
    base = sk.count()
    limit = ctx.deadline.cap(max(60.0, n / 25.0))
    peak_rss = peak_pss = 0
    t0 = time.monotonic()
    p = clients.smtp_source(srv.port, n, conc, a.smtp_size, "user@" + DOMAIN)
    try:
        t_acc = t_rel = None
        last_mem = 0.0
        seen, t_seen = 0, t0  # the sink's count and when it last moved
        while True:
            now = time.monotonic()
            got = sk.count() - base
            if got != seen:
                seen, t_seen = got, now
            if t_acc is None and p.poll() is not None:
                t_acc = now - t0
                if p.returncode != 0:
                    break
            if t_rel is None and got >= n:
                t_rel = now - t0
            if t_acc is not None and t_rel is not None:
                break
            if now - last_mem >= a.mem_interval:
                _, rss, pss = srv.mem()
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                last_mem = now
            if t_acc is not None and now - t_seen > STALL_SECS:
                msg = ("%s stalled: %d of %d at the sink, none for the last %.0f s (smtp-source "
                       "has ended), %d queue files waiting" % (srv.label, got, n, now - t_seen,
                                                               queue_count(srv)))
                ctx.res.note("7: " + msg)
                raise RuntimeError(msg)
            if now - t0 > limit:
                raise RuntimeError("run did not finish within %.0f s: %d of %d at the sink "
                                   "(none for the last %.0f s), %d queue files, smtp-source %s"
                                   % (limit, got, n, now - t_seen, queue_count(srv),
                                      "done" if t_acc is not None else "running"))
            time.sleep(0.01)
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate(timeout=10)[0].decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("smtp-source exited %d: %s" % (p.returncode, out.strip()[-300:]))
    left = drain(ctx, srv, "a volume run")
    got = sk.count() - base
    if got != n:
        ctx.res.note("7: %s: the sink received %d messages for %d sent (%s)"
                     % (srv.label, got, n, "duplicates" if got > n else "missing"))
    return {"rate": n / t_rel, "accept": n / t_acc, "pss": peak_pss / MB,
            "rss": peak_rss / MB, "left": left, "got": got}


# --------------------------------------------------------------------------- client

class SmtpError(Exception):
    pass


async def _reply(r, expect):
    while True:
        ln = await asyncio.wait_for(r.readline(), IO_TIMEOUT)
        if not ln:
            raise SmtpError("server closed the connection")
        if ln[3:4] != b"-":
            break
    if not ln.startswith(expect):
        raise SmtpError("expected %s, got %r" % (expect.decode(), ln[:100]))


async def submit(port, rcpts, subject, size):
    """One message to rcpts through the MTA on port (RCPTs pipelined). Returns the
    monotonic time its 250 to the final dot was read."""
    body = ("x" * 74 + "\r\n") * max(1, size // 76)
    text = ("From: <sender@bench.test>\r\nTo: <undisclosed>\r\nSubject: %s\r\n\r\n%s.\r\n"
            % (subject, body)).encode()
    r, w = await asyncio.wait_for(asyncio.open_connection(servers.HOST, port), IO_TIMEOUT)
    try:
        await _reply(r, b"220")
        w.write(b"EHLO client.bench.test\r\n")
        await _reply(r, b"250")
        w.write(b"MAIL FROM:<sender@bench.test>\r\n")
        await _reply(r, b"250")
        w.write(b"".join(b"RCPT TO:<%s>\r\n" % x.encode() for x in rcpts))
        await w.drain()
        for _ in rcpts:
            await _reply(r, b"250")
        w.write(b"DATA\r\n")
        await _reply(r, b"354")
        w.write(text)
        await _reply(r, b"250")
        t = time.monotonic()
        w.write(b"QUIT\r\n")
        return t
    finally:
        w.close()


def with_sink(port, coro_fn, keep=False):
    """Run coro_fn(sink) with bench/sink.py listening on port (keep: it keeps each
    message's text)."""

    async def run():
        s = pysink.Sink(port, keep=keep)
        await s.start()
        try:
            return await coro_fn(s)
        finally:
            await s.stop()

    return asyncio.run(run())


def latency_run(ctx, srv, port, k, tag):
    """k messages one at a time (after one untimed); latencies in seconds, sorted."""
    reset(ctx, srv, port)
    size = ctx.args.smtp_size

    async def go(s):
        lat = []
        for i in range(k + 1):
            subject = "relay-lat-%s-%d" % (tag, i)
            fut = s.waiter(subject)
            t = await submit(srv.port, ["lat@" + DOMAIN], subject, size)
            txn = await asyncio.wait_for(fut, IO_TIMEOUT)
            if i:
                lat.append(txn.t - t)
        return lat

    lat = sorted(with_sink(port, go))
    drain(ctx, srv, "the latency run")
    return lat


def many_run(ctx, srv, port, nrcpt, tag):
    """One message to nrcpt recipients at DOMAIN. Returns (seconds from the MTA's 250 to
    the sink's last 250, transactions, most recipients in one, connections, copies
    received beyond one per recipient)."""
    reset(ctx, srv, port)
    want = ["r%05d@%s" % (i, DOMAIN) for i in range(nrcpt)]
    subject = "relay-many-%s" % tag

    async def go(s):
        t = await submit(srv.port, want, subject, ctx.args.smtp_size)
        end = time.monotonic() + IO_TIMEOUT * 2
        while time.monotonic() < end:
            got = set()
            for x in s.txns:
                if x.subject == subject:
                    got.update(x.rcpts)
            if len(got) >= nrcpt:
                break
            await asyncio.sleep(0.005)
        # whatever else comes in the next moment (duplicates) counts too
        await asyncio.sleep(0.2)
        return t, [x for x in s.txns if x.subject == subject], list(s.errors)

    t, txns, errs = with_sink(port, go)
    got = set(r for x in txns for r in x.rcpts)
    if len(got) < nrcpt:
        raise RuntimeError("the sink got %d of %d recipients in %d transactions%s"
                           % (len(got), nrcpt, len(txns), (": " + errs[0]) if errs else ""))
    total = sum(len(x.rcpts) for x in txns)
    drain(ctx, srv, "the %d-recipient message" % nrcpt)
    return (max(x.t for x in txns) - t, len(txns), max(len(x.rcpts) for x in txns),
            len(set(x.conn for x in txns)), total - nrcpt)


# --------------------------------------------------------------------------- workload

def metrics(ctx):
    a, res = ctx.args, ctx.res
    w = "7 relay c=%d x%d" % (a.relay_conc, a.relay_messages)
    res.metric("relay.rate", w, "relayed (at the sink)", "msg/s", "higher", ("ratio>=", 5),
               "Postfix")
    res.metric("relay.accept", w, "accepted (250s)", "msg/s", "higher", None, "Postfix")
    res.metric("relay.pss", w, "peak PSS", "MB", "lower", ("ratio<=", 0.05), "Postfix")
    res.metric("relay.rss", w, "peak RSS", "MB", "lower", None, "Postfix")
    w = "7 relay latency x%d" % a.relay_latency
    res.metric("relay.lat50", w, "MTA 250 to sink 250 p50", "ms", "lower", None, "Postfix")
    res.metric("relay.lat99", w, "MTA 250 to sink 250 p99", "ms", "lower", None, "Postfix")
    w = "7 relay 1 msg x%d rcpts" % a.relay_rcpts
    res.metric("relay.many.secs", w, "MTA 250 to last sink 250", "ms", "lower", None,
               "Postfix")
    res.metric("relay.many.txns", w, "transactions at the sink", "", "lower", None,
               "Postfix")
    res.metric("relay.many.per", w, "most recipients per txn", "", "higher", None,
               "Postfix")
    res.metric("relay.many.conns", w, "connections to the sink", "", "lower", None,
               "Postfix")


def relay(ctx):
    a, res = ctx.args, ctx.res
    metrics(ctx)
    if not os.access(servers.SMTP_SINK, os.X_OK):
        raise RuntimeError("no %s (package postfix)" % servers.SMTP_SINK)
    ds, pf = None, None
    try:
        ds, pf, sk = make_servers(ctx)
        mtas = list(zip(SIDES, (ds, pf)))
        res.note("7: dsmtp: smarthost [127.0.0.1]:SINK, forward_from_ip 127.0.0.0/8, max_rcpts "
                 "1000 (Postfix's smtpd_recipient_limit)%s; Postfix: relayhost = "
                 "[127.0.0.1]:SINK, mynetworks = 127.0.0.0/8, its other settings default "
                 "(20 connections per destination, 50 recipients per transaction). Volume "
                 "into Postfix's smtp-sink, latency and the %d-recipient message into "
                 "bench/sink.py; both MTAs restarted with an empty queue before each run."
                 % (", queue_retry %s" % a.relay_queue_retry if a.relay_queue_retry else "",
                    a.relay_rcpts))
        sk.start()
        for i in range(a.pairs):
            for side, srv in mtas:
                ctx.deadline.check("relay volume")
                ctx.log("  relay c=%d x%d pair %d/%d %s ..." % (a.relay_conc, a.relay_messages,
                                                              i + 1, a.pairs, srv.label))
                try:
                    r = volume_run(ctx, srv, sk, a.relay_messages, a.relay_conc)
                    ctx.log("    %.0f msg/s relayed, %.0f accepted, peak PSS %.1f MB, RSS "
                            "%.1f MB; sink got %d, queue left %d"
                            % (r["rate"], r["accept"], r["pss"], r["rss"], r["got"],
                               r["left"]))
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    ctx.log("    %s failed: %s" % (srv.label, e))
                    r = {}
                for k in ("rate", "accept", "pss", "rss"):
                    res.add("relay." + k, side, r.get(k))
        sk.stop()
        port = procs.free_ports(1)[0]
        for i in range(a.pairs):
            for side, srv in mtas:
                ctx.deadline.check("relay latency")
                tag = "%s%d" % (side, i)
                try:
                    lat = latency_run(ctx, srv, port, a.relay_latency, tag)
                    p50, p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
                    ctx.log("  relay latency pair %d/%d %s: %d messages, p50 %.1f ms, p99 "
                            "%.1f ms" % (i + 1, a.pairs, srv.label, len(lat), p50, p99))
                except (RuntimeError, OSError, SmtpError, asyncio.TimeoutError) as e:
                    ctx.log("  relay latency %s failed: %r" % (srv.label, e))
                    p50 = p99 = None
                res.add("relay.lat50", side, p50)
                res.add("relay.lat99", side, p99)
                ctx.deadline.check("relay many recipients")
                try:
                    secs, txns, most, conns, dup = many_run(ctx, srv, port, a.relay_rcpts, tag)
                    ctx.log("  relay %d recipients pair %d/%d %s: %.0f ms, %d transactions "
                            "(at most %d recipients), %d connections, %d duplicates"
                            % (a.relay_rcpts, i + 1, a.pairs, srv.label, secs * 1000, txns,
                               most, conns, dup))
                    if dup:
                        res.note("7: %s delivered %d recipients of the %d-recipient message "
                                 "more than once" % (srv.label, dup, a.relay_rcpts))
                    vals = (secs * 1000, txns, most, conns)
                except (RuntimeError, OSError, SmtpError, asyncio.TimeoutError) as e:
                    ctx.log("  relay %d recipients %s failed: %r" % (a.relay_rcpts,
                                                                     srv.label, e))
                    vals = (None,) * 4
                for k, v in zip(("secs", "txns", "per", "conns"), vals):
                    res.add("relay.many." + k, side, v)
    finally:
        for srv in (ds, pf):
            if srv is not None:
                srv.stop()
