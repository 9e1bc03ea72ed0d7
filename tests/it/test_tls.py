"""dsmtp TLS and AUTH: STARTTLS, implicit TLS (SMTPS), AUTH PLAIN/LOGIN, the
submission port, the STARTTLS injection attack, broken handshakes."""

import base64
import re
import smtplib
import socket
import ssl
import threading
import time

import pytest

from dmail_site import (
    ALIAS_DOMAIN,
    DOMAIN,
    HOST,
    RawSMTP,
    make_message,
    noop_session_seconds,
    tls_client_context,
    to_wire,
)

SENDER = "alice@" + DOMAIN


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def starttls_smtp(port):
    s = smtplib.SMTP(HOST, port, local_hostname="client.example", timeout=15)
    s.ehlo()
    s.starttls(context=tls_client_context())
    s.ehlo()
    return s


def received(raw):
    m = re.search(rb"(?mi)^Received:(.*(?:\n[ \t].*)*)", raw)
    assert m, raw[:500]
    return re.sub(rb"\s+", b" ", m.group(1)).decode()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_starttls_then_auth(dsmtp, mech, user):
    s = starttls_smtp(dsmtp.smtp_port)
    try:
        assert "starttls" not in s.esmtp_features, "STARTTLS offered again inside TLS"
        auth = s.esmtp_features.get("auth", "").upper().split()
        assert "PLAIN" in auth and "LOGIN" in auth, s.esmtp_features
        s.user, s.password = user, dsmtp.passwords[user]
        code, resp = s.auth(mech, getattr(s, "auth_" + mech.lower()), initial_response_ok=True)
        assert code == 235 and resp.startswith(b"2.7.0"), (code, resp)
        msgid, text = make_message(to="bob@" + DOMAIN, sender=user + "@" + DOMAIN)
        assert s.sendmail(user + "@" + DOMAIN, ["bob@" + DOMAIN], text) == {}
    finally:
        s.quit()
    msgs = dsmtp.messages("bob")
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    rec = received(msgs[0][0])
    assert re.search(r"\bwith ESMTPSA\b", rec), rec


