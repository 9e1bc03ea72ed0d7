"""Many clients at once, and clients that vanish: every acknowledged message is delivered
exactly once, a vanished client leaves nothing behind."""

import collections
import smtplib
import socket
import threading
import time

from dmail_site import DOMAIN, HOST, RawSMTP, make_message, new_msgid, to_wire

SENDERS = 50
PER_SENDER = 4


def test_concurrent_senders_exactly_once(dsmtp_factory):
    srv = dsmtp_factory(max_per_ip=SENDERS + 10)
    barrier = threading.Barrier(SENDERS, timeout=30)
    sent = collections.defaultdict(list)  # user -> [msgid]
    errors = []
    lock = threading.Lock()

    def sender(n):
        try:
            barrier.wait()
            with smtplib.SMTP(HOST, srv.smtp_port, timeout=60) as s:
                for k in range(PER_SENDER):
                    users = [("alice", "bob", "carol")[(n + k) % 3]]
                    if k == 3:
                        users.append("bob" if users[0] != "bob" else "alice")
                    body = "sender %d message %d\n%s" % (n, k, ("z" * 70 + "\n") * n)
                    msgid, text = make_message(msgid=new_msgid("c%d-%d" % (n, k)), body=body)
                    refused = s.sendmail("s%d@remote.example" % n,
                                         ["%s@%s" % (u, DOMAIN) for u in users], text)
                    assert refused == {}, refused
                    with lock:
                        for u in users:
                            sent[u].append((msgid, body))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            with lock:
                errors.append("sender %d: %r" % (n, e))

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "senders hung"
    assert not errors, errors[:5]
    elapsed = time.monotonic() - t0
    total = 0
    for user, items in sent.items():
        msgs = srv.messages(user)
        got = collections.Counter(m["Message-ID"] for _, m in msgs)
        want = collections.Counter(mid for mid, _ in items)
        assert got == want, "%s: missing %s, extra %s" % (
            user, list((want - got).elements())[:5], list((got - want).elements())[:5])
        bodies = {m["Message-ID"]: raw for raw, m in msgs}
        for mid, body in items:
            assert bodies[mid].endswith(body.encode()), "%s: body of %s altered" % (user, mid)
        total += len(items)
    assert total == SENDERS * PER_SENDER + SENDERS  # the 4th message of each has 2 rcpts
    print("delivered %d copies in %.2f s" % (total, elapsed))


def test_disconnect_mid_data_leaves_nothing(dsmtp):
    msgid, text = make_message(body="partial\n" * 2000)
    c = RawSMTP(dsmtp.smtp_port)
    c.ehlo()
    c.expect("MAIL FROM:<s@remote.example>", 250)
    c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
    c.expect("DATA", 354)
    wire = to_wire(text)
    c.send(wire[: len(wire) // 2])
    c.sock.close()
    # a reset instead of a FIN, mid-data
    r = RawSMTP(dsmtp.smtp_port)
    r.ehlo()
    r.expect("MAIL FROM:<s@remote.example>", 250)
    r.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
    r.expect("DATA", 354)
    r.send(to_wire(text)[:5000])
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    r.sock.close()
    time.sleep(0.5)
    # the server still serves the next client
    ok_id, ok_text = make_message()
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=15) as s:
        assert s.sendmail("s@remote.example", ["alice@" + DOMAIN], ok_text) == {}
    time.sleep(0.5)
    assert dsmtp.msgids("alice") == [ok_id]
    assert b"partial" not in dsmtp.raw_mbox("alice")
    assert dsmtp.queue_files() == [], dsmtp.queue_files()


def test_disconnect_right_after_final_dot(dsmtp):
    """The client sends the final dot and leaves without reading the reply: the message
    may or may not be delivered, but if it is, exactly once and intact."""
    msgid, text = make_message(body="complete\n")
    c = RawSMTP(dsmtp.smtp_port)
    c.ehlo()
    c.expect("MAIL FROM:<s@remote.example>", 250)
    c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
    c.expect("DATA", 354)
    c.send(to_wire(text) + b".\r\n")
    c.sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not dsmtp.messages("alice"):
        time.sleep(0.1)
    msgs = dsmtp.messages("alice")
    assert len(msgs) <= 1
    if msgs:
        assert msgs[0][0].endswith(text.encode())
    with RawSMTP(dsmtp.smtp_port) as c2:
        c2.ehlo()
        c2.expect("NOOP", 250)
