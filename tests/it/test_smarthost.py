"""Smarthost and gateways, end to end on loopback: `gateway DOMAIN HOST[:PORT]` sends one
domain to a second dsmtp while the others still go by MX (dnsmasq); a bare gateway host
is looked up as MX, a [host] is not; smarthost_auth logs in over STARTTLS to an aiosmtpd
relay without the password showing anywhere; smarthost_tls require never sends in
plaintext (no STARTTLS, a broken handshake: deferred 4.7.4), may does; a refused login and
a missing password file defer, never bounce; a reload with a bad gateway line keeps the
old configuration."""

import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from dmail_site import (DOMAIN, HOST, PASSWORDS, REMOTE, chown_like_dsmtp, dsn_reports,
                        free_ports, sendmail, tls_client_context, wait_for)
from test_tell import tellsmtp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMTP_PEER = os.path.join(REPO, "tests", "unit", "smtp_peer.py")
needs_dns = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")
USER, PASSWORD = "relay-user", "s3cret-Pa55word-xyzzy"


class Relay:
    """An aiosmtpd relay on 127.0.0.1 that keeps what it got: messages (sender,
    recipients, content, whether TLS was on) and logins (mechanism, user, password)."""

    def __init__(self, certs=None, auth=False, only=None):
        self.messages, self.logins = [], []
        self.lock = threading.Lock()
        self.port = free_ports(1)[0]
        kw = {"server_hostname": "relay.test"}
        if certs is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs["cert"], certs["key"])
            kw["tls_context"] = ctx
        if auth:
            kw["authenticator"] = self.authenticator
            kw["auth_require_tls"] = True
        if only is not None:  # offer only this AUTH mechanism
            kw["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m != only]
        self.ctl = Controller(self, hostname=HOST, port=self.port, **kw)
        self.ctl.start()

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        with self.lock:
            self.logins.append((mechanism, login, password))
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                  session.ssl is not None))
        return "250 2.0.0 Ok: queued as R1"

    def stop(self):
        self.ctl.stop()


