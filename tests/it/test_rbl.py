"""DNSBL: rbl_ban (554 5.7.1 instead of the greeting), rbl_reject and rbl_vanish (554
5.7.1 on each RCPT), rbl_except_ip / rbl_except_mail / rbl_except_rcpt, the result cache
(a record's TTL), IPv6 nibble names, and failing open: a zone that times out or answers
SERVFAIL delays only the session that asked, at most dns_timeout. The zones are served by
a real dnsmasq started here; clients connect from other loopback addresses (127.0.0.x)."""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from dmail_site import BIN, DOMAIN, HOST, free_ports, ipv6_loopback, make_message, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")

SENDER = "sender@remote.example"
V6_NAME = ".".join(reversed("0" * 31 + "1"))  # ::1 as RFC 5782 nibbles


@pytest.fixture
def bl(tmp_path):
    """dnsmasq serving the test zones: 127.0.0.5 listed in ban.test, 127.0.0.6 in
    reject.test and in short.test (TTL 2), 127.0.0.7 in reject.test with the error code
    127.255.255.254 only, ::1 in v6.test; slow.test forwarded to a socket that never
    answers, fail.test to a closed port (SERVFAIL/REFUSED). Yields (server, log path)."""
    port, closed = free_ports(2)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((HOST, 0))
    log = str(tmp_path / "dnsmasq.log")
    p = subprocess.Popen(
        ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
         "--pid-file=", "--log-queries", "--log-facility=" + log, "--port=%d" % port,
         "--local=/test/",
         "--host-record=5.0.0.127.ban.test,127.0.0.2,300",
         "--host-record=6.0.0.127.reject.test,127.0.0.2,300",
         "--host-record=6.0.0.127.short.test,127.0.0.3,2",
         "--host-record=7.0.0.127.reject.test,127.255.255.254,300",
         "--host-record=%s.v6.test,127.0.0.4,300" % V6_NAME,
         "--server=/slow.test/127.0.0.1#%d" % silent.getsockname()[1],
         "--server=/slow2.test/127.0.0.1#%d" % silent.getsockname()[1],
         "--server=/fail.test/127.0.0.1#%d" % closed],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: os.path.exists(log), 5)
        yield "127.0.0.1:%d" % port, log
    finally:
        p.kill()
        p.wait(timeout=10)
        silent.close()


def queries(log, name):
    """How often dnsmasq was asked for name (A)."""
    with open(log) as f:
        return len(re.findall(r"query\[A\] %s from" % re.escape(name), f.read()))


def greet(port, source, host=HOST):
    """(code, text, seconds) of the greeting for a client from source."""
    s = smtplib.SMTP(timeout=20, local_hostname="client.example")
    s.source_address = (source, 0)
    t0 = time.monotonic()
    code, text = s.connect(host, port)
    took = time.monotonic() - t0
    if code == 220:
        s.quit()
    else:
        s.close()
    return code, text.decode(), took


def rcpt(srv, source, sender=SENDER, to=("alice@" + DOMAIN,), login=False):
    """[(code, text)] of RCPT commands after MAIL from sender, from source."""
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=20, local_hostname="client.example",
                      source_address=(source, 0)) as s:
        s.ehlo()
        if login:
            s.login("alice", srv.passwords["alice"])
        code, text = s.mail(sender)
        assert code == 250, (code, text)
        out = [(c, t.decode()) for c, t in (s.rcpt(r) for r in to)]
        s.rset()
        return out


def site(dsmtp_factory, bl, **kw):
    conf = {"dns_host": bl[0], "dns_timeout": 2}
    conf.update(kw)
    return dsmtp_factory(**conf)


# ---------------------------------------------------------------------- rbl_ban


