"""Real filters as milters of dsmtp, each started here from its Debian package with a
configuration of its own in a temporary directory, once per module:

    rspamd    a proxy worker with milter = yes and self_scan (as bench/filters.py runs it),
              a five-line url_tld list (compiling Debian's 9,600 public suffixes takes
              ~10 s at every start with an empty cache), DNS pointed at a dead port;
              milter_headers adds X-Spamd-Result and X-Rspamd-Queue-Id. A GTUBE message is
              refused with 5xx at the end of DATA, a clean one delivered with the headers.
    OpenDKIM  verifier only (Mode v) on a Unix socket, the public key of a key made by
              opendkim-genkey read from a TestPublicKeys file (no DNS); a message signed
              here with python3-dkim arrives with Authentication-Results: ...; dkim=pass,
              one whose body was changed after signing with dkim=fail.
    ClamAV    clamav-milter on 127.0.0.1 in front of a clamd on a Unix socket whose only
              database is one signature written here (ClamAV's own cannot be had
              offline): a message carrying the marker is refused with the REPLYCODE of
              RejectMsg, a clean one gets X-Virus-Status: Clean. Skipped when clamav-daemon
              or clamav-milter is not installed.

Every test runs against dsmtp and, to show that the filters' set-up is right, against a
private Postfix (bench/servers.py's) with the same milters in smtpd_milters."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import milter_fake as mf
from dmail_site import (DOMAIN, RawSMTP, Site, free_ports, new_msgid, port_open,
                        read_mbox, wait_for)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the filters start as root and "
                                "switch to nobody")

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SIGNER, SELECTOR = "signer.test", "sel"
AUTHSERV = "mx.filters.test"
VIRUS_MARK = "DMAIL-CLAMAV-TEST-SIGNATURE-7f3a9c"
START_TIMEOUT = 30.0

RSPAMD_LOCAL = {
    "worker-proxy.inc": 'bind_socket = "127.0.0.1:{port}";\nmilter = yes;\ntimeout = 120s;\n'
                        'upstream "local" {{\n  default = yes;\n  self_scan = yes;\n}}\n',
    "worker-normal.inc": "enabled = false;\n",
    "worker-controller.inc": "enabled = false;\n",
    "worker-fuzzy.inc": "enabled = false;\n",
    "fuzzy_check.conf": "enabled = false;\n",
    "dkim_signing.conf": "enabled = false;\n",
    "options.inc": 'dns {{\n  nameserver = ["127.0.0.1:9"];\n  timeout = 0.5s;\n'
                   '  retransmits = 1;\n}}\nurl_tld = "{dir}/tld.dat";\n',
    "logging.inc": 'type = "file";\nfilename = "{dir}/rspamd.log";\nlevel = "notice";\n',
    "milter_headers.conf": 'use = ["x-spamd-result", "x-rspamd-queue-id"];\n'
                           "skip_local = false;\nskip_authenticated = false;\n",
}

OPENDKIM_CONF = """\
Mode v
Background no
Syslog no
UserID nobody:nogroup
UMask 000
Socket local:{dir}/opendkim.sock
PidFile {dir}/opendkim.pid
TestPublicKeys {dir}/keys
InternalHosts {dir}/internal
AuthservID {authserv}
AlwaysAddARHeader yes
"""


def chown_nobody(path):
    subprocess.run(["chown", "-R", "nobody:nogroup", path], check=True, timeout=10)


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no %s)" % path


class Daemon:
    """A filter started here in a session of its own (stopped by its process group)."""

    def __init__(self, name, cmd, cwd, ready, log, grace=5.0):
        self.name, self.log, self.grace = name, log, grace
        self.out = open(os.path.join(cwd, name + ".out"), "ab")
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.out, start_new_session=True)
        t0 = time.monotonic()
        while not ready():
            if self.proc.poll() is not None or time.monotonic() - t0 > START_TIMEOUT:
                self.stop()
                pytest.fail("%s did not start: %s\n%s" % (name, tail(self.out.name),
                                                          tail(self.log)))
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - t0

    def stop(self):
        """SIGTERM to the main process, SIGKILL to its group after grace seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # what is left of it
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        self.out.close()


