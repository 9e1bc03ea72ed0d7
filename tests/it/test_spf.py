"""SPF checks of MAIL FROM (and of HELO for a null sender) through a real dnsmasq serving
the policies: pass (directly, through include and mx, which take several lookups), fail
(refused by default, accepted with spf_reject none), softfail (refused only with
spf_reject softfail), none, temperror (a DNS server that never answers, and SERVFAIL);
the Received-SPF: and Authentication-Results: fields, the removal of forged
Authentication-Results: fields in our name, and who is not checked (trusted and
authenticated clients, the submission port, spf_check false).

libspf2 passes every loopback client ("localhost is always allowed"), so the module runs
in a network namespace of its own (root needed), where the client has the address
192.0.2.7 on the loopback interface: the test process enters it for this module only
(setns on its thread), and dsmtp and dnsmasq, started from there, live in it too."""

import base64
import ctypes
import os
import smtplib
import subprocess
import socket
import time

import pytest

from dmail_site import DOMAIN, HOST, RawSMTP, make_message
from localdns import LocalDNS

AUTHSERV = "mx." + DOMAIN  # the site's hostname
CLIENT = "192.0.2.7"  # the client's address in the namespace
CLIENT6 = "2001:db8::7"  # and its IPv6 one
CLONE_NEWNET = 0x40000000


@pytest.fixture(scope="module")
def netns():
    """The test thread in a new network namespace with lo up and CLIENT on it."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace needs root")
    libc = ctypes.CDLL(None, use_errno=True)
    orig = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            pytest.skip("unshare(CLONE_NEWNET): %s" % os.strerror(ctypes.get_errno()))
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
            subprocess.run(["ip", "addr", "add", CLIENT + "/32", "dev", "lo"], check=True,
                           timeout=10)
            subprocess.run(["ip", "-6", "addr", "add", CLIENT6 + "/128", "dev", "lo", "nodad"],
                           check=True, timeout=10)
            yield
        finally:
            assert libc.setns(orig, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(orig)


def long_spf_strings():
    """One SPF policy of about 700 bytes in three character-strings of at most 255 bytes
    (as a TXT record must be, RFC 7208 3.3), cut in the middle of mechanisms: only the
    strings joined with nothing between them give the mechanism that lets CLIENT in."""
    policy = "v=spf1 " + " ".join("ip4:198.51.100.%d" % i for i in range(1, 36)) + \
        " ip4:%s -all" % CLIENT
    assert 600 < len(policy) < 765
    strings = [policy[0:250], policy[250:505], policy[505:]]
    assert all(len(x) <= 255 for x in strings) and "".join(strings) == policy
    assert CLIENT not in strings[0] + strings[1] and not strings[2].startswith(" ")
    return ",".join(strings)


@pytest.fixture(scope="module")
def spf_dns(netns):
    d = LocalDNS([
        "--txt-record=pass.test,v=spf1 ip4:%s" % CLIENT + " -all",
        "--txt-record=long.test," + long_spf_strings(),
        "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all",
        "--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all",
        "--txt-record=inc.test,v=spf1 include:pass.test -all",
        "--txt-record=mx.test,v=spf1 mx a:nothere.test -all",
        "--mx-host=mx.test,mx1.mx.test,10",
        "--host-record=mx1.mx.test," + CLIENT,
        "--txt-record=helo.test,v=spf1 a -all",
        "--host-record=helo.test," + CLIENT,
        "--host-record=none.test,192.0.2.9",  # exists, no TXT record
        "--server=/broken.test/127.0.0.1#9",  # nobody there: SERVFAIL
        "--txt-record=v6.test,v=spf1 ip6:2001:db8::/64 -all",
        "--txt-record=v6a.test,v=spf1 a:h6.test -all",
        "--host-record=h6.test,192.0.2.99," + CLIENT6,
    ])
    yield d.server
    d.stop()


def send(srv, sender, text=None, helo="client.example", port=None):
    """One message from sender to alice; the refusal ((code, text)) or None."""
    if text is None:
        text = make_message(subject="spf")[1]
    with smtplib.SMTP(HOST, port or srv.smtp_port, local_hostname=helo, timeout=30,
                      source_address=(CLIENT, 0)) as s:
        try:
            s.sendmail(sender, ["alice@" + DOMAIN], text)
        except smtplib.SMTPSenderRefused as e:
            return e.smtp_code, e.smtp_error.decode()
    return None


def last_message(srv):
    raw, _ = srv.messages("alice")[-1]
    return raw.decode()


def header_fields(msg):
    """The header's fields, folded lines joined with their line ends."""
    head = msg.split("\n\n", 1)[0]
    out = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def ar_fields(msg):
    return [f for f in header_fields(msg) if f.lower().startswith("authentication-results:")]