def test_rbl_ban_refuses_at_connect(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_ban="ban.test")
    code, text, _ = greet(srv.smtp_port, "127.0.0.5")
    assert code == 554 and text.startswith("5.7.1") and "blocked using ban.test" in text, \
        (code, text)
    assert greet(srv.smtp_port, "127.0.0.6")[0] == 220
    log = srv.log()
    assert re.search(r"rbl zone=ban\.test setting=rbl_ban ip=127\.0\.0\.5 result=listed "
                     r"answer=127\.0\.0\.2 source=dns", log), log[-3000:]
    assert re.search(r"banned stage=connect ip=<127\.0\.0\.5> setting=rbl_ban rule=ban\.test", log)
    assert re.search(r"rbl zone=ban\.test setting=rbl_ban ip=127\.0\.0\.6 result=clean", log)
    assert "disconnect reason=rbl" in log


def test_rbl_ban_added_by_reload(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl)
    assert greet(srv.smtp_port, "127.0.0.5")[0] == 220
    srv.write_conf({"rbl_ban": "ban.test"})
    rc, out, err = srv.tellsmtp("reload")
    assert rc == 0, (out, err)
    assert wait_for(lambda: greet(srv.smtp_port, "127.0.0.5")[0] == 554, 5)


def test_rbl_not_asked_for_trusted_nor_submission(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_ban="ban.test", forward_from_ip="127.0.0.5")
    assert greet(srv.smtp_port, "127.0.0.5")[0] == 220  # forward_from_ip
    srv.restart(forward_from_ip=None)
    assert greet(srv.submission_port, "127.0.0.5")[0] == 220  # users authenticate there
    assert queries(bl[1], "5.0.0.127.ban.test") == 0
    assert greet(srv.smtp_port, "127.0.0.5")[0] == 554


def test_rbl_except_ip(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_ban="ban.test",
               rbl_except_ip=["ban.test 127.0.0.5", "* 127.0.0.9"])
    assert greet(srv.smtp_port, "127.0.0.5")[0] == 220
    assert queries(bl[1], "5.0.0.127.ban.test") == 0  # not even asked
    srv.restart(rbl_except_ip="other.test 127.0.0.5")  # another zone's exemption
    assert greet(srv.smtp_port, "127.0.0.5")[0] == 554


# ------------------------------------------------------------ rbl_reject, vanish


def test_rbl_reject_refuses_each_rcpt(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_reject="reject.test")
    code, text, _ = greet(srv.smtp_port, "127.0.0.6")
    assert code == 220  # greeted: refused later, per recipient
    got = rcpt(srv, "127.0.0.6", to=["alice@" + DOMAIN, "bob@" + DOMAIN])
    for code, text in got:
        assert code == 554 and text.startswith("5.7.1") and \
            "blocked using reject.test" in text, got
    assert rcpt(srv, "127.0.0.5")[0][0] == 250  # not listed there
    assert re.search(r"rbl-reject stage=rcpt zone=reject\.test setting=rbl_reject "
                     r"ip=127\.0\.0\.6 to=<alice@%s>" % re.escape(DOMAIN), srv.log())


def test_rbl_error_code_answer_is_not_a_listing(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_reject="reject.test")
    assert rcpt(srv, "127.0.0.7")[0][0] == 250  # 127.255.255.254
    assert re.search(r"rbl zone=reject\.test setting=rbl_reject ip=127\.0\.0\.7 result=clean",
                     srv.log())


def test_rbl_vanish_is_treated_as_reject(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_vanish="reject.test")
    got = rcpt(srv, "127.0.0.6")
    assert got[0][0] == 554, got  # refused, never accepted and discarded
    assert srv.messages("alice") == []
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "rbl_vanish" in r.stdout + r.stderr and \
        "never accepted and discarded" in r.stdout + r.stderr, r


def test_rbl_except_mail_and_rcpt(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_reject="reject.test",
               rbl_except_mail=["reject.test *@friend.example"],
               rbl_except_rcpt=["* postmaster@*", "other.test bob@*"])
    assert rcpt(srv, "127.0.0.6", sender="x@friend.example")[0][0] == 250
    got = rcpt(srv, "127.0.0.6", to=["postmaster@" + DOMAIN, "bob@" + DOMAIN])
    assert got[0][0] == 250 and got[1][0] == 554, got
    assert 'result=exempt rule="* postmaster@*"' in srv.log()


