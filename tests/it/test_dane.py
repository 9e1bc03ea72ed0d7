"""DANE for outbound delivery (RFC 7672), end to end on loopback with real programs: our
dsmtp resolves through Debian's unbound, validating remote.test's zone signed at test
time (ldns-keygen, ldns-signzone; localdnssec.py); the MX mx.remote.test is a second
dsmtp with a certificate of a test CA made here. The TLSA records name the port the MX
listens on (_PORT._tcp.mx.remote.test): remote_smtp_port is not 25 in tests.

DANE-EE and DANE-TA matches deliver and log how TLS was authenticated; a mismatch, an MX
without STARTTLS and a bogus TLSA answer defer (4.7.x) and nothing goes in plaintext; an
unsigned zone's TLSA records are not trusted (opportunistic TLS); dane-only without TLSA
defers."""

import os
import smtplib

import pytest

from dmail_site import (DOMAIN, HOST, PASSWORDS, REMOTE, sendmail, tls_client_context,
                        wait_for)
from localdnssec import LocalDNSSEC, tlsa_rdata
from test_mta_sts import pki  # noqa: F401 (the fixture: the MTA-STS policy server's CA)
from test_outbound_tls import make_ca, outcome, send, theirs_with


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """The test CA and mx.remote.test's certificate; "chain" holds leaf then CA (a DANE-TA
    trust anchor must come in the server's chain)."""
    d = str(tmp_path_factory.mktemp("daneca"))
    c = make_ca(d, "mx." + REMOTE)
    c["chain"] = os.path.join(d, "chain.pem")
    with open(c["chain"], "w") as out:
        for p in (c["cert"], c["ca"]):
            with open(p) as f:
                out.write(f.read())
    return c


@pytest.fixture
def dnssec():
    """start(port, tlsa=[...], signed=True, bogus=[], zones={}, more=[], mx=[...]): unbound
    serving remote.test (MX mx.remote.test, whose records are mx (its address), the TLSA
    records for port, more records) and zones; its dns_host."""
    made = []

    def start(port, tlsa=(), signed=True, bogus=(), zones=None, more=(),
              mx=("mx A 127.0.0.1",)):
        records = ["@ MX 10 mx"] + list(mx) + list(more)
        records += ["_%d._tcp.mx TLSA %s" % (port, t) for t in tlsa]
        all_zones = {REMOTE: records}
        all_zones.update(zones or {})
        z = LocalDNSSEC(all_zones, signed=[n for n in all_zones if signed and n not in bogus],
                        bogus=bogus)
        made.append(z)
        return z.server

    yield start
    for z in made:
        z.stop()


def theirs_chain(dsmtp_factory, ca, tls=True):
    """mx.remote.test serving the chain (without TLS: no certificate at all)."""
    return theirs_with(dsmtp_factory, tls=tls,
                       certs={"cert": ca["chain"], "key": ca["key"]} if tls else None)


def relay(dsmtp_factory, dnssec, ca, subject, tls=True, zone=None, **settings):
    """mx.remote.test (theirs_chain), unbound with remote.test's zone (dnssec's start
    arguments in zone), ours resolving through it with settings, and a message sent to
    bob@remote.test: (ours, theirs)."""
    theirs = theirs_chain(dsmtp_factory, ca, tls=tls)
    server = dnssec(theirs.smtp_port, **(zone or {}))
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port, **settings)
    send(ours, subject=subject)
    return ours, theirs


def assert_sent(ours, theirs, auth):
    line = outcome(ours)
    assert "status=sent" in line, line
    assert wait_for(lambda: theirs.messages("bob"), 10)
    tls = [ln for ln in ours.log().splitlines() if "outq relay=" in ln and "tls=" in ln]
    assert tls and tls[0].endswith(" auth=" + auth), tls
    return tls[0]


def assert_deferred(ours, theirs, dsn, why):
    line = outcome(ours)
    assert "status=deferred" in line and "dsn=" + dsn in line, line
    assert why in line, line
    assert "> MAIL FROM" not in ours.log()  # never in plaintext, never unauthenticated
    assert theirs.messages("bob") == []


def ee(ca):
    return "3 1 1 " + tlsa_rdata(ca["cert"], 1, 1)


