"""Group commit of local deliveries (dsmtp/mboxq.c): many clients delivering to ONE mailbox
at once. Every message arrives exactly once, intact (mboxrd quoting undone) and in the
order each client sent it; deliveries really share batches; a message that does not fit
fails alone and is queued (250 after the queue file is on disk), the others stay."""

import collections
import re
import smtplib
import threading
import time

from dmail_site import DOMAIN, HOST, make_message, new_msgid

CLIENTS = 50
PER_CLIENT = 4


def unquote(raw):
    """mboxrd: one '>' less on every ^>+From  line."""
    return re.sub(rb"(?m)^>(>*From )", rb"\1", raw)


def body_for(n, k):
    # lines that mboxrd must quote, and one that looks like an SMTP end of data
    return ("client %d message %d\nFrom the start of a line\n>From quoted once\n"
            ">>From twice\n.\nsome text %s\n" % (n, k, "y" * (n * 13 % 700)))


def run_clients(port, count, make, timeout=120):
    """count threads, released together; make(n) -> [(msgid, text)] sent by client n, one
    connection per message as smtp-source does. Returns ({n: [msgid acked in order]},
    [errors])."""
    barrier = threading.Barrier(count, timeout=30)
    acked = collections.defaultdict(list)
    errors = []
    lock = threading.Lock()

    def client(n):
        try:
            barrier.wait()
            for msgid, text in make(n):
                with smtplib.SMTP(HOST, port, timeout=60) as s:
                    refused = s.sendmail("c%d@remote.example" % n, ["alice@" + DOMAIN], text)
                assert refused == {}, refused
                with lock:
                    acked[n].append(msgid)
        except Exception as e:  # noqa: BLE001 - collected and asserted by the caller
            with lock:
                errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients hung"
    return acked, errors


def batches(srv):
    """Sizes of the delivery batches dsmtp logged (log_level debug)."""
    return [int(x) for x in re.findall(r"mboxq mailbox=\S+ batch=(\d+)", srv.log())]


def test_fifty_clients_one_mailbox_exactly_once_in_order(dsmtp_factory):
    srv = dsmtp_factory(max_per_ip=CLIENTS + 10)
    sent = {}

    def make(n):
        out = []
        for k in range(PER_CLIENT):
            body = body_for(n, k)
            msgid, text = make_message(msgid=new_msgid("g%d-%d" % (n, k)), body=body)
            sent[msgid] = body
            out.append((msgid, text))
        return out

    acked, errors = run_clients(srv.smtp_port, CLIENTS, make)
    assert not errors, errors[:5]
    msgs = srv.messages("alice")  # Python's mailbox module parses it
    ids = [m["Message-ID"] for _, m in msgs]
    counts = collections.Counter(ids)
    want = [mid for n in range(CLIENTS) for mid in acked[n]]
    assert len(want) == CLIENTS * PER_CLIENT
    assert not [m for m, c in counts.items() if c > 1], "delivered twice"
    assert set(ids) == set(want), "missing %s, extra %s" % (
        list(set(want) - set(ids))[:3], list(set(ids) - set(want))[:3])
    pos = {mid: i for i, mid in enumerate(ids)}
    for n in range(CLIENTS):  # each client waited for its 250 before the next message
        order = [pos[mid] for mid in acked[n]]
        assert order == sorted(order), "client %d: messages out of order %s" % (n, order)
    for raw, m in msgs:
        mid = m["Message-ID"]
        assert m["Return-Path"] == "<c%s@remote.example>" % re.search(r"g(\d+)-", mid).group(1)
        assert m["X-UIDL"]
        assert b"\n>From the start of a line\n>>From quoted once\n>>>From twice\n" in raw
        assert unquote(raw).endswith(sent[mid].encode()), "%s altered" % mid
    uidls = [m["X-UIDL"] for _, m in msgs]
    assert len(set(uidls)) == len(uidls)
    data = srv.raw_mbox("alice")
    assert data.endswith(b"\n\n") and data.count(b"\nFrom c") == len(msgs) - 1
    sizes = batches(srv)
    assert sum(sizes) == len(msgs), "every delivery went through a logged batch"
    assert max(sizes) > 1, "no two deliveries ever shared a batch: %s" % sizes[:20]
    assert srv.queue_files() == []
    print("%d messages in %d batches, largest %d" % (len(msgs), len(sizes), max(sizes)))


