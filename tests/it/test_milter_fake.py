"""The fake milter (milter_fake.py) itself, so that test_milter.py's failures are
dsmtp's: against MilterClient (a minimal MTA side in Python) for every kind of step, and
against a real MTA, a private Postfix instance (bench/servers.py's, as root) with
smtpd_milters pointing at the fake: Postfix's packets are decoded and its handling of
the fake's verdicts and modifications is what dsmtp's should look like."""

import os
import shutil
import smtplib
import socket
import struct

import pytest

import milter_fake as mf
from dmail_site import wait_for

CLEAN_BODY = "Hello from the fake milter test.\n"


@pytest.fixture
def milter():
    m = mf.FakeMilter().start()
    yield m
    m.stop()
    assert not m.errors, m.errors


def full_session(c, rcpts=("<alice@example.test>",)):
    """Every stage of one message through MilterClient c; {stage: replies}."""
    out = {"optneg": c.optneg()}
    out["connect"] = c.connect("client.example", "127.0.0.1", 4321,
                               {"j": "mx.example.test", "{client_addr}": "127.0.0.1"})
    out["helo"] = c.stage("H", b"client.example\0")
    out["mail"] = c.stage("M", b"<s@remote.example>\0SIZE=100\0",
                          {"{mail_addr}": "s@remote.example"})
    out["rcpt"] = [c.stage("R", mf.cstr(r), {"{rcpt_addr}": r.strip("<>")}) for r in rcpts]
    out["data"] = c.stage("T")
    out["header"] = c.stage("L", b"Subject\0 hi\0")
    out["eoh"] = c.stage("N")
    out["body"] = c.stage("B", b"line 1\r\n") + c.stage("B", b"line 2\r\n")
    out["eom"] = c.stage("E", b"", {"i": "QID1"})
    return out


def test_records_every_stage_and_macros(milter):
    c = mf.MilterClient(milter.address)
    r = full_session(c, ("<alice@example.test>", "<bob@example.test>"))
    c.close()
    assert r["optneg"] == (6, mf.ALL_ACTIONS, 0)
    assert all(x == [("c", b"")] for x in (r["connect"], r["helo"], r["eom"]))
    s = milter.wait_sessions(1, ended=True)[0]
    assert s.cmds() == "OCHMRRTLNBBEQ" and s.end == "quit"
    assert s.first("connect").fields == {"host": "client.example", "family": "4",
                                         "port": 4321, "addr": "127.0.0.1"}
    assert s.macros("connect") == {"j": "mx.example.test", "{client_addr}": "127.0.0.1"}
    assert s.first("mail").macros == {"{mail_addr}": "s@remote.example"}
    assert s.first("mail").args == ["<s@remote.example>", "SIZE=100"]
    assert s.rcpts() == ["<alice@example.test>", "<bob@example.test>"]
    assert s.headers() == [("Subject", " hi")]
    assert s.body() == b"line 1\r\nline 2\r\n"
    assert s.macros("eom") == {"i": "QID1"}


def test_verdicts_and_modifications(milter):
    milter.on("rcpt", lambda sess, p: mf.REJECT if "bob" in p.args[0] else mf.CONTINUE)
    milter.on("data", ("reply", "451 4.7.0 later"))
    milter.on("eom", ("addheader", "X-A", "1"), ("insheader", 0, "X-B", "2"),
              ("chgheader", 1, "Subject", ""), ("replbody", b"new\r\n"), ("addrcpt", "<c@x>"),
              ("delrcpt", "<alice@example.test>"), ("quarantine", "why"), ("progress", 2, 0),
              mf.DISCARD)
    c = mf.MilterClient(milter.address)
    r = full_session(c, ("<alice@example.test>", "<bob@example.test>"))
    c.close()
    assert r["rcpt"] == [[("c", b"")], [("r", b"")]]
    assert r["data"] == [("y", b"451 4.7.0 later\0")]
    assert r["eom"] == [("h", b"X-A\x001\0"), ("i", struct.pack(">I", 0) + b"X-B\x002\0"),
                        ("m", struct.pack(">I", 1) + b"Subject\0\0"), ("b", b"new\r\n"),
                        ("+", b"<c@x>\0"), ("-", b"<alice@example.test>\0"), ("q", b"why\0"),
                        ("p", b""), ("p", b""), ("d", b"")]


