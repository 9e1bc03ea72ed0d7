"""dsmtp limits: message size, line lengths, NUL bytes, error budget, timeouts,
connection caps."""

import os
import socket
import subprocess
import time

from dmail_site import BIN, DOMAIN, RawSMTP, make_message, to_wire, wait_for

SENDER = "sender@remote.example"


def open_data(c, rcpt="alice@" + DOMAIN):
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)


def send_ok(c, rcpt="alice@" + DOMAIN):
    """A normal small transaction on an open session; returns the Message-ID."""
    msgid, text = make_message()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    code, lines = c.data(text)
    assert code == 250, (code, lines)
    return msgid


# ---------------------------------------------------------------- size


def test_declared_size_too_big(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> SIZE=%d" % (SENDER, 10 * 1024 * 1024 + 1), 552, "5.3.4")
        c.expect("MAIL FROM:<%s> SIZE=1000" % SENDER, 250)


def test_declared_size_twenty_digits(dsmtp):
    """RFC 1870: size-value is 1*20DIGIT, so a 20-digit SIZE is valid syntax and simply
    too big (552), even though it does not fit in 64 bits."""
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> SIZE=99999999999999999999" % SENDER, 552, "5.3.4")
        c.expect("MAIL FROM:<%s> SIZE=999999999999999999999" % SENDER, (501, 555))  # 21 digits


def test_oversized_message_refused_and_not_delivered(dsmtp_factory):
    srv = dsmtp_factory(max_msg_size="64K")
    _, big = make_message(body=("x" * 70 + "\n") * 1500)  # ~106 KB
    with RawSMTP(srv.smtp_port) as c:
        open_data(c)
        c.send(to_wire(big) + b".\r\n")
        code, lines = c.reply()
        assert code == 552 and lines[-1].startswith("5.3.4"), (code, lines)
        # the session stays in sync and usable
        c.expect("NOOP", 250)
        msgid = send_ok(c)
    assert srv.msgids("alice") == [msgid]


def test_oversized_message_huge_stream(dsmtp_factory):
    """A client that keeps streaming far past the limit is not buffered without bound:
    the server refuses after the final dot (or drops the connection), and stays up."""
    srv = dsmtp_factory(max_msg_size="64K")
    with RawSMTP(srv.smtp_port) as c:
        open_data(c)
        chunk = (b"y" * 78 + b"\r\n") * 1000
        try:
            for _ in range(60):  # ~4.8 MB
                c.send(chunk)
            c.send(b".\r\n")
            code, lines = c.reply()
            assert code == 552, (code, lines)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            pass
    assert srv.messages("alice") == []
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        send_ok(c)
    assert len(srv.messages("alice")) == 1


# ---------------------------------------------------------------- line lengths


def test_command_line_512_limit(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        ok = "NOOP " + "a" * (512 - 2 - 5)  # exactly 512 octets with CRLF
        assert len(ok) + 2 == 512
        c.expect(ok, 250)
        bad = "NOOP " + "a" * (513 - 2 - 5)  # 513 octets
        c.expect(bad, 500, "5.5.2")
        # still in sync: the next command gets exactly its own reply
        c.expect("HELP", 214)
        c.expect("NOOP", 250)
        assert c.pending(0.3) == b""


def test_very_long_command_line_stays_in_sync(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<" + b"a" * 20000 + b"@remote.example>\r\nHELP\r\n")
        code, lines = c.reply()
        assert code == 500 and lines[-1].startswith("5.5.2"), (code, lines)
        assert c.reply()[0] == 214
        c.expect("NOOP", 250)
        assert c.pending(0.3) == b""
        # no transaction was started by the long MAIL
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 503)


def test_long_lines_accepted_up_to_64k(dsmtp):
    """RFC 5321 says 1000 octets; real mail has longer lines, so up to 64 KiB (+CRLF) is
    taken as Postfix does, and stored unchanged; one octet more refuses the message."""
    line998 = "a" * 998  # 998 + CRLF = 1000 octets: RFC 5321's limit
    long2000 = "2000: " + "c" * 1994
    msgid, text = make_message(body="start\n" + line998 + "\n" + long2000 + "\n" +
                               "d" * 65536 + "\nend\n")
    with RawSMTP(dsmtp.smtp_port) as c:
        open_data(c)
        c.send(to_wire(text) + b".\r\n")
        assert c.reply()[0] == 250
        bad_id, bad = make_message(body="start\n" + "b" * 65537 + "\nend\n")
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        code, lines = c.data(bad)
        assert 500 <= code < 600, (code, lines)
        c.expect("NOOP", 250)
        assert c.pending(0.3) == b""
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    assert ("\n" + line998 + "\n" + long2000 + "\n" + "d" * 65536 + "\n").encode() in msgs[0][0]


def test_nul_bytes_in_data_refused(dsmtp):
    _, text = make_message(body="before\nnul\0byte here\nafter\n")
    with RawSMTP(dsmtp.smtp_port) as c:
        open_data(c)
        c.send(to_wire(text) + b".\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, (code, lines)
        c.expect("NOOP", 250)
        msgid = send_ok(c)
    assert dsmtp.msgids("alice") == [msgid]


def test_nul_byte_in_command_refused(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<a\0b@remote.example>")
        assert 500 <= code < 600, (code, lines)
        code, lines = c.cmd("NOOP\0")
        assert 500 <= code < 600, (code, lines)
        c.expect("NOOP", 250)


# ---------------------------------------------------------------- error budget, timeouts


def test_error_hard_limit_ends_session(dsmtp_factory):
    srv = dsmtp_factory(error_soft_limit=2, error_hard_limit=3, error_delay=0)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        codes = []
        for _ in range(6):
            try:
                code, lines = c.cmd("FROBNICATE")
            except (EOFError, ConnectionResetError, BrokenPipeError):
                break
            codes.append((code, lines))
            if code == 421:
                break
        assert codes and codes[-1][0] == 421, codes
        assert codes[-1][1][-1].startswith("4.7.0"), codes
        assert 3 <= len(codes) <= 4, "hard limit 3 not enforced: %s" % codes
        assert c.wait_closed(3), "connection left open after 421"
    # the server is fine for others
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("NOOP", 250)


def test_error_soft_limit_delays_replies(dsmtp_factory):
    srv = dsmtp_factory(error_soft_limit=1, error_hard_limit=10, error_delay=1)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("FROBNICATE", 500)
        c.expect("FROBNICATE", 500)
        t0 = time.monotonic()
        c.expect("FROBNICATE", 500)
        assert time.monotonic() - t0 >= 0.8, "no delay past the soft limit"
    # another client is not delayed meanwhile
    with RawSMTP(srv.smtp_port) as c:
        t0 = time.monotonic()
        c.ehlo()
        c.expect("NOOP", 250)
        assert time.monotonic() - t0 < 0.8


def test_idle_timeout(dsmtp_factory):
    srv = dsmtp_factory(smtp_timeout=2)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        t0 = time.monotonic()
        code, lines = c.reply()  # blocks (socket timeout 10 s) until the server speaks
        waited = time.monotonic() - t0
        assert code == 421, (code, lines)
        assert 1.5 <= waited <= 6, waited
        assert c.wait_closed(3)


def test_data_timeout_leaves_nothing(dsmtp_factory):
    srv = dsmtp_factory(smtp_timeout=10, data_timeout=2)
    _, text = make_message()
    with RawSMTP(srv.smtp_port) as c:
        open_data(c)
        c.send(to_wire(text))  # no final dot
        t0 = time.monotonic()
        code, lines = c.reply()
        assert code == 421, (code, lines)
        assert 1.5 <= time.monotonic() - t0 <= 6
        assert c.wait_closed(3)
    assert srv.messages("alice") == []
    assert srv.queue_files() == []


def test_max_per_ip(dsmtp_factory):
    srv = dsmtp_factory(max_per_ip=2)
    time.sleep(0.5)  # let the start-up probes' connections be gone
    a, b = RawSMTP(srv.smtp_port), RawSMTP(srv.smtp_port)
    try:
        assert a.greeting[0] == 220 and b.greeting[0] == 220
        try:
            with RawSMTP(srv.smtp_port, timeout=5) as c:
                assert c.greeting[0] == 421, c.greeting
                assert c.wait_closed(3)
        except (EOFError, ConnectionResetError):
            pass  # closed without a reply is acceptable too
        a.expect("NOOP", 250)
        a.expect("QUIT", 221)
    finally:
        a.close()
        b.close()
    # a slot is free again
    deadline = time.monotonic() + 5
    while True:
        try:
            with RawSMTP(srv.smtp_port) as c:
                if c.greeting[0] == 220:
                    c.ehlo()
                    break
        except (EOFError, ConnectionResetError, socket.timeout):
            pass
        assert time.monotonic() < deadline, "slot never freed"
        time.sleep(0.2)


def test_mail_loop_refused_by_hop_count(dsmtp_factory):
    srv = dsmtp_factory(hopcount_limit=5)
    four = "".join("Received: from hop%d.example by x; Mon, 1 Jan 2024 00:00:00 +0000\n" % i
                   for i in range(4))
    msgid, ok = make_message(body="x\n")
    with RawSMTP(srv.smtp_port) as c:
        open_data(c)
        c.send(to_wire(four + ok) + b".\r\n")  # 4 + ours = 5: the limit
        assert c.reply()[0] == 250
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        _, loop = make_message(body="x\n")
        c.send(to_wire(four + "Received: one more\n" + loop) + b".\r\n")
        code, lines = c.reply()
        assert code == 554 and lines[-1].startswith("5.4.6"), (code, lines)
    assert [m["Message-ID"] for _, m in srv.messages("alice")] == [msgid]
    assert "reason=too-many-hops" in srv.log()


def test_trusted_network_exempt_from_max_per_ip(dsmtp_factory):
    """forward_from_ip (relay_allow) is exempt from max_per_ip, as Postfix's $mynetworks;
    a reload that drops it puts the cap back."""
    srv = dsmtp_factory(max_per_ip=1, forward_from_ip="127.0.0.0/8")
    time.sleep(0.5)
    held = [RawSMTP(srv.smtp_port) for _ in range(3)]
    try:
        assert [c.greeting[0] for c in held] == [220, 220, 220]
        srv.write_conf({"forward_from_ip": None})
        rc = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", srv.conf_path, "reload"],
                            capture_output=True, text=True, timeout=20)
        assert rc.returncode == 0, rc.stderr
        try:
            with RawSMTP(srv.smtp_port, timeout=5) as c:
                assert c.greeting[0] == 421, c.greeting
        except (EOFError, ConnectionResetError):
            pass
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------- memory in transit


def stat_value(srv, name):
    rc, out, err = srv.tellsmtp("stats")
    assert rc == 0, err
    for ln in out.splitlines():
        if ln.split()[:1] == [name]:
            return int(ln.split()[1])
    raise AssertionError("no %s in stats:\n%s" % (name, out))


def wait_for_stat(srv, name, ok, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok(stat_value(srv, name)):
            return True
        time.sleep(0.05)
    return False


def test_data_memory_max_refuses_with_452_and_loses_nothing(dsmtp_factory):
    """Message buffers in memory share data_memory_max (a large message keeps about
    64 KB in memory, the rest goes to its spill file): one that would take the total past
    it is read to its end and gets 452 4.3.1; the held one is accepted, and the refused
    one goes through when retried."""
    srv = dsmtp_factory(data_memory_max="100K", max_msg_size="1M")
    line = b"z" * 78 + b"\r\n"
    with RawSMTP(srv.smtp_port) as a, RawSMTP(srv.smtp_port) as b:
        open_data(a)
        a.send(line * 500)  # 40 KB held (its buffer about 72 KB), no final dot yet
        assert wait_for_stat(srv, "data_memory_bytes", lambda v: v >= 60000)
        open_data(b, "bob@" + DOMAIN)
        b.send(line * 500 + b".\r\n")  # 40 KB more: over the 100K budget
        code, lines = b.reply()
        assert code == 452 and lines[0].startswith("4.3.1"), (code, lines)
        a.send(b".\r\n")
        code, lines = a.reply()
        assert code == 250, (code, lines)
        assert stat_value(srv, "data_memory_refused_total") == 1
        assert stat_value(srv, "data_memory_bytes") == 0
        # the session goes on: the retry fits now
        b.expect("MAIL FROM:<%s>" % SENDER, 250)
        b.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        b.expect("DATA", 354)
        b.send(line * 500 + b".\r\n")
        assert b.reply()[0] == 250
    assert len(srv.messages("alice")) == 1 and len(srv.messages("bob")) == 1
    assert "reason=memory-budget" in srv.log()
    # a permanent fault wins over the budget: too big is 552, not 452 (the spilled part
    # counts against max_msg_size)
    with RawSMTP(srv.smtp_port) as c:
        open_data(c)
        c.send(line * 15000 + b".\r\n")
        assert c.reply()[0] == 552
    assert stat_value(srv, "data_memory_bytes") == 0
    assert os.listdir(os.path.join(srv.spool, "spill")) == []


def test_many_large_messages_in_transit_stay_within_memory(dsmtp_factory):
    """300 sessions each sending 9.6 MB without the final dot keep dsmtp under 100 MB RSS:
    each holds tens of KB, the rest of its message is in its spill file. Some then end
    their message and get it delivered whole; the others vanish and leave no file."""
    asan = BIN.rstrip("/").endswith("asan")
    n = 60 if asan else 300  # ASan's shadow memory and quarantine make RSS meaningless
    srv = dsmtp_factory(max_msg_size="10M", max_per_ip=400, max_connections=400)
    line = b"w" * 78 + b"\r\n"
    chunk = line * 118000  # 9.6 MB
    spill = os.path.join(srv.spool, "spill")
    clients = []
    try:
        for _ in range(n):
            c = RawSMTP(srv.smtp_port, timeout=120)
            clients.append(c)
            open_data(c)
            c.send(chunk)
        # dsmtp has read them all: each spill file holds all but the last 64 KB of the
        # message as stored (LF line ends)
        stored = 118000 * 79
        assert wait_for(lambda: sum(os.path.getsize(os.path.join(spill, f))
                                    for f in os.listdir(spill)) >= n * (stored - 65536), 120)
        assert stat_value(srv, "data_memory_bytes") <= n * 100 * 1024
        if not asan:
            rss = srv.dsmtp.rss_kb()
            assert 0 < rss < 100 * 1024, "dsmtp RSS %d KB with %d messages in transit" % (rss, n)
        with RawSMTP(srv.smtp_port) as c:  # another client is still served
            c.ehlo()
        for c in clients[:3]:
            c.send(b".\r\n")
            assert c.reply()[0] == 250
        for c in clients[3:]:
            c.close()
        msgs = srv.messages("alice")
        assert len(msgs) == 3
        assert all(raw.count(b"w" * 78 + b"\n") == 118000 for raw, _ in msgs)
        assert wait_for(lambda: os.listdir(spill) == [], 30), os.listdir(spill)
        assert stat_value(srv, "data_memory_refused_total") == 0
    finally:
        for c in clients:
            c.close()