def workdir(name):
    d = tempfile.mkdtemp(prefix="dmail-it-%s-" % name)
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def rspamd():
    """rspamd as a milter on 127.0.0.1: its address."""
    if not os.path.exists("/usr/bin/rspamd"):
        pytest.skip("rspamd not installed")
    d = workdir("rspamd")
    port = free_ports(1)[0]
    for sub in ("local.d", "db", "run"):
        os.makedirs(os.path.join(d, sub))
    for name, text in RSPAMD_LOCAL.items():
        with open(os.path.join(d, "local.d", name), "w") as f:
            f.write(text.format(port=port, dir=d))
    with open(os.path.join(d, "tld.dat"), "w") as f:
        f.write("com\nnet\norg\ntest\nexample\n")
    chown_nobody(d)
    cmd = ["/usr/bin/rspamd", "-f", "-u", "nobody", "-g", "nogroup",
           "-c", "/etc/rspamd/rspamd.conf", "--var=LOCAL_CONFDIR=" + d,
           "--var=DBDIR=" + os.path.join(d, "db"), "--var=RUNDIR=" + os.path.join(d, "run"),
           "--var=LOGDIR=" + d]
    p = Daemon("rspamd", cmd, d, lambda: port_open(port), os.path.join(d, "rspamd.log"))
    try:
        yield "inet:127.0.0.1:%d" % port
    finally:
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def opendkim():
    """OpenDKIM verifying on a Unix socket: (its address, the private key path)."""
    if not shutil.which("opendkim") or not shutil.which("opendkim-genkey"):
        pytest.skip("opendkim / opendkim-tools not installed")
    pytest.importorskip("dkim")
    d = workdir("opendkim")
    subprocess.run(["opendkim-genkey", "-D", d, "-d", SIGNER, "-s", SELECTOR], check=True,
                   timeout=60)
    with open(os.path.join(d, SELECTOR + ".txt")) as f:
        record = "".join(re.findall(r'"([^"]*)"', f.read()))
    assert "p=" in record, record
    with open(os.path.join(d, "keys"), "w") as f:
        f.write("%s._domainkey.%s %s\n" % (SELECTOR, SIGNER, record))
    with open(os.path.join(d, "internal"), "w") as f:
        f.write("192.0.2.254\n")  # not the test clients: their mail is verified, not signed
    conf = os.path.join(d, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(OPENDKIM_CONF.format(dir=d, authserv=AUTHSERV))
    chown_nobody(d)
    sock = os.path.join(d, "opendkim.sock")
    # grace 0.5: opendkim (libmilter) takes 4 s to act on SIGTERM, and has nothing to save
    p = Daemon("opendkim", ["opendkim", "-f", "-x", conf], d, lambda: os.path.exists(sock),
               os.path.join(d, "opendkim.out"), grace=0.5)
    try:
        yield "unix:" + sock, os.path.join(d, SELECTOR + ".private")
    finally:
        p.stop()
        shutil.rmtree(d, ignore_errors=True)


CLAMD_CONF = """\
LocalSocket {dir}/clamd.sock
LocalSocketMode 666
Foreground yes
DatabaseDirectory {dir}/db
User nobody
LogFile {dir}/clamd.log
TemporaryDirectory {dir}/tmp
"""

CLAMAV_MILTER_CONF = """\
MilterSocket inet:{port}@127.0.0.1
ClamdSocket unix:{dir}/clamd.sock
Foreground yes
User nobody
OnInfected Reject
RejectMsg "Virus found: %v"
AddHeader Replace
LogFile {dir}/milter.log
TemporaryDirectory {dir}/tmp
"""


@pytest.fixture(scope="module")
def clamav():
    """clamav-milter and its clamd: the milter's address, or None when not installed."""
    if not shutil.which("clamd", path="/usr/sbin:/usr/bin") or \
            not shutil.which("clamav-milter", path="/usr/sbin:/usr/bin"):
        yield None
        return
    d = workdir("clamav")
    for sub in ("db", "tmp"):
        os.makedirs(os.path.join(d, sub))
    with open(os.path.join(d, "db", "dmailtest.ndb"), "w") as f:
        f.write("Dmail.Test.Sig:0:*:%s\n" % VIRUS_MARK.encode().hex())
    port = free_ports(1)[0]
    with open(os.path.join(d, "clamd.conf"), "w") as f:
        f.write(CLAMD_CONF.format(dir=d))
    with open(os.path.join(d, "milter.conf"), "w") as f:
        f.write(CLAMAV_MILTER_CONF.format(dir=d, port=port))
    chown_nobody(d)
    sock = os.path.join(d, "clamd.sock")
    clamd = Daemon("clamd", ["clamd", "-c", os.path.join(d, "clamd.conf")], d,
                   lambda: os.path.exists(sock), os.path.join(d, "clamd.log"))
    try:
        # grace 0.5: like opendkim (libmilter), it takes seconds to act on SIGTERM
        milter = Daemon("clamav-milter", ["clamav-milter", "-c", os.path.join(d, "milter.conf")],
                        d, lambda: port_open(port), os.path.join(d, "milter.log"), grace=0.5)
        try:
            yield "inet:127.0.0.1:%d" % port
        finally:
            milter.stop()
    finally:
        clamd.stop()
        shutil.rmtree(d, ignore_errors=True)


class MTA:
    """What a test needs of an MTA: its SMTP port, a local recipient and its mailbox."""

    def __init__(self, name, port, rcpt, mbox):
        self.name, self.port, self.rcpt, self.mbox = name, port, rcpt, mbox

    def delivered(self, msgid, timeout=10.0):
        """The (raw, message) with Message-ID msgid once in the mailbox, or None."""
        def find():
            for raw, msg in read_mbox(self.mbox):
                if msg["Message-ID"] == msgid:
                    return raw, msg
            return None
        wait_for(lambda: find() is not None, timeout)
        return find()


@pytest.fixture(scope="module", params=["dsmtp", "postfix"])
def mta(request, it_assets, rspamd, opendkim, clamav):
    milters = [rspamd, opendkim[0]] + ([clamav] if clamav else [])
    if request.param == "postfix":
        if not shutil.which("postconf"):
            pytest.skip("Postfix not installed")
        with mf.private_postfix(milters, "myhostname = " + AUTHSERV) as pf:
            yield MTA("postfix", pf.port, "nobody@bench.test", pf.mbox("nobody"))
        return
    site = Site(it_assets, {"milters": ", ".join(milters), "hostname": AUTHSERV,
                            "milter_default_action": "tempfail"})
    try:
        site.start()
        yield MTA("dsmtp", site.smtp_port, "alice@" + DOMAIN, site.mbox_path("alice"))
        site.stop_all()
        problems = site.dsmtp.problems()  # a sanitizer report, an exit on its own
        assert not problems, problems
    finally:
        site.cleanup()


def message(mta, body, subject="filters", msgid=None):
    msgid = msgid or new_msgid("f")
    text = ("From: Someone <someone@%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s"
            % (SIGNER, mta.rcpt, subject, msgid, body.replace("\n", "\r\n")))
    return msgid, text.encode()


def send(mta, data):
    """data (CRLF, not dot-stuffed) from someone@SIGNER: the reply to the end of DATA."""
    with RawSMTP(mta.port, timeout=30) as c:
        c.ehlo("client.example")
        c.expect("MAIL FROM:<someone@%s>" % SIGNER, 250)
        c.expect("RCPT TO:<%s>" % mta.rcpt, 250)
        c.expect("DATA", 354)
        stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln)
                           for ln in data.splitlines(keepends=True))
        c.send(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        code, lines = c.reply()
        c.cmd("QUIT")
        return code, lines


def sign(data, key_path):
    import dkim
    with open(key_path, "rb") as f:
        key = f.read()
    sig = dkim.sign(data, SELECTOR.encode(), SIGNER.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID"])
    return sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + data


def test_rspamd_refuses_gtube(mta):
    _, data = message(mta, "This is spam, says the test.\n%s\n" % GTUBE)
    code, lines = send(mta, data)
    assert 500 <= code < 600, (mta.name, code, lines)


def test_rspamd_headers_on_clean_mail(mta):
    msgid, data = message(mta, "A perfectly ordinary note about lunch on Tuesday.\n")
    code, lines = send(mta, data)
    assert code == 250, (mta.name, code, lines)
    got = mta.delivered(msgid)
    assert got, "%s: %s not delivered" % (mta.name, msgid)
    raw, msg = got
    assert msg["X-Rspamd-Queue-Id"], raw[:2000]
    assert msg["X-Spamd-Result"] and "default:" in msg["X-Spamd-Result"], raw[:2000]


def authentication_results(msg):
    return [re.sub(r"\s+", " ", v) for v in msg.get_all("Authentication-Results") or []]


def test_opendkim_passes_a_good_signature(mta, opendkim):
    msgid, data = message(mta, "Signed by the test with python3-dkim.\n")
    code, lines = send(mta, sign(data, opendkim[1]))
    assert code == 250, (mta.name, code, lines)
    got = mta.delivered(msgid)
    assert got, "%s: %s not delivered" % (mta.name, msgid)
    ar = authentication_results(got[1])
    assert any(a.startswith(AUTHSERV) and "dkim=pass" in a and "header.d=" + SIGNER in a
               for a in ar), (mta.name, ar)


def test_opendkim_fails_a_changed_body(mta, opendkim):
    msgid, data = message(mta, "Signed, then changed.\n")
    signed = sign(data, opendkim[1]).replace(b"Signed, then", b"Signed, and then")
    code, lines = send(mta, signed)
    assert code == 250, (mta.name, code, lines)
    got = mta.delivered(msgid)
    assert got, "%s: %s not delivered" % (mta.name, msgid)
    ar = authentication_results(got[1])
    assert any("dkim=fail" in a or "dkim=neutral" in a for a in ar), (mta.name, ar)
    assert not any("dkim=pass" in a for a in ar), (mta.name, ar)


def test_clamav_refuses_the_signature(mta, clamav):
    if not clamav:
        pytest.skip("clamav-daemon / clamav-milter not installed")
    _, data = message(mta, "Carrying %s in the body.\n" % VIRUS_MARK)
    code, lines = send(mta, data)
    assert code == 550 and "Virus found: Dmail.Test.Sig" in " ".join(lines), \
        (mta.name, code, lines)


def test_clamav_marks_clean_mail(mta, clamav):
    if not clamav:
        pytest.skip("clamav-daemon / clamav-milter not installed")
    msgid, data = message(mta, "Nothing to see here.\n")
    assert send(mta, data)[0] == 250
    got = mta.delivered(msgid)
    assert got, "%s: %s not delivered" % (mta.name, msgid)
    assert got[1]["X-Virus-Status"] == "Clean", got[0][:2000]
    assert got[1]["X-Virus-Scanned"], got[0][:2000]