@pytest.mark.parametrize("step", [mf.HANG, mf.CLOSE, mf.GARBAGE])
def test_broken_milters(milter, step):
    milter.on("helo", step)
    c = mf.MilterClient(milter.address, timeout=1.0)
    c.optneg()
    c.connect("h", "127.0.0.1", 1)
    c.send("H", b"x\0")
    if step == mf.HANG:
        with pytest.raises(socket.timeout):
            c.replies()
        c.sock.close()
        s = milter.wait_sessions(1, ended=True)[0]
        assert s.end == "hung, then closed by the MTA" and s.closed_at
    elif step == mf.CLOSE:
        with pytest.raises(EOFError):
            c.replies()
    else:
        with pytest.raises(mf.ProtocolError):
            c.replies()
    c.sock.close()


def test_unix_socket_and_stop(tmp_path):
    path = str(tmp_path / "m.sock")
    m = mf.FakeMilter(path=path).start()
    c = mf.MilterClient(m.address)
    assert m.address == "unix:" + path and c.optneg()[0] == 6
    m.stop()  # with a session still open
    assert not os.path.exists(path)
    assert m.wait_sessions(1, ended=True)[0].end == "stopped"
    c.sock.close()


# ----------------------------------------------------------------- against Postfix


@pytest.fixture
def postfix(milter):
    """A private Postfix with smtpd_milters = the fake milter."""
    if os.geteuid() != 0 or not shutil.which("postconf"):
        pytest.skip("Postfix (installed, started as root) needed")
    with mf.private_postfix([milter.address], "milter_command_timeout = 5s") as pf:
        yield pf


def test_postfix_talks_to_the_fake(milter, postfix):
    milter.on("rcpt", lambda sess, p: ("reply", "550 5.7.0 custom text")
              if "daemon" in p.args[0] else mf.CONTINUE)
    milter.on("eom", ("addheader", "X-Fake-Milter", "added"), ("chgheader", 1, "X-Drop", ""),
              ("replbody", b"replaced body\r\n"), mf.CONTINUE)
    msg = ("From: s@bench.test\nTo: nobody@bench.test\nSubject: fake\nX-Drop: me\n\n"
           + CLEAN_BODY)
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=20) as s:
        assert s.ehlo("client.example")[0] == 250
        assert s.mail("s@bench.test")[0] == 250
        assert s.rcpt("nobody@bench.test")[0] == 250
        assert s.rcpt("daemon@bench.test") == (550, b"5.7.0 custom text")
        code, _ = s.data(msg)
        assert code == 250
    sess = milter.wait_session_with("E")
    assert sess.first("connect").fields["addr"] == "127.0.0.1"
    assert sess.first("helo").fields["helo"] == "client.example"
    assert sess.first("mail").args[0] == "<s@bench.test>"
    # Postfix's default milter_connect_macros: j {daemon_name} {daemon_addr} v _
    assert sess.macros("connect")["j"] == "postfix.bench.test"
    assert "[127.0.0.1]" in sess.macros("connect")["_"]
    assert sess.macros("mail").get("{mail_addr}") == "s@bench.test"
    assert sess.first("rcpt").macros.get("{rcpt_addr}") == "nobody@bench.test"
    assert sess.macros("eom").get("i")  # the queue id
    # without SMFIP_HDR_LEADSPC the space after the colon is not part of the value
    assert ("Subject", "fake") in sess.headers() and ("X-Drop", "me") in sess.headers()
    assert sess.body() == CLEAN_BODY.replace("\n", "\r\n").encode()
    opt = sess.first("optneg").fields
    assert opt["version"] == 6 and opt["actions"] & mf.SMFIF_CHGBODY
    mbox = postfix.mbox("nobody")
    assert wait_for(lambda: os.path.exists(mbox) and b"X-Fake-Milter" in open(mbox, "rb").read(),
                    15), postfix.log_tail()
    text = open(mbox, "rb").read()
    assert b"X-Fake-Milter: added" in text and b"replaced body" in text
    assert b"X-Drop" not in text and CLEAN_BODY.encode() not in text
