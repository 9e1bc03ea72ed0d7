"""Outbound TLS policy per destination (`tls_policy DOMAIN LEVEL [match=NAME]`, Postfix's
smtp_tls_policy_maps levels), end to end on loopback: ours sends to remote.test, whose MX
(dnsmasq) is a second dsmtp. encrypt to a server without STARTTLS defers 4.7.4 and sends
nothing; verify delivers when the certificate chains to smtp_tls_ca_file and names the MX
host, defers 4.7.5 when it does not; secure wants the domain's own name (or match=);
none stays in plaintext; dane-only defers 4.7.5 when dnsmasq (which validates nothing)
is the resolver: no MX is DNSSEC-secure (DANE itself: test_dane.py); bad lines are
refused with file:line."""

import os
import shutil
import smtplib
import ssl
import subprocess

import pytest

from dmail_site import (BIN, DOMAIN, HOST, PASSWORDS, REMOTE, dsn_reports, free_ports,
                        sendmail, tls_client_context, wait_for)


def make_ca(d, leaf_cn):
    """A test CA and a leaf certificate for leaf_cn (its subjectAltName too) signed by
    it: {"ca", "cert", "key"} paths in d."""
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, cert = (os.path.join(d, n) for n in ("leaf.key", "leaf.csr", "leaf.pem"))
    ext = os.path.join(d, "leaf.ext")
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=dmail test CA", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-subj", "/CN=" + leaf_cn, "-keyout", key, "-out", csr)
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\n" % leaf_cn)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    return make_ca(str(tmp_path_factory.mktemp("ca")), "mx." + REMOTE)


def ours_with_ca(dsmtp_factory, ca, **settings):
    """Our site with smtp_tls_ca_file: a copy of ca where its run_as user reads it."""
    site = dsmtp_factory(start=False, **settings)
    path = os.path.join(site.dir, "ca.pem")
    shutil.copy(ca, path)
    os.chmod(path, 0o644)
    site.write_conf({"smtp_tls_ca_file": path})
    site.start()
    return site


def theirs_with(dsmtp_factory, certs=None, tls=True):
    """The server of remote.test, with a certificate of the test CA when certs."""
    site = dsmtp_factory(start=False, tls=tls, host_domain=REMOTE, hostname="mx." + REMOTE)
    if certs is not None:
        for src, dst in ((certs["cert"], site.cert), (certs["key"], site.key)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
    site.start()
    return site


def send(site, rcpt="bob@" + REMOTE, subject="tlspol"):
    sendmail(site, ["-i", "-f", "alice@" + DOMAIN, rcpt],
             ("Subject: %s\nMessage-ID: <%s@x>\n\nsecure?\n" % (subject, subject)).encode())


def outcome(site):
    """The first outq status line for a remote.test recipient, once there is one."""
    lines = []

    def found():
        lines[:] = [ln for ln in site.log().splitlines()
                    if "outq id=" in ln and "status=" in ln and REMOTE in ln]
        return lines
    assert wait_for(found, 25), site.log()
    return lines[0]


def test_encrypt_without_starttls_deferred(dsmtp_factory, dns):
    theirs = theirs_with(dsmtp_factory, tls=False)
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port,
                         tls_policy=REMOTE + " encrypt")
    send(ours)
    line = outcome(ours)
    assert "status=deferred" in line and "dsn=4.7.4" in line, line
    assert "does not offer STARTTLS" in line, line
    assert "MAIL FROM" not in ours.log()
    assert theirs.messages("bob") == []
    assert "tls_policy=encrypt source=tls_policy" in ours.log()


def test_encrypt_with_starttls_delivered(dsmtp_factory, dns):
    theirs = theirs_with(dsmtp_factory)  # self-signed: encrypt does not check it
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port,
                         tls_policy=REMOTE + " encrypt")
    send(ours)
    assert "status=sent" in outcome(ours)
    assert wait_for(lambda: theirs.messages("bob"), 10)
    assert 'tls="TLS' in ours.log()


