"""The workloads of issue 5, each run against dmail and the peer alternately:
dmail, peer, dmail, peer, ... (--pairs pairs), in the same run.

1  smtp      SMTP accept + local delivery into an mbox, N messages at each concurrency
2  smtp-idle SMTP connections held open after the greeting: memory per connection
3  pop-login POP3 USER/PASS/STAT/QUIT latency, 20 clients on 1,000-message mailboxes
4  pop-retr  POP3 RETR of every message of a 1,000-message mailbox in one session
5  pop-idle  POP3 authenticated sessions held open: memory per session
6  reload    dmail alone: config reload with many domains and forward lines
7  relay     relaying to a sink on 127.0.0.1: msg/s, memory, latency, 1,000 recipients
             (bench/relay.py)
8  filters   the c=50 delivery of 1 plain, with 2 DNSBL zones (dnsmasq) and with rspamd
             as a milter (bench/filters.py)
9  relay-dkim the volume run of 7 with DKIM signing: dsmtp's own against Postfix with
             OpenDKIM as a milter (bench/relay_dkim.py)
10 list-fanout one post to a 10,000-member list, dlist + dsmtp against mlmmj + Postfix,
             and dlist's memory with 100,000 members (bench/fanout.py)
"""

import os
import re
import subprocess
import time

import clients
import procs
import servers
from relay import relay

SIDES = ("dmail", "peer")
MB = 1024.0


def filters_workload(ctx):
    import filters  # bench/filters.py uses smtp_run from here

    filters.filters(ctx)


def relay_dkim_workload(ctx):
    import relay_dkim

    relay_dkim.relay_dkim(ctx)


def fanout_workload(ctx):
    import fanout

    fanout.fanout(ctx)


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, int(len(sorted_vals) * q))
    return sorted_vals[i]


# --------------------------------------------------------------------------- 1. SMTP

def smtp_run(ctx, server, rcpt, mbox, n, conc):
    """One smtp-source run into server. Returns a dict of figures, or raises."""
    a = ctx.args
    counter = clients.MboxCounter(mbox)
    counter.reset(*servers.mail_user()[1:])
    if hasattr(server, "queue_count"):
        deadline = time.monotonic() + ctx.deadline.cap(30)
        while server.queue_count() and time.monotonic() < deadline:
            time.sleep(0.1)
        if server.queue_count():
            ctx.log("    Postfix queue still holds %d files from an earlier run: "
                    "deleting them (postsuper -d ALL)" % server.queue_count())
            server.purge_queue()
    limit = ctx.deadline.cap(max(60.0, n / 10.0))
    peak_rss = peak_pss = 0
    cpu0 = procs.cpu(server.pids())
    srv_cpu = client_cpu = None
    t0 = time.monotonic()
    p = clients.smtp_source(server.port, n, conc, a.smtp_size, rcpt)
    try:
        t_acc = t_del = None
        last_mem = 0.0
        while True:
            now = time.monotonic()
            if t_acc is None:
                done = procs.wait_usage(p)
                if done is not None:
                    t_acc, client_cpu = now - t0, done[1]
            if t_del is None and counter.poll() >= n:
                t_del = now - t0
                srv_cpu = procs.cpu(server.pids()) - cpu0
            if t_acc is not None and t_del is not None:
                break
            if t_acc is not None and p.returncode != 0:
                break
            if now - last_mem >= ctx.args.mem_interval:
                _, rss, pss = server.mem()
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                last_mem = now
            if now - t0 > limit:
                raise RuntimeError("run did not finish within %.0f s: %d of %d delivered"
                                   % (limit, counter.count, n))
            time.sleep(0.01)
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate(timeout=10)[0].decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("smtp-source exited %d: %s" % (p.returncode, out.strip()[-300:]))
    time.sleep(0.05)
    got = counter.poll()
    if got != n:
        raise RuntimeError("%d messages in the mailbox, expected %d" % (got, n))
    return {"deliver": n / t_del, "accept": n / t_acc, "pss": peak_pss / MB,
            "rss": peak_rss / MB, "srv_cpu": srv_cpu * 1e6 / n,
            "client_cpu": client_cpu * 1e6 / n if client_cpu is not None else None}


