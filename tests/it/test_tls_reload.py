"""A renewed certificate takes effect on reload: after the files are replaced and
tellsmtp/tellpop reload, new SMTPS, STARTTLS, POP3S and STLS connections get the new
certificate; a connection opened before the reload keeps working with the old one; a
reload whose new certificate is broken is refused and the old one stays in use."""

import poplib
import smtplib
import socket
import ssl
import subprocess

from dmail_site import HOST
from test_tell import tellpop, tellsmtp

EX_OK, EX_REFUSED = 0, 1


def _client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _new_cert(srv, cn):
    """Replace srv's certificate and key files in place with a fresh pair for cn."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=" + cn, "-keyout", srv.key, "-out", srv.cert],
                   check=True, capture_output=True, timeout=30)


def _implicit_cert(port):
    """The DER certificate a TLS-on-connect listener presents."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        with _client_ctx().wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def _pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_smtp_reload_renews_certificate(dsmtp):
    old = _pem_der(dsmtp.cert)
    assert _implicit_cert(dsmtp.smtps_port) == old
    before = smtplib.SMTP_SSL(HOST, dsmtp.smtps_port, context=_client_ctx(), timeout=10)
    assert before.ehlo()[0] == 250
    _new_cert(dsmtp, "renewed.example.test")
    new = _pem_der(dsmtp.cert)
    assert new != old
    rc, out, err = tellsmtp(dsmtp, "reload")
    assert rc == EX_OK, out + err
    assert _implicit_cert(dsmtp.smtps_port) == new
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=10) as c:
        c.starttls(context=_client_ctx())
        assert c.sock.getpeercert(binary_form=True) == new
    # the session opened before the reload goes on with the old certificate
    assert before.sock.getpeercert(binary_form=True) == old
    assert before.noop()[0] == 250
    before.quit()


def test_smtp_reload_with_broken_certificate_keeps_old(dsmtp):
    old = _pem_der(dsmtp.cert)
    with open(dsmtp.cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    rc, out, err = tellsmtp(dsmtp, "reload")
    assert rc == EX_REFUSED, out + err
    assert dsmtp.cert in out + err
    assert _implicit_cert(dsmtp.smtps_port) == old
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=10) as c:
        c.starttls(context=_client_ctx())
        assert c.sock.getpeercert(binary_form=True) == old


def test_pop_reload_renews_certificate(dpop_factory):
    pop = dpop_factory()
    srv = pop.srv
    old = _pem_der(srv.cert)
    assert _implicit_cert(pop.pop3s_port) == old
    _new_cert(srv, "renewed-pop.example.test")
    new = _pem_der(srv.cert)
    rc, out, err = tellpop(pop, "reload")
    assert rc == EX_OK, out + err
    assert _implicit_cert(pop.pop3s_port) == new
    c = poplib.POP3(HOST, pop.pop_port, timeout=10)
    try:
        c.stls(context=_client_ctx())
        assert c.sock.getpeercert(binary_form=True) == new
    finally:
        c.quit()
