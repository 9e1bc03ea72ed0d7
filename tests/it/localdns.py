"""A dnsmasq on a free loopback port with the records a test gives, for dns_host: every
name the test names is answered from local data only (no upstream, no /etc/hosts)."""

import shutil
import subprocess
import time

import pytest

from dmail_site import free_ports, port_open


class LocalDNS:
    """start(records) runs dnsmasq with records (its command-line options, e.g.
    "--txt-record=a.test,v=spf1 -all"); .server is "127.0.0.1:PORT"; stop() ends it."""

    def __init__(self, records, local=("test", "in-addr.arpa", "ip6.arpa")):
        if not shutil.which("dnsmasq"):
            pytest.skip("dnsmasq not installed")
        self.port = free_ports(1)[0]
        self.server = "127.0.0.1:%d" % self.port
        args = ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--pid-file=", "--log-facility=-", "--port=%d" % self.port]
        args += ["--local=/%s/" % d for d in local] + list(records)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open(self.port) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq exited: %s" % args)
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
