"""Trace fields on delivery: the Received: header of RFC 5321 4.4 (checked against its
grammar: from/by/with/id/for clauses and the date) and Return-Path: (RFC 5321 4.4, RFC 5322
3.6.7), for SMTP, ESMTP, ESMTPS, ESMTPSA, IPv6 clients, odd HELO names and sendmail(8)."""

import base64
import email.utils
import os
import re
import subprocess
import time

import pytest

from dmail_site import (
    BIN,
    DOMAIN,
    RawSMTP,
    headers_of,
    ipv6_loopback,
    make_message,
    new_msgid,
    to_wire,
)

SENDER = "sender@remote.example"

# RFC 5321 4.1.2 / 4.1.3 / 4.4 and RFC 5322 3.2.3, as regular expressions
LET_DIG = r"[A-Za-z0-9]"
SUB_DOMAIN = r"%s(?:[A-Za-z0-9-]*%s)?" % (LET_DIG, LET_DIG)
DOMAIN_RE = r"%s(?:\.%s)*" % (SUB_DOMAIN, SUB_DOMAIN)
IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
ADDR_LIT = r"\[(?:%s|IPv6:[0-9A-Fa-f:.]+|%s:[\x21-\x5a\x5e-\x7e]+)\]" % (IPV4, r"[A-Za-z0-9-]*[A-Za-z0-9]")
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
COMMENT = r"\((?:[^()\\]|\\.)*\)"
TCP_INFO = r"(?:%s|%s %s)" % (ADDR_LIT, DOMAIN_RE, ADDR_LIT)
EXT_DOMAIN = r"(?:%s|%s)(?: \(%s\))?" % (DOMAIN_RE, ADDR_LIT, TCP_INFO)
RECEIVED_RE = re.compile(
    r"^from (?P<from>%s)(?: (?P<fromc>%s))?"
    r" by (?P<by>%s)(?: (?P<byc>%s))?"
    r" with (?P<with>%s)"
    r" id (?P<id>%s)(?: (?P<idc>%s))?"
    r"(?: for <(?P<for>[^<>\s]+)>)?"
    r"; (?P<date>.+)$" % (EXT_DOMAIN, COMMENT, EXT_DOMAIN, COMMENT, ATOM, ATOM, COMMENT))


def unfolded_fields(raw, name):
    hdr = re.sub(rb"\r?\n[ \t]+", b" ", headers_of(raw)).decode("utf-8", "replace")
    return [m.group(1) for m in re.finditer(r"(?mi)^%s:[ \t]*(.*)$" % re.escape(name), hdr)]


def parse_received(raw):
    (rec,) = unfolded_fields(raw, "Received")
    rec = re.sub(r"\s+", " ", rec)
    m = RECEIVED_RE.match(rec)
    assert m, "Received: does not follow RFC 5321 4.4: %r" % rec
    when = email.utils.parsedate_to_datetime(m.group("date")).timestamp()
    assert abs(when - time.time()) < 120, m.group("date")
    return m


def transaction(c, rcpts, text=None, sender=SENDER):
    msgid, text = make_message() if text is None else (None, text)
    c.expect("MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, 250)
    code, lines = c.data(text)
    assert code == 250, (code, lines)
    return lines[-1].rsplit(" ", 1)[1]  # "... queued as ID"


def test_received_esmtp_one_recipient(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo("client.example")
        qid = transaction(c, ["alice@" + DOMAIN])
    raw = dsmtp.messages("alice")[0][0]
    m = parse_received(raw)
    assert m.group("from") == "client.example ([127.0.0.1])"
    assert m.group("by").startswith("mx.%s" % DOMAIN)
    assert m.group("with") == "ESMTP"
    assert m.group("id") == qid, "id in Received: is not the id the client was told"
    assert m.group("for") == "alice@" + DOMAIN
    # Return-Path: once, before the Received: field, the envelope sender exactly
    assert unfolded_fields(raw, "Return-Path") == ["<%s>" % SENDER]
    assert raw.index(b"Return-Path:") < raw.index(b"Received:")


def test_received_several_recipients_no_for(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        transaction(c, ["alice@" + DOMAIN, "bob@" + DOMAIN])
    for u in ("alice", "bob"):
        m = parse_received(dsmtp.messages(u)[0][0])
        assert m.group("for") is None, "one copy names another recipient: %r" % m.group(0)


def test_received_helo_smtp(dsmtp):
    msgid, text = make_message()
    with RawSMTP(dsmtp.smtp_port) as c:
        c.expect("HELO [127.0.0.1]", 250)
        transaction(c, ["alice@" + DOMAIN], text)
    m = parse_received(dsmtp.messages("alice")[0][0])
    assert m.group("with") == "SMTP"
    assert m.group("from").startswith("[127.0.0.1]")


@pytest.mark.parametrize("helo", ["bad;name", "a(b)c", "under_score.example", "-dash.example",
                                  "x\\y", "[1.2.3]", "[IPv6:zz]", "host."])
def test_received_odd_helo_keeps_the_grammar(dsmtp, helo):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.expect("EHLO " + helo, 250)
        transaction(c, ["alice@" + DOMAIN])
    raw = dsmtp.messages("alice")[0][0]
    m = parse_received(raw)
    assert m.group("from").startswith("[127.0.0.1]"), m.group(0)
    assert m.group("id") and m.group("for") == "alice@" + DOMAIN


def test_received_esmtpsa(dsmtp):
    pw = dsmtp.passwords["alice"]
    with RawSMTP(dsmtp.submission_port) as c:
        c.secure()
        c.expect("AUTH PLAIN " + base64.b64encode(b"\0alice\0" + pw.encode()).decode(), 235)
        transaction(c, ["bob@" + DOMAIN], sender="alice@" + DOMAIN)
    with RawSMTP(dsmtp.smtps_port, tls=True) as c:
        c.ehlo()
        transaction(c, ["carol@" + DOMAIN])
    m = parse_received(dsmtp.messages("bob")[0][0])
    assert m.group("with") == "ESMTPSA"
    assert "TLS" in (m.group("idc") or ""), m.group(0)
    m = parse_received(dsmtp.messages("carol")[0][0])
    assert m.group("with") == "ESMTPS"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_received_ipv6_address_literal(dsmtp_factory):
    srv = dsmtp_factory(listen=["127.0.0.1", "::1"])
    with RawSMTP(srv.smtp_port, host="::1") as c:
        c.ehlo("v6.example")
        transaction(c, ["alice@" + DOMAIN])
    m = parse_received(srv.messages("alice")[0][0])
    assert m.group("from") == "v6.example ([IPv6:::1])", m.group(0)


def test_received_and_return_path_from_sendmail(dsmtp):
    msgid = new_msgid("trace")
    env = dict(os.environ, DMAIL_CONF=dsmtp.conf_path)
    p = subprocess.run([os.path.join(BIN, "sendmail"), "-f", "list-bounces@%s" % DOMAIN, "alice"],
                       input=b"Subject: trace\nMessage-ID: %s\n\nx\n" % msgid.encode(),
                       capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 5
    while not dsmtp.messages("alice") and time.monotonic() < deadline:
        time.sleep(0.05)
    raw = dsmtp.messages("alice")[0][0]
    m = parse_received(raw)
    assert m.group("from") == "local" and m.group("fromc") == "(uid %d)" % os.getuid()
    assert m.group("with") == "local"
    assert m.group("for") == "alice@" + DOMAIN
    assert unfolded_fields(raw, "Return-Path") == ["<list-bounces@%s>" % DOMAIN]
