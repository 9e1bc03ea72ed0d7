"""MTA-STS (RFC 8461) for outbound delivery, on loopback: a dnsmasq answers the MX, the
_mta-sts TXT record and mta-sts.remote.test; a local HTTPS server (python's http.server
with a certificate of a test CA made by openssl) serves the policy on mta_sts_port; our
dsmtp trusts the test CA through mta_sts_ca and relays to a second dsmtp serving
remote.test (remote_smtp_port) whose certificate is of the same CA (or not)."""

import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import threading

import pytest

from dmail_site import DOMAIN, REMOTE, free_ports, sendmail, wait_for
from localdns import LocalDNS

pytestmark = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")

MX = "mx." + REMOTE
POLICY = "version: STSv1\nmode: %s\nmx: %s\nmax_age: 86400\n"


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and certificates it signs: mta-sts.remote.test (the policy server),
    mx.remote.test (the good MX) and, self-signed, a bad mx.remote.test."""
    d = tmp_path_factory.mktemp("sts-pki")
    p = {"dir": str(d), "ca": str(d / "ca.pem"), "cakey": str(d / "ca.key")}
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=dmail test CA", "-keyout", p["cakey"],
             "-out", p["ca"])
    for name in ("mta-sts." + REMOTE, MX):
        key, csr, cert = (str(d / (name + x)) for x in (".key", ".csr", ".pem"))
        ext = str(d / (name + ".ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s\n" % name)
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-subj", "/CN=" + name, "-keyout", key, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["cakey"],
                 "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
        p[name] = (cert, key)
    key, cert = str(d / "bad.key"), str(d / "bad.pem")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=" + MX, "-addext",
             "subjectAltName=DNS:" + MX, "-keyout", key, "-out", cert)
    p["bad"] = (cert, key)
    # dsmtp reads mta_sts_ca as run_as (outbound starts after privileges drop)
    pub = tempfile.mkdtemp(prefix="dmail-sts-ca-")
    os.chmod(pub, 0o755)
    shutil.copy(p["ca"], pub)
    p["ca"] = os.path.join(pub, "ca.pem")
    os.chmod(p["ca"], 0o644)
    yield p
    shutil.rmtree(pub, ignore_errors=True)


class PolicyServer:
    """HTTPS on a free loopback port serving .policy at /.well-known/mta-sts.txt;
    .fetches counts the GETs of it. It also takes TLS reports (RFC 8460 https: rua) POSTed
    to /tlsrpt: .posts holds (content type, body) of each; other paths get 404."""

    def __init__(self, pki):
        self.policy = POLICY % ("enforce", MX)
        self.ctype = "text/plain"
        self.fetches = 0
        self.posts = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/tlsrpt":
                    self.send_error(404)
                    return
                srv.posts.append((self.headers.get("Content-Type"), body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                srv.fetches += 1
                body = srv.policy.encode()
                self.send_response(200)
                self.send_header("Content-Type", srv.ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.port = free_ports(1)[0]
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pki["mta-sts." + REMOTE])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def policy_server(pki):
    s = PolicyServer(pki)
    yield s
    s.stop()


def make_dns(txt="v=STSv1; id=20261204a"):
    recs = ["--mx-host=%s,%s,10" % (REMOTE, MX), "--host-record=%s,127.0.0.1" % MX,
            "--host-record=mta-sts.%s,127.0.0.1" % REMOTE]
    if txt is not None:
        recs.append("--txt-record=_mta-sts.%s,%s" % (REMOTE, txt))
    return LocalDNS(recs)


@pytest.fixture
def sts_site(dsmtp_factory, pki, policy_server):
    """make(cert="good"|"bad", txt=...) -> (ours, theirs, dns)."""
    dnss = []

    def make(cert="good", txt="v=STSv1; id=20261204a", **settings):
        dns = make_dns(txt)
        dnss.append(dns)
        c, k = pki[MX] if cert == "good" else pki["bad"]
        theirs = dsmtp_factory(host_domain=REMOTE, hostname=MX, tls_cert=c, tls_key=k)
        ours = dsmtp_factory(dns_host=dns.server, remote_smtp_port=theirs.smtp_port,
                             mta_sts_port=policy_server.port, mta_sts_ca=pki["ca"], **settings)
        return ours, theirs, dns

    yield make
    for d in dnss:
        d.stop()


def send(ours, n=1, rcpt="bob"):
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "%s@%s" % (rcpt, REMOTE)],
             b"Subject: sts %d\n\nbody\n" % n)


def test_enforce_matching_mx_valid_certificate_delivered(sts_site, policy_server):
    ours, theirs, _ = sts_site()
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    log = ours.log()
    assert "mta-sts domain=%s id=20261204a mode=enforce" % REMOTE in log, log
    assert 'tls="TLSv1.' in log and '" verified' in log, log
    assert policy_server.fetches == 1


def test_enforce_bad_certificate_deferred(sts_site, policy_server):
    ours, theirs, _ = sts_site(cert="bad")
    send(ours)
    assert wait_for(lambda: "status=deferred" in ours.log(), 20), ours.log()
    assert "4.7.5" in ours.log(), ours.log()
    assert not theirs.messages("bob")
    assert len(ours.queue_files()) == 1
    assert "mode=enforce" in ours.log()


def test_tls_required_no_ignores_enforce(sts_site, policy_server):
    """RFC 8689 4.3: "TLS-Required: No" mail goes though the certificate does not verify
    under an enforce policy (no policy fetched for it); the header is kept."""
    ours, theirs, _ = sts_site(cert="bad")
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "bob@" + REMOTE],
             b"Subject: sts no\nTLS-Required: No\n\nbody\n")
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert b"\nTLS-Required: No\n" in theirs.messages("bob")[0][0]
    log = ours.log()
    assert "TLS-Required: No: DANE and MTA-STS not applied" in log, log
    assert 'tls="TLSv1.' in log and "mode=enforce" not in log, log
    assert policy_server.fetches == 0


def test_enforce_mx_not_in_policy_deferred(sts_site, policy_server):
    policy_server.policy = POLICY % ("enforce", "*.elsewhere.test")
    ours, theirs, _ = sts_site()
    send(ours)
    assert wait_for(lambda: "status=deferred" in ours.log(), 20), ours.log()
    log = ours.log()
    assert "MX %s does not match the policy: skipped" % MX in log, log
    assert "no MX host of %s matches its MTA-STS policy" % REMOTE in log, log
    assert not theirs.messages("bob")


def test_wildcard_mx_pattern_matches(sts_site, policy_server):
    policy_server.policy = POLICY % ("enforce", "*." + REMOTE)
    ours, theirs, _ = sts_site()
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()


def test_testing_mode_bad_certificate_delivered_and_logged(sts_site, policy_server):
    policy_server.policy = POLICY % ("testing", MX)
    ours, theirs, _ = sts_site(cert="bad")
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    log = ours.log()
    assert "mta-sts domain=%s mode=testing relay=%s" % (REMOTE, MX) in log, log
    assert "certificate not verified: delivered anyway" in log, log


def test_policy_cached_then_refetched_when_the_id_changes(sts_site, policy_server):
    ours, theirs, dns = sts_site()
    send(ours, 1)
    assert wait_for(lambda: len(theirs.messages("bob")) == 1, 20), ours.log()
    send(ours, 2)
    assert wait_for(lambda: len(theirs.messages("bob")) == 2, 20), ours.log()
    assert policy_server.fetches == 1  # the second message used the cache
    # a new id in DNS: fetched again (a dnsmasq with the new record on the same port)
    port = dns.port
    dns.stop()
    dns2 = _dns_on_port(port, "v=STSv1; id=20261204b")
    try:
        send(ours, 3)
        assert wait_for(lambda: len(theirs.messages("bob")) == 3, 20), ours.log()
        assert policy_server.fetches == 2
        assert "id=20261204b mode=enforce" in ours.log()
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def _dns_on_port(port, txt, rua=None):
    args = ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--pid-file=", "--log-facility=-", "--port=%d" % port, "--local=/test/",
            "--mx-host=%s,%s,10" % (REMOTE, MX), "--host-record=%s,127.0.0.1" % MX,
            "--host-record=mta-sts.%s,127.0.0.1" % REMOTE,
            "--txt-record=_mta-sts.%s,%s" % (REMOTE, txt)]
    if rua is not None:
        args.append("--txt-record=_smtp._tls.%s,%s" % (REMOTE, rua))
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from dmail_site import port_open
    assert wait_for(lambda: port_open(port), 10)
    return p


@pytest.mark.parametrize("policy,why", [
    ("version: STSv2\nmode: enforce\nmx: x\nmax_age: 10\n", "line 1: version"),
    ("version: STSv1\nmode: strict\nmx: x\nmax_age: 10\n", "line 2: unknown mode 'strict'"),
    ("version: STSv1\nmode: enforce\nmx: x\nmax_age: 31557601\n", "line 4: max_age '31557601'"),
    ("version: STSv1\nmode: enforce\nmax_age: 86400\n", "mode enforce without an mx"),
    ("version: STSv1\nmode: enforce\nmx: x\n", "no max_age"),
])
def test_malformed_policy_ignored_and_logged(sts_site, policy_server, policy, why):
    # the certificate is bad: a policy taken as enforce would defer the message
    policy_server.policy = policy
    ours, theirs, _ = sts_site(cert="bad")
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert "policy refused: " + why in ours.log(), ours.log()


def test_wrong_content_type_or_no_txt_is_no_policy(sts_site, policy_server):
    policy_server.ctype = "text/html"
    ours, theirs, _ = sts_site(cert="bad")
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert "content type text/html, not text/plain" in ours.log(), ours.log()
    policy_server.ctype = "text/plain"
    ours2, theirs2, _ = sts_site(cert="bad", txt=None)
    send(ours2)
    assert wait_for(lambda: theirs2.messages("bob"), 20), ours2.log()
    assert policy_server.fetches == 1  # only the text/html one: no TXT record, no fetch
    assert "mta-sts domain" not in ours2.log()


def test_mta_sts_false_fetches_nothing(sts_site, policy_server):
    ours, theirs, _ = sts_site(cert="bad", mta_sts=False)
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert policy_server.fetches == 0
    assert "mta-sts domain" not in ours.log()


def test_policy_cache_survives_a_restart(sts_site, policy_server):
    ours, theirs, _ = sts_site()
    send(ours, 1)
    assert wait_for(lambda: len(theirs.messages("bob")) == 1, 20), ours.log()
    assert policy_server.fetches == 1
    cache = os.path.join(ours.spool, "mta-sts.cache")
    assert wait_for(lambda: os.path.exists(cache), 10)
    line = [x for x in open(cache).read().splitlines() if not x.startswith("#")]
    assert len(line) == 1 and line[0].startswith("%s 20261204a enforce 86400 " % REMOTE), line
    assert line[0].endswith(" " + MX), line
    ours.restart()
    send(ours, 2)
    assert wait_for(lambda: len(theirs.messages("bob")) == 2, 20), ours.log()
    assert policy_server.fetches == 1  # the restarted server used the saved policy
    assert "mta-sts: 1 cached policies read from " + cache in ours.log()


# ---------------------------------------------------------------- TLS-RPT (RFC 8460)

RUA = "v=TLSRPTv1; rua=mailto:alice@%s" % REMOTE


def tell(site, *args):
    from dmail_site import BIN
    return subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", site.conf_path] + list(args),
                          capture_output=True, text=True, timeout=20)


def rpt_site(sts_site, rua=RUA, **kw):
    ours, theirs, dns = sts_site(tls_rpt=True, tls_rpt_from="tlsrpt@" + DOMAIN, **kw)
    dns.stop()  # the same port, with the _smtp._tls record too
    return ours, theirs, _dns_on_port(dns.port, "v=STSv1; id=20261204a", rua)


def report_json(theirs):
    import json
    raw, msg = theirs.messages("alice")[0]
    assert msg.get_content_type() == "multipart/report", raw[:600]
    assert msg.get_param("report-type") == "tlsrpt"
    assert msg["TLS-Report-Domain"] == REMOTE
    assert msg["Subject"].startswith("Report Domain: %s Submitter: " % REMOTE), msg["Subject"]
    parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+json"]
    assert len(parts) == 1, raw
    return msg, json.loads(parts[0].get_payload(decode=True))


def test_tlsrpt_testing_failure_reported_to_rua(sts_site, policy_server):
    policy_server.policy = POLICY % ("testing", MX)
    ours, theirs, dns2 = rpt_site(sts_site, cert="bad")
    try:
        send(ours)
        assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
        r = tell(ours, "tlsrpt-send")
        assert r.returncode == 0 and "TLS reports started for 1 domains" in r.stdout, r
        assert wait_for(lambda: theirs.messages("alice"), 20), ours.log()
        msg, rep = report_json(theirs)
        assert msg["From"] == "tlsrpt@" + DOMAIN and msg["To"] == "alice@" + REMOTE
        assert rep["contact-info"] == "tlsrpt@" + DOMAIN
        assert rep["organization-name"] and rep["report-id"]
        day = rep["date-range"]["start-datetime"]
        assert day.endswith("T00:00:00Z") and rep["date-range"]["end-datetime"].endswith(
            "T23:59:59Z")
        [pol] = rep["policies"]
        assert pol["policy"] == {"policy-type": "sts", "policy-domain": REMOTE}
        assert pol["summary"] == {"total-successful-session-count": 0,
                                  "total-failure-session-count": 1}
        assert pol["failure-details"] == [{"result-type": "certificate-not-trusted",
                                           "receiving-mx-hostname": MX,
                                           "failed-session-count": 1}]
        # the counters were sent: nothing more (the report's own session counts anew)
        assert wait_for(lambda: "tls-rpt domain=%s to=<alice@%s>: report queued"
                        % (REMOTE, REMOTE) in ours.log(), 10)
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def test_tlsrpt_enforce_successes_survive_a_restart(sts_site, policy_server):
    ours, theirs, dns2 = rpt_site(sts_site)
    try:
        send(ours, 1)
        send(ours, 2)
        assert wait_for(lambda: len(theirs.messages("bob")) == 2, 20), ours.log()
        state = os.path.join(ours.spool, "tls-rpt.state")
        row = "%s sts %s - " % (REMOTE, MX)
        assert wait_for(lambda: os.path.exists(state) and row in open(state).read(), 10)
        ours.restart()
        assert tell(ours, "tlsrpt-send").returncode == 0
        assert wait_for(lambda: theirs.messages("alice"), 20), ours.log()
        _, rep = report_json(theirs)
        [pol] = rep["policies"]
        total = pol["summary"]["total-successful-session-count"]
        assert total >= 1 and pol["summary"]["total-failure-session-count"] == 0, rep
        assert pol["failure-details"] == []
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def posted_json(policy_server):
    import gzip
    import json
    ctype, body = policy_server.posts[0]
    assert ctype == "application/tlsrpt+gzip", ctype
    assert body[:2] == b"\x1f\x8b", body[:20]  # gzip (RFC 1952)
    return json.loads(gzip.decompress(body))


def test_tlsrpt_https_rua_posts_gzip_json(sts_site, policy_server):
    """An https: rua (RFC 8460 3): the report is POSTed, gzip JSON as
    application/tlsrpt+gzip over TLS verified by the test CA (mta_sts_ca), and not mailed.
    (A record with both kinds, "rua=mailto:...,https://...", cannot be served here: dnsmasq
    splits a TXT record's text at every comma.)"""
    policy_server.policy = POLICY % ("testing", MX)
    url = "https://mta-sts.%s:%d/tlsrpt" % (REMOTE, policy_server.port)
    ours, theirs, dns2 = rpt_site(sts_site, cert="bad", rua="v=TLSRPTv1; rua=" + url)
    try:
        send(ours)
        assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
        assert "1 domains" in tell(ours, "tlsrpt-send").stdout
        assert wait_for(lambda: policy_server.posts, 20), ours.log()[-3000:]
        rep = posted_json(policy_server)
        [pol] = rep["policies"]
        assert pol["policy"] == {"policy-type": "sts", "policy-domain": REMOTE}
        assert pol["summary"] == {"total-successful-session-count": 0,
                                  "total-failure-session-count": 1}
        assert pol["failure-details"][0]["result-type"] == "certificate-not-trusted"
        assert rep["contact-info"] == "tlsrpt@" + DOMAIN
        assert rep["date-range"]["start-datetime"].endswith("T00:00:00Z")
        assert wait_for(lambda: "tls-rpt domain=%s url=%s: report posted" % (REMOTE, url)
                        in ours.log(), 10)
        assert len(policy_server.posts) == 1 and not theirs.messages("alice")
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def test_tlsrpt_https_rua_failure_logged(sts_site, policy_server):
    """A POST the server refuses (404) is logged, not retried; nothing is mailed."""
    url = "https://mta-sts.%s:%d/elsewhere" % (REMOTE, policy_server.port)
    ours, theirs, dns2 = rpt_site(sts_site, rua="v=TLSRPTv1; rua=" + url)
    try:
        send(ours)
        assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
        assert "1 domains" in tell(ours, "tlsrpt-send").stdout
        assert wait_for(lambda: "url=%s: report not posted: %s: HTTP status 404" % (url, url)
                        in ours.log(), 20), ours.log()[-3000:]
        assert policy_server.posts == [] and not theirs.messages("alice")
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def test_tlsrpt_sent_by_the_timer(sts_site, policy_server):
    """Without tellsmtp: the reports go out when tls_rpt_period ends (shortened here: the
    test aid; a day in production)."""
    url = "https://mta-sts.%s:%d/tlsrpt" % (REMOTE, policy_server.port)
    ours, theirs, dns2 = rpt_site(sts_site, rua="v=TLSRPTv1; rua=" + url, tls_rpt_period=2)
    try:
        send(ours)
        assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
        assert wait_for(lambda: policy_server.posts, 20), ours.log()[-3000:]
        rep = posted_json(policy_server)
        assert rep["policies"][0]["summary"]["total-successful-session-count"] >= 1, rep
        assert "tls-rpt: the period's reports started for 1 domains" in ours.log()
        # the counters went: the next periods have nothing (or only new sessions) to send
        assert wait_for(lambda: "reports started for 0 domains" in ours.log(), 10)
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def test_tlsrpt_without_record_drops_counters(sts_site, policy_server):
    ours, theirs, dns2 = rpt_site(sts_site, rua="v=spf1 -all")
    try:
        send(ours)
        assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
        assert "1 domains" in tell(ours, "tlsrpt-send").stdout
        assert wait_for(lambda: "no usable _smtp._tls record: counters dropped" in ours.log(),
                        10), ours.log()
        assert "0 domains" in tell(ours, "tlsrpt-send").stdout
        assert not theirs.messages("alice")
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def test_tlsrpt_off_counts_nothing(sts_site, policy_server):
    ours, theirs, _ = sts_site()
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    assert "0 domains" in tell(ours, "tlsrpt-send").stdout
    assert not os.path.exists(os.path.join(ours.spool, "tls-rpt.state"))


@pytest.mark.parametrize("ctype,policy,result", [
    ("text/html", POLICY % ("enforce", MX), "sts-policy-fetch-error"),
    ("text/plain", "version: STSv1\nmode: strict\n", "sts-policy-invalid"),
])
def test_tlsrpt_policy_problems_reported(sts_site, policy_server, ctype, policy, result):
    policy_server.ctype = ctype
    policy_server.policy = policy
    ours, theirs, dns2 = rpt_site(sts_site)
    try:
        send(ours)
        assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
        assert "1 domains" in tell(ours, "tlsrpt-send").stdout
        assert wait_for(lambda: theirs.messages("alice"), 20), ours.log()
        _, rep = report_json(theirs)
        [pol] = rep["policies"]
        assert pol["policy"] == {"policy-type": "no-policy-found", "policy-domain": REMOTE}
        assert pol["summary"]["total-failure-session-count"] == 1, rep
        assert pol["failure-details"] == [{"result-type": result, "failed-session-count": 1}]
    finally:
        dns2.terminate()
        dns2.wait(timeout=10)


def test_testing_mode_mx_mismatch_delivered_and_logged(sts_site, policy_server):
    policy_server.policy = POLICY % ("testing", "*.elsewhere.test")
    ours, theirs, _ = sts_site()
    send(ours)
    assert wait_for(lambda: theirs.messages("bob"), 20), ours.log()
    log = ours.log()
    assert "mta-sts domain=%s mode=testing: MX %s does not match the policy\n" % (REMOTE, MX) \
        in log, log


def test_policy_refetched_once_max_age_passed(sts_site, policy_server):
    import time
    policy_server.policy = "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 1\n" % MX
    ours, theirs, _ = sts_site()
    send(ours, 1)
    assert wait_for(lambda: len(theirs.messages("bob")) == 1, 20), ours.log()
    assert policy_server.fetches == 1
    time.sleep(2.1)  # the same id in DNS, but the cached policy expired
    send(ours, 2)
    assert wait_for(lambda: len(theirs.messages("bob")) == 2, 20), ours.log()
    assert policy_server.fetches == 2
