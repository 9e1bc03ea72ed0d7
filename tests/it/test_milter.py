"""dsmtp's milter client against the fake milter of milter_fake.py (a real socket on
127.0.0.1 or ::1, or a Unix socket; the fake records every packet): each verdict at each
stage (continue, accept, reject, tempfail, REPLYCODE, discard, quarantine), the
modifications at end of message (headers added, inserted, changed and deleted, the body
replaced, recipients added and removed) as they land in the mailbox, the packets and
macros sent, the protocol flags a milter may ask for (stages left out, stages without an
answer, SMFIR_SKIP, leading spaces), and failure handling: a milter that hangs
(milter_command_timeout, milter_content_timeout, milter_connect_timeout, SMFIR_PROGRESS),
is not there, closes or talks garbage, with milter_default_action tempfail/accept/reject
and per-milter milter_options; a client that leaves while the milter thinks; sessions in
parallel; two milters in order; dsmtp -t on bad milter settings.

What dsmtp is expected to do is Postfix's behaviour (test_milter_fake.py checks the fake
against a real Postfix, and milter_postfix.py runs this module against Postfix 3.7; what
differs there is listed in its docstring): one milter connection per SMTP session, opened
before the 220 greeting; reject -> 550 5.7.1, tempfail -> 451 4.7.1, REPLYCODE -> that
reply exactly (a refusal at HELO may wait for the next MAIL, as in Postfix); accept skips
the milter for the rest of the transaction (of the session at connect and HELO); a log
line with milter=ADDRESS on every verdict other than continue and on every failure. At
connect dsmtp refuses with 554 5.7.1 or 421 4.7.1 and closes, where Postfix answers 554
and stays (refusing every command) or answers 220 and refuses MAIL with 451.

The same tests run against Postfix with the plugin milter_postfix.py (root only):
PYTHONPATH=tests/it scripts/run-it.sh bin -p milter_postfix -k test_milter.py"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import milter_fake as mf
from dmail_site import (BIN, DOMAIN, RawSMTP, free_ports, ipv6_loopback, make_message, to_wire,
                        wait_for)

SENDER = "sender@remote.example"
ALICE, BOB = "alice@" + DOMAIN, "bob@" + DOMAIN
CUSTOM = "550 5.7.0 custom text"
CUSTOM_CONNECT = "554 5.7.0 custom connect text"
# the SMTP step whose reply a milter verdict at each stage decides
SMTP_STEP = {"connect": "connect", "helo": "helo", "mail": "mail", "rcpt": "rcpt",
             "data": "data", "header": "eom", "eoh": "eom", "body": "eom", "eom": "eom"}
LATER = {"connect": "HMRTLNBE", "helo": "MRTLNBE", "mail": "RTLNBE", "rcpt": "TLNBE",
         "data": "LNBE", "header": "NBE", "eoh": "BE", "body": "E"}


@pytest.fixture
def milter_factory():
    """make(unix=False, **kw) -> a started FakeMilter (on 127.0.0.1, or on a Unix socket
    in a directory dsmtp's account can reach); every one stopped afterwards, and the test
    fails if one hit a protocol error."""
    made, dirs = [], []

    def make(unix=False, **kw):
        if unix:
            d = tempfile.mkdtemp(prefix="dmail-it-milter-")
            os.chmod(d, 0o755)
            dirs.append(d)
            kw["path"] = os.path.join(d, "milter.sock")
        m = mf.FakeMilter(**kw).start()
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    errors = [e for m in made for e in m.errors]
    assert not errors, errors


@pytest.fixture
def milter(milter_factory):
    return milter_factory()


def site(dsmtp_factory, *milters, **kw):
    """A dsmtp with milters (FakeMilters or address strings), short timeouts so that a
    broken test fails fast, and settings kw."""
    conf = {"milters": ",".join(m if isinstance(m, str) else m.address for m in milters),
            "milter_connect_timeout": "5s", "milter_command_timeout": "5s",
            "milter_content_timeout": "10s"}
    conf.update(kw)
    srv = dsmtp_factory(**conf)
    # the start-up check connects to every port: milter sessions of their own
    for m in milters:
        if not isinstance(m, str):
            m.forget_sessions()
    return srv


def session(srv, rcpts=(ALICE,), text=None, sender=SENDER, port=None, tls=False, auth=None,
            quit=True, bdat=False):
    """One SMTP session, step by step, up to the first refusal: {step: (code, lines)} for
    connect (the greeting), helo, mail, rcpt ([one per recipient]), data, eom (the reply
    at the end of the data), quit; "closed" if the server hung up after a refusing
    greeting; "msgid" of the message sent; "port" the client's port."""
    if text is None:
        msgid, text = make_message(to=", ".join(rcpts))
    else:
        msgid = None
    out = {"msgid": msgid}
    c = RawSMTP(port or srv.smtp_port, greeting=False)
    with c:
        out["port"] = c.sock.getsockname()[1]
        out["connect"] = c.reply()
        if out["connect"][0] != 220:
            out["closed"] = c.wait_closed(5)
            return out
        out["helo"] = c.cmd("EHLO client.example")
        if out["helo"][0] != 250:
            return out
        if tls:
            c.starttls()
            out["helo"] = c.cmd("EHLO client.example")
        if auth:
            out["auth"] = c.auth_plain(auth, srv.passwords[auth])
            assert out["auth"][0] == 235, out["auth"]
        out["mail"] = c.cmd("MAIL FROM:<%s>" % sender)
        if out["mail"][0] != 250:
            return out
        out["rcpt"] = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        if not any(r[0] == 250 for r in out["rcpt"]):
            return out
        if bdat:
            out["eom"] = c.bdat(to_wire(text), last=True)
        else:
            out["data"] = c.cmd("DATA")
            if out["data"][0] != 354:
                return out
            c.send(to_wire(text) + b".\r\n")
            out["eom"] = c.reply()
        if quit:
            out["quit"] = c.cmd("QUIT")
    return out


def reply_of(out, step):
    r = out[step]
    return r[0] if step == "rcpt" else r


def text_of(reply):
    return " ".join(reply[1])


def refused_step(out, stage):
    """The SMTP step refused for a milter verdict at stage: a refusal at HELO may come
    with the reply to EHLO or, as Postfix does it, with the reply to the next MAIL."""
    step = SMTP_STEP[stage]
    if stage == "helo" and out["helo"][0] == 250 and "mail" in out:
        return "mail"
    return step


def assert_refused(out, step, code, enhanced):
    code_got, lines = reply_of(out, step)
    assert code_got == code and lines[-1].startswith(enhanced), (step, out)


def milter_log(srv, m):
    """The log lines naming milter m."""
    addr = m if isinstance(m, str) else m.address
    return [ln for ln in srv.log().splitlines() if "milter=" + addr in ln]


def delivered(srv, user="alice"):
    return srv.messages(user)


def header_block(raw):
    return raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")


# ------------------------------------------------------------------ plain passage


def test_continue_everywhere_sends_every_stage(dsmtp_factory, milter):
    srv = site(dsmtp_factory, milter)
    body = "line one\n.dotted line\n" + "x" * 100 + "\n"
    msgid, text = make_message(body=body, extra_headers=("X-Two: a", "X-Two: b"))
    out = session(srv, rcpts=(ALICE, BOB), text=text)
    assert out["eom"][0] == 250 and out["quit"][0] == 221, out
    for user in ("alice", "bob"):
        msgs = delivered(srv, user)
        assert [m["Message-ID"] for _, m in msgs] == [msgid]
    s = milter.wait_sessions(1, ended=True)[0]
    cmds = s.cmds()
    # (Postfix sends SMFIC_ABORT after each message and SMFIC_QUIT at the end)
    assert re.fullmatch(r"OCHMRRTL+NB+EA*Q?", cmds), cmds
    opt = s.first("optneg").fields
    assert opt["version"] == 6, opt
    assert s.first("connect").fields["addr"] == "127.0.0.1"
    assert s.first("connect").fields["family"] == "4"
    assert s.first("connect").fields["port"] == out["port"]
    assert s.first("helo").fields["helo"] == "client.example"
    assert s.first("mail").args[0] == "<%s>" % SENDER
    assert s.rcpts() == ["<%s>" % ALICE, "<%s>" % BOB]
    hdrs = [(n, v.strip()) for n, v in s.headers()]
    for want in (("Subject", "test"), ("Message-ID", msgid), ("X-Two", "a"), ("X-Two", "b")):
        assert want in hdrs, hdrs
    assert hdrs.index(("X-Two", "a")) < hdrs.index(("X-Two", "b"))
    # the body as on the wire, dot-stuffing undone, CRLF line ends
    assert s.body() == body.replace("\n", "\r\n").encode()


def test_long_body_in_chunks(dsmtp_factory, milter):
    srv = site(dsmtp_factory, milter)
    body = "".join("%06d %s\n" % (i, "y" * 70) for i in range(3000))  # ~230 KB
    _, text = make_message(body=body)
    assert session(srv, text=text)["eom"][0] == 250
    s = milter.wait_sessions(1, ended=True)[0]
    chunks = [p.fields["chunk"] for p in s.all("body")]
    assert len(chunks) >= 4 and all(0 < len(c) <= 65535 for c in chunks), [len(c) for c in chunks]
    assert s.body() == body.replace("\n", "\r\n").encode()
    assert len(delivered(srv)) == 1


def test_unix_socket_milter(dsmtp_factory, milter_factory):
    m = milter_factory(unix=True)
    m.on("eom", ("addheader", "X-Unix-Milter", "seen"), mf.CONTINUE)
    srv = site(dsmtp_factory, m)
    assert session(srv)["eom"][0] == 250
    raw, msg = delivered(srv)[0]
    assert msg["X-Unix-Milter"] == "seen"
    assert m.wait_sessions(1)[0].first("connect").fields["addr"] == "127.0.0.1"


@pytest.mark.skipif(not ipv6_loopback(), reason="no ::1 here")
def test_ipv6_milter(dsmtp_factory, milter_factory):
    m = milter_factory(host="::1")
    assert m.address.startswith("inet:[::1]:")
    srv = site(dsmtp_factory, m)
    assert session(srv)["eom"][0] == 250
    assert "E" in m.wait_sessions(1, ended=True)[0].cmds()


def test_mail_and_rcpt_parameters_passed(dsmtp_factory, milter):
    """The ESMTP parameters of MAIL and RCPT reach the milters, as under Postfix."""
    srv = site(dsmtp_factory, milter)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> SIZE=400 BODY=8BITMIME RET=HDRS ENVID=abc" % SENDER, 250)
        c.expect("RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y.example" % ALICE, 250)
        c.expect("RSET", 250)
    s = milter.wait_sessions(1, ended=True)[0]
    assert s.first("mail").args == ["<%s>" % SENDER, "SIZE=400", "BODY=8BITMIME", "RET=HDRS",
                                    "ENVID=abc"], s.first("mail").args
    assert s.first("rcpt").args == ["<%s>" % ALICE, "NOTIFY=SUCCESS,FAILURE",
                                    "ORCPT=rfc822;x@y.example"], s.first("rcpt").args


def test_pipelined_commands_answered_in_order(dsmtp_factory, milter):
    """PIPELINING with a slow milter: the replies come in the commands' order."""
    milter.on("mail", ("sleep", 0.3), mf.CONTINUE)
    milter.on("rcpt", lambda sess, p: [("sleep", 0.2), mf.REJECT if "bob" in p.args[0]
                                       else mf.CONTINUE])
    srv = site(dsmtp_factory, milter)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
               % (SENDER, BOB, ALICE, BOB))
        codes = [c.reply()[0] for _ in range(5)]
        assert codes == [250, 550, 250, 550, 354], codes
        c.send(to_wire(make_message()[1]) + b".\r\n")
        assert c.reply()[0] == 250
    assert len(delivered(srv)) == 1 and delivered(srv, "bob") == []


