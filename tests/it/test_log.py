"""dsmtp's log: AUTH data and passwords never appear in it, at any level; every line of a
session starts with the session id and goes on as key=value fields; client text is
escaped."""

import base64
import os
import re
import smtplib
import time

from dmail_site import DOMAIN, HOST, RawSMTP, make_message, to_wire, wait_for

SENDER = "sender@remote.example"
LINE_RE = re.compile(r"^\S+ dsmtp\[\d+\]: (error|warn|info|debug): (.*)$")
SID_RE = re.compile(r"^([0-9a-f]{16}) (.*)$")
# an event word, then key=value fields; a value is a token without spaces, <...> (an
# address) or "..." (free text with \" and \\ escaped)
FIELD = r'[a-z][a-z0-9_]*=(?:<[^<>]*>|"(?:[^"\\]|\\.)*"|[^\s"<>]*)'
SESSION_LINE_RE = re.compile(r"^[a-z][a-z0-9-]*(?: %s)*$" % FIELD)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def log_lines(srv):
    out = []
    for ln in srv.log().splitlines():
        m = LINE_RE.match(ln)
        assert m, "log line without time, program, pid and level: %r" % ln
        out.append((m.group(1), m.group(2)))
    return out


def wait_log(srv, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in srv.log(), text


def test_auth_data_never_logged(dsmtp_factory):
    srv = dsmtp_factory(auth_plaintext=True, auth_fail_delay=0, log_level="debug")
    pw = {u: srv.passwords[u] for u in ("alice", "bob", "carol")}
    secrets = []
    with RawSMTP(srv.smtp_port) as c:
        c.secure()
        blob = b64("\0alice\0" + pw["alice"])
        secrets.append(blob)
        c.expect("AUTH PLAIN " + blob, 235)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()  # in the clear (auth_plaintext true)
        blob = b64("\0bob\0" + pw["bob"] + "x")  # wrong: failure path
        secrets.append(blob)
        c.expect("AUTH PLAIN " + blob, 535)
        c.expect("AUTH PLAIN", 334)
        blob = b64("\0bob\0" + pw["bob"])
        secrets.append(blob)
        c.expect(blob, 235)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("carol"), 334)
        secrets.append(b64(pw["carol"]))
        c.expect(b64(pw["carol"]), 235)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("AUTH LOGIN " + b64("carol"), 334)
        secrets.append(b64(pw["carol"] + "!"))
        c.expect(b64(pw["carol"] + "!"), 535)
        # a response broken by a bare LF, one over the line limit, and a cancelled one
        c.expect("AUTH LOGIN", 334)
        secrets.append(b64("bare-" + pw["alice"]))
        c.send("%s\n%s\r\n" % (secrets[-1], secrets[-1]))
        assert 500 <= c.reply()[0] < 600
        c.expect("AUTH PLAIN", 334)
        secrets.append(b64("\0alice\0" + pw["alice"] * 40))
        assert len(secrets[-1]) > 512
        assert 500 <= c.cmd(secrets[-1])[0] < 600
        c.expect("AUTH LOGIN", 334)
        c.expect("*", 501)
        c.expect("QUIT", 221)
    wait_log(srv, "disconnect reason=quit msgs=0 errors=")
    log = srv.log()
    assert "auth result=ok user=carol" in log  # the log does record the login
    for secret in secrets + list(pw.values()) + [b64(p) for p in pw.values()]:
        assert secret not in log, "AUTH data or a password in the log: %r" % secret
    # nor a part of a PLAIN blob long enough to matter
    for blob in secrets:
        for i in range(0, len(blob) - 16, 8):
            assert blob[i:i + 16] not in log, (blob, log)


