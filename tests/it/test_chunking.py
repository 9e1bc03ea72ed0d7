"""CHUNKING / BDAT (RFC 3030) inbound: chunks read by count, binary-safe and without
dot-unstuffing, stored exactly as the same message sent by DATA; every refused chunk is
still read so the session stays in sync; nothing is kept of a transaction the client
leaves; a relayed message sent by BDAT goes out through the queue."""

import os
import re
import shutil
import signal
import smtplib
import time

import pytest

from dmail_site import (DOMAIN, HOST, PASSWORDS, REMOTE, RawSMTP, body_of, make_message,
                        tls_client_context, to_wire, wait_for)

SENDER = "sender@remote.example"
ALICE = "alice@" + DOMAIN


def crlf(text):
    """Local form to the octets a BDAT client sends: CRLF line ends, nothing stuffed."""
    return (text if isinstance(text, bytes) else text.encode()).replace(b"\n", b"\r\n")


def sent_part(raw):
    """A stored message without the fields dsmtp put in front (X-UIDL, Return-Path, its
    Received: with its folded lines): what the client sent, in local form."""
    lines = raw.split(b"\n")
    i = 0
    while i < len(lines) and (re.match(rb"(?i)(X-UIDL|Return-Path|Received):", lines[i])
                              or (i > 0 and lines[i][:1] in (b" ", b"\t"))):
        i += 1
    return b"\n".join(lines[i:])


def own_fields(raw):
    """The names of the fields dsmtp put in front, in order."""
    head = raw[:len(raw) - len(sent_part(raw))]
    return re.findall(rb"(?m)^([A-Za-z-]+):", head)


def begin(c, rcpts=(ALICE,)):
    c.expect("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, 250, "2.1.5")


def expect_reply(got, code, enhanced):
    assert got[0] == code and got[1][-1].startswith(enhanced), got


def no_files_under(path):
    return [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]


def tricky_message():
    body = ("First line.\n.\n..two dots\n.leading dot\n\ntab\there and trailing space \n"
            + "L" * 2000 + "\n" + "Grüße, 8-bit \u00e9t\u00e9\n.\n\nlast line\n")
    return make_message(body=body, subject="chunks")


def test_ehlo_advertises_chunking(dsmtp):
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=15) as s:
        s.ehlo()
        assert "chunking" in s.esmtp_features, s.esmtp_features
    with RawSMTP(dsmtp.smtp_port) as c:
        assert "CHUNKING" in c.ehlo()
        assert "BDAT" in " ".join(c.cmd("HELP")[1])


def test_three_chunks_stored_like_data(dsmtp):
    """The same message by DATA and by BDAT in three chunks (one split inside a CRLF, one
    just before a "." line) is stored byte for byte the same."""
    msgid, text = tricky_message()
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        begin(c)
        c.expect("DATA", 354)
        c.send(to_wire(text) + b".\r\n")
        expect_reply(c.reply(), 250, "2.0.0")
        wire = crlf(text)
        cut1 = wire.index(b"\r\n..two") + 1  # between CR and LF
        cut2 = wire.index(b".leading")  # the next chunk starts with a dot
        chunks = [wire[:cut1], wire[cut1:cut2], wire[cut2:]]
        begin(c)
        for i, chunk in enumerate(chunks[:2]):
            got = c.bdat(chunk)
            assert got == (250, ["2.0.0 %d octets received" % len(chunk)]), (i, got)
        code, lines = c.bdat(chunks[2], last=True)
        assert code == 250 and re.match(r"2\.0\.0 Ok: queued as \S+$", lines[-1]), lines
        c.expect("QUIT", 221)
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [msgid, msgid]
    by_data, by_bdat = msgs[0][0], msgs[1][0]
    assert sent_part(by_bdat) == sent_part(by_data) == text.encode()
    assert own_fields(by_bdat) == own_fields(by_data)
    assert b"with ESMTP id" in by_bdat
    assert re.search(r"delivered id=\S+ size=%d rcpts=1 mailboxes=1" % len(wire), dsmtp.log())