def test_rbl_reject_spares_authenticated_sessions(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_reject="reject.test", auth_plaintext=True)
    assert rcpt(srv, "127.0.0.6", login=True)[0][0] == 250
    assert rcpt(srv, "127.0.0.6")[0][0] == 554


# ------------------------------------------------------------- cache, IPv6, TTL


def test_rbl_cache_keeps_an_answer_for_its_ttl(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_reject="short.test")
    name = "6.0.0.127.short.test"
    for _ in range(3):
        assert rcpt(srv, "127.0.0.6")[0][0] == 554
    assert queries(bl[1], name) == 1
    assert "source=cache" in srv.log()
    time.sleep(2.5)  # the record's TTL is 2 s
    assert rcpt(srv, "127.0.0.6")[0][0] == 554
    assert queries(bl[1], name) == 2


def test_rbl_clean_answer_cached_too(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_ban="ban.test")
    for _ in range(3):
        assert greet(srv.smtp_port, "127.0.0.8")[0] == 220
    assert queries(bl[1], "8.0.0.127.ban.test") == 1


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_rbl_ipv6_nibble_names(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, listen="127.0.0.1,::1", rbl_ban="v6.test")
    code, text, _ = greet(srv.smtp_port, "::1", host="::1")
    assert code == 554 and "blocked using v6.test" in text, (code, text)
    assert queries(bl[1], V6_NAME + ".v6.test") == 1


# -------------------------------------------------------- failing open, waiting


def test_rbl_timeout_fails_open_within_dns_timeout(dsmtp_factory, bl):
    """Two zones that never answer are asked in parallel: the greeting comes after about
    dns_timeout (2 s), not twice that; meanwhile a trusted client is served at once."""
    srv = site(dsmtp_factory, bl, rbl_ban="slow.test", rbl_reject="slow2.test",
               forward_from_ip="127.0.0.1")
    result = {}

    def slow():
        result["greet"] = greet(srv.smtp_port, "127.0.0.9")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    msgid, text = make_message(subject="not held up")
    t0 = time.monotonic()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=20) as s:
        assert s.sendmail(SENDER, ["alice@" + DOMAIN], text) == {}
    assert time.monotonic() - t0 < 1.0
    assert srv.msgids("alice") == [msgid]
    t.join(15)
    code, _, took = result["greet"]
    assert code == 220 and 1.5 <= took < 3.5, result
    assert len(re.findall(r"rbl zone=slow2?\.test .*result=error why=timeout action=accept",
                          srv.log())) == 2, srv.log()[-3000:]
    # a failure is not cached: asked again next time
    assert greet(srv.smtp_port, "127.0.0.9")[0] == 220
    assert len(re.findall(r"result=error why=timeout", srv.log())) == 4


def test_rbl_servfail_fails_open(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, rbl_ban="fail.test", rbl_reject="fail.test")
    code, _, took = greet(srv.smtp_port, "127.0.0.5")
    assert code == 220 and took < 3.5
    assert rcpt(srv, "127.0.0.5")[0][0] == 250
    assert re.search(r"rbl zone=fail\.test .*result=error why=(SERVFAIL|REFUSED|timeout)",
                     srv.log()), srv.log()[-3000:]


def test_rbl_client_leaving_while_waiting(dsmtp_factory, bl):
    """A client that hangs up while its lookups run leaves nothing behind (ASan)."""
    srv = site(dsmtp_factory, bl, rbl_ban="slow.test")
    for i in range(5):
        c = socket.create_connection((HOST, srv.smtp_port), source_address=("127.0.0.9", 0))
        c.close()
    time.sleep(2.5)
    assert greet(srv.smtp_port, "127.0.0.1")[0] == 220
    assert srv.alive()


def test_rbl_bad_zone_refused(dsmtp_factory, bl):
    srv = site(dsmtp_factory, bl, start=False, rbl_ban="bad..zone",
               rbl_except_ip="ban.test", rbl_except_rcpt="ban.test <x>")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "rbl_ban" in out and "rbl_except_ip" in out and \
        "rbl_except_rcpt" in out, out
