"""The DSN extension (RFC 3461) end to end: dsmtp offers DSN, checks RET, ENVID, NOTIFY and
ORCPT (501 5.5.4 with the reason), keeps them in the queue file, and honours them: no
report for NOTIFY=NEVER or without FAILURE/DELAY, a success report for NOTIFY=SUCCESS
(delivered into a mailbox, or relayed to a server without DSN), RET choosing headers or
the whole message, ENVID and ORCPT quoted in the report; passed on to a server that
offers DSN (a second dsmtp, which then reports itself); sendmail's -N, -R and -V. Reports
are read with Python's email package (dmail_site.dsn_reports, dsn_fields)."""

import os
import shutil
import smtplib
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, HOST, PASSWORDS, REMOTE, RawSMTP, dsn_fields, dsn_reports,
                        free_ports, qfile_bytes, sendmail, tls_client_context, wait_for)

needs_dns = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")


def submit(site, rcpts, text, mail_opts=(), rcpt_opts=(), user="alice"):
    """Send as an authenticated user (who may relay) through the submission port."""
    with smtplib.SMTP(HOST, site.submission_port, timeout=20) as s:
        s.starttls(context=tls_client_context())
        s.login(user, PASSWORDS[user])
        assert "dsn" in s.esmtp_features
        refused = s.sendmail("%s@%s" % (user, DOMAIN), rcpts, text, mail_options=list(mail_opts),
                             rcpt_options=list(rcpt_opts))
        assert refused == {}, refused


def fields(report):
    per_msg, per_rcpt, parts = dsn_fields(report)
    return per_msg, per_rcpt, parts


def nospace(v):
    return str(v).replace(" ", "")


# ------------------------------------------------------------------------- the dialogue


