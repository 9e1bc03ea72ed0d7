"""dsmtp: RFC 5321 commands, replies, extensions and local delivery, driven by smtplib
and a raw socket client."""

import email.utils
import os
import re
import smtplib

import pytest

from dmail_site import (
    ALIAS_DOMAIN,
    DOMAIN,
    ENHANCED_RE,
    HOST,
    RawSMTP,
    body_of,
    headers_of,
    make_message,
    new_msgid,
    read_mbox,
    to_wire,
)

SENDER = "sender@remote.example"


def smtp(port):
    return smtplib.SMTP(HOST, port, local_hostname="client.example", timeout=15)


def unfold(headers):
    return re.sub(rb"\r?\n[ \t]+", b" ", headers).decode("utf-8", "replace")


def header_values(raw, name):
    text = unfold(headers_of(raw))
    return [m.group(1) for m in re.finditer(r"(?mi)^%s:[ \t]*(.*)$" % re.escape(name), text)]


def assert_enhanced(code, lines, what=""):
    for ln in lines:
        m = ENHANCED_RE.match(ln)
        assert m, "%s: reply %d %r lacks an enhanced status code" % (what, code, ln)
        assert m.group(1) == str(code)[0], "%s: class of %r does not match %d" % (what, ln, code)


def raw_transaction(c, rcpts=("alice@" + DOMAIN,), text=None, sender=SENDER):
    """MAIL, RCPT..., DATA and the message on an open RawSMTP; returns the final reply."""
    if text is None:
        _, text = make_message()
    c.expect("MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, 250)
    c.expect("DATA", 354)
    c.send(to_wire(text) + b".\r\n")
    return c.reply()


# ---------------------------------------------------------------- delivery


def test_plain_send_delivers_exact_message(dsmtp):
    body = ("First line.\n.leading dot line\n..two leading dots\n.\n"
            "tab\there and trailing space \n\nlast line\n")
    msgid, text = make_message(body=body)
    with smtp(dsmtp.smtp_port) as s:
        refused = s.sendmail(SENDER, ["alice@" + DOMAIN], text)
    assert refused == {}
    # 250 means fsynced in the dropfile: it must be there now, no waiting
    msgs = dsmtp.messages("alice")
    assert len(msgs) == 1
    raw, msg = msgs[0]
    assert raw.endswith(text.encode()), "message altered in the mbox:\n%r" % raw
    assert body_of(raw) == body.encode()
    assert msg["Message-ID"] == msgid
    prefix = raw[: len(raw) - len(text)]
    # what dsmtp prepends is header lines only
    for ln in prefix.rstrip(b"\n").split(b"\n"):
        assert re.match(rb"^([A-Za-z0-9-]+:|[ \t])", ln), "not a header line: %r" % ln
    assert header_values(raw, "Return-Path") == ["<%s>" % SENDER]
    uidl = header_values(raw, "X-UIDL")
    assert len(uidl) == 1 and uidl[0].strip()
    rec = header_values(raw, "Received")
    assert len(rec) == 1, rec
    assert re.search(r"^from \S+", rec[0]), rec[0]
    assert "by mx.%s" % DOMAIN in rec[0], rec[0]
    assert re.search(r"\bwith ESMTP\b", rec[0]), rec[0]
    date = rec[0].rsplit(";", 1)[1].strip()
    assert email.utils.parsedate_to_datetime(date) is not None
    assert dsmtp.raw_mbox("alice").startswith(b"From %s " % SENDER.encode())


def test_ehlo_advertises_extensions(dsmtp):
    with smtp(dsmtp.smtp_port) as s:
        code, _ = s.ehlo()
        assert code == 250
        f = s.esmtp_features
        for ext in ("pipelining", "8bitmime", "enhancedstatuscodes", "starttls"):
            assert ext in f, "EHLO lacks %s: %s" % (ext, f)
        assert f["size"].strip() == str(10 * 1024 * 1024)
        assert "auth" not in f, "AUTH offered before TLS"


def test_size_advertised_follows_setting(dsmtp_factory):
    srv = dsmtp_factory(max_msg_size="64K")
    with smtp(srv.smtp_port) as s:
        s.ehlo()
        assert s.esmtp_features.get("size", "").strip() == "65536"


def test_without_certificate_no_starttls(dsmtp_factory):
    srv = dsmtp_factory(tls=False)
    with RawSMTP(srv.smtp_port) as c:
        exts = c.ehlo()
        assert "STARTTLS" not in exts and not any(e.startswith("AUTH") for e in exts)
        code, _ = c.cmd("STARTTLS")
        assert 400 <= code < 600 and code != 220
        c.expect("NOOP", 250)


def test_greeting_and_quit(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        assert c.greeting[0] == 220
        assert "mx.%s" % DOMAIN in c.greeting[1][0]
        c.ehlo()
        c.expect("QUIT", 221, "2.0.0")
        assert c.wait_closed(3), "connection not closed after QUIT"


def test_helo_works_without_enhanced_codes(dsmtp):
    msgid, text = make_message()
    with RawSMTP(dsmtp.smtp_port) as c:
        code, lines = c.cmd("HELO client.example")
        assert code == 250 and len(lines) == 1
        for line, want in (("MAIL FROM:<%s>" % SENDER, 250), ("RCPT TO:<alice@%s>" % DOMAIN, 250),
                           ("RCPT TO:<nobody@%s>" % DOMAIN, 550)):
            code, lines = c.cmd(line)
            assert code == want, (line, code, lines)
            assert not ENHANCED_RE.match(lines[0]), "enhanced code without EHLO: %r" % lines
        code, lines = c.data(text)
        assert code == 250 and not ENHANCED_RE.match(lines[0]), lines
        c.expect("QUIT", 221)
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    rec = header_values(msgs[0][0], "Received")[0]
    assert re.search(r"\bwith SMTP\b", rec), rec


def test_every_reply_after_ehlo_has_enhanced_code(dsmtp):
    _, text = make_message()
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        script = [
            ("NOOP", 250), ("RSET", 250), ("HELP", 214), ("VRFY alice", 252),
            ("FROBNICATE", 500), ("MAIL", 501), ("RCPT TO:<alice@%s>" % DOMAIN, 503),
            ("DATA", 503), ("MAIL FROM:<%s>" % SENDER, 250), ("MAIL FROM:<%s>" % SENDER, 503),
            ("RCPT TO:<nobody@%s>" % DOMAIN, 550), ("RCPT TO:<x@relay.example>", 554),
            ("RCPT TO:<alice@%s>" % DOMAIN, 250),
        ]
        for line, want in script:
            code, lines = c.cmd(line)
            assert code == want, (line, code, lines)
            assert_enhanced(code, lines, line)
        code, lines = c.data(text)
        assert code == 250
        assert_enhanced(code, lines, "end of data")
        code, lines = c.cmd("QUIT")
        assert code == 221
        assert_enhanced(code, lines, "QUIT")


@pytest.mark.parametrize("line,code,enh", [
    ("NOOP", 250, "2.0.0"),
    ("NOOP ignored argument", 250, "2.0.0"),
    ("RSET", 250, "2.0.0"),
    ("VRFY alice", 252, "2."),
    ("VRFY nobody", 252, "2."),
    ("HELP", 214, "2.0.0"),
])
def test_simple_commands(dsmtp, line, code, enh):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect(line, code, enh)
        c.expect("QUIT", 221)


def test_vrfy_does_not_disclose_users(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        a = c.expect("VRFY alice", 252)
        b = c.expect("VRFY no-such-user", 252)
        assert a[0] == b[0]


def test_commands_are_case_insensitive(dsmtp):
    msgid, text = make_message()
    with RawSMTP(dsmtp.smtp_port) as c:
        c.expect("ehlo client.example", 250)
        c.expect("mail from:<%s>" % SENDER, 250)
        c.expect("rcpt to:<ALICE@Example.TEST>", 250)
        c.expect("data", 354)
        c.send(to_wire(text) + b".\r\n")
        assert c.reply()[0] == 250
    assert dsmtp.msgids("alice") == [msgid]


@pytest.mark.parametrize("setup,line,code", [
    ([], "RCPT TO:<alice@%s>" % DOMAIN, 503),
    ([], "DATA", 503),
    (["MAIL FROM:<%s>" % SENDER], "DATA", 503),
    (["MAIL FROM:<%s>" % SENDER], "MAIL FROM:<%s>" % SENDER, 503),
    (["MAIL FROM:<%s>" % SENDER, "RCPT TO:<alice@%s>" % DOMAIN, "RSET"], "DATA", 503),
    (["MAIL FROM:<%s>" % SENDER, "RCPT TO:<alice@%s>" % DOMAIN, "EHLO again.example"],
     "RCPT TO:<alice@%s>" % DOMAIN, 503),
    (["MAIL FROM:<%s>" % SENDER, "RCPT TO:<nobody@%s>" % DOMAIN], "DATA", 554),
])
def test_bad_sequences(dsmtp, setup, line, code):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        for s in setup:
            c.cmd(s)
        if line == "DATA":
            # RFC 5321 3.3: DATA without MAIL or without an accepted RCPT gets 503
            # ("command out of sequence") or 554 ("no valid recipients")
            got, lines = c.cmd(line)
            assert got in (503, 554), (got, lines)
            assert lines[-1].startswith("5.5."), lines
        else:
            c.expect(line, code, "5.5.")
        # and the session is still usable
        c.expect("RSET", 250)
        c.expect("NOOP", 250)


def test_unknown_command(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("FROBNICATE now", 500, "5.5.")
        c.expect("MAILFROM:<a@b>", 500, "5.5.")
        c.expect("NOOP", 250)


@pytest.mark.parametrize("line,codes", [
    ("EHLO", (501,)),
    ("HELO", (501,)),
    ("MAIL", (501,)),
    ("MAIL FROM", (501,)),
    ("MAIL TO:<%s>" % SENDER, (501,)),
    ("MAIL FROM:<%s" % SENDER, (501,)),
    ("MAIL FROM:<a@b> <c@d>", (501, 555)),
    ("VRFY", (501,)),
])
def test_syntax_errors(dsmtp, line, codes):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect(line, codes, "5.")
        c.expect("NOOP", 250)


@pytest.mark.parametrize("rcpt", [
    "RCPT TO:<alice@%s" % DOMAIN,
    "RCPT FROM:<alice@%s>" % DOMAIN,
    "RCPT TO:<>",
    "RCPT TO:",
    "RCPT",
])
def test_rcpt_syntax_errors(dsmtp, rcpt):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect(rcpt, 501, "5.")
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)


def test_bad_address_refused(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@@b..c>", (501, 553), "5.1.")
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@@%s>" % DOMAIN, (501, 553), "5.1.")


def test_unknown_mail_parameter(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> FROBNICATE=yes" % SENDER, 555, "5.5.4")
        c.expect("MAIL FROM:<%s> BODY=8BITMIME SIZE=100" % SENDER, 250)


def test_unknown_user(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<nobody@%s>" % DOMAIN, 550, "5.1.1")
        c.expect("RCPT TO:<nobody@%s>" % ALIAS_DOMAIN, 550, "5.1.1")
        # a domain user of example.net does not exist in the main domain
        c.expect("RCPT TO:<dave@%s>" % DOMAIN, 550, "5.1.1")
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250, "2.1.5")


def test_postmaster_goes_to_sysadmin(dsmtp):
    ids = []
    with smtp(dsmtp.smtp_port) as s:
        for rcpt in ("postmaster@%s" % DOMAIN, "Postmaster", "POSTMASTER@%s" % ALIAS_DOMAIN):
            msgid, text = make_message(to=rcpt)
            assert s.sendmail(SENDER, [rcpt], text) == {}
            ids.append(msgid)
    assert sorted(dsmtp.msgids("bob")) == sorted(ids)


def test_alias_domain_and_domain_users(dsmtp):
    a_id, a_text = make_message(to="alice@" + ALIAS_DOMAIN)
    d_id, d_text = make_message(to="dave@" + ALIAS_DOMAIN)
    with smtp(dsmtp.smtp_port) as s:
        assert s.sendmail(SENDER, ["ALICE@" + ALIAS_DOMAIN.upper()], a_text) == {}
        assert s.sendmail(SENDER, ["dave@" + ALIAS_DOMAIN], d_text) == {}
    assert dsmtp.msgids("alice") == [a_id]
    assert dsmtp.msgids("dave", ALIAS_DOMAIN) == [d_id]


def test_relay_refused(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@%s>" % DOMAIN, 250)
        for r in ("someone@relay.example", "alice@sub.%s" % DOMAIN, "alice@[127.0.0.1]",
                  "@%s:someone@relay.example" % DOMAIN, "someone%%relay.example@%s" % DOMAIN):
            code, lines = c.cmd("RCPT TO:<%s>" % r)
            if r.startswith("someone%"):
                # percent hack: a local part that is no user; must not relay
                assert code in (550, 554), (r, code, lines)
            else:
                assert code == 554 and lines[-1].startswith("5.7.1"), (r, code, lines)
        c.expect("DATA", (503, 554))


def test_multiple_recipients_one_copy_each(dsmtp):
    msgid, text = make_message(to="alice, bob")
    with smtp(dsmtp.smtp_port) as s:
        refused = s.sendmail(SENDER, ["alice@" + DOMAIN, "bob@" + DOMAIN, "nobody@" + DOMAIN],
                             text)
    assert set(refused) == {"nobody@" + DOMAIN}
    assert dsmtp.msgids("bob") == [msgid]
    assert dsmtp.msgids("alice") == [msgid]


def test_uidl_unique_per_message(dsmtp):
    with smtp(dsmtp.smtp_port) as s:
        for _ in range(5):
            s.sendmail(SENDER, ["alice@" + DOMAIN], make_message()[1])
    uidls = [header_values(raw, "X-UIDL")[0] for raw, _ in dsmtp.messages("alice")]
    assert len(uidls) == 5 and len(set(uidls)) == 5


def test_null_sender(dsmtp):
    msgid, text = make_message(sender="MAILER-DAEMON@remote.example")
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        code, _ = raw_transaction(c, text=text, sender="")
        assert code == 250
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    assert header_values(msgs[0][0], "Return-Path") == ["<>"]


def test_8bitmime_body_intact(dsmtp):
    body = "Grüße aus Köln, ½ € — ✓\n".encode("utf-8") + bytes(range(0x80, 0x100)) + b"\n"
    msgid = new_msgid()
    text = (b"From: s@remote.example\nTo: alice@example.test\nSubject: 8bit\nMessage-ID: "
            + msgid.encode() + b"\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: 8bit\n\n" + body)
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> BODY=8BITMIME" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(to_wire(text) + b".\r\n")
        assert c.reply()[0] == 250
    raw = dsmtp.messages("alice")[0][0]
    assert raw.endswith(text)


def test_max_rcpts(dsmtp_factory):
    srv = dsmtp_factory(max_rcpts=3)
    msgid, text = make_message()
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<carol@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<postmaster@%s>" % DOMAIN, 452, "4.5.3")
        c.expect("RCPT TO:<dave@%s>" % ALIAS_DOMAIN, 452, "4.5.3")
        c.expect("DATA", 354)
        c.send(to_wire(text) + b".\r\n")
        assert c.reply()[0] == 250
    for u in ("alice", "bob", "carol"):
        assert srv.msgids(u) == [msgid], u
    assert srv.msgids("dave", ALIAS_DOMAIN) == []
    # bob is sysadmin: postmaster must not have been added beyond the limit
    assert len(srv.messages("bob")) == 1


def test_rset_then_new_transaction(dsmtp):
    msgid, text = make_message()
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<first@remote.example>", 250)
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        c.expect("RSET", 250)
        assert raw_transaction(c, text=text)[0] == 250
        # a second transaction in the same session
        msgid2, text2 = make_message()
        assert raw_transaction(c, text=text2)[0] == 250
    assert dsmtp.msgids("alice") == [msgid, msgid2]
    assert dsmtp.messages("bob") == []


@pytest.mark.parametrize("level,rel", [(1, "a/alice"), (2, "a/al/alice")])
def test_hash_spool(dsmtp_factory, level, rel):
    srv = dsmtp_factory(hash_spool=level)
    msgid, text = make_message()
    with smtp(srv.smtp_port) as s:
        assert s.sendmail(SENDER, ["Alice@" + DOMAIN], text) == {}
    msgs = read_mbox(os.path.join(srv.drop, rel))
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    assert not os.path.exists(os.path.join(srv.drop, "alice"))


def test_smtputf8(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        exts = c.ehlo()
        if "SMTPUTF8" not in exts:
            pytest.skip("SMTPUTF8 not offered")
        # a non-ASCII address needs the SMTPUTF8 parameter
        code, lines = c.cmd("MAIL FROM:<jörg@remote.example>")
        assert code == 553 and lines[-1].startswith("5.6.7"), (code, lines)
        c.expect("MAIL FROM:<jörg@remote.example> SMTPUTF8", 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        msgid = new_msgid()
        text = ("From: Jörg <jörg@remote.example>\nTo: alice@example.test\nSubject: Grüße\n"
                "Message-ID: %s\n\nHallo ✓\n" % msgid).encode()
        c.send(to_wire(text) + b".\r\n")
        assert c.reply()[0] == 250
    # Python's mailbox decodes the From_ line as ASCII, so read the file itself
    raw = dsmtp.raw_mbox("alice")
    assert raw.endswith(text + b"\n")
    assert "Return-Path: <jörg@remote.example>".encode() in raw
