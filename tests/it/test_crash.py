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

from dmail_it import DOMAIN, HOST, make_message, new_msgid

SENDERS = 8
KILLS = 6
SEND_WINDOW = 15.0  # hard bound on the sending phase
DRAIN = 30.0  # bound on waiting for queued deliveries after the last restart
USERS = ("alice", "bob")


def body_for(msgid):
    rnd = random.Random(msgid)
    n = rnd.choice((3, 30, 300, 1500))  # up to ~115 KB
    h = hashlib.sha256(msgid.encode()).hexdigest()
    return "".join("%05d %s %s\n" % (i, h, h[: rnd.randint(0, 40)]) for i in range(n))


def test_kill9_while_sending(dsmtp_factory):
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
            users = rnd.choice((["alice"], ["bob"], ["alice", "bob"]))
            msgid = new_msgid("crash%d" % n)
            _, text = make_message(msgid=msgid, body=body_for(msgid),
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

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(SENDERS)]
    t_end = time.monotonic() + SEND_WINDOW
    for t in threads:
        t.start()
    kills = 0
    rnd = random.Random(42)
    try:
        while kills < KILLS and time.monotonic() < t_end:
            time.sleep(rnd.uniform(0.3, 0.8))
            srv.kill9()
            kills += 1
            srv.start()  # fails the test if it does not come back within 10 s
        time.sleep(min(1.0, max(0.0, t_end - time.monotonic())))
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "senders hung"
    assert kills == KILLS, "only %d kills in the window" % kills
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
            assert raw.endswith(body_for(mid).encode()), (
                "%s: %s (%s) truncated or altered: %d bytes, ends %r"
                % (u, mid, "acknowledged" if mid in acked else "not acknowledged", len(raw),
                   raw[-80:]))
        # the file itself ends cleanly
        data = srv.raw_mbox(u)
        assert not data or data.endswith(b"\n\n"), "%s: mbox ends mid-message" % u
    assert queued() == [], "queue not drained: %s" % queued()[:5]
    print("kills=%d acked=%d tried=%d errors=%s" % (kills, len(acked), len(tried), dict(errors)))
    # and it starts once more on whatever is left in the spool
    srv.start()