def test_dane_ee_match_delivered(dsmtp_factory, dnssec, ca):
    """smtp_dane on, no tls_policy line: the leaf's SPKI digest matches; no CA file, so
    only DANE can have verified it."""
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "daneee",
                         zone=dict(tlsa=[ee(ca), "3 1 1 " + "ab" * 32]), smtp_dane="true")
    line = assert_sent(ours, theirs, "dane-ee")
    assert '" verified' in line, line


def test_dane_ee_full_certificate_sha512(dsmtp_factory, dnssec, ca):
    """Selector 0 (the whole certificate) with SHA2-512 under tls_policy dane."""
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "dane302",
                         zone=dict(tlsa=["3 0 2 " + tlsa_rdata(ca["cert"], 0, 2)]),
                         tls_policy=REMOTE + " dane")
    assert_sent(ours, theirs, "dane-ee")


def test_dane_ee_mismatch_deferred(dsmtp_factory, dnssec, ca):
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "danebad",
                         zone=dict(tlsa=["3 1 1 " + "ab" * 32]), smtp_dane="true")
    assert_deferred(ours, theirs, "4.7.5", "matches no TLSA record")
    assert ours.log().count("> STARTTLS") == 1  # no second try in plaintext


def test_dane_ta_match_delivered(dsmtp_factory, dnssec, ca):
    """DANE-TA: the issuing CA's certificate digest; tls_policy dane for the domain."""
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "daneta",
                         zone=dict(tlsa=["2 0 1 " + tlsa_rdata(ca["ca"], 0, 1)]),
                         tls_policy=REMOTE + " dane")
    assert_sent(ours, theirs, "dane-ta")


def test_dane_ta_other_ca_deferred(dsmtp_factory, dnssec, ca, tmp_path):
    """DANE-TA naming a CA that did not issue the server's certificate."""
    other = make_ca(str(tmp_path), "mx." + REMOTE)
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "danetabad",
                         zone=dict(tlsa=["2 0 1 " + tlsa_rdata(other["ca"], 0, 1)]),
                         smtp_dane="true")
    assert_deferred(ours, theirs, "4.7.5", "matches no TLSA record")


def test_dane_without_starttls_deferred(dsmtp_factory, dnssec, ca):
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "danenotls", tls=False,
                         zone=dict(tlsa=[ee(ca)]), smtp_dane="true")
    assert_deferred(ours, theirs, "4.7.4", "does not offer STARTTLS")


@pytest.mark.parametrize("tls", [True, False])
def test_unusable_tlsa_means_tls_unauthenticated(dsmtp_factory, dnssec, ca, tls):
    """Only records DANE for SMTP does not use (PKIX-EE, which would match; a SHA2-256
    digest of the wrong length): RFC 7672 2.2, TLS is mandatory but not authenticated."""
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "daneunusable", tls=tls,
                         zone=dict(tlsa=["1 1 1 " + tlsa_rdata(ca["cert"], 1, 1),
                                         "3 1 1 " + tlsa_rdata(ca["cert"], 1, 1)[:62]]),
                         smtp_dane="true")
    if tls:
        line = assert_sent(ours, theirs, "none")
        assert 'tls="TLS' in line, line
    else:
        assert_deferred(ours, theirs, "4.7.4", "does not offer STARTTLS")


def test_unsigned_zone_opportunistic(dsmtp_factory, dnssec, ca):
    """The same mismatching TLSA record in an unsigned zone: not trusted, so TLS as may
    (the certificate unchecked) and the message goes."""
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "daneinsecure",
                         zone=dict(tlsa=["3 1 1 " + "ab" * 32], signed=False), smtp_dane="true")
    assert_sent(ours, theirs, "none")


def test_signed_without_tlsa_opportunistic(dsmtp_factory, dnssec, ca):
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "danenone", tls_policy=REMOTE + " dane")
    assert_sent(ours, theirs, "none")


def test_dane_only_without_tlsa_deferred(dsmtp_factory, dnssec, ca):
    ours, theirs = relay(dsmtp_factory, dnssec, ca, "daneonly", tls_policy=REMOTE + " dane-only")
    assert_deferred(ours, theirs, "4.7.5", "dane-only: no usable TLSA records")


