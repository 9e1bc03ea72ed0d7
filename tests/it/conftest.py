"""Fixtures for the dmail integration tests, on the toolkit in dmail_site.py.

Every test gets its own Site: a temporary directory with a dmail.conf, a users file,
mailboxes, spool and work directories, and a dsmtp started from $DMAIL_BIN (default ./bin)
in the foreground on random free ports of 127.0.0.1. Teardown stops every program of the
site, fails the test if one died on its own or printed an ASan/UBSan report, and removes
the directory.

    def test_x(dsmtp):                  # default server
        dsmtp.smtp_port, dsmtp.messages("alice"), dsmtp.mbox_path("alice")
    def test_y(dsmtp_factory):          # server with extra settings
        srv = dsmtp_factory(max_rcpts=3, tls=False)
        srv.restart(max_rcpts=5)        # stop, rewrite dmail.conf, start again
    def test_z(dpop_factory):           # a dpop on a site (its dsmtp not started)
        pop = dpop_factory(auth_plaintext=True); c = pop.raw(); c.login("alice")
    def test_w(dwatch_factory):         # dwatch starting dsmtp and dpop
        dw = dwatch_factory(); dw.status()
    def test_v(pair):                   # (ours, theirs): ours relays to REMOTE by MX
        ours, theirs = pair             # through dnsmasq (the dns fixture) to theirs

Settings given as keyword arguments override the defaults; None removes a setting; a
list is written as repeated lines. Passing DMAIL_IT_KEEP=1 in the environment keeps the
directories of failed tests.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dmail_site import (REMOTE, Dpop, Dwatch, Site, free_ports, make_assets,  # noqa: E402
                        start_run_sh)


@pytest.fixture(scope="session")
def it_assets():
    """Certificate, key and password hashes, made once per session."""
    d = tempfile.mkdtemp(prefix="dmail-it-assets-")
    try:
        yield make_assets(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and rep.when in ("call", "setup"):
        for site in getattr(item, "_dmail_sites", []):
            for p in site.programs:
                rep.sections.append(("%s stderr (%s), last 6000 chars" % (p.name, site.dir),
                                     p.log()[-6000:]))


def _failed(request):
    return any(getattr(request.node, "rep_" + w, None) is not None
               and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))


@pytest.fixture
def dsmtp_factory(request, it_assets):
    sites = []
    request.node._dmail_sites = sites

    def make(tls=True, start=True, **settings):
        site = Site(it_assets, settings, tls=tls)
        sites.append(site)
        if start:
            site.start()
        return site

    yield make

    problems = []
    keep = _failed(request) and bool(os.environ.get("DMAIL_IT_KEEP"))
    for site in sites:
        site.stop_all()
        for p in site.programs:
            if not isinstance(p, Dwatch):  # dwatch_factory judges its own
                problems.extend(p.problems())
        site.cleanup(keep=keep)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def dsmtp(dsmtp_factory):
    return dsmtp_factory()


@pytest.fixture
def dpop_factory(dsmtp_factory):
    """make(tls=True, start=True, **settings): a Dpop on a fresh site (auth_fail_delay 0,
    free pop_port and pop3s_port); the site's dsmtp is not started."""

    def make(tls=True, start=True, **settings):
        conf = {"auth_fail_delay": 0}
        conf.update(settings)
        site = dsmtp_factory(tls=tls, start=False, **conf)
        p1, p2 = free_ports(2)
        site.write_conf({"pop_port": p1, "pop3s_port": p2 if tls else 0})
        pop = site.program("dpop", cls=Dpop)
        if start:
            pop.start()
        return pop

    return make