def test_auth_login_without_initial_response(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.secure()
        code, lines = c.cmd("AUTH LOGIN")
        assert code == 334 and base64.b64decode(lines[0]).lower().startswith(b"user"), lines
        code, lines = c.cmd(b64("alice"))
        assert code == 334 and base64.b64decode(lines[0]).lower().startswith(b"pass"), lines
        c.expect(b64(dsmtp.passwords["alice"]), 235, "2.7.0")
        c.expect("AUTH PLAIN " + b64("\0alice\0" + dsmtp.passwords["alice"]), 503, "5.5.1")


def test_auth_plain_empty_initial_response(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.secure()
        code, lines = c.cmd("AUTH PLAIN")
        assert code == 334, (code, lines)
        c.expect(b64("\0bob\0" + dsmtp.passwords["bob"]), 235, "2.7.0")


def test_auth_domain_login(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.secure()
        c.expect("AUTH PLAIN " + b64("\0dave@%s\0%s" % (ALIAS_DOMAIN, dsmtp.passwords["dave"])),
                 235, "2.7.0")


def test_auth_refused_before_tls(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        exts = c.ehlo()
        assert not any(e.startswith("AUTH") for e in exts), exts
        tok = b64("\0alice\0" + dsmtp.passwords["alice"])
        code, lines = c.cmd("AUTH PLAIN " + tok)
        assert 500 <= code < 600, (code, lines)
        code, lines = c.cmd("AUTH LOGIN")
        assert 500 <= code < 600 and code != 334, (code, lines)
        c.expect("NOOP", 250)
    assert dsmtp.passwords["alice"] not in dsmtp.log()


def test_auth_cancel_and_bad_base64(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.secure()
        assert c.cmd("AUTH LOGIN")[0] == 334
        c.expect("*", 501)
        c.expect("AUTH PLAIN !!!not-base64!!!", 501, "5.5.2")
        c.expect("AUTH FROBNICATE", 504, "5.5.4")
        c.expect("NOOP", 250)


def test_auth_lines_up_to_rfc4954_limit(dsmtp_factory):
    """AUTH lines and SASL responses may be 12,288 octets (RFC 4954 4); other commands
    keep their limits."""
    srv = dsmtp_factory(auth_fail_delay=0)
    with RawSMTP(srv.smtp_port) as c:
        c.secure()
        long_pw = "x" * 6000
        line = "AUTH PLAIN " + b64("\0alice\0" + long_pw)
        assert 8000 < len(line) + 2 <= 12288
        c.expect(line, 535, "5.7.8")
        assert c.cmd("AUTH LOGIN")[0] == 334
        assert c.cmd(b64("alice"))[0] == 334
        c.expect(b64(long_pw), 535, "5.7.8")
        c.expect("AUTH PLAIN " + "A" * 12300, 500, "5.5.2")  # beyond: line too long
        c.expect("NOOP " + "x" * 600, 500, "5.5.2")
        c.expect("AUTH PLAIN " + b64("\0alice\0" + srv.passwords["alice"]), 235)


def test_wrong_password_delayed(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.secure()
        for user, pw in (("alice", "wrong"), ("no-such-user", "x"), ("bob", "correct horse")):
            t0 = time.monotonic()
            code, lines = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw)))
            elapsed = time.monotonic() - t0
            assert code == 535 and lines[-1].startswith("5.7.8"), (user, code, lines)
            assert elapsed >= 0.8, "failure not delayed (%.2f s)" % elapsed
        # MAIL without auth on port 25 is still fine (no relaying though)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<x@relay.example>", 554, "5.7.1")
        c.expect("RSET", 250)
        c.expect("AUTH PLAIN " + b64("\0alice\0" + dsmtp.passwords["alice"]), 235)
    log = dsmtp.log()
    assert dsmtp.passwords["alice"] not in log, "password in the log"
    assert b64("\0alice\0" + dsmtp.passwords["alice"]) not in log, "AUTH data in the log"


def test_failure_delay_does_not_block_others(dsmtp_factory):
    srv = dsmtp_factory(auth_fail_delay=3)
    with RawSMTP(srv.smtp_port) as c:
        c.secure()
        c.send("AUTH PLAIN %s\r\n" % b64("\0alice\0wrong"))
        time.sleep(0.2)
        took = noop_session_seconds(srv.smtp_port)
        assert took < 1.5, "another session waited for the failure delay"
        assert c.reply()[0] == 535


def test_relay_allowed_when_authenticated(dsmtp):
    """(without AUTH, 554 5.7.1: test_smtp.py test_relay_refused)"""
    s = starttls_smtp(dsmtp.submission_port)
    try:
        s.login("alice", dsmtp.passwords["alice"])
        s.mail(SENDER)
        code, msg = s.rcpt("someone@relay.example")
        assert code == 250 and msg.startswith(b"2.1.5"), (code, msg)
        s.rset()  # nothing sent: test traffic stays on loopback
    finally:
        s.quit()
    assert "rcpt to=<someone@relay.example> result=ok-relay" in dsmtp.log()


def test_smtps_implicit_tls(dsmtp):
    ctx = tls_client_context()
    with smtplib.SMTP_SSL(HOST, dsmtp.smtps_port, local_hostname="client.example",
                          timeout=15, context=ctx) as s:
        s.ehlo()
        assert "starttls" not in s.esmtp_features
        assert "PLAIN" in s.esmtp_features.get("auth", "").upper()
        s.login("alice", dsmtp.passwords["alice"])
        msgid, text = make_message()
        assert s.sendmail(SENDER, ["alice@" + DOMAIN], text) == {}
        cert = s.sock.getpeercert(binary_form=True)
        assert cert, "no server certificate"
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    assert re.search(r"\bwith ESMTPSA\b", received(msgs[0][0]))


def test_smtps_unauthenticated_delivery(dsmtp):
    ctx = tls_client_context()
    with smtplib.SMTP_SSL(HOST, dsmtp.smtps_port, timeout=15, context=ctx) as s:
        msgid, text = make_message()
        assert s.sendmail("x@remote.example", ["alice@" + DOMAIN], text) == {}
    raw = dsmtp.messages("alice")[0][0]
    assert re.search(r"\bwith ESMTPS\b", received(raw))


def test_submission_requires_auth(dsmtp):
    with RawSMTP(dsmtp.submission_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 530, "5.7.0")
        c.starttls()
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 530, "5.7.0")
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 503)
        c.expect("AUTH PLAIN " + b64("\0alice\0" + dsmtp.passwords["alice"]), 235)
        msgid, text = make_message(to="bob@" + DOMAIN)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(to_wire(text) + b".\r\n")
        assert c.reply()[0] == 250
    assert dsmtp.msgids("bob") == [msgid]


def test_auth_plaintext_setting(dsmtp_factory):
    srv = dsmtp_factory(auth_plaintext=True)
    with RawSMTP(srv.smtp_port) as c:
        exts = c.ehlo()
        assert any(e.startswith("AUTH") for e in exts), exts
        c.expect("AUTH PLAIN " + b64("\0alice\0" + srv.passwords["alice"]), 235)


def test_starttls_injection_discarded(dsmtp):
    """CVE-2011-0411 class: commands sent in the same packet behind STARTTLS are not
    executed inside the TLS session."""
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<evil@remote.example>\r\n")
        code, lines = c.reply()
        assert code == 220, (code, lines)
        assert c.buf == b"", "plaintext reply after 220: %r" % c.buf
        c.sock = tls_client_context().wrap_socket(c.sock)
        # the first reply inside TLS must be the one to our HELP, not to the NOOP
        code, lines = c.cmd("HELP")
        assert code == 214, "injected command answered inside TLS: %d %s" % (code, lines)
        c.ehlo()
        # and the injected MAIL did not open a transaction
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 503)


