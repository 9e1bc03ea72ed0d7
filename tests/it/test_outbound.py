"""Outbound delivery, end to end on loopback: our dsmtp finds the MX of another domain in
a dnsmasq it is pointed at (dns_host), connects to a second dsmtp serving that domain
(remote_smtp_port), and relays; 5xx from the remote server and null MX end in a report
to the sender; a dead destination defers; smarthost skips the MX lookup; relaying is
for authenticated clients and forward_from_ip only."""

import os
import shutil
import smtplib
import subprocess

import pytest

from dmail_site import (BIN, DOMAIN, HOST, PASSWORDS, REMOTE, dsn_fields, dsn_reports,
                        sendmail, tls_client_context, wait_for)

pytestmark = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")
reports = dsn_reports


def rcpt_status(report):
    return dsn_fields(report)[1]


def queue_empty(site):
    return not site.queue_files()


def test_sendmail_to_remote_domain_delivered_by_mx(pair):
    ours, theirs = pair
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "bob@" + REMOTE],
             b"Subject: out\nMessage-ID: <out-1@x>\n\nover the wire\n.\n..dots\n")
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    raw, msg = theirs.messages("bob")[0]
    assert msg["Message-ID"] == "<out-1@x>"
    assert msg["Return-Path"] == "<alice@%s>" % DOMAIN
    assert raw.endswith(b"\n\nover the wire\n.\n..dots\n"), raw[-80:]
    assert wait_for(lambda: queue_empty(ours), 10), ours.queue_files()
    assert "relay=mx.%s[127.0.0.1]:%d" % (REMOTE, theirs.smtp_port) in ours.log()
    assert 'status=sent reply="250 ' in ours.log()
    # opportunistic STARTTLS was used: the remote side logged a TLS session
    assert "tls version=TLS" in theirs.log()
    # and ours logged the session's TLS at info level
    assert 'outq relay=mx.%s[127.0.0.1]:%d tls="TLSv1.' % (REMOTE, theirs.smtp_port) in ours.log()
    stats = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", ours.conf_path, "stats", "-p"],
                           capture_output=True, text=True, timeout=20).stdout
    assert 'dsmtp_outbound_recipients_total{result="sent"} 1\n' in stats, stats
    assert "dsmtp_outbound_tls_sessions_total 1\n" in stats, stats


def test_authenticated_submission_relays(pair):
    ours, theirs = pair
    with smtplib.SMTP(HOST, ours.submission_port, timeout=20) as s:
        s.starttls(context=tls_client_context())
        s.login("alice", PASSWORDS["alice"])
        assert s.sendmail("alice@" + DOMAIN, ["carol@" + REMOTE],
                          "Subject: relayed\r\n\r\nhi\r\n") == {}
    assert wait_for(lambda: theirs.messages("carol"), 20), ours.log()


def test_unauthenticated_relay_still_refused(pair):
    ours, _ = pair
    with smtplib.SMTP(HOST, ours.smtp_port, timeout=20) as s:
        s.ehlo()
        code, text = s.docmd("MAIL FROM:<x@elsewhere.example>")
        assert code == 250
        code, text = s.docmd("RCPT TO:<bob@%s>" % REMOTE)
        assert code == 554 and b"Relay access denied" in text, (code, text)


def test_remote_5xx_reported_to_sender(pair):
    ours, theirs = pair
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "nobody@" + REMOTE, "bob@" + REMOTE],
             b"Subject: one bad\n\nx\n")
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert wait_for(lambda: reports(ours, "alice"), 20), ours.log()
    st = rcpt_status(reports(ours, "alice")[0])
    assert len(st) == 1
    assert st[0]["Final-Recipient"].replace(" ", "") == "rfc822;nobody@" + REMOTE
    assert st[0]["Status"] == "5.1.1" and "550" in st[0]["Diagnostic-Code"]
    assert wait_for(lambda: queue_empty(ours), 10), ours.queue_files()


def test_null_mx_bounced(pair):
    ours, _ = pair
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "x@nullmx.test"], b"Subject: n\n\nx\n")
    assert wait_for(lambda: reports(ours, "alice"), 20), ours.log()
    st = rcpt_status(reports(ours, "alice")[0])
    assert st[0]["Status"] == "5.1.10", st[0]


def test_dead_destination_deferred_not_bounced(pair):
    ours, _ = pair
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "x@dead.test"], b"Subject: d\n\nx\n")
    assert wait_for(lambda: "status=deferred" in ours.log(), 20), ours.log()
    assert reports(ours, "alice") == []
    files = ours.queue_files()
    assert len(files) == 1
    data = open(files[0], "rb").read()
    assert b"rcpt pending" in data and b"x@dead.test" in data, data[:500]


def test_smarthost_skips_mx(dsmtp_factory):
    theirs = dsmtp_factory(host_domain="far.example", hostname="mx.far.example")
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % theirs.smtp_port,
                         dns_host="127.0.0.1:9")  # no DNS at all: the smarthost needs none
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "bob@far.example"], b"Subject: s\n\nx\n")
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert "relay=127.0.0.1[127.0.0.1]:%d" % theirs.smtp_port in ours.log()
