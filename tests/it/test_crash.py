"""Durability under kill -9 (DESIGN invariants 1 and 2): senders run while dsmtp is
killed and restarted repeatedly. Every message that got 250 must end up in each of its
recipients' mailboxes exactly once and intact; messages that did not get 250 may be
there at most once; every dropfile parses and holds only whole messages; restart after
every kill works."""

import collections
import hashlib
import os
import random
import re
import smtplib
import threading
import time

from dmail_site import DOMAIN, HOST, make_message, new_msgid

SENDERS = 8
KILLS = 6
SEND_WINDOW = 15.0  # hard bound on the sending phase
DRAIN = 30.0  # bound on waiting for queued deliveries after the last restart
USERS = ("alice", "bob")


def body_for(msgid, small=False):
    rnd = random.Random(msgid)
    n = rnd.choice((3, 30, 300) if small else (3, 30, 300, 1500))  # up to ~23 or ~115 KB
    h = hashlib.sha256(msgid.encode()).hexdigest()
    return "".join("%05d %s %s\n" % (i, h, h[: rnd.randint(0, 40)]) for i in range(n))


def test_kill9_while_sending(dsmtp_factory):
    kill9_run(dsmtp_factory, SENDERS, (["alice"], ["bob"], ["alice", "bob"]))


def test_kill9_fifty_senders_one_mailbox(dsmtp_factory):
    """50 concurrent senders into one mailbox: the deliveries go in batches (group commit),
    so a kill lands in the middle of a batch append or between its fsync and the 250s."""
    kill9_run(dsmtp_factory, 50, (["alice"],), kills=4, small=True)


def kill9_run(dsmtp_factory, senders, choices, kills=KILLS, small=False):
    """senders clients send until kills kill -9s and restarts are done, each message to
    one of choices; then every acknowledged message must be in place exactly once."""
    srv = dsmtp_factory(max_per_ip=100, lock_timeout=2, queue_retry=1, log_level="info")
    stop = threading.Event()
    lock = threading.Lock()
    acked = {}  # msgid -> users
    tried = {}  # msgid -> users (every attempt, acked or not)
    errors = collections.Counter()

    def sender(n):
        rnd = random.Random(n)
        s = None
        while not stop.is_set():
            users = rnd.choice(choices)
            msgid = new_msgid("crash%d" % n)
            _, text = make_message(msgid=msgid, body=body_for(msgid, small),
                                   to=", ".join(users))
            with lock:
                tried[msgid] = users
            try:
                if s is None:
                    s = smtplib.SMTP(HOST, srv.smtp_port, timeout=10)
                s.sendmail("s%d@remote.example" % n, ["%s@%s" % (u, DOMAIN) for u in users],
                           text)
            except Exception as e:  # noqa: BLE001 - any failure: not acknowledged
                with lock:
                    errors[type(e).__name__] += 1
                if s is not None:
                    try:
                        s.close()
                    except Exception:  # noqa: BLE001
                        pass
                s = None
                time.sleep(0.02)
                continue
            with lock:
                acked[msgid] = users  # never retried: no duplicates from the client side
        if s is not None:
            try:
                s.quit()
            except Exception:  # noqa: BLE001
                s.close()

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(senders)]
    t_end = time.monotonic() + SEND_WINDOW
    for t in threads:
        t.start()
    done_kills = 0
    rnd = random.Random(42)
    try:
        while done_kills < kills and time.monotonic() < t_end:
            time.sleep(rnd.uniform(0.3, 0.8))
            srv.kill9()
            done_kills += 1
            srv.start()  # fails the test if it does not come back within 10 s
        time.sleep(min(1.0, max(0.0, t_end - time.monotonic())))
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "senders hung"
    assert done_kills == kills, "only %d kills in the window" % done_kills
    assert len(acked) >= 20, "too few messages acknowledged (%d; errors %s)" % (len(acked), errors)

    def missing():
        out = []
        for u in USERS:
            have = set(srv.msgids(u))
            out.extend((u, m) for m, us in acked.items() if u in us and m not in have)
        return out

    deadline = time.monotonic() + DRAIN
    while missing() and time.monotonic() < deadline:
        time.sleep(0.5)

    def queued():
        return [f for f in srv.queue_files() if "/tmp/" not in f[len(srv.spool):]]

    while queued() and time.monotonic() < deadline:
        time.sleep(0.5)
    srv.stop()

    lost = missing()
    assert not lost, "%d acknowledged deliveries missing, e.g. %s; queue: %s" % (
        len(lost), lost[:3], srv.queue_files()[:5])
    for u in USERS:
        path = srv.mbox_path(u)
        assert not os.path.exists(path + ".lock"), "dotlock left behind: %s.lock" % path
        msgs = srv.messages(u)
        counts = collections.Counter(m["Message-ID"] for _, m in msgs)
        dups = [m for m, c in counts.items() if c > 1]
        assert not dups, "%s: delivered more than once: %s" % (u, dups[:3])
        for raw, m in msgs:
            mid = m["Message-ID"]
            assert mid in tried, "%s: fragment or unknown message in mbox: %r" % (u, raw[:300])
            assert u in tried[mid], "%s: %s delivered to the wrong mailbox" % (u, mid)
            first = raw.split(b"\n", 1)[0]
            assert re.match(rb"^[A-Za-z0-9-]+:", first), "%s: message starts with %r" % (u, first)
            for h in ("Return-Path", "Received", "X-UIDL"):
                assert m[h], "%s: %s lacks %s" % (u, mid, h)
            assert raw.endswith(body_for(mid, small).encode()), (
                "%s: %s (%s) truncated or altered: %d bytes, ends %r"
                % (u, mid, "acknowledged" if mid in acked else "not acknowledged", len(raw),
                   raw[-80:]))
        # the file itself ends cleanly
        data = srv.raw_mbox(u)
        assert not data or data.endswith(b"\n\n"), "%s: mbox ends mid-message" % u
    assert queued() == [], "queue not drained: %s" % queued()[:5]
    print("kills=%d acked=%d tried=%d errors=%s" % (done_kills, len(acked), len(tried), dict(errors)))
    # and it starts once more on whatever is left in the spool
    srv.start()