def test_pipelined_chunks_in_one_write(dsmtp):
    msgid, text = make_message(body="one\nQUIT\n.\nMAIL FROM:<evil@x>\nend\n")
    wire = crlf(text)
    parts = [wire[:10], wire[10:len(wire) // 2], wire[len(wire) // 2:]]
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        blob = b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (SENDER.encode(), ALICE.encode())
        for i, p in enumerate(parts):
            blob += b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == 2 else b"") + p
        c.send(blob + b"NOOP\r\nQUIT\r\n")
        got = [c.reply() for _ in range(7)]
        assert [g[0] for g in got] == [250] * 6 + [221], got
        assert got[2][1] == ["2.0.0 10 octets received"], got
        assert "queued as" in got[4][1][-1], got
        assert c.wait_closed(3)
    (raw, msg), = dsmtp.messages("alice")
    assert msg["Message-ID"] == msgid
    assert body_of(raw) == b"one\nQUIT\n.\nMAIL FROM:<evil@x>\nend\n"


def test_bdat_0_last(dsmtp):
    msgid, text = make_message(body="zero ends it\n")
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(crlf(text)), 250, "2.0.0")
        expect_reply(c.bdat(b"", last=True), 250, "2.0.0")
        # a whole message of nothing: BDAT 0 LAST alone, as DATA with "." alone
        begin(c, ("bob@" + DOMAIN,))
        expect_reply(c.bdat(b"", last=True), 250, "2.0.0")
    (raw, msg), = dsmtp.messages("alice")
    assert msg["Message-ID"] == msgid and raw.endswith(b"\n\nzero ends it\n")
    (raw, _), = dsmtp.messages("bob")
    assert sent_part(raw) == b"" and own_fields(raw)[-1] == b"Received", raw


def test_dot_lines_and_8bit_octets_kept_by_smtplib(dsmtp):
    """Octets 0x01..0xff (but CR, LF) and lines of only "." arrive untouched: BDAT has no
    terminator and no dot-unstuffing. Sent with smtplib and a hand-made BDAT."""
    octets = bytes(b for b in range(1, 256) if b not in (10, 13))
    body = b".\r\n" + octets + b"\r\n..\r\n.\r\n" + octets[::-1] + b"\r\n.\r\n"
    head = b"From: s@remote.example\r\nSubject: 8bit\r\nMessage-ID: <bin@x>\r\n\r\n"
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=15) as s:
        s.ehlo()
        assert s.has_extn("chunking")
        assert s.mail(SENDER, ["BODY=8BITMIME"])[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        s.send(b"BDAT %d\r\n" % len(head) + head)
        assert s.getreply() == (250, b"2.0.0 %d octets received" % len(head))
        s.send(b"BDAT %d LAST\r\n" % len(body) + body)
        code, text = s.getreply()
        assert code == 250 and b"queued as" in text, (code, text)
        assert s.noop()[0] == 250
    (raw, _), = dsmtp.messages("alice")
    assert body_of(raw) == body.replace(b"\r\n", b"\n")


def test_big_chunk(dsmtp):
    """One 3 MB chunk: read across many socket reads, stored whole."""
    line = b"0123456789" * 9 + b"\r\n"
    wire = b"Subject: big\r\n\r\n" + line * 30000
    with RawSMTP(dsmtp.smtp_port, timeout=60) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(wire, last=True), 250, "2.0.0")
    (raw, _), = dsmtp.messages("alice")
    assert sent_part(raw) == wire.replace(b"\r\n", b"\n")


def test_oversize_552_after_the_chunk(dsmtp_factory):
    srv = dsmtp_factory(max_msg_size="10K")
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(b"x" * 6000 + b"\r\n"), 250, "2.0.0")
        # the next chunk would pass the limit: 552, its octets read (the NOOP hidden in
        # them is not a command), and LAST ends the transaction
        expect_reply(c.bdat(b"NOOP\r\n" * 1000, last=True), 552, "5.3.4")
        expect_reply(c.cmd("NOOP"), 250, "2.0.0")
        # a first chunk over the limit fails the transaction: its later chunks are read
        # and dropped up to LAST
        begin(c)
        expect_reply(c.bdat(b"y" * 20000), 552, "5.3.4")
        expect_reply(c.cmd("RCPT TO:<bob@%s>" % DOMAIN), 503, "5.5.1")
        expect_reply(c.bdat(b"QUIT\r\n"), 551, "5.0.0")
        expect_reply(c.bdat(b"QUIT\r\n", last=True), 551, "5.0.0")
        # then a new transaction is fine
        _, text = make_message(body="small\n")
        begin(c)
        expect_reply(c.bdat(crlf(text), last=True), 250, "2.0.0")
    assert [body_of(r) for r, _ in srv.messages("alice")] == [b"small\n"]
    assert "reason=too-big" in srv.log()


