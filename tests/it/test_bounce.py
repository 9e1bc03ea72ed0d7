"""Nothing accepted is dropped in silence: a recipient that fails for good gets an RFC 3464
report (multipart/report, message/delivery-status) back to the envelope sender, parsed here
with Python's email package; a report that cannot be bounced goes to sysadmin (double
bounce) and a failed double bounce ends in the log, never in a loop; mail for another
domain stays in the queue for outbound delivery until queue_lifetime, then is reported."""

import email
import email.policy
import os
import subprocess
import time

import pytest

from dmail_site import BIN, DOMAIN, new_msgid, wait_for

SENDMAIL = os.path.join(BIN, "sendmail")
pytestmark = pytest.mark.skipif(not os.access(SENDMAIL, os.X_OK), reason="no bin/sendmail")


def sendmail(srv, args, data):
    env = dict(os.environ, DMAIL_CONF=srv.conf_path, LC_ALL="C")
    p = subprocess.run([SENDMAIL, *args], input=data, capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)


def reports(srv, user):
    """The delivery-status reports in user's mailbox, parsed."""
    out = []
    for raw, _ in srv.messages(user):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def status_fields(report):
    """(per-message fields, [per-recipient fields]) of the message/delivery-status part."""
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2, blocks
    return blocks[0], blocks[1:], parts


def test_unknown_local_user_bounced_to_sender(dsmtp):
    msgid = new_msgid("bounce")
    sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "nosuchuser"],
             b"Subject: to nobody\nMessage-ID: %s\n\nlost?\n" % msgid.encode())
    assert wait_for(lambda: reports(dsmtp, "alice"), 15), dsmtp.log()
    rep = reports(dsmtp, "alice")
    assert len(rep) == 1
    r = rep[0]
    assert r["Subject"] == "Undelivered Mail Returned to Sender"
    assert r["Auto-Submitted"] == "auto-replied"
    assert r["To"].addresses[0].addr_spec == "alice@" + DOMAIN
    per_msg, per_rcpt, parts = status_fields(r)
    assert per_msg["Reporting-MTA"].startswith("dns;")
    assert len(per_rcpt) == 1
    assert per_rcpt[0]["Final-Recipient"].replace(" ", "") == "rfc822;nosuchuser@" + DOMAIN
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"] == "5.1.1"
    assert "user unknown" in per_rcpt[0]["Diagnostic-Code"]
    # the original's headers come back, so the sender can tell which message it was
    assert msgid.encode() in parts[2].as_bytes()
    # and the report itself was sent with the null sender
    raw = dsmtp.messages("alice")[-1][0]
    assert raw.startswith(b"From MAILER-DAEMON ") or b"Return-Path: <>" in raw, raw[:200]


def test_partial_failure_delivers_the_rest_and_reports_one(dsmtp):
    sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "bob", "ghost1", "ghost2"],
             b"Subject: mixed\n\nx\n")
    assert wait_for(lambda: reports(dsmtp, "alice"), 15), dsmtp.log()
    assert len(dsmtp.messages("bob")) == 1
    _, per_rcpt, _ = status_fields(reports(dsmtp, "alice")[0])
    finals = sorted(p["Final-Recipient"].replace(" ", "") for p in per_rcpt)
    assert finals == ["rfc822;ghost1@" + DOMAIN, "rfc822;ghost2@" + DOMAIN]


def test_remote_recipient_kept_in_queue_not_dropped(dsmtp):
    sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "someone@remote.example"],
             b"Subject: to the world\n\nhello\n")
    qdir = os.path.join(dsmtp.spool, "queue")

    def queued():
        for name in os.listdir(qdir):
            data = open(os.path.join(qdir, name), "rb").read()
            if b"<someone@remote.example>" in data:
                return data
        return None
    assert wait_for(queued, 15), dsmtp.log()
    data = queued()
    assert b"rcpt pending" in data and b"kept for outbound delivery" in data, data[:600]
    assert reports(dsmtp, "alice") == []
    assert "result=dropped" not in dsmtp.log()


def write_old_qfile(srv, qid, sender, rcpt, age):
    text = b"From: x@" + DOMAIN.encode() + b"\nSubject: old\nMessage-ID: <old@x>\n\nHello.\n"
    hdr = ["DMQ 1", "id " + qid, "arrival %d" % int(time.time() - age), "sender <%s>" % sender,
           "origin test", "flags 0", "rcpts 1",
           "rcpt pending 3 0 <%s> 451 4.4.1 connection timed out" % rcpt, "size %d" % len(text)]
    data = ("\n".join(hdr) + "\n\n").encode() + text + b"end\n"
    tmp = os.path.join(srv.spool, "tmp", qid)
    with open(tmp, "wb") as f:
        f.write(data)
    srv.chown()
    os.rename(tmp, os.path.join(srv.spool, "queue", qid))


def test_queue_lifetime_ends_in_a_report(dsmtp):
    write_old_qfile(dsmtp, "1700000000.1_1_lt.test", "alice@" + DOMAIN, "far@remote.example",
                    6 * 86400)
    ctl = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", dsmtp.conf_path, "flush"],
                         capture_output=True, text=True, timeout=20)
    assert ctl.returncode == 0, ctl.stderr
    assert wait_for(lambda: reports(dsmtp, "alice"), 15), dsmtp.log()
    _, per_rcpt, _ = status_fields(reports(dsmtp, "alice")[0])
    assert per_rcpt[0]["Status"] == "4.4.7" and per_rcpt[0]["Action"] == "failed"
    assert "connection timed out" in per_rcpt[0]["Diagnostic-Code"]
    assert wait_for(lambda: not os.path.exists(
        os.path.join(dsmtp.spool, "queue", "1700000000.1_1_lt.test")), 10)


def test_null_sender_failure_goes_to_sysadmin(dsmtp_factory):
    srv = dsmtp_factory(sysadmin="carol@" + DOMAIN)
    sendmail(srv, ["-i", "-f", "<>", "ghost"], b"Subject: a report\n\nx\n")
    assert wait_for(lambda: reports(srv, "carol"), 15), srv.log()
    r = reports(srv, "carol")[0]
    per_msg, per_rcpt, _ = status_fields(r)
    assert per_rcpt[0]["Status"] == "5.1.1"
    assert "double-bounce" in srv.log()


def test_double_bounce_without_sysadmin_is_logged_not_looped(dsmtp_factory):
    srv = dsmtp_factory(sysadmin=None)
    sendmail(srv, ["-i", "-f", "<>", "ghost"], b"Subject: a report\n\nx\n")
    assert wait_for(lambda: "sysadmin is not set" in srv.log(), 15), srv.log()
    time.sleep(0.5)
    assert os.listdir(os.path.join(srv.spool, "queue")) == []