def test_one_message_over_the_quota_fails_alone(dsmtp_factory):
    """drop_max is exceeded by one big message only: it is deferred (250 once it is in the
    queue file, mailbox full in the log); the small ones sent at the same moment, in the
    same batches, are all in the mailbox."""
    srv = dsmtp_factory(max_per_ip=CLIENTS + 10, drop_max="200k", queue_retry=600)
    big_client = CLIENTS // 2
    sent = {}

    def make(n):
        body = body_for(n, 0)
        if n == big_client:
            body += ("big " * 20 + "\n") * 3000  # ~240 KB: never fits
        msgid, text = make_message(msgid=new_msgid("q%d" % n), body=body)
        sent[msgid] = (n, body)
        return [(msgid, text)]

    acked, errors = run_clients(srv.smtp_port, CLIENTS, make)
    assert not errors, errors[:5]  # the big one too got its 250: it is queued
    big_id = acked[big_client][0]
    msgs = srv.messages("alice")
    ids = collections.Counter(m["Message-ID"] for _, m in msgs)
    assert big_id not in ids
    assert len(ids) == CLIENTS - 1 and max(ids.values()) == 1
    for raw, m in msgs:
        assert unquote(raw).endswith(sent[m["Message-ID"]][1].encode())
    queued = srv.queue_files()
    assert len(queued) == 1, queued
    with open(queued[0], "rb") as f:
        assert big_id.encode() in f.read()
    log = srv.log()
    assert re.search(r"result=deferred error=\"[^\"]*mailbox full", log), log[-2000:]
    assert len(re.findall(r"deliver id=\S+ to=<alice@[^>]+> mailbox=\S+ result=ok", log)) \
        == CLIENTS - 1


def test_mailbox_full_mid_run(dsmtp_factory):
    """The mailbox fills up while 50 clients deliver at once: every client gets its 250,
    and every message is in exactly one place -- whole in the mailbox, or in the queue
    (deferred, mailbox full); the mailbox never passes drop_max and parses."""
    limit = 48 * 1024
    srv = dsmtp_factory(max_per_ip=CLIENTS + 10, drop_max="48k", queue_retry=600)
    sent = {}

    def make(n):
        body = body_for(n, 0) + ("z" * 60 + "\n") * (15 + n % 20)
        msgid, text = make_message(msgid=new_msgid("f%d" % n), body=body)
        sent[msgid] = body
        return [(msgid, text)]

    acked, errors = run_clients(srv.smtp_port, CLIENTS, make)
    assert not errors, errors[:5]
    srv.stop()  # nothing moves while we look
    msgs = srv.messages("alice")
    in_box = collections.Counter(m["Message-ID"] for _, m in msgs)
    assert max(in_box.values()) == 1
    for raw, m in msgs:
        assert unquote(raw).endswith(sent[m["Message-ID"]].encode())
    in_queue = collections.Counter()
    for path in srv.queue_files():
        with open(path, "rb") as f:
            data = f.read()
        for mid in sent:
            if mid.encode() in data:
                in_queue[mid] += 1
    assert max(in_queue.values()) == 1
    assert not set(in_box) & set(in_queue), "both delivered and queued"
    assert set(in_box) | set(in_queue) == set(sent), "lost: %s" % (
        set(sent) - set(in_box) - set(in_queue))
    assert 3 <= len(in_box) <= CLIENTS - 3, "the run did not fill the mailbox mid-way"
    assert len(srv.raw_mbox("alice")) <= limit
    assert len(re.findall(r"result=deferred error=\"[^\"]*mailbox full", srv.log())) \
        == len(in_queue)