def test_bogus_tlsa_deferred(dsmtp_factory, dnssec, ca):
    """The MX host's TLSA records sit in a zone of their own whose signatures expired:
    unbound answers SERVFAIL (bogus); the host is skipped, nothing is sent."""
    theirs = theirs_chain(dsmtp_factory, ca)
    port = theirs.smtp_port
    sub = "_%d._tcp.mx.%s" % (port, REMOTE)
    server = dnssec(port, zones={sub: ["@ TLSA " + ee(ca)]}, bogus=[sub])
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=port, smtp_dane="true")
    send(ours, subject="danebogus")
    assert_deferred(ours, theirs, "4.7.5", "TLSA lookup of %s failed (SERVFAIL" % sub)
    assert "> EHLO" not in ours.log()


@pytest.mark.parametrize("value", ["No", " no \t"])
def test_tls_required_no_ignores_dane(dsmtp_factory, dnssec, ca, value):
    """RFC 8689 4.3: a message saying "TLS-Required: No" goes even though the MX's
    certificate matches no TLSA record, over TLS all the same (not authenticated), and
    keeps the header; the next message without it is still held to DANE."""
    theirs = theirs_chain(dsmtp_factory, ca)
    server = dnssec(theirs.smtp_port, tlsa=["3 1 1 " + "ab" * 32])
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port, smtp_dane="true")
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "bob@" + REMOTE],
             ("Subject: tlsno\nTLS-Required:%s\nMessage-ID: <tlsno@x>\n\nplease\n"
              % value).encode())
    line = outcome(ours)
    assert "status=sent" in line, line
    assert wait_for(lambda: theirs.messages("bob"), 10)
    got = theirs.messages("bob")[0][0]
    assert b"TLS-Required:" + value.rstrip().encode() in got, got
    assert "TLS-Required: No: DANE and MTA-STS not applied" in ours.log()
    tls = [ln for ln in ours.log().splitlines() if "outq relay=" in ln and "tls=" in ln]
    assert tls and 'tls="TLS' in tls[0] and tls[0].endswith(" auth=none"), tls

    send(ours, subject="tlsyes")  # the same destination, without the header
    assert wait_for(lambda: [ln for ln in ours.log().splitlines()
                             if "status=deferred" in ln and "dsn=4.7.5" in ln], 25), ours.log()
    assert len(theirs.messages("bob")) == 1


def test_tls_required_no_under_requiretls_ignored(dsmtp_factory, dnssec, ca):
    """RFC 8689 5: with REQUIRETLS the header means nothing: DANE verifies as usual (the
    record matches here, so it goes, authenticated by DANE-EE)."""
    theirs = theirs_chain(dsmtp_factory, ca)
    server = dnssec(theirs.smtp_port, tlsa=[ee(ca)])
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port, smtp_dane="true")
    with smtplib.SMTP(HOST, ours.submission_port, timeout=20) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login("alice", PASSWORDS["alice"])
        s.sendmail("alice@" + DOMAIN, ["bob@" + REMOTE],
                   "Subject: rt\r\nTLS-Required: No\r\nMessage-ID: <rtno@x>\r\n\r\nx\r\n",
                   mail_options=["REQUIRETLS"])
    assert_sent(ours, theirs, "dane-ee")
    assert "TLS-Required: No: DANE" not in ours.log()


def test_tlsrpt_counts_dane_sessions(dsmtp_factory, dnssec, ca):
    """tls_rpt: a DANE-verified session counts under policy type tlsa; the report itself
    goes to the rua of remote.test over DANE too."""
    from test_mta_sts import report_json, tell
    theirs = theirs_chain(dsmtp_factory, ca)
    rua = '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:alice@%s"' % REMOTE
    server = dnssec(theirs.smtp_port, tlsa=[ee(ca)], more=[rua])
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port, smtp_dane="true",
                         tls_rpt=True, tls_rpt_from="tlsrpt@" + DOMAIN)
    send(ours, subject="danerpt")
    assert_sent(ours, theirs, "dane-ee")
    r = tell(ours, "tlsrpt-send")
    assert r.returncode == 0 and "TLS reports started for 1 domains" in r.stdout, r
    assert wait_for(lambda: theirs.messages("alice"), 20), ours.log()
    _, rep = report_json(theirs)
    [pol] = rep["policies"]
    assert pol["policy"]["policy-type"] == "tlsa", pol
    assert pol["policy"]["policy-domain"] == REMOTE, pol
    assert pol["summary"] == {"total-successful-session-count": 1,
                              "total-failure-session-count": 0}, pol