def test_starttls_twice_refused(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.secure()
        code, lines = c.cmd("STARTTLS")
        assert 500 <= code < 600, (code, lines)
        c.expect("NOOP", 250)


def test_broken_tls_handshake_hurts_nobody(dsmtp):
    # garbage on the SMTPS port, a silent TLS client, and garbage after STARTTLS
    g = socket.create_connection((HOST, dsmtp.smtps_port), timeout=5)
    g.sendall(b"\x16\x03\x01\x02\x00" + b"\xff" * 600 + b"EHLO x\r\n")
    silent = socket.create_connection((HOST, dsmtp.smtps_port), timeout=5)
    r = RawSMTP(dsmtp.smtp_port)
    r.ehlo()
    assert r.cmd("STARTTLS")[0] == 220
    r.send(b"\x16\x03\x03\x00\x05hello, this is not TLS\r\n")
    try:
        results = []

        def client():
            try:
                with smtplib.SMTP_SSL(HOST, dsmtp.smtps_port, timeout=10,
                                      context=tls_client_context()) as s:
                    msgid, text = make_message()
                    s.sendmail("x@remote.example", ["alice@" + DOMAIN], text)
                    results.append(msgid)
            except Exception as e:  # noqa: BLE001 - reported below
                results.append(e)

        t = threading.Thread(target=client)
        t.start()
        t.join(15)
        assert not t.is_alive(), "TLS client hung while a broken handshake was pending"
        assert len(results) == 1 and isinstance(results[0], str), results
        assert dsmtp.msgids("alice") == results
        # the garbage connection is closed by the server
        g.settimeout(5)
        try:
            while g.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
    finally:
        g.close()
        silent.close()
        r.close()
    with RawSMTP(dsmtp.smtps_port, tls=True) as c:
        c.ehlo()
        c.expect("NOOP", 250)


def test_tls_versions(dsmtp):
    """Modern TLS is negotiated; SSLv3/TLS 1.0 are not needed by anyone."""
    ctx = tls_client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP_SSL(HOST, dsmtp.smtps_port, timeout=10, context=ctx) as s:
        s.ehlo()
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