def test_ehlo_offers_dsn(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        assert "DSN" in c.ehlo()


MAIL_ERRORS = [
    ("RET=BODY", "Bad RET value"),
    ("RET=", "Bad RET value"),
    ("RET", "RET needs a value"),
    ("RET=FULL RET=HDRS", "Duplicate RET"),
    ("ENVID=", "ENVID needs a value"),
    ("ENVID=a+4", "two hexadecimal digits"),
    ("ENVID=a+ZZb", "two hexadecimal digits"),
    ("ENVID=a=b", "not allowed in xtext"),
    ("ENVID=a+0Db", "control character"),
    ("ENVID=" + "e" * 101, "longer than 100"),
    ("ENVID=a ENVID=b", "Duplicate ENVID"),
]

RCPT_ERRORS = [
    ("NOTIFY=", "NOTIFY needs a value"),
    ("NOTIFY=SOMETIMES", "NOTIFY takes NEVER"),
    ("NOTIFY=NEVER,DELAY", "cannot be combined"),
    ("NOTIFY=DELAY,DELAY", "twice"),
    ("NOTIFY=SUCCESS,", "NOTIFY takes NEVER"),
    ("NOTIFY=NEVER NOTIFY=NEVER", "Duplicate NOTIFY"),
    ("ORCPT=", "ORCPT needs a value"),
    ("ORCPT=alice@" + DOMAIN, "addr-type;address"),
    ("ORCPT=rfc822;", "no address"),
    ("ORCPT=rfc822;a+0Ab@x", "control character"),
    ("ORCPT=rfc822;" + "o" * 494, "longer than 500"),
    ("ORCPT=rfc822;a@x ORCPT=rfc822;b@x", "Duplicate ORCPT"),
]


def test_parameter_syntax_errors(dsmtp):
    rcpt = "RCPT TO:<alice@%s>" % DOMAIN
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        for params, why in MAIL_ERRORS:
            _, lines = c.expect("MAIL FROM:<x@remote.example> " + params, 501, "5.5.4")
            assert why in lines[-1], (params, lines)
        # a RCPT parameter on MAIL and the reverse are not supported at all
        c.expect("MAIL FROM:<x@remote.example> NOTIFY=NEVER", 555, "5.5.4")
        c.expect("MAIL FROM:<x@remote.example> RET=FULL ENVID=" + "e" * 100, 250)
        c.expect(rcpt + " RET=FULL", 555, "5.5.4")
        for params, why in RCPT_ERRORS:
            _, lines = c.expect(rcpt + " " + params, 501, "5.5.4")
            assert why in lines[-1], (params, lines)
        c.expect(rcpt + " NOTIFY=success,Failure ORCPT=rfc822;" + "o" * 493, 250, "2.1.5")
        c.expect(rcpt + " NOTIFY=NEVER ORCPT=utf-8;al+C3+A9@x", 250, "2.1.5")
    # only after EHLO
    with RawSMTP(dsmtp.smtp_port) as c:
        c.expect("HELO client.example", 250)
        c.expect("MAIL FROM:<x@remote.example> RET=FULL", 555)
        c.expect("MAIL FROM:<x@remote.example>", 250)
        c.expect(rcpt + " NOTIFY=NEVER", 555)


# ------------------------------------------------------------------------- local delivery


def test_notify_success_local_delivery_reported(dsmtp):
    """NOTIFY=SUCCESS on a local recipient: it is delivered, and the sender gets a report
    with Action: delivered, the ENVID and the ORCPT; NOTIFY without SUCCESS gets none."""
    text = b"Subject: watch me\r\nMessage-ID: <dsn-ok@x>\r\n\r\nsecret body\r\n"
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@%s> RET=FULL ENVID=env+2B42" % DOMAIN, 250)
        c.expect("RCPT TO:<alice@%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice+2Bx@%s"
                 % (DOMAIN, DOMAIN), 250)
        c.expect("RCPT TO:<carol@%s> NOTIFY=FAILURE" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(text + b".\r\n")
        assert c.reply()[0] == 250
    assert wait_for(lambda: dsn_reports(dsmtp, "bob"), 15), dsmtp.log()
    assert dsmtp.msgids("alice") == ["<dsn-ok@x>"] and dsmtp.msgids("carol") == ["<dsn-ok@x>"]
    reps = dsn_reports(dsmtp, "bob")
    assert len(reps) == 1
    r = reps[0]
    assert r["Subject"] == "Successful Mail Delivery Report"
    assert r["From"].addresses[0].username == "MAILER-DAEMON"
    per_msg, per_rcpt, parts = fields(r)
    assert per_msg["Original-Envelope-Id"] == "env+42"
    assert len(per_rcpt) == 1  # carol did not ask
    assert per_rcpt[0]["Action"] == "delivered"
    assert per_rcpt[0]["Status"] == "2.0.0"
    assert nospace(per_rcpt[0]["Final-Recipient"]) == "rfc822;alice@" + DOMAIN
    assert nospace(per_rcpt[0]["Original-Recipient"]) == "rfc822;Alice+x@" + DOMAIN
    # a success report returns the headers only, whatever RET says (RFC 3461 4.3)
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"<dsn-ok@x>" in parts[2].as_bytes() and b"secret body" not in parts[2].as_bytes()
    # the report went with the null sender and was not itself reported on
    raw = dsmtp.messages("bob")[0][0]
    assert b"Return-Path: <>" in raw
    time.sleep(1)
    assert len(dsn_reports(dsmtp, "bob")) == 1
    assert dsn_reports(dsmtp, "alice") == []


def test_forward_keeps_notify_and_names_the_original(dsmtp_factory):
    """A RCPT forwarded to another mailbox: NOTIFY goes along, and without an ORCPT the
    address the client gave is the report's Original-Recipient."""
    srv = dsmtp_factory(forward=["info@%s carol@%s" % (DOMAIN, DOMAIN)])
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<info@%s> NOTIFY=SUCCESS" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: fwd\r\n\r\nx\r\n.\r\n")
        assert c.reply()[0] == 250
    assert wait_for(lambda: dsn_reports(srv, "bob"), 15), srv.log()
    _, per_rcpt, _ = fields(dsn_reports(srv, "bob")[0])
    assert nospace(per_rcpt[0]["Final-Recipient"]) == "rfc822;carol@" + DOMAIN
    assert nospace(per_rcpt[0]["Original-Recipient"]) == "rfc822;info@" + DOMAIN
    assert per_rcpt[0]["Action"] == "delivered"


def test_notify_never_on_local_failure_sendmail(dsmtp):
    """sendmail -N never to an unknown user: no report; the default still bounces."""
    sendmail(dsmtp, ["-i", "-N", "never", "-f", "alice@" + DOMAIN, "ghost"],
             b"Subject: quiet\n\nx\n")
    assert wait_for(lambda: "result=no-failure-report reason=notify" in dsmtp.log(), 15), \
        dsmtp.log()
    sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "ghost"], b"Subject: loud\n\nx\n")
    assert wait_for(lambda: dsn_reports(dsmtp, "alice"), 15), dsmtp.log()
    time.sleep(0.5)
    reps = dsn_reports(dsmtp, "alice")
    assert len(reps) == 1 and b"Subject: loud" in reps[0].as_bytes()