def smtp(ctx):
    a, res = ctx.args, ctx.res
    ds, pf = ctx.servers["dsmtp"], ctx.servers["postfix"]
    pairs = [(ds, "bench@bench.test", ds.mbox("bench")),
             (pf, "nobody@bench.test", pf.mbox("nobody"))]
    for c in a.smtp_conc:
        w = "1 SMTP deliver c=%d" % c
        gd = {1: ("ratio>=", 2), 10: ("ratio>=", 2), 50: ("ratio>=", 5)}.get(c)
        res.metric("smtp.c%d.deliver" % c, w, "delivered", "msg/s", "higher", gd, "Postfix")
        res.metric("smtp.c%d.accept" % c, w, "accepted (250s)", "msg/s", "higher", None,
                   "Postfix")
        res.metric("smtp.c%d.pss" % c, w, "peak PSS", "MB", "lower",
                   ("ratio<=", 0.05) if c == 50 else None, "Postfix")
        res.metric("smtp.c%d.rss" % c, w, "peak RSS", "MB", "lower", None, "Postfix")
        res.metric("smtp.c%d.srv_cpu" % c, w, "server CPU per message", "us", "lower", None,
                   "Postfix")
        res.metric("smtp.c%d.client_cpu" % c, w, "smtp-source CPU per message", "us",
                   "lower", None, "Postfix")
    for c in a.smtp_conc:
        ctx.deadline.check("SMTP c=%d" % c)
        # fresh servers for each concurrency: Postfix's idle processes from the previous
        # level would otherwise count in this level's memory
        ds.restart()
        pf.restart()
        for i in range(a.pairs):
            for side, (srv, rcpt, mbox) in zip(SIDES, pairs):
                ctx.log("  SMTP c=%d pair %d/%d %s ..." % (c, i + 1, a.pairs, srv.label))
                try:
                    r = smtp_run(ctx, srv, rcpt, mbox, a.smtp_messages, c)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    ctx.log("    %s failed: %s" % (srv.label, e))
                    r = {}
                for k in ("deliver", "accept", "pss", "rss", "srv_cpu", "client_cpu"):
                    res.add("smtp.c%d.%s" % (c, k), side, r.get(k))
                if r:
                    ctx.log("    %.0f msg/s delivered, %.0f accepted, peak PSS %.1f MB, "
                            "RSS %.1f MB, CPU per message: server %.0f us, smtp-source %s us"
                            % (r["deliver"], r["accept"], r["pss"], r["rss"], r["srv_cpu"],
                               "%.0f" % r["client_cpu"] if r["client_cpu"] else "?"))


# --------------------------------------------------------------------------- 2. SMTP idle

def idle_run(ctx, server, k, greet, quit_line, after=None, concurrency=200):
    """Hold up to k connections to a freshly started server, opening them for at most
    --idle-open-secs. Returns (PSS KB, RSS KB per held connection, connections held)."""
    server.restart()
    time.sleep(0.5)
    _, rss0, pss0 = server.mem()
    open_secs = ctx.deadline.cap(ctx.args.idle_open_secs)
    st, (n1, rss1, pss1), t_open = clients.hold_connections(
        server.port, k, greet, quit_line, ctx.args.hold, server.mem,
        concurrency=concurrency, after_greeting=after, open_secs=open_secs)
    held = st["held"]
    errs = ", ".join("%s=%d" % kv for kv in st.items() if kv[1] and kv[0] != "held")
    ctx.log("    %d of %d held (%s), opened in %.1f s, %d server processes"
            % (held, k, errs or "no errors", t_open, n1))
    server.stop()
    if not held:
        raise RuntimeError("no connection was held (%s)" % errs)
    if held < k:
        ctx.res.note("%s held only %d of %d connections (%s; opening is limited to %.0f s "
                     "by --idle-open-secs): its per-connection figure is from those %d"
                     % (server.label, held, k, errs, open_secs, held))
    return (pss1 - pss0) / held, (rss1 - rss0) / held, held