@pytest.fixture
def dwatch_factory(dsmtp_factory):
    """make(start=True, env=None, **settings): a Dwatch on a fresh site (short intervals,
    free POP3 ports), started: it starts dsmtp and dpop. Teardown fails the test if dwatch
    exited with an error, printed a sanitizer report or left a server running."""
    made = []

    def make(start=True, env=None, **settings):
        conf = {"dwatch_interval": 1, "dwatch_timeout": 1, "dwatch_backoff_max": 4,
                "dwatch_give_up": 3, "dwatch_window": 60, "auth_plaintext": True,
                "auth_fail_delay": 0}
        conf.update(settings)
        site = dsmtp_factory(start=False, **conf)
        p1, p2 = free_ports(2)
        site.write_conf({"pop_port": p1, "pop3s_port": p2})
        dw = site.program("dwatch", cls=Dwatch, env=env)
        made.append(dw)
        if start:
            dw.start()
        return dw

    yield make

    problems = []
    for dw in made:
        rc = dw.stop()
        if rc not in (None, 0):
            problems.append("dwatch exited with %s" % rc)
        rep = dw.sanitizer_report()
        if rep:
            problems.append("sanitizer report:\n" + rep)
        left = dw.leftovers()
        if left:
            problems.append("servers left running after dwatch stopped: %s" % left)
    if problems:
        pytest.fail("\n\n".join(problems) + "\n" + made[0].log()[-3000:], pytrace=False)


@pytest.fixture
def run_sh():
    """scripts/run.sh (make run) in a temporary directory on free ports, read up to its
    "Ctrl-C" line: {proc, dir, ports, out}. Killed and removed afterwards."""
    d = tempfile.mkdtemp(prefix="dmail-it-run-")
    os.chmod(d, 0o755)
    ports = free_ports(5)
    proc = start_run_sh(d, ports)
    out = b""
    deadline = time.monotonic() + 20
    while b"Ctrl-C" not in out and time.monotonic() < deadline and proc.poll() is None:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            out += os.read(proc.stdout.fileno(), 65536)
    info = {"proc": proc, "dir": d, "ports": ports, "out": out.decode("utf-8", "replace")}
    try:
        yield info
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dns():
    """dnsmasq on a free loopback port: remote.test MX -> 127.0.0.1, nullmx.test with a
    null MX, dead.test MX -> 127.0.0.2 (nobody listens there); stopped afterwards."""
    if not shutil.which("dnsmasq"):
        pytest.skip("dnsmasq not installed")
    port = free_ports(1)[0]
    p = subprocess.Popen(
        ["dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", "--listen-address=127.0.0.1", "--bind-interfaces",
         "--pid-file=", "--log-facility=-", "--port=%d" % port, "--local=/test/",
         "--mx-host=%s,mx.%s,10" % (REMOTE, REMOTE), "--host-record=mx.%s,127.0.0.1" % REMOTE,
         "--dns-rr=nullmx.test,15,000000",
         "--mx-host=dead.test,mx.dead.test,10", "--host-record=mx.dead.test,127.0.0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield "127.0.0.1:%d" % port
    finally:
        p.kill()
        p.wait(timeout=10)


@pytest.fixture
def pair(dsmtp_factory, dns):
    """(ours, theirs): theirs serves remote.test; ours relays to it through DNS."""
    theirs = dsmtp_factory(host_domain=REMOTE, hostname="mx." + REMOTE)
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port)
    return ours, theirs


class SinkHandler:
    """aiosmtpd handler of the sink fixture: keeps every envelope; delay seconds before
    each reply to DATA; reply() decides the DATA reply; max_inflight is the most DATA
    replies it was working on at once (concurrent sessions)."""

    def __init__(self):
        self.envelopes = []
        self.delay = 0.0
        self.reply = None
        self.inflight = self.max_inflight = 0

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.inflight -= 1
        r = self.reply(envelope) if self.reply else None
        if r is None:
            self.envelopes.append(envelope)
            return "250 2.0.0 kept"
        return r


@pytest.fixture
def sink_factory():
    """make(port=None, **controller_kw) -> (port, handler): an aiosmtpd server on a
    (free) loopback port keeping what it gets (handler.envelopes); controller_kw go to its Controller
    (enable_SMTPUTF8=True, ...). Every one is stopped afterwards."""
    controller = pytest.importorskip("aiosmtpd.controller")
    made = []

    def make(port=None, **kw):
        handler = SinkHandler()
        port = port or free_ports(1)[0]
        c = controller.Controller(handler, hostname="127.0.0.1", port=port, **kw)
        c.start()
        made.append(c)
        return port, handler

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def sink(sink_factory):
    """sink_factory() with aiosmtpd's defaults."""
    return sink_factory()