def test_sendmail_dsn_options(dsmtp):
    """-N success -R hdrs -V id: the success report quotes the envelope id (in xtext)."""
    sendmail(dsmtp, ["-i", "-N", "success", "-R", "hdrs", "-V", "my id+1", "-f",
                     "bob@" + DOMAIN, "alice"], b"Subject: s\nMessage-ID: <sm-dsn@x>\n\nx\n")
    assert wait_for(lambda: dsn_reports(dsmtp, "bob"), 15), dsmtp.log()
    per_msg, per_rcpt, _ = fields(dsn_reports(dsmtp, "bob")[0])
    assert per_msg["Original-Envelope-Id"] == "my id+1"
    assert per_rcpt[0]["Action"] == "delivered"
    assert dsmtp.msgids("alice") == ["<sm-dsn@x>"]
    env = dict(os.environ, DMAIL_CONF=dsmtp.conf_path, LC_ALL="C")
    for bad in (["-N", "never,success"], ["-R", "body"], ["-V", "x" * 101]):
        p = subprocess.run([os.path.join(BIN, "sendmail"), *bad, "alice"], input=b"x\n",
                           capture_output=True, env=env, timeout=30)
        assert p.returncode == 64 and bad[0].encode() in p.stderr, (bad, p.returncode, p.stderr)


# ------------------------------------------------------------------------- the queue


def test_queue_retry_delivered_reports_success(dsmtp):
    """A queued local recipient with NOTIFY=SUCCESS (its notify line) delivered by the
    queue runner: the sender gets Action: delivered with its ORCPT."""
    text = b"From: bob@" + DOMAIN.encode() + b"\nSubject: later\nMessage-ID: <later@x>\n\nx\n"
    data = qfile_bytes("1700000000.1_1_ok.test", ["alice@" + DOMAIN], text,
                       sender="bob@" + DOMAIN, arrival=time.time() - 60)
    data = data.replace(b"\nsize ", b"\nnotify success rfc822;a+2Bq@x\nsize ", 1)
    dsmtp.put_qfile(data)
    ctl = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", dsmtp.conf_path, "flush"],
                         capture_output=True, text=True, timeout=20)
    assert ctl.returncode == 0, ctl.stderr
    assert wait_for(lambda: dsn_reports(dsmtp, "bob"), 15), dsmtp.log()
    assert dsmtp.msgids("alice") == ["<later@x>"]
    _, per_rcpt, _ = fields(dsn_reports(dsmtp, "bob")[0])
    assert per_rcpt[0]["Action"] == "delivered"
    assert nospace(per_rcpt[0]["Original-Recipient"]) == "rfc822;a+q@x"
    assert wait_for(lambda: not dsmtp.queue_files(), 10), dsmtp.queue_files()



