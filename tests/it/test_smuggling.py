"""SMTP smuggling: DATA ends only at <CRLF>.<CRLF>; bare CR or LF in data or commands is
refused by default (bare_newline reject), and with bare_newline normalize (allowed
networks only) the false end-of-data sequences still never end a message."""

import pytest

from dmail_site import DOMAIN, RawSMTP, make_message, new_msgid

SENDER = "sender@remote.example"

# (name, the false end-of-data sequence)
VARIANTS = [
    ("lf.lf", b"\n.\n"),
    ("crlf.lf", b"\r\n.\n"),
    ("lf.crlf", b"\n.\r\n"),
    ("cr.cr", b"\r.\r"),
    ("crcrlf.crcrlf", b"\r\r\n.\r\r\n"),
    ("crlf.cr", b"\r\n.\r"),
    ("cr.crlf", b"\r.\r\n"),
]


def smuggle_payload(fake_end, evil_id):
    """A message whose body holds a false end-of-data followed by a second transaction."""
    return (b"From: sender@remote.example\r\nTo: alice@example.test\r\nSubject: carrier\r\n"
            b"Message-ID: " + new_msgid("carrier").encode() + b"\r\n\r\ncarrier body"
            + fake_end
            + b"MAIL FROM:<admin@" + DOMAIN.encode() + b">\r\n"
            + b"RCPT TO:<bob@" + DOMAIN.encode() + b">\r\n"
            + b"DATA\r\n"
            + b"From: admin@example.test\r\nSubject: smuggled\r\nMessage-ID: " + evil_id.encode()
            + b"\r\n\r\nsmuggled body\r\n")


def start_data(c):
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
    c.expect("DATA", 354)


def all_msgids(srv):
    return [m["Message-ID"] for u in ("alice", "bob") for _, m in srv.messages(u)]