@pytest.fixture
def relay_factory():
    made = []

    def make(**kw):
        r = Relay(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def password_file(site, text):
    path = os.path.join(site.dir, "relay.password")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    chown_like_dsmtp(path)
    return path


def with_password(dsmtp_factory, text, user=USER, **settings):
    """A started site whose smarthost_auth names a password file holding text."""
    site = dsmtp_factory(start=False, **settings)
    pw = password_file(site, text)
    site.write_conf({"smarthost_auth": "%s %s" % (user, pw)})
    site.start()
    return site, pw


def deferred(site):
    return "status=deferred" in site.log()


def one_pending(site, rcpt):
    files = site.queue_files()
    assert len(files) == 1, files
    data = open(files[0], "rb").read()
    assert b"rcpt pending" in data and rcpt.encode() in data, data[:500]


def send(site, *rcpts, subject="relay"):
    sendmail(site, ["-i", "-f", "alice@" + DOMAIN] + list(rcpts),
             ("Subject: %s\nMessage-ID: <%s@x>\n\nthrough the relay\n" % (subject, subject))
             .encode())


@needs_dns
def test_gateway_one_domain_others_by_mx(pair, dsmtp_factory):
    ours, theirs = pair
    gw = dsmtp_factory(host_domain=["gw.example", "sub.gw.example"], hostname="mx.gw.example")
    ours.restart(gateway=["gw.example [127.0.0.1]:%d" % gw.smtp_port,
                          ".gw.example [127.0.0.1]:%d" % gw.smtp_port])
    send(ours, "bob@" + REMOTE, "bob@gw.example", "carol@sub.gw.example", subject="gw-1")
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert wait_for(lambda: gw.messages("bob") and gw.messages("carol"), 20), ours.log()
    assert theirs.messages("carol") == [] and gw.messages("bob")[0][1]["Message-ID"] == "<gw-1@x>"
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()
    log = ours.log()
    assert "to=<bob@%s> relay=mx.%s[127.0.0.1]:%d" % (REMOTE, REMOTE, theirs.smtp_port) in log
    # one destination for both gateway lines: one transaction, two recipients
    assert "to=<bob@gw.example> relay=127.0.0.1[127.0.0.1]:%d" % gw.smtp_port in log
    assert "to=<carol@sub.gw.example> relay=127.0.0.1[127.0.0.1]:%d" % gw.smtp_port in log


@needs_dns
def test_gateway_bare_host_by_mx_bracketed_host_not(dsmtp_factory, dns):
    """remote.test has an MX (mx.remote.test -> 127.0.0.1) and no address of its own: a
    bare gateway host remote.test reaches the MX; [remote.test] finds no address."""
    gw = dsmtp_factory(host_domain=["gw.example", "brk.example", "mxb.example"],
                       hostname="mx.gw.example")
    p = gw.smtp_port
    ours = dsmtp_factory(dns_host=dns, gateway=[
        "gw.example %s:%d" % (REMOTE, p), "brk.example [%s]:%d" % (REMOTE, p),
        "mxb.example [mx.%s]:%d" % (REMOTE, p)])
    send(ours, "bob@gw.example", "bob@brk.example", "carol@mxb.example", subject="gw-2")
    assert wait_for(lambda: gw.messages("bob") and gw.messages("carol"), 20), ours.log()
    assert wait_for(lambda: deferred(ours), 20), ours.log()
    log = ours.log()
    assert "to=<bob@gw.example> relay=mx.%s[127.0.0.1]:%d" % (REMOTE, p) in log
    assert "to=<carol@mxb.example> relay=mx.%s[127.0.0.1]:%d" % (REMOTE, p) in log
    line = [ln for ln in log.splitlines() if "outq id=" in ln and "to=<bob@brk.example>" in ln][0]
    assert "status=deferred" in line and "host %s" % REMOTE in line, line
    assert len(gw.messages("bob")) == 1
    one_pending(ours, "bob@brk.example")


@needs_dns
def test_smarthost_bare_host_by_mx(dsmtp_factory, dns):
    far = dsmtp_factory(host_domain="far.example", hostname="mx.far.example")
    ours = dsmtp_factory(dns_host=dns, smarthost="%s:%d" % (REMOTE, far.smtp_port))
    send(ours, "bob@far.example", subject="sh-mx")
    assert wait_for(lambda: far.messages("bob"), 20), ours.log()
    assert "relay=mx.%s[127.0.0.1]:%d" % (REMOTE, far.smtp_port) in ours.log()


def test_gateway_wins_over_smarthost(dsmtp_factory, relay_factory):
    relay = relay_factory()
    far = dsmtp_factory(host_domain="far.example", hostname="mx.far.example")
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % relay.port,
                         gateway="far.example [127.0.0.1]:%d" % far.smtp_port)
    send(ours, "bob@far.example", "x@other.example", subject="both")
    assert wait_for(lambda: far.messages("bob") and relay.messages, 20), ours.log()
    assert [m[1] for m in relay.messages] == [["x@other.example"]]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smarthost_auth_over_starttls(dsmtp_factory, relay_factory, it_assets, mech):
    relay = relay_factory(certs=it_assets, auth=True, only=mech)
    ours, pw = with_password(dsmtp_factory, PASSWORD + "\n", tls=False,
                             smarthost="[127.0.0.1]:%d" % relay.port, smarthost_tls="require")
    send(ours, "bob@far.example", "carol@far.example", subject="auth")
    assert wait_for(lambda: relay.messages, 20), ours.log()
    sender, rcpts, content, tls = relay.messages[0]
    assert sender == "alice@" + DOMAIN and sorted(rcpts) == ["bob@far.example",
                                                             "carol@far.example"]
    assert tls and b"Message-ID: <auth@x>" in content
    assert [(m, u) for m, u, _ in relay.logins] == [(mech, USER)]
    assert relay.logins[0][2] == PASSWORD  # the first line, its newline not included
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()
    log = ours.log()
    assert "relay=127.0.0.1[127.0.0.1]:%d" % relay.port in log and "status=sent" in log
    # debug level shows the commands, the credentials masked
    assert ("AUTH PLAIN ********" if mech == "PLAIN" else "> ********") in log
    outputs = [log]
    for args in (["status"], ["stats"], ["stats", "-p"], ["config", "smarthost_auth"]):
        rc, out, err = tellsmtp(ours, *args)
        assert rc == 0, err
        outputs.append(out + err)
    assert "%s %s" % (USER, pw) in outputs[-1]
    for text in outputs:
        assert PASSWORD not in text
        assert "czNjcmV0" not in text  # nor its base64 ("s3cret")


def test_require_without_starttls_deferred(dsmtp_factory, relay_factory):
    relay = relay_factory()  # no STARTTLS
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % relay.port, smarthost_tls="require")
    send(ours, "bob@far.example", subject="req")
    assert wait_for(lambda: deferred(ours), 20), ours.log()
    line = [ln for ln in ours.log().splitlines() if "status=deferred" in ln][0]
    assert "dsn=4.7.4" in line and "does not offer STARTTLS" in line, line
    assert "relay=127.0.0.1[127.0.0.1]:%d" % relay.port in line
    assert relay.messages == []
    assert "MAIL FROM" not in ours.log()
    one_pending(ours, "bob@far.example")
    assert dsn_reports(ours, "alice") == []


def test_may_without_starttls_delivered(dsmtp_factory, relay_factory):
    relay = relay_factory()
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % relay.port, smarthost_tls="may")
    send(ours, "bob@far.example", subject="may")
    assert wait_for(lambda: relay.messages, 20), ours.log()
    assert relay.messages[0][3] is False  # in plaintext
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()


