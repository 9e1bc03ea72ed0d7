#!/usr/bin/python3
"""make bench: dmail against Postfix and Dovecot on 127.0.0.1, in one run.

Installs what it needs (apt-get, as root), starts private loopback-only instances of
dsmtp, dpop, Postfix and Dovecot in a directory of its own under /var/tmp, runs every
workload against dmail and the peer alternately, prints a table of medians and the
dmail/peer ratio, and writes bench/results/LATEST.{csv,png,txt,log}.
Everything it starts is stopped again, also after a failure or Ctrl-C.

    bench/bench.py [--quick] [--bin DIR] [--only smtp,pop-login,...] [sizes...]
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import clients  # noqa: E402
import limits  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
import sysdeps  # noqa: E402
import workloads  # noqa: E402
from results import Results  # noqa: E402

REPO = os.path.dirname(HERE)
RUN_ROOT = "/var/tmp/dmail-bench"
NAMES = [n for n, _ in workloads.WORKLOADS]

FULL = dict(pairs=3, pairs_big=1, smtp_messages=5000, smtp_conc="1,10,50", smtp_idle=1000,
            pop_clients=20, pop_mailbox=1000, pop_login_secs=10.0, pop_idle="1000,10000",
            hold=2.0, idle_open_secs=360.0, reload_domains=500, reload_forwards=100000,
            relay_messages=5000, relay_conc=50, relay_latency=200, relay_rcpts=1000,
            filters_messages=5000, filters_conc=50, fanout_members=10000, fanout_big=100000,
            max_minutes=45.0)
QUICK = dict(pairs=1, pairs_big=1, smtp_messages=100, smtp_conc="1,10,50", smtp_idle=20,
             pop_clients=5, pop_mailbox=50, pop_login_secs=1.0, pop_idle="20,40",
             hold=0.5, idle_open_secs=60.0, reload_domains=20, reload_forwards=1000,
             relay_messages=200, relay_conc=10, relay_latency=20, relay_rcpts=1000,
             filters_messages=60, filters_conc=50, fanout_members=200, fanout_big=1000,
             max_minutes=4.0)


def ints(text):
    return [int(x) for x in str(text).split(",") if x.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1",
                   help="every workload at a tiny size (also QUICK=1 in the environment)")
    p.add_argument("--bin", default=os.path.join(REPO, "bin"), help="dmail programs")
    p.add_argument("--only", default=",".join(NAMES),
                   help="workloads to run, comma-separated: " + ",".join(NAMES))
    p.add_argument("--pairs", type=int, help="dmail/peer pairs per workload (3)")
    p.add_argument("--pairs-big", type=int,
                   help="pairs for the 10,000-session POP3 idle run (as --pairs)")
    p.add_argument("--smtp-messages", type=int, help="messages per SMTP run (5000)")
    p.add_argument("--smtp-size", type=int, default=2048, help="message payload (2048)")
    p.add_argument("--smtp-conc", help="SMTP concurrencies (1,10,50)")
    p.add_argument("--smtp-idle", type=int, help="idle SMTP connections (1000)")
    p.add_argument("--pop-clients", type=int, help="POP3 login clients (20)")
    p.add_argument("--pop-mailbox", type=int, help="messages in the POP3 mailboxes (1000)")
    p.add_argument("--pop-login-secs", type=float, help="seconds per POP3 login run (10)")
    p.add_argument("--pop-idle", help="idle POP3 session counts (1000,10000)")
    p.add_argument("--hold", type=float, help="seconds idle connections are held (2)")
    p.add_argument("--idle-open-secs", type=float,
                   help="at most this long to open the idle connections of one run (360)")
    p.add_argument("--login-concurrency", type=int, default=50,
                   help="POP3 logins in flight while opening idle sessions (50)")
    p.add_argument("--mem-interval", type=float, default=0.1,
                   help="seconds between memory samples during SMTP runs (0.1)")
    p.add_argument("--reload-domains", type=int, help="domains in the reload test (500)")
    p.add_argument("--reload-forwards", type=int,
                   help="forward lines in the reload test (100000)")
    p.add_argument("--relay-messages", type=int, help="messages per relay run (5000)")
    p.add_argument("--relay-conc", type=int, help="smtp-source sessions for relay (50)")
    p.add_argument("--relay-latency", type=int,
                   help="messages sent one at a time for the relay latency (200)")
    p.add_argument("--relay-rcpts", type=int,
                   help="recipients of the relay's many-recipient message (1000)")
    p.add_argument("--relay-queue-retry",
                   help="dsmtp's queue_retry in the relay runs (default: dsmtp's own)")
    p.add_argument("--filters-messages", type=int,
                   help="messages per run of the filters workload (5000)")
    p.add_argument("--filters-conc", type=int, help="smtp-source sessions for filters (50)")
    p.add_argument("--fanout-members", type=int, help="members of the fan-out list (10000)")
    p.add_argument("--fanout-big", type=int,
                   help="members of the list of dlist's memory run (100000)")
    p.add_argument("--fanout-size", type=int, default=4096, help="the fan-out post (4096)")
    p.add_argument("--fanout-mlmmj-verp", choices=("mlmmj", "postfix"), default="postfix",
                   help="who makes mlmmj's VERP copies: postfix (mlmmj's verp tunable: "
                        "XVERP, the faster; default) or mlmmj (one transaction a copy)")
    p.add_argument("--max-minutes", type=float, help="time budget of the run (45)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    p.add_argument("--keep", action="store_true", help="keep the run directory")
    p.add_argument("--no-peers", action="store_true",
                   help="idle workloads: dmail only (19,000 sessions of a peer that forks "
                        "per session would not fit the machine)")
    a = p.parse_args(argv)
    defaults = QUICK if a.quick else FULL
    if a.pairs_big is None and a.pairs is not None:
        a.pairs_big = a.pairs
    for k, v in defaults.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    a.smtp_conc = ints(a.smtp_conc)
    a.pop_idle = ints(a.pop_idle)
    a.only = [x.strip() for x in a.only.split(",") if x.strip()]
    bad = [x for x in a.only if x not in NAMES]
    if bad:
        p.error("unknown workload(s) %s; known: %s" % (",".join(bad), ",".join(NAMES)))
    if (a.pairs < 1 or a.pairs_big < 1 or a.smtp_messages < 1 or not a.smtp_conc
            or a.relay_messages < 1 or a.relay_conc < 1 or a.relay_latency < 1
            or a.relay_rcpts < 1 or a.filters_messages < 1 or a.filters_conc < 1
            or a.fanout_members < 1 or a.fanout_big < 1):
        p.error("pairs, messages and concurrencies must be at least 1")
    return a


class Context:
    def __init__(self, args, run_dir, logf):
        self.args = args
        self.bindir = os.path.abspath(args.bin)
        self.run_dir = run_dir
        self.res = Results()
        self.deadline = procs.Deadline(args.max_minutes * 60)
        self.cleanup = procs.Cleanup()
        self.servers = {}
        self.logf = logf
        self.pop_password = "bench-pop-secret"
        self.idle_password = "bench-idle-secret"
        self.pop_login_users = []
        self.pop_retr_user = "retr"
        self.pop_idle_users = []
        self.failed = []  # workloads that raised

    def log(self, text):
        stamp = time.strftime("%H:%M:%S")
        print(text, flush=True)
        self.logf.write("%s %s\n" % (stamp, text))
        self.logf.flush()

    def track(self, name, srv):
        """Remember srv for clean-up, here and in state.json for a later run."""
        self.servers[name] = srv
        self.cleanup.push("stop " + name, srv.stop)
        real_start = srv.start

        def start():
            real_start()
            self.save_state()

        srv.start = start
        return srv

    def save_state(self):
        st = {"harness_pid": os.getpid(), "harness_started": procs.start_time(os.getpid()),
              "servers": [s.record() for s in self.servers.values() if s.pid]}
        tmp = os.path.join(self.run_dir, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.rename(tmp, os.path.join(self.run_dir, "state.json"))


def reap_stale_runs(log):
    """Stop servers of earlier runs that were killed before they could clean up."""
    if not os.path.isdir(RUN_ROOT):
        return
    for name in sorted(os.listdir(RUN_ROOT)):
        d = os.path.join(RUN_ROOT, name)
        try:
            with open(os.path.join(d, "state.json")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            st = None
        if st and procs.alive(st.get("harness_pid") or 0, st.get("harness_started")):
            continue  # another run in progress
        if st is None and time.time() - os.path.getmtime(d) < 600:
            continue  # a run that is just starting
        for rec in (st or {}).get("servers", []):
            if servers.reap(rec):
                log("bench: stopped %s pid %s left behind by an earlier run"
                    % (rec.get("kind"), rec.get("pid")))
        shutil.rmtree(d, ignore_errors=True)


def machine():
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    df = subprocess.run(["df", "-T", "-h", RUN_ROOT], capture_output=True, text=True)
    disk = " ".join(df.stdout.splitlines()[-1].split()[:3]) if df.returncode == 0 else "?"
    return [("cpus", "%d x %s" % (os.cpu_count(), cpu)),
            ("memory", "%.1f GiB" % (mem_kb / 1048576.0)),
            ("disk", disk + " (run directory %s)" % RUN_ROOT),
            ("kernel", platform.release())]


def git_rev():
    r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


# --------------------------------------------------------------------------- set-up

def setup_smtp(ctx):
    a = ctx.args
    limit = max(1000, a.smtp_idle + 100, max(a.smtp_conc) + 100)
    # stress_connections 0: the idle workload holds most of max_connections on purpose
    ds = servers.Dsmtp(ctx.run_dir, "dsmtp", ctx.bindir,
                       [("max_connections", limit), ("max_per_ip", limit),
                        ("stress_connections", 0)])
    with open(ds.users_file, "w") as f:
        f.write("bench:%s\n" % clients.yescrypt("bench-smtp-unused"))
    ctx.track("dsmtp", ds)
    ctx.track("postfix", servers.Postfix(ctx.run_dir, smtpd_max=max(100, a.smtp_idle + 50)))


def setup_pop(ctx):
    a = ctx.args
    t0 = time.monotonic()
    need_idle = "pop-idle" in a.only
    nidle = max(a.pop_idle) if need_idle and a.pop_idle else 0
    limit = max(1000, nidle + 100)
    dp = servers.Dpop(ctx.run_dir, "dpop", ctx.bindir,
                      [("max_connections", limit), ("max_per_ip", limit),
                       ("stress_connections", 0)])
    dv = servers.Dovecot(ctx.run_dir, max_sessions=max(1000, nidle))
    ctx.pop_login_users = ["login%02d" % i for i in range(1, a.pop_clients + 1)]
    ctx.pop_idle_users = ["idle%05d" % i for i in range(1, nidle + 1)]
    users = []  # (name, hash, messages)
    for u in ctx.pop_login_users + [ctx.pop_retr_user]:
        users.append((u, clients.yescrypt(ctx.pop_password), a.pop_mailbox))
    if ctx.pop_idle_users:
        h = clients.yescrypt(ctx.idle_password, cost=1)
        users.extend((u, h, 1) for u in ctx.pop_idle_users)
    _, uid, gid = servers.mail_user()
    big = {}
    with open(dp.users_file, "w") as fd, open(dv.users_file, "w") as fv:
        for u, h, n in users:
            fd.write("%s:%s\n" % (u, h))
            fv.write("%s:{CRYPT}%s\n" % (u, h))
            if n not in big:
                big[n] = None
            text = clients.mbox_text(u, n)
            clients.write_mbox(dp.mbox(u), text, uid, gid)
            clients.write_mbox(dv.mbox(u), text, uid, gid)
    ctx.track("dpop", dp)
    ctx.track("dovecot", dv)
    ctx.log("bench: %d POP3 users and their mailboxes made in %.1f s"
            % (len(users), time.monotonic() - t0))
    if not dp.available():
        ctx.log("bench: dpop not built (%s): POP3 workloads measure Dovecot only" % dp.exe)


def start_pop(ctx):
    for name in ("dpop", "dovecot"):
        srv = ctx.servers[name]
        if name == "dpop" and not srv.available():
            continue
        if not srv.running():
            srv.start()


# --------------------------------------------------------------------------- main

def run(ctx):
    a = ctx.args
    if any(w in a.only for w in ("smtp", "relay", "filters")):
        ctx.log("== disk limits")
        limits.workload(ctx)
    if "smtp" in a.only or "smtp-idle" in a.only:
        setup_smtp(ctx)
    if any(w.startswith("pop-") for w in a.only):
        setup_pop(ctx)
    for name, fn in workloads.WORKLOADS:
        if name not in a.only:
            continue
        ctx.log("== %s (%.0f s left in the budget)" % (name, ctx.deadline.left()))
        try:
            ctx.deadline.check(name)
            if name in ("pop-login", "pop-retr"):
                start_pop(ctx)
            fn(ctx)
        except (RuntimeError, OSError, TimeoutError, subprocess.SubprocessError,
                clients.Pop3Error) as e:
            ctx.log("bench: workload %s failed: %s" % (name, e))
            ctx.logf.write(traceback.format_exc())
            ctx.res.note("%s: failed: %s" % (name, (str(e) or repr(e)).splitlines()[0][:200]))
            ctx.failed.append(name)


def main(argv):
    a = parse_args(argv)
    t_start = time.monotonic()
    if os.geteuid() != 0:
        miss = sysdeps.missing()
        sys.exit("bench: must run as root: Postfix's master and Dovecot start as root and "
                 "the servers switch to nobody%s"
                 % ("; missing packages: " + " ".join(miss) if miss else ""))
    install_secs = sysdeps.ensure()
    bindir = os.path.abspath(a.bin)
    if not os.access(os.path.join(bindir, "dsmtp"), os.X_OK):
        sys.exit("bench: no dsmtp in %s (run make first)" % bindir)
    os.makedirs(RUN_ROOT, exist_ok=True)
    os.chmod(RUN_ROOT, 0o755)
    reap_stale_runs(print)
    run_dir = os.path.join(RUN_ROOT, "run.%d.%d" % (os.getpid(), int(time.time())))
    os.makedirs(run_dir)
    os.chmod(run_dir, 0o755)
    os.makedirs(a.out, exist_ok=True)
    procs.raise_nofile()
    procs.install_signal_handlers()
    logf = open(os.path.join(a.out, "LATEST.log"), "w")
    ctx = Context(a, run_dir, logf)
    ctx.save_state()
    if not a.keep:
        ctx.cleanup.push("remove run directory", lambda: procs.remove_tree(run_dir))
    info = [("date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
            ("mode", "QUICK (tiny sizes: checks the harness, not speed)" if a.quick
             else "full"),
            ("dmail", git_rev())] + machine()
    ctx.log("bench: run directory %s%s" % (run_dir, " (kept)" if a.keep else ""))
    if install_secs:
        ctx.log("bench: apt-get took %.0f s" % install_secs)
    interrupted = None
    try:
        run(ctx)
    except (KeyboardInterrupt, procs.Interrupted) as e:
        interrupted = e
        ctx.log("bench: interrupted (%s); stopping every server" % (str(e) or "Ctrl-C"))
    finally:
        errs = ctx.cleanup.run()
        for e in errs:
            ctx.log("bench: clean-up: " + e)
    if interrupted is not None:
        logf.close()
        return 130
    pf = (ctx.servers.get("postfix") or ctx.servers.get("postfix-relay")
          or ctx.servers.get("postfix-filters"))
    dv = ctx.servers.get("dovecot")
    info += [("peers", "Postfix %s, Dovecot %s" % (pf.version if pf else "-",
                                                   dv.version if dv else "-")),
             ("sizes", "pairs %d; SMTP %d x %d B at c=%s, %d idle; POP3 %d clients on %d "
              "msgs, %g s per login run, idle %s; relay %d at c=%d, latency x%d, 1 msg x%d "
              "rcpts; filters %d at c=%d" % (
                  a.pairs, a.smtp_messages, a.smtp_size, ",".join(map(str, a.smtp_conc)),
                  a.smtp_idle, a.pop_clients, a.pop_mailbox, a.pop_login_secs,
                  ",".join(map(str, a.pop_idle)), a.relay_messages, a.relay_conc,
                  a.relay_latency, a.relay_rcpts, a.filters_messages, a.filters_conc)),
             ("duration", "%.0f s" % (time.monotonic() - t_start))]
    header = ["dmail vs Postfix/Dovecot on 127.0.0.1 (medians of alternating runs)"]
    header += ["  %-8s %s" % kv for kv in info]
    header.append("")
    text = report.table(ctx.res, header)
    print()
    print(text, flush=True)
    with open(os.path.join(a.out, "LATEST.txt"), "w") as f:
        f.write(text + "\n")
    report.write_csv(ctx.res, os.path.join(a.out, "LATEST.csv"), info)
    png = os.path.join(a.out, "LATEST.png")
    err = report.chart(ctx.res, png, "dmail vs Postfix / Dovecot, %s%s" % (
        info[0][1], " (QUICK)" if a.quick else ""), a.out)
    for tmp in ("chart.dat", "chart.gp"):
        try:
            os.unlink(os.path.join(a.out, tmp))
        except OSError:
            pass
    print("bench: wrote %s/LATEST.csv, LATEST.txt, LATEST.log%s"
          % (a.out, "" if err else ", LATEST.png"))
    if err:
        print("bench: chart: " + err)
    missing = ctx.res.missing() + ["workload %s (failed, see above)" % w for w in ctx.failed]
    logf.close()
    if missing:
        print("bench: FAILED: no figure for:\n  " + "\n  ".join(missing))
        return 1
    print("bench: done in %.0f s" % (time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
