"""log_file and logrotate: after the file is moved aside, SIGUSR1 or `tellsmtp reopen` /
`tellpop reopen` makes the server write to a new file of the same name (dwatch reopens its
own on SIGUSR1); a file that cannot be made is reported and the old one kept; without a
log file there is nothing to reopen. conf/dmail.logrotate sends the reopen."""

import grp
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, HOST, REPO, chown_like_dsmtp, make_message, run_as_user,
                        wait_for)


def log_site(factory, **settings):
    """A site whose dsmtp logs to log/dmail.log (not -f), the directory given to run_as as
    logrotate's "create" would give the file."""
    srv = factory(start=False, log_level="info", **settings)
    logdir = os.path.join(srv.dir, "log")
    os.mkdir(logdir)
    chown_like_dsmtp(logdir)
    logf = os.path.join(logdir, "dmail.log")
    srv.write_conf({"log_file": logf})
    return srv, logdir, logf


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def send_one(srv, tag):
    _, text = make_message(subject=tag)
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname=tag + ".example", timeout=15) as s:
        assert s.sendmail("sender@remote.example", ["alice@" + DOMAIN], text) == {}


def tell(prog, srv, *args):
    return subprocess.run([os.path.join(BIN, prog), "-c", srv.conf_path, *args],
                          capture_output=True, text=True, timeout=20)


def rotate_and_check(srv, logf, reopen):
    """Send, move the log aside, reopen (a callable), send again: the new file gets the
    reopen line and the second delivery, the old file keeps the first."""
    send_one(srv, "before")
    assert wait_for(lambda: " delivered id=" in read(logf), 5), read(logf)
    os.rename(logf, logf + ".1")
    reopen()
    assert wait_for(lambda: "reopened" in read(logf), 5), read(logf + ".1")[-2000:]
    send_one(srv, "after")
    assert wait_for(lambda: " delivered id=" in read(logf), 5), read(logf)
    old, new = read(logf + ".1"), read(logf)
    assert old.count(" delivered id=") == 1 and new.count(" delivered id=") == 1
    assert "reopened" not in old
    assert all(" dsmtp[" in ln or " dpop[" in ln for ln in new.splitlines()), new


def test_sigusr1_reopens_dsmtp_log(dsmtp_factory):
    srv, _, logf = log_site(dsmtp_factory)
    srv.flags = []
    srv.start()
    rotate_and_check(srv, logf, lambda: os.kill(srv.dsmtp.proc.pid, signal.SIGUSR1))
    assert "(SIGUSR1)" in read(logf)


def test_tellsmtp_reopen(dsmtp_factory):
    srv, _, logf = log_site(dsmtp_factory)
    srv.flags = []
    srv.start()

    def reopen():
        r = tell("tellsmtp", srv, "reopen")
        assert r.returncode == 0 and "log file %s reopened" % logf in r.stdout, r

    rotate_and_check(srv, logf, reopen)


def test_tellpop_reopen_and_sigusr1(dpop_factory):
    pop = dpop_factory(log_level="info")
    site = pop.site
    logdir = os.path.join(site.dir, "log")
    os.mkdir(logdir)
    chown_like_dsmtp(logdir)
    logf = os.path.join(logdir, "dmail.log")
    pop.stop()
    site.write_conf({"log_file": logf})
    pop.flags = []
    pop.start()
    assert wait_for(lambda: "started" in read(logf), 5), read(logf)
    for n, how in enumerate(("tell", "signal")):
        os.rename(logf, "%s.%d" % (logf, n + 1))
        if how == "tell":
            r = tell("tellpop", site, "reopen")
            assert r.returncode == 0 and "reopened" in r.stdout, r
        else:
            os.kill(pop.proc.pid, signal.SIGUSR1)
        assert wait_for(lambda: "reopened" in read(logf), 5), how
        c = pop.raw()
        c.cmd("QUIT")
        c.close()
        assert wait_for(lambda: "connect" in read(logf), 5), (how, read(logf))


