"""What the run directory's disk allows (issue 17 item 1), measured in the same run as
the servers, so that each dmail figure can be printed as a share of the limit that
bounds it: a message acknowledged with 250 is on disk and fsynced, so no MTA can accept
(or deliver) more messages per second than the disk completes durable appends.

  serial    one file, append 2 KB then fsync, one after the other: what SMTP c=1 at best
            gets (one message acknowledged at a time)
  parallel  16 threads, each its own file, append 2 KB then fsync: the ceiling of
            concurrent deliveries into different mailboxes (dsmtp's thread pool is 16)
  dsync     one preallocated file opened O_DSYNC, 2 KB writes in place: a write-ahead
            log's rate (issue 17 item 2 asks whether it beats fsync of an append)
  fdatasync one preallocated file, 2 KB pwrite then fdatasync

Each runs for SECS seconds (a fraction of a second in QUICK mode); files are removed.

What the client and the loopback allow, in the same run: smtp-source (one message per
connection, HELO/MAIL/RCPT/DATA/QUIT) into Postfix's smtp-sink, which answers at once and
writes nothing:

  sink1     c=1: the round trips alone; no server can answer faster
  sink50    c=50: the load generator's own ceiling on these 2 cores
  c1        the c=1 bound: a message waits for its round trips AND its fsync, one after
            the other, so 1 / (1/serial + 1/sink1) messages per second at most
  conc      the bound of the concurrent runs: the lower of parallel and sink50 (the disk
            or the load generator, whichever gives out first)
"""

import os
import subprocess
import threading
import time

import clients
import servers

BLOCK = b"x" * 2047 + b"\n"
PREALLOC = 64 * 1024 * 1024


def _append_fsync(path, secs, counter, idx):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        end = time.monotonic() + secs
        n = 0
        while time.monotonic() < end:
            os.write(fd, BLOCK)
            os.fsync(fd)
            n += 1
        counter[idx] = n
    finally:
        os.close(fd)
        os.unlink(path)


def _rate(d, name, threads, secs):
    counter = [0] * threads
    ts = [threading.Thread(target=_append_fsync,
                           args=(os.path.join(d, "%s.%d" % (name, i)), secs, counter, i))
          for i in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counter) / (time.monotonic() - t0)


def _prealloc(d, name, secs, dsync):
    path = os.path.join(d, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, PREALLOC)
        os.fsync(fd)
        if dsync:
            os.close(fd)
            fd = os.open(path, os.O_RDWR | os.O_DSYNC)
        end = time.monotonic() + secs
        n, off, t0 = 0, 0, time.monotonic()
        while time.monotonic() < end:
            os.pwrite(fd, BLOCK, off)
            if not dsync:
                os.fdatasync(fd)
            off = (off + len(BLOCK)) % PREALLOC
            n += 1
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)
        os.unlink(path)


def measure(d, secs):
    """{"serial", "parallel", "dsync", "fdatasync"}: durable 2 KB writes per second."""
    os.makedirs(d, exist_ok=True)
    return {"serial": _rate(d, "serial", 1, secs),
            "parallel": _rate(d, "parallel", 16, secs),
            "dsync": _prealloc(d, "dsync", secs, True),
            "fdatasync": _prealloc(d, "fdatasync", secs, False)}


def _sink_rate(ctx, sink, conc, n):
    """Messages per second smtp-source gets through smtp-sink at concurrency conc."""
    before = sink.count()
    t0 = time.monotonic()
    p = clients.smtp_source(sink.port, n, conc, ctx.args.smtp_size, "user@sink.test")
    try:
        out, _ = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise RuntimeError("smtp-source into smtp-sink took over 120 s")
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("smtp-source exited %d: %s" % (p.returncode, out.strip()[-300:]))
    deadline = time.monotonic() + 10
    while sink.count() - before < n and time.monotonic() < deadline:
        time.sleep(0.05)
    got = sink.count() - before
    if got < n:
        raise RuntimeError("smtp-sink counted %d of %d messages" % (got, n))
    return n / secs


# the figures each limit bounds (metric keys)
BOUNDS = {"smtp.c1.deliver": "c1", "smtp.c1.accept": "c1",
          "smtp.c10.deliver": "conc", "smtp.c10.accept": "conc",
          "smtp.c50.deliver": "conc", "smtp.c50.accept": "conc",
          "relay.rate": "parallel", "relay.accept": "parallel"}

NAMES = {"serial": "append 2 KB + fsync, 1 file",
         "parallel": "append 2 KB + fsync, 16 files",
         "dsync": "O_DSYNC 2 KB write, prealloc",
         "fdatasync": "pwrite 2 KB + fdatasync, prealloc",
         "sink1": "SMTP into smtp-sink c=1 (no disk)",
         "sink50": "SMTP into smtp-sink c=50 (no disk)",
         "c1": "c=1 bound: fsync + round trips",
         "conc": "c=10/50 bound: min(parallel, sink50)"}


def workload(ctx):
    """The limits as rows of their own (machine figures: the dmail column holds them)."""
    a, res = ctx.args, ctx.res
    w = "0 limits (disk, client)"
    for k in ("serial", "parallel", "dsync", "fdatasync", "sink1", "sink50", "c1",
              "conc"):
        res.metric("limit." + k, w, NAMES[k], "1/s", "higher", None, None)
    sink = servers.SmtpSink(ctx.run_dir, "limits-sink")
    ctx.track("limits-sink", sink)
    sink.start()
    n = 200 if a.quick else 3000
    try:
        for i in range(a.pairs):
            r = measure(os.path.join(ctx.run_dir, "limits"), 0.3 if a.quick else 3.0)
            r["sink1"] = _sink_rate(ctx, sink, 1, n)
            r["sink50"] = _sink_rate(ctx, sink, 50, n * 2)
            r["c1"] = 1.0 / (1.0 / r["serial"] + 1.0 / r["sink1"])
            r["conc"] = min(r["parallel"], r["sink50"])
            for k, v in r.items():
                res.add("limit." + k, "dmail", v)
            ctx.log("  limits %d/%d: %s" % (i + 1, a.pairs, ", ".join(
                "%s %.0f/s" % (k, v) for k, v in r.items())))
    finally:
        sink.stop()
    for key, lim in BOUNDS.items():
        res.bound(key, "limit." + lim)