def smtp_idle(ctx):
    a, res = ctx.args, ctx.res
    k = a.smtp_idle
    w = "2 SMTP idle x%d" % k
    big = k >= 10000
    res.metric("smtpidle.held", w, "connections held", "", "higher",
               ("abs>=", k) if big else None, "Postfix")
    res.metric("smtpidle.pss", w, "PSS per connection", "KB", "lower",
               ("abs<=", 10) if big else None, "Postfix")
    res.metric("smtpidle.rss", w, "RSS per connection", "KB", "lower", None, "Postfix")
    peers_skipped(ctx, ("smtpidle.held", "smtpidle.pss", "smtpidle.rss"))
    ds, pf = ctx.servers["dsmtp"], ctx.servers["postfix"]
    res.note("2: Postfix runs one smtpd process per connection; its smtpd process limit "
             "(master.cf maxproc) is set to %d." % pf.smtpd_max)
    for i in range(a.pairs):
        for side, srv in zip(SIDES, (ds, None if a.no_peers else pf)):
            if srv is None:
                continue
            ctx.deadline.check("SMTP idle")
            ctx.log("  SMTP idle x%d pair %d/%d %s ..." % (k, i + 1, a.pairs, srv.label))
            try:
                pss, rss, held = idle_run(ctx, srv, k, b"220", b"QUIT\r\n")
                ctx.log("    %.1f KB PSS, %.1f KB RSS per connection" % (pss, rss))
            except (RuntimeError, OSError, TimeoutError) as e:
                ctx.log("    %s failed: %s" % (srv.label, e))
                pss = rss = held = None
            res.add("smtpidle.held", side, held)
            res.add("smtpidle.pss", side, pss)
            res.add("smtpidle.rss", side, rss)
    # the SMTP servers are not needed any more
    ds.stop()
    pf.stop()


# --------------------------------------------------------------------------- 3-5. POP3

def pop_servers(ctx):
    """[(side, server or None)]: dpop is None until it is built."""
    dp = ctx.servers.get("dpop")
    return [("dmail", dp if dp is not None and dp.available() else None),
            ("peer", None if ctx.args.no_peers else ctx.servers["dovecot"])]


def peers_skipped(ctx, keys):
    """--no-peers: the peer side of these metrics is not measured, on purpose."""
    if ctx.args.no_peers:
        for k in keys:
            ctx.res.by_key[k].note["peer"] = "not run (--no-peers)"


def dpop_missing(ctx, keys):
    for k in keys:
        ctx.res.by_key[k].note["dmail"] = "dpop not built"


