"""Every reply code dsmtp gives (RFC 5321 4.2-4.3, RFC 3463 enhanced codes), each in the
state that produces it, with ENHANCEDSTATUSCODES checked on every reply line after EHLO:
a client that saw EHLO gets "d.d.d " (class matching the reply) in front of the text of
every 2xx, 4xx and 5xx reply -- single and multi-line -- until the session is reset by
STARTTLS or HELO."""

import base64
import os
import signal
import time

import pytest

from dmail_site import DOMAIN, ENHANCED_RE, RawSMTP, make_message, tls_client_context, to_wire

SENDER = "sender@remote.example"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class CheckedSMTP(RawSMTP):
    """RawSMTP that records every reply and fails on a reply after EHLO that lacks an
    enhanced status code (3xx replies excepted: RFC 3463 has no class 3)."""

    def __init__(self, *a, **kw):
        self.esmtp = False
        self.log = []
        super().__init__(*a, **kw)

    def reply(self):
        code, lines = super().reply()
        if self.esmtp and code // 100 != 3:
            for ln in lines:
                m = ENHANCED_RE.match(ln)
                assert m, "reply %d %r after EHLO lacks an enhanced status code" % (code, lines)
                assert m.group(1) == str(code)[0], "class of %r does not match %d" % (ln, code)
        self.log.append((code, lines))
        return code, lines

    def ehlo(self, name="client.example"):
        exts = super().ehlo(name)
        assert "ENHANCEDSTATUSCODES" in exts
        # RFC 2034: no enhanced code on the EHLO reply itself, on every one after it
        assert not ENHANCED_RE.match(self.log[-1][1][0])
        self.esmtp = True
        return exts

    def starttls(self):
        r = super().starttls()
        self.esmtp = False  # RFC 3207 4.2: the session starts over
        return r

    def check(self, line, code, enhanced):
        """line gets exactly code and an enhanced code starting with enhanced."""
        return self.expect(line, code, enhanced)


