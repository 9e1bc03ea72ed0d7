"""fromip_max messages per client address per fromip_interval: past the limit MAIL gets
451 4.7.1 (temporary), other addresses are not affected, the interval ends, and
fromip_nolimit / forward_from_ip clients are never counted. Clients connect from other
loopback addresses (127.0.0.x) to be told apart."""

import os
import re
import smtplib
import subprocess
import time

from dmail_site import BIN, DOMAIN, HOST, make_message

SENDER = "sender@remote.example"


def send(srv, source, tag="m"):
    """One message from source: 250 -> None, else (code, text) of the refusal."""
    msgid, text = make_message(subject=tag)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15, local_hostname="client.example",
                      source_address=(source, 0)) as s:
        s.ehlo()
        code, t = s.mail(SENDER)
        if code != 250:
            return code, t.decode()
        assert s.rcpt("alice@" + DOMAIN)[0] == 250
        code, t = s.data(text)
        assert code == 250, (code, t)
    return None


def test_fromip_max_refuses_with_451_then_the_interval_ends(dsmtp_factory):
    srv = dsmtp_factory(fromip_max=3, fromip_interval="3s")
    for i in range(3):
        assert send(srv, "127.0.0.5", "ok%d" % i) is None
    code, text = send(srv, "127.0.0.5", "over")
    assert code == 451 and text.startswith("4.7.1") and "too much mail" in text, (code, text)
    assert send(srv, "127.0.0.6") is None  # another address has its own count
    assert len(srv.messages("alice")) == 4
    assert re.search(r"fromip-limit ip=127\.0\.0\.5 messages=3 fromip_max=3 fromip_interval=3",
                     srv.log()), srv.log()[-2000:]
    time.sleep(3.2)
    assert send(srv, "127.0.0.5", "later") is None


def test_fromip_counts_mail_commands_within_one_session(dsmtp_factory):
    srv = dsmtp_factory(fromip_max=2)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15, source_address=("127.0.0.7", 0)) as s:
        s.ehlo()
        assert s.mail(SENDER)[0] == 250
        s.rset()
        assert s.mail(SENDER)[0] == 250
        s.rset()
        assert s.mail(SENDER)[0] == 451


def test_fromip_nolimit_and_forward_from_ip_exempt(dsmtp_factory):
    srv = dsmtp_factory(fromip_max=1, fromip_nolimit=["127.0.0.8", "127.0.1.0/24"],
                        forward_from_ip="127.0.0.9")
    for source in ("127.0.0.8", "127.0.1.4", "127.0.0.9"):
        for i in range(3):
            assert send(srv, source) is None, source
    assert send(srv, "127.0.0.10") is None
    assert send(srv, "127.0.0.10") is not None


def test_fromip_off_by_default(dsmtp_factory):
    srv = dsmtp_factory()
    for i in range(12):
        assert send(srv, "127.0.0.11") is None


def test_fromip_max_changed_by_reload(dsmtp_factory):
    srv = dsmtp_factory(fromip_max=1)
    assert send(srv, "127.0.0.12") is None
    assert send(srv, "127.0.0.12")[0] == 451
    srv.write_conf({"fromip_max": 5})
    rc, out, err = srv.tellsmtp("reload")
    assert rc == 0, (out, err)
    assert send(srv, "127.0.0.12") is None


def test_fromip_bad_values_refused(dsmtp_factory):
    srv = dsmtp_factory(start=False, fromip_max=-1, fromip_interval="0",
                        fromip_nolimit="nonsense")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    for name in ("fromip_max", "fromip_interval", "fromip_nolimit"):
        assert name in out, out
