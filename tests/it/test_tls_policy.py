"""The server TLS policy: forward-secret AEAD ciphers by default (no static-RSA key
exchange, no CBC), the server's order, and the settings tls_min_version, tls_ciphers and
tls_ciphersuites, for SMTPS, STARTTLS and POP3S; a reload with a list that matches nothing
is refused and the old policy stays."""

import json
import os
import smtplib
import socket
import ssl
import subprocess

import pytest

from dmail_site import BIN, HOST
from test_tell import tellsmtp

# what the trial found accepted before: static RSA key exchange, CBC with and without ECDHE
NON_FS = "AES128-SHA:AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256"
CBC = "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256"


def rsa_cert(site):
    """Give site an RSA certificate (static-RSA suites need one)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mx.example.test", "-keyout", site.key, "-out", site.cert],
                   check=True, capture_output=True, timeout=60)


def rsa_site(factory, **settings):
    """A site (not started) whose certificate is RSA."""
    srv = factory(start=False, **settings)
    rsa_cert(srv)
    return srv


def client(ciphers=None, tls12=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def handshake(port, ctx):
    """(version, cipher) of an implicit-TLS connection, or None when it is refused."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        try:
            with ctx.wrap_socket(s) as t:
                return t.version(), t.cipher()[0]
        except (ssl.SSLError, ConnectionResetError):
            return None


def test_default_refuses_static_rsa_and_cbc(dsmtp_factory):
    srv = rsa_site(dsmtp_factory)
    srv.start()
    assert handshake(srv.smtps_port, client(NON_FS)) is None
    assert handshake(srv.smtps_port, client(CBC)) is None
    got = handshake(srv.smtps_port, client("ECDHE-RSA-AES128-GCM-SHA256"))
    assert got == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    # the server's order: offered last, AES-128-GCM still loses to its first choice
    got = handshake(srv.smtps_port,
                    client("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256"))
    assert got == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    # STARTTLS gets the same context
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=10) as c:
        with pytest.raises((ssl.SSLError, ConnectionResetError, smtplib.SMTPServerDisconnected)):
            c.starttls(context=client(NON_FS))
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=10) as c:
        c.starttls(context=client())
        assert c.sock.cipher()[0].startswith("ECDHE-")


def test_tls_ciphers_and_min_version(dsmtp_factory):
    srv = rsa_site(dsmtp_factory, tls_ciphers="ECDHE-RSA-AES256-GCM-SHA384")
    srv.start()
    assert handshake(srv.smtps_port, client("ECDHE-RSA-AES128-GCM-SHA256")) is None
    got = handshake(srv.smtps_port, client())
    assert got == ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")
    got = handshake(srv.smtps_port, client(tls12=False))
    assert got[0] == "TLSv1.3"

    srv.restart(tls_min_version="TLSv1.3",
                tls_ciphersuites="TLS_CHACHA20_POLY1305_SHA256")
    assert handshake(srv.smtps_port, client()) is None  # a TLS 1.2 client
    assert handshake(srv.smtps_port, client(tls12=False)) == (
        "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")


def test_pop3s_has_the_policy(dpop_factory):
    pop = dpop_factory(start=False, tls_min_version="TLSv1.3")
    pop.start()
    assert handshake(pop.pop3s_port, client()) is None
    assert handshake(pop.pop3s_port, client(tls12=False))[0] == "TLSv1.3"


def test_reload_with_bad_cipher_list_refused(dsmtp):
    before = handshake(dsmtp.smtps_port, client())
    assert before is not None
    dsmtp.write_conf({"tls_ciphers": "NO-SUCH-CIPHER"})
    rc, out, err = tellsmtp(dsmtp, "reload")
    assert rc == 1, out + err
    assert "tls_ciphers NO-SUCH-CIPHER" in out + err
    assert handshake(dsmtp.smtps_port, client()) == before
    dsmtp.write_conf({"tls_ciphers": None, "tls_min_version": "TLSv1.3"})
    rc, out, err = tellsmtp(dsmtp, "reload")
    assert rc == 0, out + err
    assert handshake(dsmtp.smtps_port, client()) is None


def test_unknown_min_version_is_a_config_error(dsmtp_factory):
    srv = dsmtp_factory(start=False, tls_min_version="TLSv1.1")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78
    assert "tls_min_version" in r.stderr and "TLSv1.1" in r.stderr, r.stderr


TESTSSL = "/usr/bin/testssl"


@pytest.mark.skipif(BIN.rstrip("/").endswith("asan"),
                    reason="a minute of testssl; the sanitizer run covers the same code through "
                    "the tests above")
def test_testssl_finds_nothing(dsmtp_factory):
    """testssl.sh (Debian) against SMTPS (POP3S has the same context: see above):
    protocols, cipher categories, forward secrecy and the vulnerability checks; every
    finding is OK, INFO or LOW."""
    srv = rsa_site(dsmtp_factory)
    srv.start()
    out = os.path.join(srv.dir, "testssl.json")
    r = subprocess.run([TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "-p", "-s",
                        "-f", "-U", "--ip", "one", "--jsonfile", out,
                        "%s:%d" % (HOST, srv.smtps_port)],
                       capture_output=True, text=True, timeout=600)
    assert os.path.exists(out), r.stdout[-3000:] + r.stderr[-2000:]
    with open(out) as f:
        findings = json.load(f)
    # "service": testssl cannot tell SMTPS from the banner on a port other than 465;
    # "engine_problem": the machine's openssl has no GOST engine (testssl's own client)
    bad = [f for f in findings if f.get("severity") not in ("OK", "INFO", "LOW")
           and f["id"] not in ("service", "engine_problem")]
    assert bad == [], bad
    ids = {f["id"]: f for f in findings}
    assert ids["PFS"]["finding"] == "offered", ids["PFS"]
    for weak in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                 "cipherlist_3DES_IDEA", "cipherlist_AVERAGE", "TLS1", "TLS1_1"):
        assert ids[weak]["finding"] == "not offered", ids[weak]
    for vuln in ("LUCKY13", "ROBOT", "SWEET32", "BEAST", "heartbleed", "CCS", "RC4"):
        assert ids[vuln]["finding"].startswith("not vulnerable"), ids[vuln]
    # every suite offered is forward-secret
    fs = set(ids["PFS_ciphers"]["finding"].split())
    assert fs and all(c.startswith(("TLS_", "ECDHE-", "DHE-")) for c in fs), fs
