"""Debian's unbound as a local validating resolver over zones signed here, for DANE tests.

LocalDNSSEC(zones) writes each zone's file (SOA and NS added), signs the ones
asked for with a fresh ECDSA P-256 key (ldns-keygen, ldns-signzone), gives unbound that
key as the zone's trust anchor, and serves every zone through an unbound auth-zone used
for upstream (the iterator reads it as if from the zone's server and the validator checks
it): a signed zone's answers come with the AD bit, an unsigned one's without (no trust
anchor covers it: insecure), a zone signed with signatures long expired is bogus
(SERVFAIL). unbound listens on a free loopback port (.server is "127.0.0.1:PORT", for
dns_host) as the unbound user, its files in a directory of its own under /tmp that the
unbound user can read; stop() ends it and removes them."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from dmail_site import free_ports, port_open

UNBOUND = "/usr/sbin/unbound"


def tlsa_rdata(cert_pem, selector, mtype):
    """The association data (hex) of a PEM certificate: selector 0 the whole certificate,
    1 its SubjectPublicKeyInfo; matching type 0 full, 1 SHA2-256, 2 SHA2-512."""
    run = lambda args, data: subprocess.run(args, input=data, check=True, capture_output=True,
                                            timeout=30).stdout
    with open(cert_pem, "rb") as f:
        pem = f.read()
    if selector == 0:
        der = run(["openssl", "x509", "-outform", "DER"], pem)
    else:
        pub = run(["openssl", "x509", "-pubkey", "-noout"], pem)
        der = run(["openssl", "pkey", "-pubin", "-outform", "DER"], pub)
    if mtype == 0:
        return der.hex()
    import hashlib
    return (hashlib.sha256 if mtype == 1 else hashlib.sha512)(der).hexdigest()


class LocalDNSSEC:
    """zones: {"remote.test": ["@ MX 10 mx", "mx A 127.0.0.1", ...]} (relative names);
    signed: the zones to sign; bogus: signed ones whose signatures expired in 2020."""

    def __init__(self, zones, signed=(), bogus=()):
        for tool in (UNBOUND, "ldns-keygen", "ldns-signzone"):
            if not shutil.which(tool):
                pytest.skip("%s not installed (unbound, ldnsutils: make deps)" % tool)
        self.dir = tempfile.mkdtemp(prefix="dmail-dnssec-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        try:
            self._start(zones, signed, bogus)
        except BaseException:
            self.stop()  # no unbound, no files left behind
            raise

    def _start(self, zones, signed, bogus):
        self.port = free_ports(1)[0]
        self.server = "127.0.0.1:%d" % self.port
        self.log = os.path.join(self.dir, "unbound.log")
        conf = ["server:", "  interface: 127.0.0.1@%d" % self.port, "  do-daemonize: no",
                "  username: \"unbound\"", "  chroot: \"\"", "  directory: \"%s\"" % self.dir,
                "  pidfile: \"\"", "  use-syslog: no", "  logfile: \"%s\"" % self.log,
                "  verbosity: 1", "  val-log-level: 2", "  do-not-query-localhost: no",
                "  access-control: 127.0.0.0/8 allow", "  module-config: \"validator iterator\"",
                "  do-ip6: no", "  num-threads: 1", "  so-reuseport: no",
                "  cache-max-ttl: 5",
                "  local-zone: \"test.\" nodefault"]  # RFC 6761: unbound serves test. itself
        auth = []
        for zone, records in zones.items():
            path = self._zone_file(zone, records)
            if zone in signed or zone in bogus:
                path, anchor = self._sign(zone, path, zone in bogus)
                conf.append("  trust-anchor-file: \"%s\"" % anchor)
            auth += ["auth-zone:", "  name: \"%s.\"" % zone, "  zonefile: \"%s\"" % path,
                     "  for-downstream: no", "  for-upstream: yes", "  fallback-enabled: no"]
        with open(self.log, "w"):
            pass
        shutil.chown(self.log, "unbound")
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf + auth) + "\n")
        for name in os.listdir(self.dir):
            os.chmod(os.path.join(self.dir, name), 0o644)
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while not port_open(self.port) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not port_open(self.port):
            why = self.logtext()
            if self.proc.poll() is not None:
                why = self.proc.stderr.read().decode(errors="replace") + why
            raise AssertionError("unbound did not start: %s" % why)

    def _zone_file(self, zone, records):
        path = os.path.join(self.dir, zone + ".zone")
        lines = ["$ORIGIN %s." % zone, "$TTL 300",
                 "@ IN SOA ns hostmaster 1 3600 600 86400 300", "@ IN NS ns",
                 "ns IN A 127.0.0.1"] + list(records)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _sign(self, zone, path, expired):
        run = lambda *a: subprocess.run(list(a), cwd=self.dir, check=True, capture_output=True,
                                        timeout=60).stdout.decode().strip()
        base = run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone)
        dates = ["-i", "20200101000000", "-e", "20200201000000"] if expired else []
        run("ldns-signzone", *dates, "-f", path + ".signed", path, base)
        return path + ".signed", os.path.join(self.dir, base + ".key")

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc.stderr.close()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