def pop_login(ctx):
    a, res = ctx.args, ctx.res
    w = "3 POP3 login x%d" % a.pop_clients
    res.metric("poplogin.p50", w, "USER/PASS/STAT/QUIT p50", "ms", "lower", None, "Dovecot")
    res.metric("poplogin.p99", w, "USER/PASS/STAT/QUIT p99", "ms", "lower",
               ("ratio<=", 0.1), "Dovecot")
    res.metric("poplogin.rate", w, "sessions", "1/s", "higher", None, "Dovecot")
    keys = ("poplogin.p50", "poplogin.p99", "poplogin.rate")
    users = ctx.pop_login_users
    servers = pop_servers(ctx)
    if servers[0][1] is None:
        dpop_missing(ctx, keys)
    for side, srv in servers:  # untimed: each server builds its indexes, caches what it may
        if srv is not None:
            ctx.log("  POP3 warm-up %s: one session per user" % srv.label)
            lat, errs, first, _ = clients.pop_login_loop(
                srv.port, users, ctx.pop_password, ctx.deadline.cap(120), rounds=1)
            if errs or len(lat) != len(users):
                raise RuntimeError("%s warm-up: %d of %d sessions, %d errors (%s)"
                                   % (srv.label, len(lat), len(users), errs, first))
    for i in range(a.pairs):
        for side, srv in servers:
            if srv is None:
                continue
            ctx.deadline.check("POP3 login")
            ctx.log("  POP3 login pair %d/%d %s ..." % (i + 1, a.pairs, srv.label))
            lat, errs, first, wall = clients.pop_login_loop(
                srv.port, users, ctx.pop_password, ctx.deadline.cap(a.pop_login_secs))
            lat.sort()
            if errs or not lat:
                ctx.log("    %d errors (first: %s)" % (errs, first))
            ok = bool(lat) and not errs
            p50 = percentile(lat, 0.50) * 1000 if ok else None
            p99 = percentile(lat, 0.99) * 1000 if ok else None
            rate = len(lat) / wall if ok else None
            res.add("poplogin.p50", side, p50)
            res.add("poplogin.p99", side, p99)
            res.add("poplogin.rate", side, rate)
            if ok:
                ctx.log("    %d sessions, p50 %.1f ms, p99 %.1f ms, %.0f/s"
                        % (len(lat), p50, p99, rate))


def pop_retr(ctx):
    a, res = ctx.args, ctx.res
    w = "4 POP3 RETR %d msgs" % a.pop_mailbox
    res.metric("popretr.secs", w, "STAT+RETR all+QUIT", "s", "lower", ("ratio<=", 0.25),
               "Dovecot", digits=3)
    res.metric("popretr.pipe", w, "the same, RETRs pipelined", "s", "lower",
               ("ratio<=", 0.25), "Dovecot", digits=3)
    res.metric("popretr.login", w, "login before it", "ms", "lower", None, "Dovecot")
    servers = pop_servers(ctx)
    if servers[0][1] is None:
        dpop_missing(ctx, ("popretr.secs", "popretr.pipe", "popretr.login"))
    user = ctx.pop_retr_user
    for side, srv in servers:
        if srv is not None:
            ctx.log("  POP3 RETR warm-up %s (builds its index)" % srv.label)
            clients.pop_retr_all(srv.port, user, ctx.pop_password)
    for i in range(a.pairs):
        for side, srv in servers:
            if srv is None:
                continue
            ctx.deadline.check("POP3 RETR")
            try:
                secs, login, n, octets = clients.pop_retr_all(srv.port, user,
                                                             ctx.pop_password)
                if n != a.pop_mailbox:
                    raise RuntimeError("STAT says %d messages, expected %d"
                                       % (n, a.pop_mailbox))
                ctx.log("  POP3 RETR pair %d/%d %s: %d msgs, %d octets, %.3f s "
                        "(login %.0f ms)" % (i + 1, a.pairs, srv.label, n, octets, secs,
                                             login * 1000))
            except (RuntimeError, OSError, clients.Pop3Error, TimeoutError) as e:
                ctx.log("  POP3 RETR %s failed: %r" % (srv.label, e))
                secs = login = None
            res.add("popretr.secs", side, secs)
            res.add("popretr.login", side, None if login is None else login * 1000)
            try:
                pipe, n, octets = clients.pop_retr_pipelined(srv.port, user, ctx.pop_password)
                if n != a.pop_mailbox:
                    raise RuntimeError("STAT says %d messages, expected %d"
                                       % (n, a.pop_mailbox))
                ctx.log("  POP3 RETR pipelined %s: %d octets, %.3f s" % (srv.label, octets,
                                                                         pipe))
            except (RuntimeError, OSError, clients.Pop3Error, TimeoutError) as e:
                ctx.log("  POP3 RETR pipelined %s failed: %r" % (srv.label, e))
                pipe = None
            res.add("popretr.pipe", side, pipe)