def test_none_stays_in_plaintext(dsmtp_factory, dns):
    theirs = theirs_with(dsmtp_factory)
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port,
                         tls_policy="." + REMOTE.split(".")[-1] + " none")
    send(ours)
    assert "status=sent" in outcome(ours)
    assert "> STARTTLS" not in ours.log()
    assert 'tls="' not in ours.log()


def test_verify_with_test_ca_delivered(dsmtp_factory, dns, test_ca):
    theirs = theirs_with(dsmtp_factory, certs=test_ca)
    ours = ours_with_ca(dsmtp_factory, test_ca["ca"], dns_host=dns,
                        remote_smtp_port=theirs.smtp_port, tls_policy=REMOTE + " verify")
    send(ours)
    assert "status=sent" in outcome(ours)
    assert wait_for(lambda: theirs.messages("bob"), 10)
    assert [ln for ln in ours.log().splitlines() if 'tls="' in ln and "verified" in ln]


def test_verify_untrusted_deferred(dsmtp_factory, dns, test_ca):
    """The same certificate without smtp_tls_ca_file: nothing vouches for it."""
    theirs = theirs_with(dsmtp_factory, certs=test_ca)
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port,
                         tls_policy=REMOTE + " verify")
    send(ours)
    line = outcome(ours)
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "MAIL FROM" not in ours.log()
    assert theirs.messages("bob") == []


@pytest.mark.parametrize("match,sent", [("", False), (" match=mx." + REMOTE, True)])
def test_secure_matches_the_domain(dsmtp_factory, dns, test_ca, match, sent):
    """secure wants remote.test itself by default (the certificate names mx.remote.test)."""
    theirs = theirs_with(dsmtp_factory, certs=test_ca)
    ours = ours_with_ca(dsmtp_factory, test_ca["ca"], dns_host=dns,
                        remote_smtp_port=theirs.smtp_port, tls_policy=REMOTE + " secure" + match)
    send(ours)
    line = outcome(ours)
    if sent:
        assert "status=sent" in line, line
    else:
        assert "status=deferred" in line and "dsn=4.7.5" in line, line
        assert theirs.messages("bob") == []


def test_dane_only_without_tlsa_deferred(dsmtp_factory, dns):
    theirs = theirs_with(dsmtp_factory)
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port,
                         tls_policy=REMOTE + " dane-only")
    send(ours)
    line = outcome(ours)
    assert "status=deferred" in line and "dsn=4.7.5" in line, line
    assert "dane-only: the MX record is not DNSSEC-validated" in line, line


@pytest.mark.parametrize("value,why", [
    ("remote.test bogus", "is not a TLS level"),
    ("remote.test", "is not DOMAIN LEVEL"),
    ("remote.test may match=mx.remote.test", "match= is for the levels verify and secure"),
    ("remote.test verify mx.remote.test", "is not match=HOSTNAME"),
    ("-bad-.test may", "domain"),
])
def test_bad_line_refused(dsmtp_factory, value, why):
    site = dsmtp_factory(start=False, tls_policy=value)
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert site.conf_path + ":" in out and why in out, out


def test_two_lines_for_one_domain_refused(dsmtp_factory):
    site = dsmtp_factory(start=False, tls_policy=["remote.test may", "remote.test none"])
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "tls_policy" in r.stdout + r.stderr


# ---------------------------------------------------------------- REQUIRETLS (RFC 8689)

def submit_requiretls(site, rcpt, subject="rt"):
    """alice submits over STARTTLS with MAIL FROM ... REQUIRETLS; the EHLO reply after
    STARTTLS announces REQUIRETLS."""
    with smtplib.SMTP(HOST, site.submission_port, timeout=20) as s:
        s.ehlo()
        assert not s.has_extn("requiretls")  # never on a plaintext session
        s.starttls(context=tls_client_context())
        s.ehlo()
        assert s.has_extn("requiretls")
        s.login("alice", PASSWORDS["alice"])
        assert s.sendmail("alice@" + DOMAIN, [rcpt],
                          "Subject: %s\r\nMessage-ID: <%s@x>\r\n\r\nsecret\r\n" % (subject, subject),
                          mail_options=["REQUIRETLS"]) == {}