@pytest.mark.parametrize("late", [mf.HANG, [("sleep", 1.0), mf.CONTINUE]],
                         ids=["milter-hangs", "milter-answers-late"])
def test_client_gone_while_the_milter_thinks(dsmtp_factory, milter, late):
    """The client hangs up while dsmtp waits for the milter at MAIL: the milter's late
    answer, or its timeout, finds the session gone; the milter connection is closed by
    then, and dsmtp goes on (and its ASan build finds nothing)."""
    milter.on("mail", late)
    srv = site(dsmtp_factory, milter, milter_command_timeout="2s")
    c = RawSMTP(srv.smtp_port)
    c.ehlo()
    c.send("MAIL FROM:<%s>\r\n" % SENDER)
    s = milter.wait_sessions(1)[0]
    assert s.wait_cmd("M")
    c.close()
    assert s.ended.wait(6), "milter connection still open 6 s after the client left"
    milter.on("mail", mf.CONTINUE)
    assert session(srv)["eom"][0] == 250 and srv.alive()
    assert len(delivered(srv)) == 1


def test_two_transactions_one_milter_connection(dsmtp_factory, milter):
    srv = site(dsmtp_factory, milter)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        for i in range(2):
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            c.expect("RCPT TO:<%s>" % ALICE, 250)
            assert c.data(make_message(subject="n%d" % i)[1])[0] == 250
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RSET", 250)  # aborts the third transaction at the milter
        c.expect("QUIT", 221)
    s = milter.wait_sessions(1, ended=True)[0]
    assert len(milter.sessions) == 1
    assert s.cmds().count("M") == 3 and s.cmds().count("E") == 2
    assert "A" in s.cmds()[s.cmds().rindex("M"):], s.cmds()
    assert [m["Subject"] for _, m in delivered(srv)] == ["n0", "n1"]