def pop_idle(ctx):
    a, res = ctx.args, ctx.res
    servers = pop_servers(ctx)
    dv = ctx.servers["dovecot"]
    res.note("5: Dovecot runs one pop3 process per session; its process and client limits "
             "are raised to %d/%d for this (default_process_limit, service pop3 "
             "process_limit, default_client_limit, anvil/auth client_limit), and "
             "mail_max_userip_connections to %d." % (max(100, dv.max_sessions + 100),
                                                    max(1000, 2 * dv.max_sessions + 1000),
                                                    max(10, dv.max_sessions)))
    res.note("5: idle-session users have yescrypt hashes of cost 1 (~4 ms) instead of the "
             "default cost 5 (~60 ms) so that 10,000 logins fit in the run; the figure is "
             "memory, not login speed.")
    for k in a.pop_idle:
        w = "5 POP3 idle x%d" % k
        big = k >= 10000
        res.metric("popidle%d.held" % k, w, "sessions held", "", "higher",
                   ("abs>=", k) if big else None, "Dovecot")
        res.metric("popidle%d.pss" % k, w, "PSS per session", "KB", "lower",
                   ("abs<=", 10) if big else None, "Dovecot")
        res.metric("popidle%d.rss" % k, w, "RSS per session", "KB", "lower", None, "Dovecot")
        peers_skipped(ctx, ("popidle%d.held" % k, "popidle%d.pss" % k, "popidle%d.rss" % k))
        if servers[0][1] is None:
            dpop_missing(ctx, ("popidle%d.held" % k, "popidle%d.pss" % k,
                               "popidle%d.rss" % k))
    users = ctx.pop_idle_users
    for k in a.pop_idle:
        pairs = a.pairs if k < 10000 else a.pairs_big
        for i in range(pairs):
            for side, srv in servers:
                if srv is None:
                    continue
                ctx.deadline.check("POP3 idle x%d" % k)
                ctx.log("  POP3 idle x%d pair %d/%d %s ..." % (k, i + 1, pairs, srv.label))
                try:
                    pss, rss, held = idle_run(ctx, srv, k, b"+OK", b"QUIT\r\n",
                                           after=clients.pop_login_hold(users,
                                                                        ctx.idle_password),
                                           concurrency=a.login_concurrency)
                    ctx.log("    %.1f KB PSS, %.1f KB RSS per session" % (pss, rss))
                except (RuntimeError, OSError, TimeoutError) as e:
                    ctx.log("    %s failed: %s" % (srv.label, e))
                    pss = rss = held = None
                res.add("popidle%d.held" % k, side, held)
                res.add("popidle%d.pss" % k, side, pss)
                res.add("popidle%d.rss" % k, side, rss)
    for w in dv.warnings()[-5:]:
        res.note("5: Dovecot logged: " + w.strip()[:200])


# --------------------------------------------------------------------------- 6. reload

def reload_lines(domains, forwards):
    """500 host_domain lines (bench.test is the first, from the base settings) and the
    forward lines: aliasN@bench.test to the one bench user."""
    lines = ["host_domain d%03d.bench.test" % i for i in range(1, domains)]
    lines += ["forward alias%d@bench.test bench@bench.test" % i for i in range(forwards)]
    return lines