def test_bdat_out_of_sequence_keeps_the_stream_in_sync(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        # before EHLO, before MAIL, without an accepted recipient: refused after the
        # octets, which are never taken for commands
        expect_reply(c.bdat(b"QUIT\r\n"), 503, "")
        c.ehlo()
        expect_reply(c.bdat(b"MAIL FROM:<evil@x>\r\nQUIT\r\n"), 503, "5.5.1")
        expect_reply(c.cmd("NOOP"), 250, "2.0.0")
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        expect_reply(c.bdat(b"RSET\r\n"), 554, "5.5.1")
        c.expect("RCPT TO:<nobody@%s>" % DOMAIN, 550)
        expect_reply(c.bdat(b"QUIT\r\n", last=True), 554, "5.5.1")  # and LAST ends it
        # pipelined: BDAT without MAIL, then a whole transaction behind it
        _, text = make_message(body="after the refused chunk\n")
        c.send(b"BDAT 6\r\nQUIT\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT %d LAST\r\n%s"
               % (SENDER.encode(), ALICE.encode(), len(crlf(text)), crlf(text)))
        assert [c.reply()[0] for _ in range(4)] == [503, 250, 250, 250]
        c.expect("QUIT", 221)
    (raw, _), = dsmtp.messages("alice")
    assert body_of(raw) == b"after the refused chunk\n"


def test_data_mail_rcpt_between_chunks_503(dsmtp):
    _, text = make_message(body="two halves\n")
    wire = crlf(text)
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(wire[:20]), 250, "2.0.0")
        expect_reply(c.cmd("DATA"), 503, "5.5.1")
        expect_reply(c.cmd("RCPT TO:<bob@%s>" % DOMAIN), 503, "5.5.1")
        expect_reply(c.cmd("MAIL FROM:<%s>" % SENDER), 503, "5.5.1")
        c.expect("NOOP", 250)
        # RFC 3030 2: DATA does not change the transaction; it goes on
        expect_reply(c.bdat(wire[20:], last=True), 250, "2.0.0")
        # and RSET ends a BDAT transaction
        begin(c)
        expect_reply(c.bdat(b"Subject: dropped\r\n"), 250, "2.0.0")
        c.expect("RSET", 250)
        expect_reply(c.bdat(b"x", last=True), 503, "5.5.1")
    (raw, _), = dsmtp.messages("alice")
    assert body_of(raw) == b"two halves\n"
    assert dsmtp.messages("bob") == []


@pytest.mark.parametrize("chunk,code,enhanced", [
    (b"bare\nLF\r\n", 550, "5.5.2"),
    (b"a\0NUL\r\n", 554, "5.6.0"),
    (b"L" * 70000 + b"\r\n", 500, "5.5.2"),
])
def test_bad_content_refused_at_its_chunk(dsmtp, chunk, code, enhanced):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(b"Subject: bad\r\n\r\n"), 250, "2.0.0")
        expect_reply(c.bdat(chunk), code, enhanced)
        expect_reply(c.bdat(b"more\r\n", last=True), 551, "5.0.0")
        c.expect("NOOP", 250)
    assert dsmtp.messages("alice") == []


def test_bad_content_in_last_chunk_and_null_chunk(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(b"Subject: x\r\n\r\nbare CR\r", last=True), 550, "5.5.2")
        begin(c)
        expect_reply(c.bdat(b""), 551, "5.7.1")  # BDAT 0 without LAST: refused, as Postfix
        expect_reply(c.bdat(b"Subject: y\r\n", last=True), 551, "5.0.0")
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
    assert dsmtp.messages("alice") == []


def test_hop_count_checked_at_last(dsmtp_factory):
    srv = dsmtp_factory(hopcount_limit=3)
    head = b"".join(b"Received: from hop%d.example by x; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
                    for i in range(3))
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(head), 250, "2.0.0")
        expect_reply(c.bdat(b"Subject: loop\r\n\r\nx\r\n", last=True), 554, "5.4.6")
        c.expect("NOOP", 250)
    assert srv.messages("alice") == []


@pytest.mark.parametrize("line", ["BDAT", "BDAT x", "BDAT 5 FIRST", "BDAT -1", "BDAT 5 LAST x",
                                  "BDAT 99999999999999999999"])
def test_bad_count_521_and_close(dsmtp, line):
    """The octets after a BDAT whose count cannot be read cannot be found: 521 and the
    connection is closed, as Postfix does."""
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        begin(c)
        c.send(line + "\r\nNOOP\r\n")
        expect_reply(c.reply(), 521, "5.5.4")
        assert c.wait_closed(5)
        assert b"250" not in c.buf
    assert "reason=bdat-syntax" in dsmtp.log()


def test_client_gone_mid_chunk_leaves_nothing(dsmtp_factory):
    """A client that goes away inside a chunk, or between chunks, loses its message and
    leaves no file in the spool (a relayed recipient would have been queued)."""
    srv = dsmtp_factory(forward_from_ip="127.0.0.0/8")
    for stop_between in (False, True):
        c = RawSMTP(srv.smtp_port)
        c.ehlo()
        begin(c, (ALICE, "far@" + REMOTE))
        expect_reply(c.bdat(b"Subject: gone\r\n\r\n" + b"z" * 5000 + b"\r\n"), 250, "2.0.0")
        if not stop_between:
            c.send(b"BDAT 100000 LAST\r\n" + b"w" * 4000)
        c.close()
        assert wait_for(lambda: srv.log().count("disconnect reason=eof-in-bdat") == 1 + stop_between, 10), \
            srv.log()
    assert srv.log().count("discarded id=") == 2
    assert srv.messages("alice") == []
    assert srv.queue_files() == [] and no_files_under(os.path.join(srv.spool, "tmp")) == []
    # the server goes on serving
    msgid, text = make_message(body="still here\n")
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        begin(c)
        expect_reply(c.bdat(crlf(text), last=True), 250, "2.0.0")
    assert srv.msgids("alice") == [msgid]


@pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")
def test_relayed_by_bdat_goes_through_the_queue(pair):
    ours, theirs = pair
    msgid, text = make_message(to="carol@" + REMOTE, body="relayed\n.\n..in chunks\n")
    wire = crlf(text)
    with smtplib.SMTP(HOST, ours.submission_port, timeout=20) as s:
        s.starttls(context=tls_client_context())
        s.login("alice", PASSWORDS["alice"])
        assert s.has_extn("chunking")
        assert s.mail(ALICE)[0] == 250
        assert s.rcpt("carol@" + REMOTE)[0] == 250
        s.send(b"BDAT 7\r\n" + wire[:7])
        assert s.getreply() == (250, b"2.0.0 7 octets received")
        s.send(b"BDAT %d LAST\r\n" % (len(wire) - 7) + wire[7:])
        code, reply = s.getreply()
        assert code == 250 and b"queued as" in reply, (code, reply)
    assert re.search(r"delivered id=\S+ size=%d rcpts=1 mailboxes=0 queued=1" % len(wire),
                     ours.log()), ours.log()
    assert wait_for(lambda: theirs.messages("carol"), 20), ours.log()
    (raw, msg), = theirs.messages("carol")
    assert msg["Message-ID"] == msgid
    assert raw.endswith(b"\n\nrelayed\n.\n..in chunks\n"), raw[-80:]
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()


def test_shutdown_lets_bdat_transactions_finish(dsmtp):
    """SIGTERM: a session between two chunks and one inside a chunk both finish their
    message (250, in the mailbox), then get 421 4.3.2."""
    _, text1 = make_message(body="between chunks\n")
    _, text2 = make_message(body="inside a chunk\n")
    w1, w2 = crlf(text1), crlf(text2)
    a, b = RawSMTP(dsmtp.smtp_port), RawSMTP(dsmtp.smtp_port)
    try:
        for c in (a, b):
            c.ehlo()
            begin(c)
        expect_reply(a.bdat(w1[:30]), 250, "2.0.0")
        b.send(b"BDAT %d LAST\r\n" % len(w2) + w2[:30])
        time.sleep(0.2)
        dsmtp.proc.send_signal(signal.SIGTERM)
        assert b"421" not in a.pending(0.5) + b.pending(0.1)
        expect_reply(a.bdat(w1[30:], last=True), 250, "2.0.0")
        b.send(w2[30:])
        expect_reply(b.reply(), 250, "2.0.0")
        for c in (a, b):
            expect_reply(c.cmd("NOOP"), 421, "4.3.2")
            assert c.wait_closed(3)
        assert dsmtp.proc.wait(10) == 0
    finally:
        a.close()
        b.close()
    dsmtp._reap()
    assert sorted(body_of(r) for r, _ in dsmtp.messages("alice")) == [b"between chunks\n",
                                                                      b"inside a chunk\n"]


def test_stalled_chunk_times_out(dsmtp_factory):
    srv = dsmtp_factory(data_timeout=1)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        begin(c)
        c.send(b"BDAT 100 LAST\r\nSubject: stalled\r\n")
        t0 = time.monotonic()
        expect_reply(c.reply(), 421, "4.4.2")
        assert time.monotonic() - t0 < 5
        assert c.wait_closed(3)
    assert srv.messages("alice") == []
    assert "timeout state=BDAT" in srv.log()


def test_dropped_chunks_of_a_failed_transaction_are_not_errors(dsmtp_factory):
    """A pipelining client may have sent many chunks before it sees the refusal of the
    first: their 551 replies come at once and do not spend the error budget."""
    srv = dsmtp_factory(max_msg_size="10K", error_soft_limit=1, error_delay=5,
                        error_hard_limit=5)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        begin(c)
        blob = b"BDAT 20000\r\n" + b"y" * 20000
        blob += b"".join(b"BDAT 6\r\nNOOP\r\n" for _ in range(30)) + b"BDAT 6 LAST\r\nNOOP\r\n"
        t0 = time.monotonic()
        c.send(blob)
        got = [c.reply() for _ in range(32)]
        assert [g[0] for g in got] == [552] + [551] * 31, got
        assert time.monotonic() - t0 < 4
        _, text = make_message(body="fine afterwards\n")
        begin(c)
        expect_reply(c.bdat(crlf(text), last=True), 250, "2.0.0")
    assert [body_of(r) for r, _ in srv.messages("alice")] == [b"fine afterwards\n"]