@needs_dns
@pytest.mark.parametrize("notify,notice", [(b"failure", False), (b"never", False),
                                           (b"success,delay", True), (None, True)])
def test_delay_notice_only_with_notify_delay(dsmtp_factory, dns, notify, notice):
    """queue_warn passed for a recipient still deferred: the delay notice goes out only
    when its NOTIFY holds DELAY (or there is none); a queue file of the old format (no
    notify line) still reads and gets the default."""
    srv = dsmtp_factory(dns_host=dns, queue_warn=60)
    text = b"From: alice@" + DOMAIN.encode() + b"\nSubject: slow\nMessage-ID: <slow@x>\n\nx\n"
    data = qfile_bytes("1700000000.1_1_dly.test", ["far@dead.test"], text,
                       sender="alice@" + DOMAIN, arrival=time.time() - 120,
                       error="451 4.4.1 connection refused")
    if notify is not None:
        data = data.replace(b"\nsize ", b"\nnotify " + notify + b" -\nsize ", 1)
    path = srv.put_qfile(data)
    ctl = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", srv.conf_path, "flush"],
                         capture_output=True, text=True, timeout=20)
    assert ctl.returncode == 0, ctl.stderr
    # the queue marks the message warned either way (flags 4) and keeps it
    assert wait_for(lambda: b"\nflags 4\n" in open(path, "rb").read(), 20), srv.log()
    if notice:
        assert wait_for(lambda: dsn_reports(srv, "alice"), 10), srv.log()
        _, per_rcpt, _ = fields(dsn_reports(srv, "alice")[0])
        assert per_rcpt[0]["Action"] == "delayed"
    else:
        time.sleep(2)
        assert dsn_reports(srv, "alice") == []
        assert "result=no-delay-notice reason=notify" in srv.log()
    data = open(path, "rb").read()
    assert b"far@dead.test" in data
    if notify is not None:  # the queue's rewrite kept the notify line
        assert b"\nnotify " + notify + b" -\n" in data


# ------------------------------------------------------------------------- outbound


@needs_dns
def test_notify_never_remote_5xx_no_report(pair):
    ours, theirs = pair
    submit(ours, ["nobody@" + REMOTE], "Subject: to nobody\r\n\r\nx\r\n",
           rcpt_opts=["NOTIFY=NEVER"])
    assert wait_for(lambda: "status=bounced" in ours.log(), 20), ours.log()
    assert wait_for(lambda: "result=no-failure-report reason=notify" in ours.log(), 10), \
        ours.log()
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()
    time.sleep(1)
    assert dsn_reports(ours, "alice") == []


@needs_dns
@pytest.mark.parametrize("ret", ["FULL", "HDRS"])
def test_ret_envid_orcpt_in_failure_report(pair, ret):
    ours, theirs = pair
    submit(ours, ["nobody@" + REMOTE],
           "Subject: returned?\r\nMessage-ID: <ret-%s@x>\r\n\r\nthe body itself\r\n" % ret,
           mail_opts=["RET=" + ret, "ENVID=QQ+2B314159"],
           rcpt_opts=["NOTIFY=FAILURE", "ORCPT=rfc822;list+2Bnobody@" + REMOTE])
    assert wait_for(lambda: dsn_reports(ours, "alice"), 20), ours.log()
    r = dsn_reports(ours, "alice")[0]
    assert r["Subject"] == "Undelivered Mail Returned to Sender"
    per_msg, per_rcpt, parts = fields(r)
    assert per_msg["Original-Envelope-Id"] == "QQ+314159"
    assert nospace(per_rcpt[0]["Original-Recipient"]) == "rfc822;list+nobody@" + REMOTE
    assert nospace(per_rcpt[0]["Final-Recipient"]) == "rfc822;nobody@" + REMOTE
    assert per_rcpt[0]["Action"] == "failed" and per_rcpt[0]["Status"].startswith("5.")
    assert nospace(per_rcpt[0]["Remote-MTA"]) == "dns;mx." + REMOTE
    returned = parts[2].as_bytes()
    assert b"<ret-%s@x>" % ret.encode() in returned
    if ret == "FULL":
        assert parts[2].get_content_type() == "message/rfc822"
        assert b"the body itself" in returned
    else:
        assert parts[2].get_content_type() == "text/rfc822-headers"
        assert b"the body itself" not in returned