def peer(scenario, log):
    """tests/unit/smtp_peer.py SCENARIO on a free port: (process, port)."""
    p = subprocess.Popen([sys.executable, SMTP_PEER, scenario, log], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    return p, int(p.stdout.readline())


@pytest.mark.parametrize("policy", ["require", "may"])
def test_broken_handshake(dsmtp_factory, tmp_path, policy):
    """A server that offers STARTTLS and breaks the handshake: require defers without a
    word in plaintext; may retries once in plaintext and delivers."""
    log = str(tmp_path / "peer.log")
    p, port = peer("badtls", log)
    try:
        ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, smarthost_tls=policy)
        send(ours, "bob@far.example", subject="hs")
        if policy == "require":
            assert wait_for(lambda: deferred(ours), 20), ours.log()
            line = [ln for ln in ours.log().splitlines() if "status=deferred" in ln][0]
            assert "dsn=4.7.4" in line and "handshake" in line, line
            assert b"MAIL FROM" not in open(log, "rb").read()
            one_pending(ours, "bob@far.example")
        else:
            assert wait_for(lambda: "status=sent" in ours.log(), 20), ours.log()
            assert b"MAIL FROM" in open(log, "rb").read()
    finally:
        p.kill()
        p.wait(10)


def test_auth_without_tls_deferred(dsmtp_factory, relay_factory):
    relay = relay_factory()  # no STARTTLS: credentials are never sent in plaintext
    ours, _ = with_password(dsmtp_factory, PASSWORD, smarthost="[127.0.0.1]:%d" % relay.port)
    send(ours, "bob@far.example", subject="notls")
    assert wait_for(lambda: deferred(ours), 20), ours.log()
    line = [ln for ln in ours.log().splitlines() if "status=deferred" in ln][0]
    assert "dsn=4.7.0" in line and "without TLS" in line, line
    assert relay.messages == [] and relay.logins == []


def test_wrong_password_deferred_not_bounced(dsmtp_factory, relay_factory, it_assets):
    relay = relay_factory(certs=it_assets, auth=True)
    ours, _ = with_password(dsmtp_factory, "wrong-Pa55word-plugh\nsecond line\n",
                            smarthost="[127.0.0.1]:%d" % relay.port)
    send(ours, "bob@far.example", subject="wrong")
    assert wait_for(lambda: deferred(ours), 20), ours.log()
    assert relay.logins and relay.logins[0][1:] == (USER, "wrong-Pa55word-plugh")
    line = [ln for ln in ours.log().splitlines() if "status=deferred" in ln][0]
    assert "dsn=4.7.8" in line and "auth: 535 5.7.8" in line, line
    assert relay.messages == []
    assert "wrong-Pa55word" not in ours.log()
    one_pending(ours, "bob@far.example")
    assert dsn_reports(ours, "alice") == []


def test_missing_password_file_deferred(dsmtp_factory, relay_factory, it_assets):
    relay = relay_factory(certs=it_assets, auth=True)
    ours = dsmtp_factory(tls=False, smarthost="[127.0.0.1]:%d" % relay.port)
    missing = os.path.join(ours.dir, "no-such.password")
    ours.restart(smarthost_auth="%s %s" % (USER, missing))
    send(ours, "bob@far.example", subject="nopw")
    assert wait_for(lambda: deferred(ours), 20), ours.log()
    log = ours.log()
    assert ("smarthost_auth: cannot read the password file %s: No such file or directory"
            % missing) in log
    line = [ln for ln in log.splitlines() if "status=deferred" in ln][0]
    assert "dsn=4.3.5" in line, line
    assert relay.messages == [] and relay.logins == []  # not even a connection's login
    one_pending(ours, "bob@far.example")
    assert dsn_reports(ours, "alice") == []
    # an empty first line is refused the same way
    password_file(ours, "\nsecond\n")
    ours.restart(smarthost_auth="%s %s" % (USER, os.path.join(ours.dir, "relay.password")))
    assert wait_for(lambda: "its first line is empty" in ours.log(), 20), ours.log()


def test_reload_with_bad_gateway_keeps_old(dsmtp_factory, relay_factory):
    relay = relay_factory()
    ours = dsmtp_factory(gateway="far.example [127.0.0.1]:%d" % relay.port)
    ours.write_conf({"gateway": ["far.example [127.0.0.1]:%d" % relay.port,
                                 "bad.example [127.0.0.1]:99999"]})
    rc, out, err = tellsmtp(ours, "reload")
    assert rc != 0, out
    assert ("dmail.conf:%d: gateway: '[127.0.0.1]:99999': '99999' is not a port (1 to 65535)"
            % len(open(ours.conf_path).read().splitlines())) in out + err, out + err
    assert "the old configuration stays" in out + err
    rc, out, err = tellsmtp(ours, "config", "gateway")
    assert rc == 0 and "far.example [127.0.0.1]:%d" % relay.port in out and "bad" not in out
    # the old gateway is still in force (sendmail would refuse the file: submit by SMTP)
    with smtplib.SMTP(HOST, ours.submission_port, timeout=20) as s:
        s.starttls(context=tls_client_context())
        s.login("alice", PASSWORDS["alice"])
        s.sendmail("alice@" + DOMAIN, ["bob@far.example"], "Subject: after reload\r\n\r\nx\r\n")
    assert wait_for(lambda: relay.messages, 20), ours.log()
    assert relay.messages[0][1] == ["bob@far.example"]