def test_stages_the_milter_does_not_want(dsmtp_factory, milter_factory):
    """SMFIP_NO* flags in the milter's OPTNEG answer: those stages are not sent."""
    m = milter_factory(protocol=mf.SMFIP_NOHELO | mf.SMFIP_NODATA | mf.SMFIP_NOHDRS
                       | mf.SMFIP_NOEOH | mf.SMFIP_NOBODY)
    srv = site(dsmtp_factory, m)
    assert session(srv)["eom"][0] == 250
    s = m.wait_sessions(1, ended=True)[0]
    offered = s.first("optneg").fields["protocol"]
    assert offered & m.protocol == m.protocol, hex(offered)
    assert re.fullmatch(r"OCMRE(A*)Q?", s.cmds()), s.cmds()
    assert len(delivered(srv)) == 1


def test_stages_without_reply(dsmtp_factory, milter_factory):
    """SMFIP_NR_* flags: dsmtp sends those stages and does not wait for an answer."""
    flags = (mf.SMFIP_NR_CONN | mf.SMFIP_NR_HELO | mf.SMFIP_NR_MAIL | mf.SMFIP_NR_RCPT
             | mf.SMFIP_NR_DATA | mf.SMFIP_NR_HDR | mf.SMFIP_NR_EOH | mf.SMFIP_NR_BODY)
    m = milter_factory(protocol=flags)
    m.on("eom", ("addheader", "X-Answered", "eom only"), mf.CONTINUE)
    srv = site(dsmtp_factory, m, milter_command_timeout="2s", milter_content_timeout="2s")
    t0 = time.monotonic()
    out = session(srv)
    assert out["eom"][0] == 250 and time.monotonic() - t0 < 1.5, out
    s = m.wait_sessions(1, ended=True)[0]
    assert s.protocol == flags, hex(s.protocol)  # all of them offered and taken
    assert re.fullmatch(r"OCHMRTL+NB+EA*Q?", s.cmds()), s.cmds()
    (_, msg), = delivered(srv)
    assert msg["X-Answered"] == "eom only"


def test_skip_the_rest_of_the_body(dsmtp_factory, milter_factory):
    """SMFIR_SKIP (negotiated with SMFIP_SKIP) to a body chunk: no more chunks, then the
    end of the message as usual."""
    m = milter_factory(protocol=mf.SMFIP_SKIP)
    m.on("body", ("raw", "s", b""))
    m.on("eom", ("addheader", "X-Skipped", "yes"), mf.CONTINUE)
    srv = site(dsmtp_factory, m)
    body = "".join("%06d %s\n" % (i, "z" * 70) for i in range(3000))  # several chunks
    assert session(srv, text=make_message(body=body)[1])["eom"][0] == 250
    s = m.wait_sessions(1, ended=True)[0]
    assert s.cmds().count("B") == 1 and "E" in s.cmds(), s.cmds()
    (raw, msg), = delivered(srv)
    assert msg["X-Skipped"] == "yes" and raw.endswith(body.encode())


