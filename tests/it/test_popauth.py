"""POP-before-SMTP (forward_user, forward_user_window, hide_auth recentpop) end to end: a
real poplib login to dpop, then smtplib relaying through dsmtp's public port from the
same address to a remote domain (delivered by MX through dnsmasq to a second dsmtp), and
refusals: before any login, from another address, after the window, with forward_user
off, after a failed login. dpop and dsmtp share work_dir/popauth, so the permission
survives a restart of dsmtp."""

import os
import poplib
import shutil
import smtplib
import time

import pytest

from dmail_site import HOST, PASSWORDS, REMOTE, Dpop, free_ports, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")

OTHER = "127.0.0.8"  # an address that never logs in


def with_dpop(site, **settings):
    """Start a dpop on site (free ports) and restart its dsmtp with settings."""
    p1, p2 = free_ports(2)
    conf = {"pop_port": p1, "pop3s_port": 0, "auth_plaintext": True, "auth_fail_delay": 0}
    conf.update(settings)
    site.restart(**conf)
    pop = site.program("dpop", cls=Dpop)
    pop.start()
    return pop


def pop_login(pop, user="alice", password=None):
    p = poplib.POP3(HOST, pop.pop_port, timeout=10)
    try:
        p.user(user)
        p.pass_(password if password is not None else PASSWORDS[user])
        p.stat()
    finally:
        p.quit()


def rcpt(site, to, source=None):
    """(code, text) of RCPT to on site's smtp port, from source."""
    with smtplib.SMTP(HOST, site.smtp_port, local_hostname="client.example", timeout=20,
                      source_address=(source, 0) if source else None) as s:
        s.ehlo()
        code, text = s.mail("alice@example.test")
        assert code == 250, (code, text)
        code, text = s.rcpt(to)
        s.rset()
        return code, text.decode()


def noted(site):
    return os.path.exists(os.path.join(site.work, "popauth"))


def test_relay_after_pop_login(pair):
    ours, theirs = pair
    pop = with_dpop(ours, forward_user=True)
    to = "carol@" + REMOTE
    code, text = rcpt(ours, to)
    assert code == 554 and "Relay access denied" in text, (code, text)
    pop_login(pop)
    assert wait_for(lambda: noted(ours), 5)
    with smtplib.SMTP(HOST, ours.smtp_port, local_hostname="client.example", timeout=20) as s:
        assert s.sendmail("alice@example.test", [to], "Subject: popbsmtp\r\n\r\nhi\r\n") == {}
    assert wait_for(lambda: theirs.messages("carol"), 20), ours.log()
    assert "relay=recentpop" in ours.log()
    # from an address that did not log in: refused
    assert rcpt(ours, to, source=OTHER)[0] == 554
    # the file outlives dsmtp
    ours.restart()
    assert rcpt(ours, to)[0] == 250
    text = open(os.path.join(ours.work, "popauth")).read()
    assert text.startswith("127.0.0.1 ") and text.count("\n") == 1, text


def test_window_ends(pair):
    ours, _ = pair
    pop = with_dpop(ours, forward_user=True, forward_user_window=2)
    pop_login(pop)
    assert wait_for(lambda: noted(ours), 5)
    assert rcpt(ours, "carol@" + REMOTE)[0] == 250
    time.sleep(2.2)
    assert rcpt(ours, "carol@" + REMOTE)[0] == 554


def test_off_and_failed_login_do_not_count(pair):
    ours, _ = pair
    pop = with_dpop(ours)  # forward_user off
    pop_login(pop)
    time.sleep(0.3)
    assert not noted(ours)
    assert rcpt(ours, "carol@" + REMOTE)[0] == 554
    pop.stop()
    pop = with_dpop(ours, forward_user=True)
    with pytest.raises(poplib.error_proto):
        pop_login(pop, password="wrong")
    time.sleep(0.3)
    assert not noted(ours)
    assert rcpt(ours, "carol@" + REMOTE)[0] == 554


def test_hide_auth_recentpop(pair):
    ours, _ = pair
    pop = with_dpop(ours, forward_user=True, hide_auth="recentpop")

    def offers_auth(source=None):
        with smtplib.SMTP(HOST, ours.smtp_port, local_hostname="client.example", timeout=20,
                          source_address=(source, 0) if source else None) as s:
            s.ehlo()
            return s.has_extn("auth")

    assert offers_auth()
    pop_login(pop)
    assert wait_for(lambda: noted(ours), 5)
    assert not offers_auth()
    assert offers_auth(OTHER)
    # without hide_auth, AUTH stays offered
    ours.restart(hide_auth=None)
    assert offers_auth()