@pytest.fixture
def spf_srv(dsmtp_factory, spf_dns):
    # spf_check None: the default (on)
    return dsmtp_factory(dns_host=spf_dns, spf_check=None, dns_timeout=2)


def test_pass_headers(spf_srv):
    assert send(spf_srv, "x@pass.test") is None
    msg = last_message(spf_srv)
    fields = header_fields(msg)
    ar = ar_fields(msg)
    assert ar == ["Authentication-Results: %s;\n\tspf=pass smtp.mailfrom=x@pass.test" % AUTHSERV]
    rs = [f for f in fields if f.startswith("Received-SPF:")]
    assert len(rs) == 1
    assert rs[0].startswith("Received-SPF: pass (%s: domain of pass.test designates %s "
                            "as permitted sender)" % (AUTHSERV, CLIENT)), rs[0]
    assert "client-ip=%s;" % CLIENT in rs[0] and "envelope-from=x@pass.test;" in rs[0]
    assert "helo=client.example;" in rs[0]
    # above our Received: (RFC 7208 9.1)
    names = [f.split(":", 1)[0] for f in fields]
    assert names.index("Authentication-Results") < names.index("Received-SPF") \
        < names.index("Received")
    assert "spf result=pass domain=pass.test" in spf_srv.log()


def test_long_policy_in_several_strings_joined(spf_srv):
    """A TXT record of several >250-byte character-strings is one policy (c-ares' parts
    joined, as MTA-STS and TLS-RPT records are read too): the client's mechanism, cut
    across two strings, passes it."""
    assert send(spf_srv, "x@long.test") is None
    assert "spf=pass smtp.mailfrom=x@long.test" in last_message(spf_srv)


@pytest.mark.parametrize("domain", ["inc.test", "mx.test"])
def test_pass_through_more_lookups(spf_srv, domain):
    assert send(spf_srv, "x@" + domain) is None
    assert "spf=pass smtp.mailfrom=x@%s" % domain in last_message(spf_srv)


def test_fail_refused_by_default(spf_srv):
    code, text = send(spf_srv, "x@fail.test")
    assert code == 550 and text.startswith("5.7.23"), (code, text)
    assert "refused reason=spf result=fail domain=fail.test" in spf_srv.log()
    assert not spf_srv.messages("alice")


def test_fail_accepted_with_spf_reject_none(dsmtp_factory, spf_dns):
    srv = dsmtp_factory(dns_host=spf_dns, spf_check=True, spf_reject="none")
    assert send(srv, "x@fail.test") is None
    msg = last_message(srv)
    assert "spf=fail smtp.mailfrom=x@fail.test" in msg
    assert "Received-SPF: fail (" in msg


def test_softfail(dsmtp_factory, spf_srv, spf_dns):
    assert send(spf_srv, "x@soft.test") is None
    assert "spf=softfail smtp.mailfrom=x@soft.test" in last_message(spf_srv)
    srv = dsmtp_factory(dns_host=spf_dns, spf_check=True, spf_reject="softfail")
    code, text = send(srv, "x@soft.test")
    assert code == 550 and text.startswith("5.7.23"), (code, text)
    code, _ = send(srv, "x@fail.test")
    assert code == 550
    assert send(srv, "x@pass.test") is None


@pytest.mark.parametrize("domain", ["none.test", "nosuch.test"])
def test_none(spf_srv, domain):
    assert send(spf_srv, "x@" + domain) is None
    msg = last_message(spf_srv)
    assert "spf=none smtp.mailfrom=x@%s" % domain in msg
    assert "Received-SPF: none" in msg


def test_null_sender_checks_helo(spf_srv):
    assert send(spf_srv, "", helo="helo.test") is None
    msg = last_message(spf_srv)
    assert ar_fields(msg) == ["Authentication-Results: %s;\n\tspf=pass smtp.helo=helo.test"
                              % AUTHSERV]
    assert "Received-SPF: pass" in msg