def test_requiretls_refused_on_plaintext(dsmtp):
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=20) as s:
        s.ehlo()
        assert not s.has_extn("requiretls")
        code, text = s.docmd("MAIL FROM:<x@remote.example> REQUIRETLS")
        assert code == 530 and b"5.7.10" in text, (code, text)
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=20) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        code, text = s.docmd("MAIL FROM:<x@remote.example> REQUIRETLS")
        assert code == 250, (code, text)
    assert wait_for(lambda: "requiretls" in dsmtp.log(), 5)


def test_requiretls_relayed_over_verified_tls(dsmtp_factory, dns, test_ca):
    theirs = theirs_with(dsmtp_factory, certs=test_ca)
    ours = ours_with_ca(dsmtp_factory, test_ca["ca"], dns_host=dns,
                        remote_smtp_port=theirs.smtp_port, tls_policy=REMOTE + " verify")
    submit_requiretls(ours, "bob@" + REMOTE)
    assert "status=sent" in outcome(ours)
    assert wait_for(lambda: theirs.messages("bob"), 10)
    assert "REQUIRETLS" in [ln for ln in ours.log().splitlines() if "> MAIL FROM" in ln][0]
    assert [ln for ln in theirs.log().splitlines() if "mail from=" in ln and "requiretls" in ln]


def test_requiretls_over_may_bounced(dsmtp_factory, dns):
    theirs = theirs_with(dsmtp_factory)  # STARTTLS, but nothing verifies it
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port)
    submit_requiretls(ours, "bob@" + REMOTE, subject="rtmay")
    line = outcome(ours)
    assert "status=bounced" in line and "dsn=5.7.30" in line, line
    assert theirs.messages("bob") == []
    assert "> MAIL FROM" not in ours.log()
    assert wait_for(lambda: dsn_reports(ours, "alice"), 20)
    assert "5.7.30" in dsn_reports(ours, "alice")[0].as_string()


def test_requiretls_local_delivery_fine(dsmtp_factory):
    ours = dsmtp_factory()
    submit_requiretls(ours, "bob@" + DOMAIN, subject="rtlocal")
    assert wait_for(lambda: ours.messages("bob"), 10)


def test_requiretls_next_hop_without_it_bounced(dsmtp_factory, dns, test_ca):
    """A gateway whose certificate verifies but that does not offer REQUIRETLS (aiosmtpd):
    no MAIL is sent, the recipient bounces 5.7.30; the gateway's host keys tls_policy."""
    from aiosmtpd.controller import Controller

    class Keep:
        got = []

        async def handle_DATA(self, server, session, envelope):
            Keep.got.append(envelope.mail_from)
            return "250 2.0.0 Ok"

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(test_ca["cert"], test_ca["key"])
    port = free_ports(1)[0]
    ctl = Controller(Keep(), hostname=HOST, port=port, server_hostname="mx." + REMOTE,
                     tls_context=ctx)
    ctl.start()
    try:
        ours = ours_with_ca(dsmtp_factory, test_ca["ca"], dns_host=dns,
                            gateway="far.example %s:%d" % (REMOTE, port),
                            tls_policy=REMOTE + " verify")
        submit_requiretls(ours, "bob@far.example", subject="rtgw")
        line = [None]

        def bounced():
            line[0] = next((ln for ln in ours.log().splitlines()
                            if "outq id=" in ln and "status=" in ln), None)
            return line[0]
        assert wait_for(bounced, 25), ours.log()
        assert "status=bounced" in line[0] and "dsn=5.7.30" in line[0], line[0]
        assert "not offered" in line[0] and "verified" in ours.log()
        assert Keep.got == []
    finally:
        ctl.stop()