def test_header_leading_space(dsmtp_factory, milter_factory):
    """SMFIP_HDR_LEADSPC: header values go with the space after the colon, and a changed
    value is taken as it is (its own leading space included)."""
    m = milter_factory(protocol=mf.SMFIP_HDR_LEADSPC)
    m.on("eom", ("chgheader", 1, "Subject", "  two spaces"), mf.CONTINUE)
    srv = site(dsmtp_factory, m)
    _, text = make_message(subject="spaced", extra_headers=("X-Tight:tight",))
    assert session(srv, text=text)["eom"][0] == 250
    hdrs = m.wait_sessions(1, ended=True)[0].headers()
    assert ("Subject", " spaced") in hdrs and ("X-Tight", "tight") in hdrs, hdrs
    (raw, _), = delivered(srv)
    assert b"\nSubject:  two spaces\n" in raw, raw


# ------------------------------------------------------------------ verdicts


VERDICT_REPLIES = {
    # verdict: (connect code, connect enhanced, later code, later enhanced)
    "reject": (554, "5.7.1", 550, "5.7.1"),
    "tempfail": (421, "4.7.1", 451, "4.7.1"),
}


@pytest.mark.parametrize("stage", list(SMTP_STEP))
@pytest.mark.parametrize("verdict", ["reject", "tempfail"])
def test_verdict_at_stage(dsmtp_factory, milter, stage, verdict):
    milter.on(stage, mf.REJECT if verdict == "reject" else mf.TEMPFAIL)
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    step = refused_step(out, stage)
    ccode, cenh, code, enh = VERDICT_REPLIES[verdict]
    if stage == "connect":
        assert_refused(out, "connect", ccode, cenh)
        assert out["closed"], "the connection stays open after a %d greeting" % ccode
    else:
        assert out["connect"][0] == 220
        assert_refused(out, step, code, enh)
    assert delivered(srv) == []
    assert milter_log(srv, milter), srv.log()[-3000:]
    assert srv.alive()


@pytest.mark.parametrize("stage", list(SMTP_STEP))
def test_replycode_at_stage(dsmtp_factory, milter, stage):
    text = CUSTOM_CONNECT if stage == "connect" else CUSTOM
    milter.on(stage, ("reply", text))
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    code, lines = reply_of(out, refused_step(out, stage))
    assert "%d %s" % (code, " ".join(lines)) == text, out
    if stage == "connect":
        assert out["closed"], out
    assert delivered(srv) == []
    assert milter_log(srv, milter)


@pytest.mark.parametrize("stage", ["rcpt", "eom"])
def test_multiline_replycode(dsmtp_factory, milter, stage):
    milter.on(stage, ("reply", "550-5.7.0 first line\r\n550-5.7.0 second line\r\n"
                               "550 5.7.0 last line"))
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    assert reply_of(out, stage) == (550, ["5.7.0 first line", "5.7.0 second line",
                                          "5.7.0 last line"]), out


def test_tempfail_replycode_4xx(dsmtp_factory, milter):
    milter.on("mail", ("reply", "452 4.3.1 come back later"))
    srv = site(dsmtp_factory, milter)
    assert session(srv)["mail"] == (452, ["4.3.1 come back later"])