def data_reply(c, payload):
    """MAIL, RCPT alice, DATA, payload (raw bytes up to and with the final dot)."""
    c.check("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
    c.check("RCPT TO:<alice@%s>" % DOMAIN, 250, "2.1.5")
    return c.data(payload)


def data_ok(c):
    """A fresh message as DATA, taken with 250 2.0.0; its Message-ID."""
    msgid, text = make_message()
    code, lines = c.data(text)
    assert code == 250 and lines[-1].startswith("2.0.0"), (code, lines)
    return msgid


def test_command_replies_plain_session(dsmtp_factory):
    srv = dsmtp_factory(max_rcpts=2, max_msg_size="64K")
    with CheckedSMTP(srv.smtp_port) as c:
        assert c.greeting[0] == 220
        c.expect("MAIL FROM:<%s>" % SENDER, 503)  # before EHLO: no enhanced code
        assert not ENHANCED_RE.match(c.log[-1][1][0])
        c.ehlo()
        c.check("NOOP", 250, "2.0.0")
        c.check("RSET", 250, "2.0.0")
        code, lines = c.check("HELP", 214, "2.0.0")
        assert len(lines) >= 2, "HELP is expected to be multi-line: %r" % lines
        c.check("VRFY alice", 252, "2.")
        c.check("VRFY", 501, "5.5.4")
        for verb in ("EXPN staff", "ETRN example.test", "TURN", "SEND FROM:<a@b>",
                     "SOML FROM:<a@b>", "SAML FROM:<a@b>"):
            c.check(verb, 502, "5.5.1")
        c.check("FROBNICATE", 500, "5.5.2")
        c.check("NOOP " + "x" * 600, 500, "5.5.2")  # over 512 octets
        c.check("NOOP\0", 500, "5.5.2")
        c.send(b"NOOP\nNOOP\r\n")
        code, lines = c.reply()
        assert code == 500 and lines[-1].startswith("5.5.2"), (code, lines)
        c.check("DATA", 503, "5.5.1")
        c.check("RCPT TO:<alice@%s>" % DOMAIN, 503, "5.5.1")
        c.check("QUIT now", 501, "5.5.4")
        c.check("MAIL FROM:<%s" % SENDER, 501, "5.1.7")
        c.check("MAIL FROM:<%s> SIZE=%d" % (SENDER, 64 * 1024 + 1), 552, "5.3.4")
        c.check("MAIL FROM:<jörg@remote.example>", 553, "5.6.7")
        c.check("MAIL FROM:<%s> FROB=1" % SENDER, 555, "5.5.4")
        c.check("AUTH PLAIN " + b64("\0alice\0" + srv.passwords["alice"]), 538, "5.7.11")
        c.check("STARTTLS now", 501, "5.5.4")
        c.check("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        c.check("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
        c.check("AUTH LOGIN", 503, "5.5.1")  # not inside a transaction
        c.check("DATA", 554, "5.5.1")  # no valid recipients
        c.check("RCPT TO:<nobody@%s>" % DOMAIN, 550, "5.1.1")
        c.check("RCPT TO:<x@relay.example>", 554, "5.7.1")
        c.check("RCPT TO:<alice>", 501, "5.1.")
        c.check("RCPT TO:<alice@%s>" % DOMAIN, 250, "2.1.5")
        c.check("RCPT TO:<bob@%s>" % DOMAIN, 250, "2.1.5")
        c.check("RCPT TO:<carol@%s>" % DOMAIN, 452, "4.5.3")
        msgid = data_ok(c)
        # the message refusals at the end of DATA
        _, big = make_message(body=("z" * 70 + "\n") * 1000)
        code, lines = data_reply(c, to_wire(big) + b".\r\n")
        assert (code, lines[-1][:5]) == (552, "5.3.4"), (code, lines)
        # (a line over 64 KiB, 500 5.5.2: test_limits.py, max_msg_size is smaller here)
        code, lines = data_reply(c, b"Subject: x\r\n\r\nnul\0\r\n.\r\n")
        assert (code, lines[-1][:5]) == (554, "5.6.0"), (code, lines)
        code, lines = data_reply(c, b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
        assert (code, lines[-1][:5]) == (550, "5.5.2"), (code, lines)
        # HELO starts over without enhanced codes
        c.esmtp = False
        c.expect("HELO client.example", 250)
        code, lines = c.cmd("NOOP")
        assert code == 250 and not ENHANCED_RE.match(lines[0]), lines
        c.ehlo()
        c.check("QUIT", 221, "2.0.0")
        assert c.wait_closed(3)
    assert srv.msgids("alice") == [msgid] and srv.msgids("bob") == [msgid]


def test_tls_and_auth_replies(dsmtp):
    pw = dsmtp.passwords["alice"]
    with CheckedSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.check("STARTTLS", 220, "2.0.0")
        c.esmtp = False
        c.sock = tls_client_context().wrap_socket(c.sock)
        # after STARTTLS the client starts over with EHLO: no enhanced codes till then
        code, lines = c.expect("MAIL FROM:<%s>" % SENDER, 503)
        assert not ENHANCED_RE.match(lines[0]), lines
        c.expect("AUTH PLAIN", 503)  # AUTH needs EHLO
        c.ehlo()
        c.check("STARTTLS", 503, "5.5.1")
        c.check("AUTH", 501, "5.5.4")
        c.check("AUTH CRAM-MD5", 504, "5.5.4")
        c.check("AUTH PLAIN !!!", 501, "5.5.2")
        c.check("AUTH PLAIN " + b64("no-nuls-here"), 501, "5.5.2")
        c.expect("AUTH LOGIN", 334)
        c.check("*", 501, "5.7.0")
        c.expect("AUTH LOGIN", 334)
        c.check("!!!", 501, "5.5.2")
        c.check("AUTH PLAIN " + b64("\0alice\0wrong"), 535, "5.7.8")
        c.expect("AUTH LOGIN " + b64("alice"), 334)
        c.check(b64(pw), 235, "2.7.0")
        c.check("AUTH PLAIN " + b64("\0alice\0" + pw), 503, "5.5.1")
        c.check("QUIT", 221, "2.0.0")


def test_submission_and_smtps_replies(dsmtp):
    with CheckedSMTP(dsmtp.submission_port) as c:
        c.ehlo()
        c.check("MAIL FROM:<%s>" % SENDER, 530, "5.7.0")
        c.check("AUTH PLAIN " + b64("\0alice\0" + dsmtp.passwords["alice"]), 538, "5.7.11")
    with CheckedSMTP(dsmtp.smtps_port, tls=True) as c:
        assert c.greeting[0] == 220
        c.ehlo()
        c.check("STARTTLS", 503, "5.5.1")
        c.check("AUTH PLAIN " + b64("\0alice\0" + dsmtp.passwords["alice"]), 235, "2.7.0")
        c.check("QUIT", 221, "2.0.0")


def test_starttls_unavailable_454(dsmtp_factory):
    srv = dsmtp_factory(tls=False)
    with CheckedSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.check("STARTTLS", 454, "4.7.0")
        c.check("NOOP", 250, "2.0.0")


def test_vrfy_true(dsmtp_factory):
    srv = dsmtp_factory(vrfy=True)
    with CheckedSMTP(srv.smtp_port) as c:
        c.ehlo()
        code, lines = c.check("VRFY alice", 250, "2.1.5")
        assert "alice@%s" % DOMAIN in lines[-1], lines
        c.check("VRFY <Bob@%s>" % DOMAIN, 250, "2.1.5")
        c.check("VRFY dave@example.net", 250, "2.1.5")
        c.check("VRFY postmaster", 250, "2.1.5")
        c.check("VRFY nobody", 550, "5.1.1")
        c.check("VRFY someone@relay.example", 551, "5.1.6")
        c.check("VRFY a@@b", 501, "5.1.3")
    # and the default keeps users secret
    srv.restart(vrfy=False)
    with CheckedSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.check("VRFY alice", 252, "2.")
        c.check("VRFY nobody", 252, "2.")


def test_error_hard_limit_421_enhanced(dsmtp_factory):
    srv = dsmtp_factory(error_soft_limit=5, error_hard_limit=2, error_delay=0)
    with CheckedSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.check("FROBNICATE", 500, "5.5.2")
        # the second error reaches the limit: its reply, then 421 4.7.0 and the end
        c.check("FROBNICATE", 500, "5.5.2")
        code, lines = c.reply()
        assert code == 421 and lines[-1].startswith("4.7.0"), (code, lines)
        assert c.wait_closed(3)


def test_timeout_421_enhanced(dsmtp_factory):
    srv = dsmtp_factory(smtp_timeout=1, data_timeout=1)
    with CheckedSMTP(srv.smtp_port) as c:
        c.ehlo()
        code, lines = c.reply()
        assert code == 421 and lines[-1].startswith("4.4.2"), (code, lines)
        assert c.wait_closed(3)
    with CheckedSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.check("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        c.check("RCPT TO:<alice@%s>" % DOMAIN, 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(b"Subject: half\r\n\r\nno end")
        code, lines = c.reply()
        assert code == 421 and lines[-1].startswith("4.4.2"), (code, lines)
    assert srv.messages("alice") == []


def test_shutdown_421_and_running_data_finishes(dsmtp):
    """SIGTERM: an idle session gets 421 4.3.2 at once; a session in DATA finishes its
    message (250, in the mailbox) and gets 421 4.3.2 on its next command; no new
    connections are taken; the process exits 0."""
    idle = CheckedSMTP(dsmtp.smtp_port)
    busy = CheckedSMTP(dsmtp.smtp_port)
    try:
        idle.ehlo()
        busy.ehlo()
        busy.check("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        busy.check("RCPT TO:<alice@%s>" % DOMAIN, 250, "2.1.5")
        busy.expect("DATA", 354)
        msgid, text = make_message()
        wire = to_wire(text)
        busy.send(wire[:20])
        time.sleep(0.2)
        dsmtp.proc.send_signal(signal.SIGTERM)
        code, lines = idle.reply()
        assert code == 421 and lines[-1].startswith("4.3.2"), (code, lines)
        assert idle.wait_closed(3)
        idle.close()
        deadline = time.monotonic() + 3
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                RawSMTP(dsmtp.smtp_port, timeout=1).close()
            except ConnectionRefusedError:
                refused = True
            except (OSError, EOFError):
                pass
            time.sleep(0.05)
        assert refused, "still accepting connections after SIGTERM"
        busy.send(wire[20:] + b".\r\n")
        code, lines = busy.reply()
        assert code == 250 and lines[-1].startswith("2.0.0"), (code, lines)
        code, lines = busy.cmd("NOOP")
        assert code == 421 and lines[-1].startswith("4.3.2"), (code, lines)
        assert busy.wait_closed(3)
        busy.close()
        assert dsmtp.proc.wait(10) == 0
    finally:
        idle.close()
        busy.close()
    dsmtp._reap()
    assert dsmtp.msgids("alice") == [msgid]


@pytest.mark.parametrize("port_kind", ["smtp", "submission"])
def test_greeting_220_and_quit_221(dsmtp, port_kind):
    port = dsmtp.smtp_port if port_kind == "smtp" else dsmtp.submission_port
    with CheckedSMTP(port) as c:
        code, lines = c.greeting
        assert code == 220 and lines[0].startswith("mx.%s " % DOMAIN), lines
        c.ehlo()
        c.check("QUIT", 221, "2.0.0")


def test_mailbox_refusing_for_good_554(dsmtp):
    """Every mailbox refuses permanently (here: not a regular file): 554 5.2.0, nothing
    queued; with another, good recipient the message is accepted for that one and the
    refusing one is reported to the sender (the report waits in the queue: the sender's
    domain has no reachable MX here)."""
    os.makedirs(dsmtp.mbox_path("alice"))
    with CheckedSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        code, lines = data_reply(c, to_wire(make_message()[1]) + b".\r\n")
        assert code == 554 and lines[-1].startswith("5.2.0"), (code, lines)
        c.check("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        c.check("RCPT TO:<alice@%s>" % DOMAIN, 250, "2.1.5")
        c.check("RCPT TO:<bob@%s>" % DOMAIN, 250, "2.1.5")
        msgid = data_ok(c)
    assert dsmtp.msgids("bob") == [msgid]
    (qf,) = dsmtp.queue_files()
    with open(qf, "rb") as f:
        data = f.read()
    assert b"\nsender <>\norigin bounce " in data, data[:400]
    assert b"<%s>" % SENDER.encode() in data and b"Status: 5.2.0" in data, data[:2000]
