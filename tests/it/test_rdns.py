"""Reverse DNS of SMTP clients (lookup_names, require_fcrdns) through a real dnsmasq:
clients connect from other loopback addresses (127.0.0.x), whose PTR records dnsmasq
serves: confirmed (the name's address is the client's), unconfirmed (it is not), none,
and a DNS server that never answers (a temporary failure within dns_timeout)."""

import smtplib
import socket
import time

import pytest

from dmail_site import DOMAIN, HOST, RawSMTP, make_message, wait_for
from localdns import LocalDNS

GOOD, BAD, NONE = "127.0.0.5", "127.0.0.6", "127.0.0.7"


@pytest.fixture
def rdns_dns():
    d = LocalDNS(["--host-record=good.test,%s" % GOOD,  # A and PTR
                  "--ptr-record=6.0.0.127.in-addr.arpa,bad.test",
                  "--host-record=bad.test,192.0.2.66"])
    yield d.server
    d.stop()


def mail_reply(srv, source, port=None):
    """(code, text) of MAIL from source on srv's smtp port."""
    c = RawSMTP(port or srv.smtp_port, source=source)
    try:
        c.ehlo()
        return c.cmd("MAIL FROM:<someone@remote.example>")
    finally:
        c.close()


def test_lookup_names_puts_the_name_into_received(dsmtp_factory, rdns_dns):
    srv = dsmtp_factory(dns_host=rdns_dns, lookup_names=True)
    msgid, text = make_message(subject="rdns")
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=20,
                      source_address=(GOOD, 0)) as s:
        assert s.sendmail("x@remote.example", ["alice@" + DOMAIN], text) == {}
    msgs = [raw.decode() for raw, _ in srv.messages("alice")]
    assert len(msgs) == 1
    assert "Received: from client.example (good.test [%s])" % GOOD in msgs[0]
    assert ("Authentication-Results: mx.example.test;\n\tiprev=pass policy.iprev=%s (good.test)\n"
            % GOOD) in msgs[0]
    assert wait_for(lambda: "name=good.test result=confirmed" in srv.log(), 5)
    # without a PTR record: no name, mail as usual
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=20,
                      source_address=(NONE, 0)) as s:
        assert s.sendmail("x@remote.example", ["alice@" + DOMAIN], text) == {}
    msgs = [raw.decode() for raw, _ in srv.messages("alice")]
    assert "Received: from client.example ([%s])" % NONE in msgs[1]
    assert "\tiprev=permerror policy.iprev=%s\n" % NONE in msgs[1]
    assert "name=unknown result=none" in srv.log()


def test_require_fcrdns(dsmtp_factory, rdns_dns):
    srv = dsmtp_factory(dns_host=rdns_dns, require_fcrdns=True)
    code, text = mail_reply(srv, GOOD)
    assert code == 250, (code, text)
    code, text = mail_reply(srv, BAD)
    assert code == 550 and text[0].startswith("5.7.25"), (code, text)
    code, text = mail_reply(srv, NONE)
    assert code == 550 and text[0].startswith("5.7.25"), (code, text)
    assert "reason=fcrdns result=unconfirmed" in srv.log()
    # the submission port and authenticated clients are not asked for it
    c = RawSMTP(srv.submission_port, source=NONE)
    c.ehlo()
    c.starttls()
    c.ehlo()
    assert c.cmd("AUTH PLAIN " + srv_plain(srv))[0] == 235
    assert c.cmd("MAIL FROM:<alice@%s>" % DOMAIN)[0] == 250
    c.close()
    # trusted clients neither
    srv.restart(forward_from_ip=NONE)
    assert mail_reply(srv, NONE)[0] == 250
    assert mail_reply(srv, BAD)[0] == 550


def srv_plain(srv):
    import base64
    return base64.b64encode(("\0alice\0%s" % srv.passwords["alice"]).encode()).decode()


def test_require_fcrdns_dns_down_is_temporary(dsmtp_factory):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never answers
    silent.bind((HOST, 0))
    try:
        srv = dsmtp_factory(dns_host="%s:%d" % silent.getsockname(), require_fcrdns=True,
                            dns_timeout=1)
        start = time.monotonic()
        code, text = mail_reply(srv, GOOD)
        took = time.monotonic() - start
        assert code == 450 and text[0].startswith("4.7.25"), (code, text)
        assert took < 2.5, took
        assert "result=tempfail why=timeout" in srv.log()
    finally:
        silent.close()