def test_session_lines_are_sid_and_key_value(dsmtp_factory):
    srv = dsmtp_factory(log_level="info", max_rcpts=2, lock_timeout=1)
    # a mix of sessions: delivery, refusals, errors, TLS, AUTH, an abrupt end, odd text
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=15) as s:
        s.sendmail(SENDER, ["alice@" + DOMAIN, "nobody@" + DOMAIN], make_message()[1])
    with RawSMTP(srv.smtp_port) as c:
        c.secure()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<x@relay.example>", 554)  # not authenticated yet
        c.expect("RSET", 250)
        c.expect("AUTH PLAIN " + b64("\0alice\0nope"), 535)
        c.expect("AUTH PLAIN " + b64("\0alice\0" + srv.passwords["alice"]), 235)
        c.expect('MAIL FROM:<"wé ird\\"x"@remote.example> SMTPUTF8', 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<carol@%s>" % DOMAIN, 452)
        c.expect("DATA", 354)
        c.send(b"Subject: bad\r\n\r\nbare\nlf\r\n.\r\n")
        assert c.reply()[0] == 550
        c.expect("NOOP " + "x" * 600, 500)
        c.send(b"NOOP\nX\r\n")
        c.reply()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(to_wire(make_message()[1]))  # then vanish in DATA
    wait_log(srv, "reason=eof-in-data")
    sids = set()
    for level, text in log_lines(srv):
        m = SID_RE.match(text)
        if not m:
            # not a session line: no client text without its session id
            assert "from=" not in text and "ip=" not in text and "to=" not in text or \
                text.startswith(("deliver ", "queue ", "maildrop ")), text
            continue
        sids.add(m.group(1))
        assert SESSION_LINE_RE.match(m.group(2)), "not 'event key=value...': %r" % text
    assert len(sids) >= 2
    log = srv.log()
    # client text is escaped: a control character never reaches the log raw
    assert "é" not in log and "\\xc3\\xa9" in log
    for event in ("connect ip=127.0.0.1 ", "tls version=TLSv1.", "auth result=failed ",
                  "auth result=ok user=alice", "mail from=<", "rcpt to=<x@relay.example> "
                  "result=relay-denied", "result=too-many", "refused id=", "reason=bare-newline",
                  "command-refused reason=line-too-long", "delivered id=",
                  "disconnect reason=quit", "discarded reason=eof-in-data"):
        assert event in log, "no %r in the log:\n%s" % (event, log)
    # the per-message lines of the delivery carry the message id, which names the session
    for m in re.finditer(r"deliver id=([0-9a-f]{16})-\d+ ", log):
        assert m.group(1) in sids


def _journal_env(path):
    """JOURNAL_STREAM naming the file that will be the program's stderr (created now)."""
    open(path, "ab").close()
    st = os.stat(path)
    return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}


def test_journal_stream_lines_carry_priorities(dsmtp_factory):
    """Under systemd (stderr is the journal, JOURNAL_STREAM says so) each line starts with
    its syslog priority instead of the time; a JOURNAL_STREAM of another file changes
    nothing (a child whose stderr is a pipe)."""
    srv = dsmtp_factory(start=False)
    ds = srv.dsmtp
    ds.extra_env = _journal_env(ds.stderr_path)
    ds.start()
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
    lines = open(ds.stderr_path).read().splitlines()
    assert lines
    bad = [ln for ln in lines
           if not re.match(r"<[0-7]>dsmtp\[\d+\]: (error|warn|info|debug): ", ln)]
    assert bad == [], bad[:5]
    assert any(ln.startswith("<6>") and " started as " in ln for ln in lines), lines[:5]


def test_journal_stream_of_another_file_changes_nothing(dsmtp_factory):
    srv = dsmtp_factory(start=False)
    ds = srv.dsmtp
    other = os.path.join(srv.dir, "elsewhere")
    ds.extra_env = _journal_env(other)
    ds.start()
    lines = open(ds.stderr_path).read().splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\dT", ln) for ln in lines), lines[:5]


def test_dwatch_passes_server_levels_to_the_journal(dwatch_factory):
    """dwatch under systemd: the servers' lines (read from their stderr pipes) reach the
    journal with their own level as the priority."""
    dw = dwatch_factory(start=False)
    dw.extra_env = _journal_env(dw.stderr_path)
    dw.start()
    assert wait_for(lambda: re.search(r"^<6>dwatch\[\d+\]: info: dsmtp\[\d+\]: .* started as ",
                                      open(dw.stderr_path).read(), re.M), 10), \
        open(dw.stderr_path).read()[-3000:]
    text = open(dw.stderr_path).read()
    assert not re.search(r"^\d{4}-\d\d-\d\dT", text, re.M), text[-2000:]
