"""The remote manager port (smtp_manager_port / pop_manager_port): the control protocol
over implicit TLS with `openssl s_client` and the tell tools' -n/-p, AUTH with a crypt(3)
manager_password, the address lists, login throttling, and the plaintext refusal; the
tell commands showchans, suspend/resume accept, and oneline_stats with tellpop statistics."""

import os
import re
import smtplib
import socket
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, RawPOP, RawSMTP, free_ports, make_message, sha512_crypt,
                        tls_client_context, wait_for)
from localdns import LocalDNS

EX_OK, EX_REFUSED, EX_USAGE, EX_UNREACHABLE = 0, 1, 2, 3
PASSWORD = "Manager-Secret-1"


def mgr_site(dsmtp_factory, **settings):
    port = free_ports(1)[0]
    conf = {"smtp_manager_port": port, "manager_password": sha512_crypt(PASSWORD),
            "auth_fail_delay": 0}
    conf.update(settings)
    site = dsmtp_factory(**conf)
    wait_for(lambda: os.path.exists(site.ctl_path("dsmtp")), 5)
    return site, port


def s_client(port, lines, host="127.0.0.1", pause=0.4, wait=1.0):
    """openssl s_client (a real TLS client) to the manager port: each line sent after a
    pause (its answer read meanwhile), then the client is stopped: (stdout, stderr)."""
    p = subprocess.Popen(["openssl", "s_client", "-quiet", "-connect", "%s:%d" % (host, port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(pause)
        for l in lines:
            p.stdin.write((l + "\n").encode())
            p.stdin.flush()
            time.sleep(pause)
    except BrokenPipeError:
        pass
    try:
        p.wait(wait)  # the server closed (a refusal)
    except subprocess.TimeoutExpired:
        p.terminate()
    out, err = p.communicate(timeout=10)
    return out.decode(errors="replace"), err.decode(errors="replace")


def s_session(port, lines, **kw):
    return s_client(port, lines, **kw)[0]


def remote_tell(site, port, *args, prog="tellsmtp", password=PASSWORD, env=None, input=None):
    argv = [os.path.join(BIN, prog), "-n", "127.0.0.1", "-p", str(port)]
    if password is not None:
        argv += ["-P", password]
    argv += [str(a) for a in args]
    e = dict(os.environ)
    e.pop("DMAIL_MANAGER_PASSWORD", None)
    e.pop("DMAIL_CONF", None)
    e.update(env or {})
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=e, input=input)
    return p.returncode, p.stdout, p.stderr


def connect_not_greeted(port):
    """A client of port that gets no greeting within a second (accepting is suspended):
    its socket, greeted once accepting resumes."""
    waiting = socket.create_connection(("127.0.0.1", port), timeout=5)
    waiting.settimeout(1.0)
    try:
        waiting.recv(100)
        assert False, "greeted while accepting is suspended"
    except socket.timeout:
        pass
    return waiting


def test_manager_auth_and_commands_over_tls(dsmtp_factory):
    site, port = mgr_site(dsmtp_factory)
    out = s_session(port, ["AUTH " + PASSWORD, "status", "stats", "ping"])
    assert "OK authenticated" in out, out
    assert "OK dsmtp running" in out and "pid %d" % site.dsmtp.proc.pid in out, out
    assert "connections_total" in out and "OK pong" in out, out
    # the reload through the port
    out = s_session(port, ["AUTH " + PASSWORD, "reload"])
    assert "OK reloaded" in out, out
    # the password and its hash are never logged nor shown
    out = s_session(port, ["AUTH " + PASSWORD, "config manager_password"])
    assert "(set, hidden)" in out and "$6$" not in out, out
    log = site.dsmtp.log()
    assert PASSWORD not in log and site.setting("manager_password") not in log
    assert "manager: login ip=127.0.0.1" in log


def test_manager_bad_password_and_no_auth(dsmtp_factory):
    site, port = mgr_site(dsmtp_factory)
    out, _ = s_client(port, ["AUTH wrong-password", "status"])
    assert "ERR authentication failed" in out and "running" not in out, out
    out, _ = s_client(port, ["status"])
    assert "ERR authenticate first" in out and "running" not in out, out
    assert "manager: authentication failed ip=127.0.0.1" in site.dsmtp.log()
    assert "wrong-password" not in site.dsmtp.log()


def test_manager_throttled_after_failures(dsmtp_factory):
    site, port = mgr_site(dsmtp_factory, login_fail_max=3)
    for _ in range(3):
        out, _ = s_client(port, ["AUTH nope"])
        assert "ERR authentication failed" in out, out
    # the address is cut off now, even with the right password
    out, _ = s_client(port, ["AUTH " + PASSWORD, "status"])
    assert "ERR too many failed logins" in out and "running" not in out, out
    assert "reason=too-many-failures" in site.dsmtp.log()


def test_manager_throttle_delays_attempts(dsmtp_factory):
    site, port = mgr_site(dsmtp_factory, auth_fail_delay=1)
    s_client(port, ["AUTH nope"])
    t0 = time.monotonic()
    out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
    assert "OK pong" in out, out
    assert time.monotonic() - t0 >= 0.9  # the address failed once: its next try waits


def test_manager_client_vanishes_mid_auth(dsmtp_factory):
    """Manager clients that go away in the middle of AUTH: in the TLS handshake, after half
    an AUTH line, right after a whole one (crypt(3) on the pool), during the failure delay
    of a wrong password. The server keeps serving, and stops cleanly with nothing leaked
    (ASan's leak check at exit in the asan build)."""
    site, port = mgr_site(dsmtp_factory, auth_fail_delay=1)
    ctx = tls_client_context()

    def vanish(data):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(data)  # and gone, no answer read

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x02\x00\x01")  # half a ClientHello
    vanish(b"AUTH " + PASSWORD[:6].encode())
    vanish(("AUTH %s\n" % PASSWORD).encode())
    vanish(("AUTH %s\nstatus\n" % PASSWORD).encode())
    vanish(b"AUTH wrong-password\n")
    vanish(b"AUTH wrong-password\n")  # the address failed: this one waits, and is gone
    time.sleep(1.5)
    out = s_session(port, ["AUTH " + PASSWORD, "ping"], wait=4.0)
    assert "OK pong" in out, out
    rc, out, err = remote_tell(site, port, "-k", "status")
    assert rc == EX_OK and "running" in out, (out, err)
    assert site.dsmtp.stop() == 0
    assert site.dsmtp.sanitizer_report() is None, site.dsmtp.sanitizer_report()
    assert "wrong-password" not in site.dsmtp.log()


def test_manager_address_not_allowed(dsmtp_factory):
    site, port = mgr_site(dsmtp_factory, manager_ip_address="192.0.2.*")
    out, err = s_client(port, ["AUTH " + PASSWORD, "status"])
    assert "OK" not in out, out
    assert wait_for(lambda: "manager: refused ip=127.0.0.1 reason=address-not-allowed"
                    in site.dsmtp.log(), 5)
    # a CIDR entry that covers loopback lets it in
    site.dsmtp.restart(manager_ip_address=["192.0.2.*", "127.0.0.0/8"])
    out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
    assert "OK pong" in out, out
    # and a "!" entry shuts it out again, live at reload
    site.write_conf({"manager_ip_address": ["!127.0.0.1", "127.0.0.0/8"]})
    assert site.tellsmtp("reload")[0] == EX_OK
    out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
    assert "OK" not in out, out


def test_manager_ip_name(dsmtp_factory):
    # 127.0.0.1's PTR is mgr.example.test, whose A record is 127.0.0.1: forward-confirmed
    dns = LocalDNS(["--host-record=mgr.example.test,127.0.0.1"])
    try:
        site, port = mgr_site(dsmtp_factory, manager_ip_address="192.0.2.1",
                              manager_ip_name="other.example.test", dns_host=dns.server)
        out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
        assert "OK pong" not in out, out
        assert wait_for(lambda: "manager: refused ip=127.0.0.1 reason=name-not-allowed"
                        in site.dsmtp.log(), 5)
        # a changed list applies at reload, without a restart
        pid = site.dsmtp.proc.pid
        site.write_conf({"manager_ip_name": ["*.example.test"]})
        rc, out, err = site.tellsmtp("reload")
        assert rc == EX_OK and "restart" not in out, (out, err)
        out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
        assert "OK pong" in out, (out, site.dsmtp.log()[-2000:])
        assert "name=mgr.example.test allowed by manager_ip_name" in site.dsmtp.log()
        assert site.dsmtp.proc.pid == pid
        # and a reload that excludes the name shuts it out again
        site.write_conf({"manager_ip_name": ["!mgr.example.test", "*.example.test"]})
        assert site.tellsmtp("reload")[0] == EX_OK
        out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
        assert "OK pong" not in out, out
    finally:
        dns.stop()


def test_manager_ip_name_first_set_at_reload(dsmtp_factory):
    """A server started without manager_ip_name gets its resolver at the reload that sets
    it: the reverse name is then looked up (in the test DNS) and allowed."""
    dns = LocalDNS(["--host-record=mgr.example.test,127.0.0.1"])
    try:
        site, port = mgr_site(dsmtp_factory, manager_ip_address="192.0.2.1",
                              dns_host=dns.server)
        out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
        assert "OK pong" not in out, out
        assert wait_for(lambda: "reason=address-not-allowed" in site.dsmtp.log(), 5)
        site.write_conf({"manager_ip_name": ["mgr.example.test"]})
        assert site.tellsmtp("reload")[0] == EX_OK
        out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
        assert "OK pong" in out, (out, site.dsmtp.log()[-2000:])
        assert "name=mgr.example.test allowed by manager_ip_name" in site.dsmtp.log()
        assert site.dsmtp.sanitizer_report() is None, site.dsmtp.sanitizer_report()
    finally:
        dns.stop()


def conf_lines(conf_path, name):
    """The 1-based lines of conf_path that set name."""
    with open(conf_path) as f:
        return [i for i, ln in enumerate(f, 1) if ln.split(None, 1)[:1] == [name]]


def config_test(site, prog):
    return subprocess.run([os.path.join(BIN, prog), "-t", "-c", site.conf_path],
                          capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("prog,setting", [("dsmtp", "smtp_manager_port"),
                                          ("dpop", "pop_manager_port")])
def test_config_test_checks_manager_settings(dsmtp_factory, prog, setting):
    """-t reports each manager mistake as file:line (as start-up and a reload would):
    a port without a crypt(3) manager_password, a port without a certificate, and
    address or name list entries that are neither."""
    port = free_ports(1)[0]
    site = dsmtp_factory(start=False, **{setting: port})
    r = config_test(site, prog)
    assert r.returncode == 78, r.stderr
    where = "%s:%d: " % (site.conf_path, conf_lines(site.conf_path, setting)[0])
    assert where + "%s %d: manager_password must be set to a crypt(3) hash" % (
        setting, port) in r.stderr, r.stderr
    # a password that is not a hash: the error is at manager_password's line
    site.write_conf({"manager_password": "plain-secret"})
    r = config_test(site, prog)
    assert r.returncode == 78, r.stderr
    pw = "%s:%d: " % (site.conf_path, conf_lines(site.conf_path, "manager_password")[0])
    assert pw + "%s %d: manager_password must be set" % (setting, port) in r.stderr, r.stderr
    site.write_conf({"manager_password": sha512_crypt(PASSWORD)})
    assert config_test(site, prog).returncode == 0, config_test(site, prog).stderr
    # no certificate: refused unless plaintext on loopback is asked for by name
    site.write_conf({"tls_cert": None, "tls_key": None})
    r = config_test(site, prog)
    assert r.returncode == 78, r.stderr
    where = "%s:%d: " % (site.conf_path, conf_lines(site.conf_path, setting)[0])
    assert where + "%s %d: no tls_cert/tls_key" % (setting, port) in r.stderr, r.stderr
    site.write_conf({"manager_plaintext_loopback": True})
    assert config_test(site, prog).returncode == 0
    # list entries that are not addresses / host names
    site.write_conf({"manager_ip_address": ["127.0.0.1", "mgr.example.org"],
                     "manager_ip_name": ["ok.example.org", "bad name/x"]})
    r = config_test(site, prog)
    assert r.returncode == 78, r.stderr
    ln = conf_lines(site.conf_path, "manager_ip_address")[1]
    assert "%s:%d: " % (site.conf_path, ln) in r.stderr, r.stderr
    assert "'mgr.example.org' is not an IP address, wildcard or CIDR range" in r.stderr
    assert "is not a host name or host name wildcard" in r.stderr, r.stderr


def test_manager_bad_reload_keeps_old(dsmtp_factory):
    """A reload that removes the manager password is refused with file:line; the old
    configuration stays and the manager port still serves."""
    site, port = mgr_site(dsmtp_factory)
    site.write_conf({"manager_password": None})
    rc, out, err = site.tellsmtp("reload")
    assert rc != EX_OK, (out, err)
    assert "manager_password must be set to a crypt(3) hash" in out + err, (out, err)
    out, _ = s_client(port, ["AUTH " + PASSWORD, "ping"])
    assert "OK pong" in out, out


def test_manager_plaintext_refused(dsmtp_factory):
    port = free_ports(1)[0]
    site = dsmtp_factory(tls=False, start=False, smtp_manager_port=port,
                         manager_password=sha512_crypt(PASSWORD))
    p = subprocess.run([os.path.join(BIN, "dsmtp"), "-f", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "manager_plaintext_loopback" in p.stderr, p.stderr
    # no password hash: refused too
    site.write_conf({"manager_plaintext_loopback": True, "manager_password": "secret"})
    p = subprocess.run([os.path.join(BIN, "dsmtp"), "-f", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "crypt(3) hash" in p.stderr, p.stderr
    # allowed on loopback with the clearly named setting
    site.write_conf({"manager_password": sha512_crypt(PASSWORD)})
    site.dsmtp.start()
    assert "plaintext, loopback only" in site.dsmtp.log()
    rc, out, err = remote_tell(site, port, "-T", "status")
    assert rc == EX_OK and "dsmtp running" in out, (out, err)


def test_tellsmtp_remote(dsmtp_factory):
    site, port = mgr_site(dsmtp_factory)
    # the self-signed test certificate does not verify against the system store
    rc, out, err = remote_tell(site, port, "status")
    assert rc == EX_UNREACHABLE and "does not verify" in err, err
    # -k skips the check
    rc, out, err = remote_tell(site, port, "-k", "status")
    assert rc == EX_OK and "dsmtp running" in out, (out, err)
    rc, out, err = remote_tell(site, port, "-k", "stats")
    assert rc == EX_OK and "connections_total" in out, (out, err)
    rc, out, err = remote_tell(site, port, "-k", "reload")
    assert rc == EX_OK and "reloaded" in out, (out, err)
    # the password from the environment, and from stdin
    rc, out, err = remote_tell(site, port, "-k", "status", password=None,
                               env={"DMAIL_MANAGER_PASSWORD": PASSWORD})
    assert rc == EX_OK, err
    rc, out, err = remote_tell(site, port, "-k", "status", password=None, input=PASSWORD + "\n")
    assert rc == EX_OK, err
    rc, out, err = remote_tell(site, port, "-k", "status", password="bad")
    assert rc == EX_UNREACHABLE and "authentication failed" in err, err
    # a server's refusal is still exit 1
    rc, out, err = remote_tell(site, port, "-k", "config", "no_such_setting")
    assert rc == EX_REFUSED and "unknown setting" in err, err
    # commands that work on local files only answer a clear ERR
    rc, out, err = remote_tell(site, port, "-k", "adduser", "x", "y", prog="tellpop")
    assert rc == EX_USAGE and "ERR adduser works on the local users file only" in err, err
    rc, out, err = remote_tell(site, port, "-k", "restart")
    assert rc == EX_USAGE and "ERR restart" in err, err
    # -n of another host without -p
    rc, out, err = remote_tell(site, port, "status")
    p = subprocess.run([os.path.join(BIN, "tellsmtp"), "-n", "192.0.2.7", "status"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == EX_USAGE and "-p PORT" in p.stderr


def test_tellsmtp_remote_verifies_with_ca_file(dsmtp_factory, tmp_path):
    # a certificate for 127.0.0.1: -C FILE trusts it and the address matches
    cert, key = str(tmp_path / "ip.pem"), str(tmp_path / "ip.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(str(tmp_path), 0o755)
    os.chmod(key, 0o644)
    site, port = mgr_site(dsmtp_factory, tls_cert=cert, tls_key=key)
    rc, out, err = remote_tell(site, port, "-C", cert, "status")
    assert rc == EX_OK and "dsmtp running" in out, (out, err)
    # the site's own certificate (CN mx.example.test) does not match 127.0.0.1
    rc, out, err = remote_tell(site, port, "-C", site.cert, "status")
    assert rc == EX_UNREACHABLE and "does not verify" in err, err


def test_tellpop_remote(dpop_factory):
    port = free_ports(1)[0]
    pop = dpop_factory(pop_manager_port=port, manager_password=sha512_crypt(PASSWORD))
    wait_for(lambda: os.path.exists(pop.site.ctl_path("dpop")), 5)
    rc, out, err = remote_tell(pop.site, port, "-k", "status", prog="tellpop")
    assert rc == EX_OK and "dpop running" in out, (out, err)
    rc, out, err = remote_tell(pop.site, port, "-k", "who", prog="tellpop")
    assert rc == EX_OK, (out, err)


def test_showchans_and_suspend_accept_dsmtp(dsmtp):
    c1 = RawSMTP(dsmtp.smtp_port)
    c1.expect("EHLO one.example", 250)
    rc, out, err = dsmtp.tellsmtp("showchans")
    assert rc == EX_OK and "1 session" in out, (out, err)
    line = [l for l in out.splitlines() if "127.0.0.1" in l][0]
    assert "listener=smtp" in line and "user=-" in line and "age=" in line, line
    # suspend accept: open sessions go on, new clients wait
    rc, out, err = dsmtp.tellsmtp("suspend", "accept")
    assert rc == EX_OK and "accepting suspended" in out, (out, err)
    rc, out, _ = dsmtp.tellsmtp("status")
    assert "accepting suspended" in out, out
    waiting = connect_not_greeted(dsmtp.smtp_port)
    c1.expect("NOOP", 250)  # the open session keeps going
    # outbound delivery is not touched by "suspend accept"
    rc, out, _ = dsmtp.tellsmtp("status")
    assert re.search(r"outbound\S* running", out) or "suspended" not in out.replace(
        "accepting suspended", ""), out
    rc, out, err = dsmtp.tellsmtp("resume", "accept")
    assert rc == EX_OK and "accepting resumed" in out, (out, err)
    waiting.settimeout(5.0)
    assert waiting.recv(100).startswith(b"220"), "the waiting client is greeted after resume"
    waiting.close()
    c1.expect("QUIT", 221)
    rc, out, err = dsmtp.tellsmtp("suspend", "sideways")
    assert rc == EX_REFUSED and "usage" in err, err
    # plain suspend keeps DMail's meaning: outbound delivery
    rc, out, err = dsmtp.tellsmtp("suspend")
    assert rc == EX_OK and "outbound delivery suspended" in out, out
    rc, out, err = dsmtp.tellsmtp("resume", "all")
    assert rc == EX_OK and "outbound delivery resumed" in out, out
    assert "accepting suspended" in dsmtp.log() and "accepting resumed" in dsmtp.log()


def test_showchans_suspend_dpop(dpop_factory):
    pop = dpop_factory(auth_plaintext=True)
    site = pop.site
    tp = lambda *a: subprocess.run([os.path.join(BIN, "tellpop"), "-c", site.conf_path] +
                                   list(a), capture_output=True, text=True, timeout=30)
    wait_for(lambda: os.path.exists(site.ctl_path("dpop")), 5)
    port = pop.pop_port
    c = RawPOP(port)
    c.login("alice")
    p = tp("showchans")
    assert p.returncode == EX_OK and "user=alice" in p.stdout and "listener=pop3" in p.stdout, \
        p.stdout
    p = tp("suspend")
    assert p.returncode == EX_OK and "accepting suspended" in p.stdout, p.stdout
    assert "accepting suspended" in tp("status").stdout
    waiting = connect_not_greeted(port)
    c.ok("STAT")  # the open session keeps going
    assert tp("resume").returncode == EX_OK
    waiting.settimeout(5.0)
    assert waiting.recv(100).startswith(b"+OK")
    waiting.close()
    c.ok("QUIT")


def test_oneline_stats_and_statistics(dsmtp_factory):
    site = dsmtp_factory(oneline_stats=True)
    with smtplib.SMTP("127.0.0.1", site.smtp_port, timeout=10) as c:
        c.sendmail("sender@remote.example", ["alice@" + DOMAIN, "bob@" + DOMAIN],
                   make_message(subject="stats one")[1])
        c.sendmail("", ["carol@" + DOMAIN], make_message(subject="stats two")[1])
    day = time.strftime("dm%d%m.log")
    path = os.path.join(site.work, day)
    assert wait_for(lambda: os.path.exists(path) and open(path).read().count("\n") == 2, 5)
    lines = open(path).read().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d id=\S+ ip=127\.0\.0\.1 size=\d+ "
                    r"from=<sender@remote\.example> rcpts=2 to=alice@%s,bob@%s user=-$"
                    % (re.escape(DOMAIN), re.escape(DOMAIN)), lines[0]), lines[0]
    assert " from=<> rcpts=1 to=carol@" in lines[1], lines[1]
    tp = lambda *a: subprocess.run([os.path.join(BIN, "tellpop"), "-c", site.conf_path] +
                                   list(a), capture_output=True, text=True, timeout=30)
    p = tp("statistics")
    assert p.returncode == EX_OK, p.stderr
    assert re.search(r"^%s sent=0 bsent=0 recv=3 brecv=\d+$" % re.escape(DOMAIN), p.stdout,
                     re.M), p.stdout
    assert re.search(r"^remote\.example sent=1 bsent=\d+ recv=0", p.stdout, re.M), p.stdout
    assert "messages=2 " in p.stdout
    p = tp("statistics", "-u", "-r", "day")
    assert re.search(r"^alice@%s sent=0 bsent=0 recv=1 " % re.escape(DOMAIN), p.stdout,
                     re.M), p.stdout
    assert tp("statistics", "sometime").returncode == EX_USAGE
    # off again at reload: no more lines
    site.write_conf({"oneline_stats": False})
    assert site.tellsmtp("reload")[0] == EX_OK
    with smtplib.SMTP("127.0.0.1", site.smtp_port, timeout=10) as c:
        c.sendmail("x@remote.example", ["alice@" + DOMAIN], make_message(subject="three")[1])
    time.sleep(0.5)
    assert open(path).read().count("\n") == 2
    # statistics is local only: over the manager port it is a clear ERR
    rc, out, err = remote_tell(site, 1, "statistics", prog="tellpop")
    assert rc == EX_USAGE and "ERR statistics" in err, err