def reload_run(ctx, ds, tell):
    """One reload of ds while 10 clients deliver. Returns (server-reported ms, tellsmtp
    round trip ms, longest gap between deliveries around the reload in ms, msg/s during
    the reload second, msg/s in the second before it)."""
    stream = clients.SmtpStream(ds.port, "bench@bench.test", 10, ctx.args.smtp_size)
    stream.start()
    try:
        time.sleep(1.5)
        t0 = time.monotonic()
        r = subprocess.run([tell, "-c", ds.conf, "-w", "60", "reload"], capture_output=True,
                           text=True, timeout=90)
        t1 = time.monotonic()
        time.sleep(1.0)
    finally:
        stream.stop()
    if r.returncode != 0:
        raise RuntimeError("tellsmtp reload exited %d: %s" % (r.returncode,
                                                              (r.stdout + r.stderr)[-300:]))
    m = re.search(r"in ([0-9.]+) ms", r.stdout)
    if not m:
        raise RuntimeError("no time in the reload answer: %r" % r.stdout[-200:])
    if stream.errors:
        raise RuntimeError("%d deliveries failed during the run (first: %s)"
                           % (len(stream.errors), stream.errors[0]))
    done = sorted(stream.done)
    # the longest wait for a delivery from the reload request to 0.5 s after its answer
    window = [t0] + [t for t in done if t0 < t <= t1 + 0.5] + [min(t1 + 0.5, done[-1])]
    stall = max(b - a for a, b in zip(window, window[1:]))
    span = max(t1 - t0, 1.0)
    during = sum(1 for t in done if t0 <= t <= t0 + span) / span
    before = sum(1 for t in done if t0 - 1.0 <= t < t0)
    return float(m.group(1)), (t1 - t0) * 1000, stall * 1000, during, float(before)


def reload(ctx):
    """dmail alone: dsmtp with a big configuration, reloaded through tellsmtp while
    messages are being delivered."""
    a, res = ctx.args, ctx.res
    w = "6 reload %d dom + %d fwd" % (a.reload_domains, a.reload_forwards)
    res.metric("reload.ms", w, "reload (dsmtp's count)", "ms", "lower", ("abs<=", 500), None)
    res.metric("reload.wall", w, "tellsmtp reload round trip", "ms", "lower", None, None)
    res.metric("reload.stall", w, "longest delivery stall", "ms", "lower", ("abs<=", 100),
               None)
    res.metric("reload.during", w, "delivered during reload", "msg/s", "higher", None, None)
    res.metric("reload.before", w, "delivered the second before", "msg/s", "higher", None,
               None)
    keys = ("reload.ms", "reload.wall", "reload.stall", "reload.during", "reload.before")
    tell = os.path.join(ctx.bindir, "tellsmtp")
    if not os.access(tell, os.X_OK):
        why = "not available yet: dsmtp has no reload/control socket (no %s)" % tell
        for k in keys:
            res.by_key[k].note["dmail"] = why
        ctx.log("  reload: " + why)
        return
    ds = servers.Dsmtp(ctx.run_dir, "dsmtp-reload", ctx.bindir,
                       [("max_connections", 1000), ("max_per_ip", 1000)])
    ds.extra_lines = reload_lines(a.reload_domains, a.reload_forwards)
    with open(ds.users_file, "w") as f:
        f.write("bench:%s\n" % clients.yescrypt("bench-smtp-unused", cost=1))
    ctx.track("dsmtp-reload", ds)
    t0 = time.monotonic()
    ds.start()
    ctx.log("  dsmtp started with %d lines of configuration in %.2f s"
            % (len(ds.extra_lines) + 12, time.monotonic() - t0))
    try:
        for i in range(a.pairs):
            ctx.deadline.check("reload")
            try:
                vals = reload_run(ctx, ds, tell)
                ctx.log("  reload %d/%d: %.1f ms (dsmtp), %.0f ms round trip, longest "
                        "delivery stall %.0f ms, %.0f msg/s during, %.0f before"
                        % ((i + 1, a.pairs) + vals))
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                ctx.log("  reload %d/%d failed: %s" % (i + 1, a.pairs, e))
                vals = (None,) * len(keys)
            for k, v in zip(keys, vals):
                res.add(k, "dmail", v)
    finally:
        ds.stop()


WORKLOADS = [
    ("smtp", smtp),
    ("smtp-idle", smtp_idle),
    ("pop-login", pop_login),
    ("pop-retr", pop_retr),
    ("pop-idle", pop_idle),
    ("reload", reload),
    ("relay", relay),
    ("filters", filters_workload),
    ("relay-dkim", relay_dkim_workload),
    ("list-fanout", fanout_workload),
]
