"""Nothing accepted is dropped in silence: a recipient that fails for good gets an RFC 3464
report (multipart/report, message/delivery-status) back to the envelope sender, parsed here
with Python's email package; a report that cannot be bounced goes to sysadmin (double
bounce) and a failed double bounce ends in the log, never in a loop; mail for another
domain stays in the queue for outbound delivery until queue_lifetime, then is reported."""

import os
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, dsn_fields, dsn_reports, new_msgid, qfile_bytes, sendmail,
                        wait_for)

pytestmark = pytest.mark.skipif(not os.access(os.path.join(BIN, "sendmail"), os.X_OK),
                                reason="no bin/sendmail")
reports = dsn_reports
status_fields = dsn_fields


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


def test_remote_recipient_deferred_not_dropped(dsmtp):
    """No resolver answers here (dns_host 127.0.0.1:9): the remote recipient stays in the
    queue, deferred, and nothing is reported or dropped."""
    sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "someone@remote.example"],
             b"Subject: to the world\n\nhello\n")
    assert wait_for(lambda: "to=<someone@remote.example> relay=none" in dsmtp.log() and
                    "status=deferred" in dsmtp.log(), 15), dsmtp.log()
    files = dsmtp.queue_files()
    assert len(files) == 1
    # the result is logged, then the file rewritten: the DNS failure as its last error
    assert wait_for(lambda: b"4.4.3" in open(files[0], "rb").read(), 10), files
    data = open(files[0], "rb").read()
    assert b"rcpt pending" in data and b"<someone@remote.example>" in data, data[:600]
    assert reports(dsmtp, "alice") == []
    assert "result=dropped" not in dsmtp.log()


def test_queue_lifetime_ends_in_a_report(dsmtp):
    text = b"From: x@" + DOMAIN.encode() + b"\nSubject: old\nMessage-ID: <old@x>\n\nHello.\n"
    dsmtp.put_qfile(qfile_bytes("1700000000.1_1_lt.test", ["far@remote.example"], text,
                                sender="alice@" + DOMAIN, arrival=time.time() - 6 * 86400,
                                attempts=3, error="451 4.4.1 connection timed out"))
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


def test_queue_warn_delay_notice_once(dsmtp):
    """A message still pending after queue_warn (4 h) gets one delay notice, and keeps
    waiting; the next scans send no second one."""
    text = b"From: x@" + DOMAIN.encode() + b"\nSubject: slow\nMessage-ID: <slow@x>\n\nHello.\n"
    path = dsmtp.put_qfile(qfile_bytes("1700000000.1_1_wn.test", ["far@remote.example"], text,
                                       sender="alice@" + DOMAIN, arrival=time.time() - 5 * 3600,
                                       error="451 4.4.1 connection refused"))
    ctl = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", dsmtp.conf_path, "flush"],
                         capture_output=True, text=True, timeout=20)
    assert ctl.returncode == 0, ctl.stderr
    assert wait_for(lambda: reports(dsmtp, "alice"), 15), dsmtp.log()
    r = reports(dsmtp, "alice")[0]
    assert r["Subject"] == "Delayed Mail (still being retried)"
    _, per_rcpt, parts = status_fields(r)
    assert per_rcpt[0]["Action"] == "delayed" and per_rcpt[0]["Status"].startswith("4.")
    assert per_rcpt[0]["Will-Retry-Until"]
    assert b"<slow@x>" in parts[2].as_bytes()
    # still queued, flagged as warned; a few more scans (queue_retry 2 s) send nothing more
    assert wait_for(lambda: b"\nflags 4\n" in open(path, "rb").read(), 10)
    time.sleep(5)
    assert len(reports(dsmtp, "alice")) == 1
    assert os.path.exists(path)
