"""dsmtp as a program: command line, config check, config search, privileges, listeners
on IPv4 and IPv6, connection caps."""

import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from dmail_site import (BIN, DOMAIN, HOST, RawSMTP, free_ports, hold_dotlock, ipv6_loopback,
                        listening_sockets, make_message, run_as_user, wait_for)

DSMTP = os.path.join(BIN, "dsmtp")


def run(args, env=None, timeout=10):
    return subprocess.run([DSMTP, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def test_help_and_version():
    r = run(["--help"])
    assert r.returncode == 0 and "-c" in r.stdout + r.stderr
    r = run(["--version"])
    assert r.returncode == 0 and "0." in r.stdout + r.stderr
    r = run(["--no-such-flag"])
    assert r.returncode == 64


def test_check_config(dsmtp_factory):
    srv = dsmtp_factory(start=False)
    r = run(["-t", "-c", srv.conf_path])
    assert r.returncode == 0, r.stdout + r.stderr
    # -i is DMail's spelling of -c; $DMAIL_CONF is the default
    assert run(["-t", "-i", srv.conf_path]).returncode == 0
    assert run(["-t"], env=srv.env()).returncode == 0
    with open(srv.conf_path, "a") as f:
        f.write("max_rcpts lots\nno_such_setting 1\nsmtp_port 99999\n")
    r = run(["-t", "-c", srv.conf_path])
    assert r.returncode == 78, r.stdout + r.stderr
    out = r.stdout + r.stderr
    n = sum(1 for _ in open(srv.conf_path))
    # every problem, each as file:line: reason
    for line in (n - 2, n - 1, n):
        assert "%s:%d:" % (srv.conf_path, line) in out, out
    # and it does not start on a broken file
    r = run(["-f", "-c", srv.conf_path], timeout=10)
    assert r.returncode == 78, r.stdout + r.stderr


def test_missing_config_file():
    r = run(["-t", "-c", "/nonexistent/dmail.conf"])
    assert r.returncode != 0
    assert "/nonexistent/dmail.conf" in r.stdout + r.stderr


def proc_ids(pid):
    uids = gids = None
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("Uid:"):
                uids = [int(x) for x in ln.split()[1:]]
            elif ln.startswith("Gid:"):
                gids = [int(x) for x in ln.split()[1:]]
    return uids, gids


def test_runs_as_run_as_user(dsmtp):
    pw = pwd.getpwnam(run_as_user())
    uids, gids = proc_ids(dsmtp.proc.pid)
    assert uids == [pw.pw_uid] * 4, uids
    assert gids == [pw.pw_gid] * 4, gids
    # and it still works after dropping privileges: bound ports, readable key
    with RawSMTP(dsmtp.smtps_port, tls=True) as c:
        c.ehlo()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_refuses_to_run_as_root(dsmtp_factory):
    srv = dsmtp_factory(start=False, run_as="root")
    r = run(["-f", "-c", srv.conf_path], timeout=10)
    assert r.returncode != 0, "dsmtp ran as root"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", srv.smtp_port)) != 0


def test_unknown_run_as_user_is_fatal(dsmtp_factory):
    if os.geteuid() != 0:
        pytest.skip("only root changes users")
    srv = dsmtp_factory(start=False, run_as="no-such-user-dmail")
    r = run(["-f", "-c", srv.conf_path], timeout=10)
    assert r.returncode != 0


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_listens_on_ipv6(dsmtp_factory):
    srv = dsmtp_factory(listen=["127.0.0.1", "::1"])
    msgid, text = make_message()
    with socket.create_connection(("::1", srv.smtp_port), timeout=10) as s:
        f = s.makefile("rwb")
        assert f.readline().startswith(b"220 ")
        for line, want in ((b"EHLO v6.example", b"250 "), (b"MAIL FROM:<s@remote.example>", b"250 "),
                           (b"RCPT TO:<alice@%s>" % DOMAIN.encode(), b"250 "),
                           (b"DATA", b"354 ")):
            f.write(line + b"\r\n")
            f.flush()
            while True:
                r = f.readline()
                if r[3:4] != b"-":
                    break
            assert r.startswith(want), (line, r)
        f.write(text.replace("\n", "\r\n").encode() + b".\r\n")
        f.flush()
        assert f.readline().startswith(b"250 ")
    assert srv.msgids("alice") == [msgid]
    rec = srv.messages("alice")[0][1]["Received"]
    assert "::1" in rec, rec


def test_max_connections(dsmtp_factory):
    import time
    srv = dsmtp_factory(max_connections=3, max_per_ip=100)
    time.sleep(0.5)  # start-up probes gone
    held = [RawSMTP(srv.smtp_port) for _ in range(3)]
    try:
        try:
            with RawSMTP(srv.smtp_port, timeout=5) as c:
                assert c.greeting[0] == 421, c.greeting
        except (EOFError, ConnectionResetError):
            pass
        held[0].ehlo()
        held[0].expect("NOOP", 250)
    finally:
        for c in held:
            c.close()


def open_files_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for ln in f:
            if ln.startswith("Max open files"):
                return int(ln.split()[3]), int(ln.split()[4])
    raise AssertionError("no open files line")


def test_open_files_limit_raised_for_max_connections(dsmtp_factory):
    """A server raises its descriptor limit to the hard limit; when max_connections needs
    more than the hard limit allows, it raises that too if it may, else it warns."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2000:
        pytest.skip("hard open files limit %s" % hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # the soft one only
        srv = dsmtp_factory(max_connections=1000)
        assert open_files_limit(srv.proc.pid) == (hard, hard)
        assert "open files limit" not in srv.log()
        srv.stop_all()
        if hard > 1000000:
            return
        srv = dsmtp_factory(max_connections=hard)
        got = open_files_limit(srv.proc.pid)
        assert got == (hard + 64, hard + 64) or (
            got == (hard, hard) and "open files limit %d is below max_connections" % hard
            in srv.log()), (got, srv.log()[-1000:])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def no_syslog_argv(argv, tmp):
    """argv run where nothing listens on /dev/log: as it is when this machine has no
    syslog daemon, else (as root) in a mount namespace of its own with a plain file bound
    over /dev/log. None when neither can be had."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect("/dev/log")
        listening = True
    except OSError:
        listening = False
    finally:
        probe.close()
    if not listening:
        return argv
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"):
        return None
    blank = os.path.join(tmp, "not-a-socket")
    open(blank, "w").close()
    return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /dev/log && exec "$@"', blank,
            *argv]


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_without_f_no_fork_and_no_syslog_said_once(dsmtp_factory, tmp_path, prog):
    # without -f and without log_file the lines go to syslog; with no syslog daemon they
    # would vanish: one warning on stderr, then the lines there; the server does not fork
    srv = dsmtp_factory(start=False, log_level="info")
    pop_ports = free_ports(2)
    srv.write_conf({"pop_port": pop_ports[0], "pop3s_port": pop_ports[1]})
    argv = no_syslog_argv([os.path.join(BIN, prog), "-c", srv.conf_path], str(tmp_path))
    if argv is None:
        pytest.skip("syslog listens on /dev/log and no private mount namespace is possible")
    errf = open(tmp_path / "stderr", "w+")
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf,
                         stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: " started as " in open(tmp_path / "stderr").read(), 10), \
            open(tmp_path / "stderr").read()
        assert p.poll() is None  # still the process we started: it did not fork away
        port = srv.smtp_port if prog == "dsmtp" else pop_ports[0]
        assert port in [pt for _, pt in listening_sockets(p.pid)]
    finally:
        p.terminate()
        p.wait(15)
    err = open(tmp_path / "stderr").read()
    assert err.count("no syslog daemon listens on /dev/log") == 1, err
    assert err.startswith("%s: warning: no syslog daemon listens on /dev/log: logging to "
                          "standard error instead" % prog), err
    assert "%s stopped" % prog in err