def big_body(msgid, lines=300000):
    """~4 MB of short "From " lines: mboxrd quoting splits the append into thousands of
    small writes, so the file is seen half-written for a while."""
    h = hashlib.sha256(msgid.encode()).hexdigest()[:6]
    return "".join("From %06d %s\n" % (i, h) for i in range(lines))


def test_kill9_during_mailbox_append(dsmtp_factory):
    """kill -9 while an append is half done (the mailbox lock is held and the mbox has
    grown, but by less than the message): the dropfile must afterwards hold only whole
    messages (DESIGN invariant 2), and the next delivery must go straight in."""
    srv = dsmtp_factory(lock_timeout=2, queue_retry=1, log_level="info")
    path = srv.mbox_path("alice")
    lock = path + ".lock"
    bodies, acked = {}, set()
    torn_kills = 0
    for attempt in range(3):
        msgid = new_msgid("torn%d" % attempt)
        bodies[msgid] = big_body(msgid)
        _, text = make_message(msgid=msgid, body=bodies[msgid])
        expect = len(text) + text.count("\nFrom ")  # at least this much is appended
        before = os.path.getsize(path) if os.path.exists(path) else 0
        done = threading.Event()

        def send(text=text, msgid=msgid):
            try:
                with smtplib.SMTP(HOST, srv.smtp_port, timeout=30) as s:
                    s.sendmail("s@remote.example", ["alice@" + DOMAIN], text)
                    acked.add(msgid)
            except Exception:  # noqa: BLE001 - killed: not acknowledged
                pass
            finally:
                done.set()

        t = threading.Thread(target=send, daemon=True)
        t.start()
        deadline = time.monotonic() + 20
        while not done.is_set() and time.monotonic() < deadline:
            if not os.path.exists(lock):
                continue
            try:
                size = os.path.getsize(path)
            except FileNotFoundError:
                continue
            if before < size < before + expect * 0.9:
                srv.kill9()
                torn_kills += 1
                break
        t.join(30)
        assert not t.is_alive()
        if not srv.alive():
            srv.start()
    assert torn_kills >= 1, "never caught an append half-way"
    # the next delivery to the same mailbox goes straight in (no stale lock, no queue)
    final_id = new_msgid("after")
    bodies[final_id] = "after the crashes\n"
    _, text = make_message(msgid=final_id, body=bodies[final_id])
    t0 = time.monotonic()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=30) as s:
        assert s.sendmail("s@remote.example", ["alice@" + DOMAIN], text) == {}
    assert time.monotonic() - t0 < 1.5, "delivery after a crash waited for a stale lock"
    srv.stop()
    msgs = srv.messages("alice")
    ids = [m["Message-ID"] for _, m in msgs]
    assert final_id in ids, "acknowledged message not in the mailbox: %s" % srv.queue_files()
    for mid in acked | {final_id}:
        assert ids.count(mid) == 1, (mid, ids)
    for raw, m in msgs:
        mid = m["Message-ID"]
        assert mid in bodies, "fragment in the mbox: %r" % raw[:200]
        unq = re.sub(rb"(?m)^>(>*From )", rb"\1", raw)
        assert unq.endswith(bodies[mid].encode()), (
            "torn message left by kill -9 (%s, %s): %d bytes, ends %r"
            % (mid, "acknowledged" if mid in acked else "not acknowledged", len(raw), raw[-60:]))
    assert not os.path.exists(lock)
    print("torn kills %d, %d acked, %d messages in the mbox" % (torn_kills, len(acked), len(msgs)))