def test_rcpt_reject_only_one_recipient(dsmtp_factory, milter):
    milter.on("rcpt", lambda sess, p: mf.REJECT if "bob" in p.args[0] else mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    out = session(srv, rcpts=(ALICE, BOB))
    assert out["rcpt"][0][0] == 250
    assert out["rcpt"][1][0] == 550 and out["rcpt"][1][1][-1].startswith("5.7.1"), out
    assert out["eom"][0] == 250
    assert len(delivered(srv, "alice")) == 1 and delivered(srv, "bob") == []
    assert milter_log(srv, milter)


def test_session_goes_on_after_a_refusal(dsmtp_factory, milter):
    """A rejected MAIL leaves the session usable: the next transaction is filtered again."""
    milter.on("mail", lambda sess, p: mf.REJECT if "bad@" in p.args[0] else mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<bad@remote.example>", 550, "5.7.1")
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        assert c.data(make_message()[1])[0] == 250
    assert len(delivered(srv)) == 1
    assert milter.wait_sessions(1)[0].wait_cmd("E")


@pytest.mark.parametrize("stage", list(LATER))
def test_accept_skips_the_rest(dsmtp_factory, milter, stage):
    milter.on(stage, mf.ACCEPT)
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    assert out["eom"][0] == 250, out
    assert len(delivered(srv)) == 1
    s = milter.wait_sessions(1, ended=True)[0]
    cmds = s.cmds()
    first = cmds.index(mf.STAGE_LETTER[stage].decode())
    assert not set(cmds[first + 1:]) & set(LATER[stage]), (stage, cmds)
    assert milter_log(srv, milter)


def test_accept_at_mail_lasts_one_transaction(dsmtp_factory, milter):
    milter.on("mail", lambda sess, p: mf.ACCEPT if sess.cmds().count("M") == 1 else mf.CONTINUE)
    milter.on("eom", ("addheader", "X-Filtered", "yes"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        for i in range(2):
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            c.expect("RCPT TO:<%s>" % ALICE, 250)
            assert c.data(make_message(subject="n%d" % i)[1])[0] == 250
    msgs = delivered(srv)
    assert [(m["Subject"], m["X-Filtered"]) for _, m in msgs] == [("n0", None), ("n1", "yes")]


def test_discard_at_eom(dsmtp_factory, milter):
    milter.on("eom", mf.DISCARD)
    srv = site(dsmtp_factory, milter)
    out = session(srv, rcpts=(ALICE, BOB))
    assert out["eom"][0] == 250, out
    assert delivered(srv, "alice") == [] and delivered(srv, "bob") == []
    assert srv.queue_files() == []
    assert "result=discarded" in srv.log()
    assert milter_log(srv, milter)


def test_quarantine_at_eom(dsmtp_factory, milter):
    """A quarantined message is held as a suspected mail bomb is (tellsmtp bombs)."""
    milter.on("eom", ("quarantine", "looks odd"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    assert out["eom"][0] == 250, out
    assert delivered(srv) == []
    assert milter_log(srv, milter)
    rc, text, err = srv.tellsmtp("bombs")
    assert rc == 0 and "1 held message" in text and "<%s>" % ALICE in text, (text, err)


def test_reject_at_eom_with_bdat(dsmtp_factory, milter):
    milter.on("eom", mf.REJECT)
    srv = site(dsmtp_factory, milter)
    out = session(srv, bdat=True)
    assert_refused(out, "eom", 550, "5.7.1")
    assert delivered(srv) == []
    s = milter.wait_sessions(1)[0]
    assert s.wait_cmd("E") and b"Hello." in s.body()


# ------------------------------------------------------------------ modifications


def test_header_modifications(dsmtp_factory, milter):
    milter.on("eom", ("addheader", "X-Milter-Added", "added value"),
              ("insheader", 0, "X-Milter-Top", "inserted"),
              ("chgheader", 1, "Subject", "changed subject"),
              ("chgheader", 2, "X-Dup", "second changed"),
              ("chgheader", 1, "X-Drop", ""), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    msgid, text = make_message(subject="original subject",
                               extra_headers=("X-Dup: one", "X-Dup: two", "X-Drop: me"))
    assert session(srv, text=text)["eom"][0] == 250
    (raw, msg), = delivered(srv)
    hdr = header_block(raw)
    assert msg["X-Milter-Added"] == "added value"
    assert msg.get_all("Subject") == ["changed subject"], hdr
    assert msg.get_all("X-Dup") == ["one", "second changed"], hdr
    assert "X-Drop" not in hdr and "original subject" not in hdr, hdr
    assert hdr.index("X-Milter-Top: inserted") < hdr.index("From: " + SENDER), hdr
    assert msg["Message-ID"] == msgid and msg.get_payload() == "Hello.\n"


def test_body_replaced(dsmtp_factory, milter):
    milter.on("eom", ("replbody", b"The new body.\r\n.Leading dot\r\n"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    _, text = make_message(body="The old body.\n")
    assert session(srv, text=text)["eom"][0] == 250
    (raw, msg), = delivered(srv)
    assert raw.split(b"\n\n", 1)[1] == b"The new body.\n.Leading dot\n", raw
    assert msg["Subject"] == "test"


def test_body_replaced_in_several_packets(dsmtp_factory, milter):
    parts = [("%d" % i).encode() * 1000 + b"\r\n" for i in range(1, 6)] * 20  # ~100 KB
    milter.on("eom", *[("replbody", p) for p in parts], mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    assert session(srv)["eom"][0] == 250
    (raw, _), = delivered(srv)
    assert raw.split(b"\n\n", 1)[1] == b"".join(parts).replace(b"\r\n", b"\n")


def test_recipient_added_and_removed(dsmtp_factory, milter):
    milter.on("eom", ("addrcpt", "<%s>" % BOB), ("delrcpt", "<%s>" % ALICE), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    msgid, text = make_message()
    assert session(srv, text=text)["eom"][0] == 250
    assert delivered(srv, "alice") == []
    assert [m["Message-ID"] for _, m in delivered(srv, "bob")] == [msgid]


def test_added_recipient_elsewhere_is_queued(dsmtp_factory, milter):
    milter.on("eom", ("addrcpt", "<someone@remote.example>"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    assert session(srv)["eom"][0] == 250
    assert len(delivered(srv)) == 1
    assert wait_for(lambda: srv.queue_files(), 5)
    assert any(b"someone@remote.example" in open(q, "rb").read() for q in srv.queue_files())


def test_modification_with_progress(dsmtp_factory, milter):
    """SMFIR_PROGRESS packets keep a slow milter within milter_content_timeout."""
    milter.on("eom", ("progress", 5, 0.5), ("addheader", "X-Slow", "done"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter, milter_content_timeout="1s", milter_command_timeout="1s")
    t0 = time.monotonic()
    out = session(srv)
    assert out["eom"][0] == 250 and time.monotonic() - t0 >= 2.0, out
    (_, msg), = delivered(srv)
    assert msg["X-Slow"] == "done"


# ------------------------------------------------------------------ macros


def test_connect_macros(dsmtp_factory, milter):
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    s = milter.wait_sessions(1)[0]
    mac = s.macros("connect")
    assert mac.get("j") == "mx." + DOMAIN, mac
    assert mac.get("{daemon_name}"), mac
    assert mac.get("{client_addr}") == "127.0.0.1", mac
    assert mac.get("{client_port}") == str(out["port"]), mac
    assert "{client_name}" in mac, mac
    assert mac.get("{if_addr}") == "127.0.0.1", mac


def test_mail_rcpt_eom_macros(dsmtp_factory, milter):
    srv = site(dsmtp_factory, milter)
    session(srv, rcpts=(ALICE, BOB))
    s = milter.wait_sessions(1, ended=True)[0]
    mail = s.first("mail").macros
    assert mail.get("{mail_addr}") == SENDER, mail
    assert "{auth_authen}" not in mail or not mail["{auth_authen}"], mail
    assert [p.macros.get("{rcpt_addr}") for p in s.all("rcpt")] == [ALICE, BOB]
    qid = s.macros("eom").get("i")
    assert qid and qid == s.macros("mail").get("i", qid), (s.macros("mail"), s.macros("eom"))
    assert qid in srv.log()


def test_auth_and_tls_macros(dsmtp_factory, milter):
    srv = site(dsmtp_factory, milter)
    out = session(srv, tls=True, auth="alice")
    assert out["eom"][0] == 250, out
    s = milter.wait_sessions(1, ended=True)[0]
    helo = s.macros("helo")
    assert helo.get("{tls_version}", "").startswith("TLS"), helo
    assert helo.get("{cipher}"), helo
    mail = s.macros("mail")
    assert mail.get("{auth_type}") == "PLAIN", mail
    assert mail.get("{auth_authen}") == "alice", mail


# ------------------------------------------------------------------ failures


def timed_session(srv, **kw):
    t0 = time.monotonic()
    out = session(srv, **kw)
    return out, time.monotonic() - t0


@pytest.mark.parametrize("action,step,code,enhanced", [
    ("tempfail", "mail", 451, "4.7.1"), ("reject", "mail", 550, "5.7.1"),
    ("accept", None, None, None)])
def test_command_timeout(dsmtp_factory, milter, action, step, code, enhanced):
    milter.on("mail", mf.HANG)
    srv = site(dsmtp_factory, milter, milter_command_timeout="1s",
               milter_default_action=action)
    out, took = timed_session(srv)
    assert 0.8 <= took < 4.0, (took, out)
    if step:
        assert_refused(out, step, code, enhanced)
        assert delivered(srv) == []
    else:
        assert out["eom"][0] == 250, out
        assert len(delivered(srv)) == 1
        # skipped for the rest of the session: not asked again on a new connection
        assert len(milter.sessions) == 1, [x.cmds() for x in milter.sessions]
    assert milter_log(srv, milter), srv.log()[-3000:]
    s = milter.wait_sessions(1, ended=True, timeout=5)[0]
    assert s.end.startswith("hung, then closed"), s.end


def test_timeout_delays_no_other_session(dsmtp_factory, milter):
    milter.on("mail", lambda sess, p: mf.HANG if sess is milter.sessions[0] else mf.CONTINUE)
    srv = site(dsmtp_factory, milter, milter_command_timeout="4s")
    result = {}

    def slow():
        result["out"], result["took"] = timed_session(srv)

    t = threading.Thread(target=slow)
    t.start()
    try:
        assert wait_for(lambda: milter.sessions and "M" in milter.sessions[0].cmds(), 5)
        out, took = timed_session(srv)
        assert out["eom"][0] == 250 and took < 2.0, (took, out)
        assert len(milter.sessions) == 2 and "E" in milter.sessions[1].cmds()
        assert "M" in milter.sessions[0].cmds() and result == {}, "hung session over early"
    finally:
        t.join(15)
    assert_refused(result["out"], "mail", 451, "4.7.1")
    assert 3.8 <= result["took"] < 7.0, result


def test_sessions_filtered_in_parallel(dsmtp_factory, milter):
    """Ten sessions at once, the milter taking 0.5 s over each message: about 0.5 s in
    all, not 5 (one milter connection each, none waiting for another)."""
    milter.on("eom", ("sleep", 0.5), ("addheader", "X-Slow", "1"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter)
    outs = []
    threads = [threading.Thread(target=lambda: outs.append(session(srv))) for _ in range(10)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    took = time.monotonic() - t0
    assert [o["eom"][0] for o in outs] == [250] * 10, outs
    assert took < 3.0, took
    assert len(milter.sessions) == 10
    assert [m["X-Slow"] for _, m in delivered(srv)] == ["1"] * 10


def test_content_timeout(dsmtp_factory, milter):
    milter.on("body", mf.HANG)
    srv = site(dsmtp_factory, milter, milter_content_timeout="1s", milter_command_timeout="30s")
    t0 = time.monotonic()
    out = session(srv)
    took = time.monotonic() - t0
    assert_refused(out, "eom", 451, "4.7.1")
    assert 0.8 <= took < 4.0, took
    assert delivered(srv) == []


def test_optneg_timeout_at_connect(dsmtp_factory, milter_factory):
    m = milter_factory(optneg=mf.HANG)
    srv = site(dsmtp_factory, m, milter_command_timeout="1s", milter_connect_timeout="1s")
    out, took = timed_session(srv)
    assert_refused(out, "connect", 421, "4.7.1")
    assert 0.8 <= took < 4.0, took
    assert milter_log(srv, m)


@pytest.fixture
def black_hole():
    """A 127.0.0.1 port where connect() hangs: a listener with a full accept queue."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fill = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(lsock.getsockname())
        except BlockingIOError:
            pass
        fill.append(s)
    time.sleep(0.1)
    yield "inet:127.0.0.1:%d" % lsock.getsockname()[1]
    for s in fill + [lsock]:
        s.close()


def test_connect_timeout(dsmtp_factory, black_hole):
    srv = site(dsmtp_factory, black_hole, milter_connect_timeout="1s")
    out, took = timed_session(srv)
    assert_refused(out, "connect", 421, "4.7.1")
    assert 0.8 <= took < 4.0, took
    assert milter_log(srv, black_hole)


def dead_address(kind):
    if kind == "inet":
        return "inet:127.0.0.1:%d" % free_ports(1)[0]
    return "unix:/nonexistent-dmail-it/milter.sock"


@pytest.mark.parametrize("kind", ["inet", "unix"])
@pytest.mark.parametrize("action", ["tempfail", "reject", "accept"])
def test_dead_milter(dsmtp_factory, kind, action):
    addr = dead_address(kind)
    srv = site(dsmtp_factory, addr, milter_default_action=action)
    out, took = timed_session(srv)
    assert took < 3.0, took
    if action == "tempfail":
        assert_refused(out, "connect", 421, "4.7.1")
    elif action == "reject":
        assert_refused(out, "connect", 554, "5.7.1")
    else:
        assert out["eom"][0] == 250, out
        assert len(delivered(srv)) == 1
    assert milter_log(srv, addr), srv.log()[-3000:]


def test_default_action_is_tempfail(dsmtp_factory):
    addr = dead_address("inet")
    srv = dsmtp_factory(milters=addr)
    assert_refused(session(srv), "connect", 421, "4.7.1")


@pytest.mark.parametrize("step,stage", [(mf.CLOSE, "rcpt"), (mf.GARBAGE, "mail"),
                                        (mf.CLOSE, "eom"), (("raw", "z", b""), "helo")],
                         ids=["close-rcpt", "garbage-mail", "close-eom", "unknown-reply-helo"])
def test_broken_milter_mid_session(dsmtp_factory, milter, step, stage):
    milter.on(stage, step)
    srv = site(dsmtp_factory, milter)
    out = session(srv)
    assert_refused(out, refused_step(out, stage), 451, "4.7.1")
    assert delivered(srv) == []
    assert milter_log(srv, milter)
    # the server is fine, and the next session talks to the milter again
    milter.on(stage, mf.CONTINUE)
    assert session(srv)["eom"][0] == 250
    assert len(delivered(srv)) == 1 and len(milter.sessions) == 2


@pytest.mark.parametrize("action,code", [("tempfail", 451), ("accept", 250)])
def test_milter_closes_mid_body(dsmtp_factory, milter, action, code):
    """A filter that closes its connection after the second of several body chunks (the
    rest of the body still to send): its default action decides the message (451 4.7.1
    and nothing delivered, or accepted and delivered whole), the failure is logged, and
    the next session is served."""
    milter.on("body", lambda sess, pkt: [mf.CLOSE] if len(sess.all("body")) >= 2
              else [mf.CONTINUE])
    srv = site(dsmtp_factory, milter, milter_default_action=action)
    body = "".join("%06d %s\n" % (i, "z" * 70) for i in range(3000))  # ~230 KB: 4+ chunks
    _, text = make_message(body=body)
    out = session(srv, text=text)
    assert out["eom"][0] == code, out
    s = milter.wait_sessions(1, ended=True)[0]
    assert len(s.all("body")) == 2 and "E" not in s.cmds(), s.cmds()
    assert milter_log(srv, milter)
    if code == 451:
        assert_refused(out, "eom", 451, "4.7.1")
        assert delivered(srv) == []
    else:
        msgs = delivered(srv)
        raw = msgs[0][0] if msgs else b""
        assert len(msgs) == 1 and body.encode()[-2000:] in raw and b"\n000000 z" in raw, \
            "the whole body is delivered"
    milter.on("body", mf.CONTINUE)
    assert session(srv)["eom"][0] == 250


@pytest.mark.parametrize("action", ["tempfail", "accept"])
def test_oversized_changes_fail_the_milter(dsmtp_factory, milter, action):
    """A filter whose changes at end of message (here a replacement body in 1 KB packets)
    come to more than max_msg_size is dropped like a broken one: its default action
    applies and dsmtp holds no more than the limit for it; a packet longer than the
    1 MB packet limit likewise."""
    milter.on("eom", *[("replbody", b"y" * 1022 + b"\r\n")] * 40, mf.CONTINUE)
    srv = site(dsmtp_factory, milter, max_msg_size="32K", milter_default_action=action)
    msgid, text = make_message()
    out = session(srv, text=text)
    log = srv.log()
    assert "changes larger than max_msg_size" in log, log[-3000:]
    if action == "tempfail":
        assert_refused(out, "eom", 451, "4.7.1")
        assert delivered(srv) == []
    else:
        assert out["eom"][0] == 250, out
        (raw, msg), = delivered(srv)
        assert msg["Message-ID"] == msgid and b"yyyy" not in raw  # the original body
    # a packet over the 1 MB limit
    milter.on("eom", ("raw", "b", b"z" * ((1 << 20) + 16)), mf.CONTINUE)
    out = session(srv)
    if action == "tempfail":
        assert_refused(out, "eom", 451, "4.7.1")
    else:
        assert out["eom"][0] == 250, out
        assert all(b"zzzz" not in raw for raw, _ in delivered(srv))
    # within the limit the same filter's changes are made
    milter.on("eom", ("replbody", b"small\r\n"), mf.CONTINUE)
    assert session(srv)["eom"][0] == 250
    assert any(raw.endswith(b"\n\nsmall\n") for raw, _ in delivered(srv))


def test_broken_milter_skipped_with_accept(dsmtp_factory, milter):
    milter.on("rcpt", mf.CLOSE)
    milter.on("eom", ("addheader", "X-Should-Not", "be here"), mf.CONTINUE)
    srv = site(dsmtp_factory, milter, milter_default_action="accept")
    out = session(srv)
    assert out["eom"][0] == 250, out
    (_, msg), = delivered(srv)
    assert msg["X-Should-Not"] is None
    assert len(milter.sessions) == 1


# ------------------------------------------------------------------ several milters, options


def test_two_milters_in_order(dsmtp_factory, milter_factory):
    m1, m2 = milter_factory(), milter_factory(unix=True)
    m1.on("eom", ("addheader", "X-First", "1"), mf.CONTINUE)
    m2.on("eom", ("addheader", "X-Second", "2"), mf.CONTINUE)
    m1.on("rcpt", lambda sess, p: mf.REJECT if "bob" in p.args[0] else mf.CONTINUE)
    srv = site(dsmtp_factory, m1, m2)
    out = session(srv, rcpts=(ALICE, BOB))
    assert out["eom"][0] == 250 and out["rcpt"][1][0] == 550, out
    (_, msg), = delivered(srv)
    assert msg["X-First"] == "1" and msg["X-Second"] == "2"
    s1, s2 = m1.wait_sessions(1, ended=True)[0], m2.wait_sessions(1, ended=True)[0]
    assert s1.first("connect").t <= s2.first("connect").t
    assert s1.first("eom").t <= s2.first("eom").t
    # the second sees the message as the first left it (so does Postfix)
    assert ("X-First", "1") in [(n, v.strip()) for n, v in s2.headers()], s2.headers()
    # a recipient the first milter refused is not shown to the second
    assert s1.rcpts() == ["<%s>" % ALICE, "<%s>" % BOB] and s2.rcpts() == ["<%s>" % ALICE]


def test_first_milter_reject_stops_the_chain(dsmtp_factory, milter_factory):
    m1, m2 = milter_factory(), milter_factory()
    m1.on("mail", mf.REJECT)
    srv = site(dsmtp_factory, m1, m2)
    assert_refused(session(srv), "mail", 550, "5.7.1")
    assert "M" not in "".join(s.cmds() for s in m2.sessions)
    assert milter_log(srv, m1)


def test_milter_options_default_action(dsmtp_factory, milter):
    dead = dead_address("inet")
    milter.on("eom", ("addheader", "X-Live", "yes"), mf.CONTINUE)
    srv = site(dsmtp_factory, dead, milter, milter_default_action="tempfail",
               milter_options="%s default_action=accept" % dead)
    out = session(srv)
    assert out["eom"][0] == 250, out
    (_, msg), = delivered(srv)
    assert msg["X-Live"] == "yes"
    assert milter_log(srv, dead)


def test_milter_options_timeout(dsmtp_factory, milter_factory):
    slow, other = milter_factory(), milter_factory()
    slow.on("mail", mf.HANG)
    srv = site(dsmtp_factory, slow, other, milter_command_timeout="30s",
               milter_options=["%s command_timeout=1s default_action=reject" % slow.address,
                               "%s default_action=accept" % other.address])
    out, took = timed_session(srv)
    assert_refused(out, "mail", 550, "5.7.1")
    assert 0.8 <= took < 4.0, took


def test_reload_changes_milters(dsmtp_factory, milter_factory):
    m1, m2 = milter_factory(), milter_factory()
    srv = site(dsmtp_factory, m1)
    assert session(srv)["eom"][0] == 250
    srv.write_conf({"milters": m2.address})
    rc, out, err = srv.tellsmtp("reload")
    assert rc == 0, (out, err)
    assert session(srv)["eom"][0] == 250
    assert len(m1.sessions) == 1 and len(m2.sessions) == 1


# ------------------------------------------------------------------ dsmtp -t


@pytest.mark.parametrize("line", [
    "milters bogus:/tmp/x", "milters inet:127.0.0.1", "milters inet:127.0.0.1:99999",
    "milters unix:", "milter_default_action perhaps", "milter_command_timeout soon",
    "milter_options inet:127.0.0.1:1 default_action=perhaps",
    "milter_options inet:127.0.0.1:1 nonsense=1"])
def test_config_test_refuses_bad_milter_settings(dsmtp_factory, line):
    srv = dsmtp_factory(start=False)
    with open(srv.conf_path, "a") as f:
        f.write(line + "\n")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 78, (line, r.stdout, r.stderr)
    n = sum(1 for _ in open(srv.conf_path))
    assert "%s:%d:" % (srv.conf_path, n) in r.stdout + r.stderr, (line, r.stdout, r.stderr)


def test_config_test_accepts_milter_settings(dsmtp_factory):
    srv = dsmtp_factory(start=False, milters="inet:127.0.0.1:1, unix:/run/x.sock",
                        milter_default_action="accept", milter_connect_timeout="2s",
                        milter_command_timeout="3s", milter_content_timeout="1m",
                        milter_options="unix:/run/x.sock default_action=reject "
                                       "connect_timeout=1s command_timeout=2s "
                                       "content_timeout=10s")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "unknown setting" not in r.stdout + r.stderr, (r.stdout, r.stderr)