@needs_dns
def test_dsn_passed_to_next_hop(pair):
    """The remote dsmtp offers DSN: RET, ENVID, NOTIFY and ORCPT go with the message, we
    make no report of our own, and the remote server reports the delivery itself (its
    report waits in its queue for our domain)."""
    ours, theirs = pair
    submit(ours, ["bob@" + REMOTE], "Subject: pass on\r\nMessage-ID: <pass@x>\r\n\r\nx\r\n",
           mail_opts=["RET=HDRS", "ENVID=pass-1"],
           rcpt_opts=["NOTIFY=SUCCESS", "ORCPT=rfc822;Bob+2Bold@" + REMOTE])
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert "ret=HDRS envid=pass-1" in theirs.log()

    def their_report():
        for p in theirs.queue_files():
            data = open(p, "rb").read()
            if b"\nsender <>\n" in data and b"Action: delivered" in data:
                return data
        return None

    assert wait_for(their_report, 15), theirs.log()
    data = their_report()
    assert b"<alice@%s>" % DOMAIN.encode() in data
    assert b"Original-Envelope-Id: pass-1" in data
    assert b"Original-Recipient: rfc822;Bob+old@" + REMOTE.encode() in data
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()
    time.sleep(1)
    assert dsn_reports(ours, "alice") == []


class _Sink:
    """aiosmtpd's handler: keeps (envelope, rcpt options)."""

    def __init__(self):
        self.got = []

    async def handle_DATA(self, server, session, envelope):
        self.got.append((envelope.mail_from, list(envelope.rcpt_tos),
                         list(envelope.rcpt_options), list(envelope.mail_options)))
        return "250 2.0.0 Ok: kept"


@pytest.fixture
def plain_mx():
    """An aiosmtpd server that does not offer DSN (python3-aiosmtpd)."""
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    handler = _Sink()
    port = free_ports(1)[0]
    ctl = controller_mod.Controller(handler, hostname=HOST, port=port)
    ctl.start()
    try:
        yield port, handler
    finally:
        ctl.stop()


def test_notify_success_relayed_to_server_without_dsn(dsmtp_factory, plain_mx):
    port, sink = plain_mx
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, dns_host="127.0.0.1:9")
    submit(ours, ["bob@far.example"], "Subject: relayed\r\nMessage-ID: <rel@x>\r\n\r\nx\r\n",
           mail_opts=["ENVID=rel-1"], rcpt_opts=["NOTIFY=SUCCESS,FAILURE"])
    assert wait_for(lambda: sink.got, 20), ours.log()
    _, rcpts, rcpt_options, mail_options = sink.got[0]
    assert rcpts == ["bob@far.example"]
    sent = " ".join(rcpt_options + mail_options).upper()  # no DSN offered: nothing passed
    assert not any(k in sent for k in ("NOTIFY", "ORCPT", "ENVID", "RET=")), sent
    assert wait_for(lambda: dsn_reports(ours, "alice"), 20), ours.log()
    per_msg, per_rcpt, _ = fields(dsn_reports(ours, "alice")[0])
    assert per_msg["Original-Envelope-Id"] == "rel-1"
    assert per_rcpt[0]["Action"] == "relayed"
    assert per_rcpt[0]["Status"].startswith("2.")
    assert nospace(per_rcpt[0]["Remote-MTA"]) == "dns;127.0.0.1"
    assert nospace(per_rcpt[0]["Final-Recipient"]) == "rfc822;bob@far.example"