def test_signals_ignored_while_finishing(dsmtp_factory):
    # a delivery job waits for alice's dotlock (lock_timeout); two SIGTERMs stop the server
    # at once, so it finishes while the job runs: a third signal (dwatch's SIGTERM after a
    # Ctrl-C, logrotate's SIGUSR1) must not kill it before the job ends
    srv = dsmtp_factory(lock_timeout=3)
    lock = hold_dotlock(srv.mbox_path("alice"))
    _, text = make_message()

    def client():
        try:
            with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=20) as s:
                s.sendmail("sender@remote.example", ["alice@" + DOMAIN], text)
        except (smtplib.SMTPException, OSError):
            pass  # the session is cut by the stop

    t = threading.Thread(target=client)
    t.start()
    try:
        assert wait_for(lambda: "rcpt to=<alice@" in srv.log(), 10), srv.log()
        time.sleep(0.3)  # the delivery job is on the pool, waiting for the lock
        p = srv.dsmtp.proc
        p.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "stopping gracefully" in srv.log(), 5)
        p.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "jobs running=1" in srv.log(), 5), srv.log()[-2000:]
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            p.send_signal(sig)
        time.sleep(0.3)
        assert p.poll() is None, "killed while finishing: %s" % p.returncode
        assert p.wait(15) == 0
        srv.dsmtp._reap()  # stopped by the test, not on its own
        assert "dsmtp stopped" in srv.log()
    finally:
        os.unlink(lock)
        t.join(30)


def test_emfile_pauses_accepting_once_and_serves_open_sessions(dsmtp_factory):
    """At its descriptor limit a server stops accepting (new clients wait in the backlog),
    says so once however long it lasts, serves the sessions it has, and accepts again
    when descriptors come free. dsmtp runs under prlimit with 64 descriptors."""
    if shutil.which("prlimit") is None:
        pytest.skip("no prlimit")
    srv = dsmtp_factory(start=False, max_connections=1000, max_per_ip=1000)
    srv.chown()
    err_path = os.path.join(srv.dir, "emfile.stderr")
    held = []
    with open(err_path, "ab") as err:
        proc = subprocess.Popen(["prlimit", "--nofile=64:64", "--",
                                 os.path.join(BIN, "dsmtp"), "-f", "-c", srv.conf_path],
                                cwd=srv.dir, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                env=srv.env())

    def log():
        with open(err_path) as f:
            return f.read()
    try:
        assert wait_for(lambda: " started as " in log(), 10), log()[-2000:]
        with RawSMTP(srv.smtp_port) as first:
            first.ehlo()
            for _ in range(80):
                held.append(socket.create_connection((HOST, srv.smtp_port), timeout=5))
            said = "new connections wait in the backlog"
            assert wait_for(lambda: said in log(), 10), log()[-2000:]
            time.sleep(2.5)  # two more retries meet the limit again
            assert log().count(said) == 1, log()[-3000:]
            first.expect("NOOP", 250)  # the open session is served
            for s in held[:40]:  # the first ones were accepted: their descriptors come free
                s.close()
            del held[:40]
            assert wait_for(lambda: "accepting again after" in log(), 10), log()[-2000:]
        with RawSMTP(srv.smtp_port) as c:
            c.ehlo()
    finally:
        for s in held:
            s.close()
        proc.terminate()
        proc.wait(10)