def test_temperror_servfail(spf_srv):
    assert send(spf_srv, "x@broken.test") is None
    msg = last_message(spf_srv)
    assert "spf=temperror smtp.mailfrom=x@broken.test" in msg
    assert "Received-SPF: temperror" in msg


def test_temperror_dns_down_within_dns_timeout(dsmtp_factory, netns):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never answers
    silent.bind((HOST, 0))
    try:
        # the reverse DNS runs too, beside SPF: MAIL waits for both at most dns_timeout
        srv = dsmtp_factory(dns_host="%s:%d" % silent.getsockname(), spf_check=True,
                            dns_timeout=2, lookup_names=True)
        start = time.monotonic()
        assert send(srv, "x@pass.test") is None
        took = time.monotonic() - start
        assert 1.5 < took < 3.5, took
        assert "name=unknown result=tempfail why=timeout" in srv.log()
        msg = last_message(srv)
        assert ar_fields(msg)[0].endswith("spf=temperror smtp.mailfrom=x@pass.test;\n"
                                          "\tiprev=temperror policy.iprev=%s" % CLIENT)
        assert "spf=temperror smtp.mailfrom=x@pass.test" in msg
        assert "Received-SPF: temperror" in msg
        assert "spf result=temperror domain=pass.test" in srv.log()
    finally:
        silent.close()


@pytest.mark.parametrize("domain,result", [("v6.test", "pass"), ("v6a.test", "pass"),
                                           ("pass.test", "fail")])
def test_ipv6_client(dsmtp_factory, spf_dns, domain, result):
    srv = dsmtp_factory(dns_host=spf_dns, spf_check=True, spf_reject="none",
                        listen="127.0.0.1,::1")
    with smtplib.SMTP("::1", srv.smtp_port, local_hostname="client.example", timeout=30,
                      source_address=(CLIENT6, 0)) as s:
        assert s.sendmail("x@" + domain, ["alice@" + DOMAIN], make_message()[1]) == {}
    msg = last_message(srv)
    assert "spf=%s smtp.mailfrom=x@%s" % (result, domain) in msg
    assert "client-ip=%s;" % CLIENT6 in msg


def test_forged_authentication_results_removed(spf_srv):
    _, text = make_message(subject="forged")
    forged = ("Authentication-Results: %s; spf=pass smtp.mailfrom=x@fail.test\r\n"
              "Authentication-Results: (comment) %s;\r\n\tdkim=pass header.d=fail.test\r\n"
              "authentication-results : \"%s\"; none\r\n"
              "Authentication-Results: other.example; dkim=pass header.d=pass.test\r\n"
              % (AUTHSERV.upper(), AUTHSERV, AUTHSERV))
    assert send(spf_srv, "x@pass.test", text=forged + text) is None
    msg = last_message(spf_srv)
    ar = ar_fields(msg)
    assert ar == ["Authentication-Results: %s;\n\tspf=pass smtp.mailfrom=x@pass.test" % AUTHSERV,
                  "Authentication-Results: other.example; dkim=pass header.d=pass.test"], ar
    assert "header.d=fail.test" not in msg


def test_not_checked(dsmtp_factory, spf_dns):
    # trusted clients
    srv = dsmtp_factory(dns_host=spf_dns, spf_check=True, forward_from_ip=CLIENT)
    assert send(srv, "x@fail.test") is None
    assert "Received-SPF" not in last_message(srv)
    # spf_check false
    srv = dsmtp_factory(dns_host=spf_dns, spf_check=False)
    assert send(srv, "x@fail.test") is None
    assert "Received-SPF" not in last_message(srv)
    # authenticated clients, and the submission port
    srv = dsmtp_factory(dns_host=spf_dns, spf_check=True)
    for port in (srv.smtp_port, srv.submission_port):
        c = RawSMTP(port, source=CLIENT)
        c.ehlo()
        c.starttls()
        c.ehlo()
        plain = base64.b64encode(("\0alice\0%s" % srv.passwords["alice"]).encode()).decode()
        assert c.cmd("AUTH PLAIN " + plain)[0] == 235
        assert c.cmd("MAIL FROM:<x@fail.test>")[0] == 250
        c.close()
    assert "spf result" not in srv.log()