def test_reopen_failure_keeps_old_file(dsmtp_factory):
    srv, logdir, logf = log_site(dsmtp_factory)
    srv.flags = []
    srv.start()
    os.rename(logf, logf + ".1")
    os.chmod(logdir, 0o555)  # run_as (nobody, or us) cannot make the new file
    try:
        r = tell("tellsmtp", srv, "reopen")
        assert r.returncode == 1, r
        assert "cannot reopen log file %s: Permission denied" % logf in r.stderr, r
        send_one(srv, "still")
        assert wait_for(lambda: " delivered id=" in read(logf + ".1"), 5)
        assert "cannot reopen log file" in read(logf + ".1")
        assert not os.path.exists(logf)
    finally:
        os.chmod(logdir, 0o755)


def test_reopen_without_log_file(dsmtp):
    # -f: stderr; nothing to reopen, and saying so is not an error
    r = tell("tellsmtp", dsmtp, "reopen")
    assert r.returncode == 0 and "no log file to reopen" in r.stdout, r
    os.kill(dsmtp.dsmtp.proc.pid, signal.SIGUSR1)
    assert wait_for(lambda: "reopen: no log file in use" in dsmtp.log(), 5)
    assert dsmtp.dsmtp.alive()


def test_dwatch_daemon_reopens_on_sigusr1(dsmtp_factory):
    srv, _, logf = log_site(dsmtp_factory, dwatch_servers="dsmtp", dwatch_interval=1)
    pidfile = os.path.join(srv.work, "dwatch.pid")
    r = subprocess.run([os.path.join(BIN, "dwatch"), "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    assert wait_for(lambda: read(pidfile).strip().isdigit(), 10)
    pid = int(read(pidfile))
    try:
        assert wait_for(lambda: "dsmtp: up" in read(logf), 10), read(logf)
        send_one(srv, "before")
        assert wait_for(lambda: " delivered id=" in read(logf), 5)
        os.rename(logf, logf + ".1")
        os.kill(pid, signal.SIGUSR1)
        assert wait_for(lambda: "reopened (SIGUSR1)" in read(logf), 5), read(logf + ".1")[-2000:]
        send_one(srv, "after")
        # the server's lines come through dwatch into the new file
        assert wait_for(lambda: " delivered id=" in read(logf), 5), read(logf)
        assert read(logf + ".1").count(" delivered id=") == 1
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate not installed")
def test_logrotate_with_the_shipped_file(dsmtp_factory, tmp_path):
    # conf/dmail.logrotate itself, its paths pointed at this site: logrotate moves the log,
    # creates the new one and its postrotate has dsmtp reopen it (through tellsmtp)
    srv, _, logf = log_site(dsmtp_factory)
    srv.flags = []
    srv.start()
    send_one(srv, "before")
    assert wait_for(lambda: " delivered id=" in read(logf), 5)
    text = open(os.path.join(REPO, "conf", "dmail.logrotate")).read()
    assert "copytruncate" not in text.replace("No copytruncate", "")
    user = run_as_user()
    group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    text = (text.replace("/var/log/dmail.log", logf).replace("/var/lib/dmail", srv.work)
            .replace("/usr/sbin/", BIN.rstrip("/") + "/")
            .replace("create 0640 dmail adm", "create 0640 %s %s" % (user, group)))
    conf = tmp_path / "dmail.logrotate"
    conf.write_text(text)
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
                       capture_output=True, text=True, timeout=30, env=srv.env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(logf + ".1"), os.listdir(os.path.dirname(logf))
    assert wait_for(lambda: "reopened" in read(logf), 5), read(logf + ".1")[-2000:]
    send_one(srv, "after")
    assert wait_for(lambda: " delivered id=" in read(logf), 5), read(logf)
    assert read(logf + ".1").count(" delivered id=") == 1
    st = os.stat(logf)
    assert st.st_uid == pwd.getpwnam(user).pw_uid and (st.st_mode & 0o777) == 0o640