@pytest.mark.parametrize("name,fake_end", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_smuggling_refused_by_default(dsmtp, name, fake_end):
    evil_id = new_msgid("evil")
    with RawSMTP(dsmtp.smtp_port) as c:
        start_data(c)
        c.send(smuggle_payload(fake_end, evil_id) + b"\r\n.\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, "message with bare CR/LF accepted: %d %s" % (code, lines)
        # exactly one reply: the smuggled commands were never answered
        c.expect("HELP", 214)
        assert c.pending(0.3) == b"", "extra replies: %r" % c.buf
        # no transaction open
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 503)
    assert all_msgids(dsmtp) == []
    assert b"smuggled" not in dsmtp.raw_mbox("bob") + dsmtp.raw_mbox("alice")


@pytest.mark.parametrize("name,fake_end", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_smuggling_normalize_never_ends_message(dsmtp_factory, name, fake_end):
    srv = dsmtp_factory(bare_newline="normalize", forward_from_ip="127.0.0.1")
    evil_id = new_msgid("evil")
    with RawSMTP(srv.smtp_port) as c:
        start_data(c)
        c.send(smuggle_payload(fake_end, evil_id) + b"\r\n.\r\n")
        code, lines = c.reply()
        # the whole thing is one message (accepted), or refused; never two
        assert code == 250, (code, lines)
        c.expect("HELP", 214)
        assert c.pending(0.3) == b"", "extra replies: %r" % c.buf
    ids = all_msgids(srv)
    assert evil_id not in ids, "smuggled message delivered as its own message"
    assert srv.messages("bob") == []
    if code == 250:
        msgs = srv.messages("alice")
        assert len(msgs) == 1
        assert b"smuggled body" in msgs[0][0]


def test_normalize_only_for_allowed_networks(dsmtp_factory):
    # normalize configured, but 127.0.0.1 is not a forward_from_ip network: reject
    srv = dsmtp_factory(bare_newline="normalize", forward_from_ip="192.0.2.1")
    with RawSMTP(srv.smtp_port) as c:
        start_data(c)
        c.send(smuggle_payload(b"\n.\n", new_msgid("evil")) + b"\r\n.\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, (code, lines)
    assert all_msgids(srv) == []


def test_normalize_for_forward_from_ip_client_only(dsmtp_factory):
    """One server, two clients: the forward_from_ip network (127.0.0.2) gets its bare
    line ends normalised, in data and in commands; 127.0.0.1 is still refused."""
    srv = dsmtp_factory(bare_newline="normalize", forward_from_ip="127.0.0.2/32")
    body = b"line one\nline two\rline three\r\n"
    ok_id, bad_id = new_msgid("fwd"), new_msgid("other")

    def message(msgid):
        return (b"From: sender@remote.example\nTo: alice@example.test\nSubject: bare\r\n"
                b"Message-ID: " + msgid.encode() + b"\n\n" + body + b".\r\n")

    with RawSMTP(srv.smtp_port, source="127.0.0.2") as c:
        c.ehlo()
        # a bare LF ends a command for this client, too
        c.send(b"MAIL FROM:<%s>\nRCPT TO:<alice@%s>\n" % (SENDER.encode(), DOMAIN.encode()))
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        c.expect("DATA", 354)
        c.send(message(ok_id))
        code, lines = c.reply()
        assert code == 250, (code, lines)
        # a bare CR inside a command is refused as dsmtp(8) says, not parsed as an argument
        c.send(b"HELO client\rexample\r\n")
        code, lines = c.reply()
        assert code == 500 and lines[-1].startswith("5.5.2"), (code, lines)
        c.expect("NOOP", 250)
    with RawSMTP(srv.smtp_port, source="127.0.0.1") as c:
        start_data(c)
        c.send(message(bad_id))
        code, lines = c.reply()
        assert code == 550 and lines[-1].startswith("5.5.2"), (code, lines)
        c.send(b"NOOP\nNOOP\r\n")
        code, lines = c.reply()
        assert code == 500 and lines[-1].startswith("5.5.2"), (code, lines)
        c.expect("NOOP", 250)
    msgs = srv.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [ok_id]
    raw = msgs[0][0]
    assert raw.endswith(b"\n\nline one\nline two\nline three\n"), raw
    assert b"\r" not in raw
    assert "[127.0.0.2]" in msgs[0][1]["Received"]


@pytest.mark.parametrize("bare", [b"\n", b"\r"], ids=["lf", "cr"])
def test_bare_newline_in_body_refused(dsmtp, bare):
    msgid, text = make_message(body="x\n")
    data = text.replace("\n", "\r\n").encode() + b"line one" + bare + b"line two\r\n.\r\n"
    with RawSMTP(dsmtp.smtp_port) as c:
        start_data(c)
        c.send(data)
        code, lines = c.reply()
        assert 500 <= code < 600, (code, lines)
        c.expect("NOOP", 250)
    assert dsmtp.messages("alice") == []


@pytest.mark.parametrize("bare", [b"\n", b"\r"], ids=["lf", "cr"])
def test_bare_newline_in_command_refused(dsmtp, bare):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.send(b"NOOP" + bare + b"MAIL FROM:<a@remote.example>\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, (code, lines)
        # one error for the whole line, nothing else executed
        c.expect("HELP", 214)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 503)


def test_dot_line_with_trailing_space_does_not_end_data(dsmtp):
    msgid, text = make_message(body="x\n")
    data = (text.replace("\n", "\r\n").encode() + b"line\r\n. \r\nafter dot-space\r\n"
            b".x\r\nMAIL FROM:<a@b>\r\n.\r\n")
    with RawSMTP(dsmtp.smtp_port) as c:
        start_data(c)
        c.send(data)
        assert c.reply()[0] == 250
        c.expect("HELP", 214)
    msgs = dsmtp.messages("alice")
    assert len(msgs) == 1
    # ". " stays (unstuffed to " "), ".x" is unstuffed to "x"
    assert msgs[0][0].endswith(b"line\n \nafter dot-space\nx\nMAIL FROM:<a@b>\n")