def test_dane_wins_over_mta_sts(dsmtp_factory, dnssec, ca, pki):
    """remote.test has an enforce MTA-STS policy, and its MX's certificate is not of the
    CA ours trusts for it (PKIX fails: test_mta_sts defers such mail), but it matches the
    MX's DANE-EE record: DANE takes precedence (RFC 8461 2), the mail goes."""
    from test_mta_sts import PolicyServer
    policy = PolicyServer(pki)
    try:
        theirs = theirs_chain(dsmtp_factory, ca)
        server = dnssec(theirs.smtp_port, tlsa=[ee(ca)],
                        more=["mta-sts A 127.0.0.1", '_mta-sts TXT "v=STSv1; id=20261204d"'])
        ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port,
                             smtp_dane="true", mta_sts_port=policy.port, mta_sts_ca=pki["ca"])
        send(ours, subject="danests")
        assert_sent(ours, theirs, "dane-ee")
        assert policy.fetches == 1 and "mode=enforce" in ours.log(), ours.log()
    finally:
        policy.stop()


@pytest.mark.parametrize("tlsa,auth", [("ee", "dane-ee"), ("bad", None)])
def test_gateway_by_name_with_dane_policy(dsmtp_factory, dnssec, ca, tlsa, auth):
    """remote.test's gateway given as [mx.remote.test]:port (no MX lookup): the name's
    validated addresses lead to its TLSA records when a tls_policy line for the host
    says dane."""
    theirs = theirs_chain(dsmtp_factory, ca)
    server = dnssec(theirs.smtp_port, tlsa=[ee(ca) if tlsa == "ee" else "3 1 1 " + "ab" * 32])
    ours = dsmtp_factory(dns_host=server,
                         gateway="%s [mx.%s]:%d" % (REMOTE, REMOTE, theirs.smtp_port),
                         tls_policy="mx.%s dane" % REMOTE)
    send(ours, subject="gw")
    if auth:
        assert_sent(ours, theirs, auth)
    else:
        assert_deferred(ours, theirs, "4.7.5", "matches no TLSA record")
    assert "tls_policy=dane source=tls_policy" in ours.log()


def test_dane_ee_ignores_name_and_dates(dsmtp_factory, dnssec, tmp_path):
    """RFC 7672 3.1.1: a DANE-EE match needs neither the MX host's name in the
    certificate nor valid dates: a self-signed certificate for another name that expired
    in 2020 is accepted by its SPKI digest."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere.example")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2020, 2, 1))
            .sign(key, hashes.SHA256()))
    paths = {"cert": str(tmp_path / "old.pem"), "key": str(tmp_path / "old.key")}
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    theirs = theirs_with(dsmtp_factory, certs=paths)
    server = dnssec(theirs.smtp_port, tlsa=["3 1 1 " + tlsa_rdata(paths["cert"], 1, 1)])
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port, smtp_dane="true")
    send(ours, subject="daneold")
    assert_sent(ours, theirs, "dane-ee")


@pytest.mark.parametrize("where", ["target", "alias"])
def test_cnamed_mx_host(dsmtp_factory, dnssec, ca, where):
    """mx.remote.test is a CNAME of mx2.remote.test (RFC 7672 2.2.3): the TLSA records are
    looked up at the target first, then at the alias's own name; DANE-TA checks the
    certificate's name (mx.remote.test) against both names."""
    ta = "TLSA 2 0 1 " + tlsa_rdata(ca["ca"], 0, 1)
    rel = (lambda port: "_%d._tcp.%s %s" % (port, "mx2" if where == "target" else "mx", ta))
    theirs = theirs_chain(dsmtp_factory, ca)
    server = dnssec(theirs.smtp_port, mx=["mx CNAME mx2", "mx2 A 127.0.0.1"],
                    more=[rel(theirs.smtp_port)])
    ours = dsmtp_factory(dns_host=server, remote_smtp_port=theirs.smtp_port, smtp_dane="true")
    send(ours, subject="danecname")
    assert_sent(ours, theirs, "dane-ta")
