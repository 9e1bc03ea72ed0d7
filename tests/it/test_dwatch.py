"""dwatch supervising the real dsmtp and dpop: crash and hang recovery, back-off and
give-up, .ded files, signals forwarded, its control socket, systemd notifications."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from dmail_site import (
    BIN,
    HOST,
    Dwatch,
    RawPOP,
    RawSMTP,
    ctl_request,
    pid_alive,
    port_open,
)

TELL = {"dsmtp": "tellsmtp", "dpop": "tellpop"}


def tell(dw, prog, *args):
    p = subprocess.run([os.path.join(BIN, prog), "-c", dw.srv.conf_path] + list(args),
                       capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def smtp_serves(port):
    try:
        with RawSMTP(port, timeout=3) as c:
            return c.greeting[0] == 220
    except (OSError, EOFError):
        return False


def test_starts_both_and_control(dwatch_factory):
    dw = dwatch_factory()
    st = dw.status()
    assert set(st) == {"dsmtp", "dpop"}
    assert smtp_serves(dw.srv.smtp_port)
    with RawPOP(dw.pop_port) as c:
        c.login("alice")
    assert os.stat(dw.ctl_path).st_mode & 0o777 == 0o600

    # restart through tellsmtp (asked of dwatch)
    old = st["dsmtp"]["pid"]
    rc, out, err = tell(dw, "tellsmtp", "restart")
    assert rc == 0, err
    st = dw.wait_for(lambda s: s["dsmtp"]["state"] == "running" and s["dsmtp"]["pid"] != old,
                     10, "dsmtp restarted")
    assert not pid_alive(old)
    assert st["dsmtp"]["deaths"] == "0"  # asked for: not a death
    # stop and start dpop
    rc, out, err = tell(dw, "tellpop", "stop")
    assert rc == 0, err
    dw.wait_for(lambda s: s["dpop"]["state"] == "stopped" and s["dpop"]["pid"] is None, 10,
                "dpop stopped")
    time.sleep(1.5)  # not restarted
    assert dw.status()["dpop"]["state"] == "stopped"
    assert not port_open(dw.pop_port)
    rc, out, err = tell(dw, "tellpop", "start")
    assert rc == 0, err
    dw.wait_running()
    # unknown server, bad usage
    st_, _, text = ctl_request(dw.ctl_path, "restart dlist")
    assert st_ == "ERR" and "does not watch dlist" in text
    st_, _, text = ctl_request(dw.ctl_path, "restart")
    assert st_ == "ERR" and "usage" in text


def test_kill9_back_within_2s(dwatch_factory):
    dw = dwatch_factory()
    pid = dw.status()["dsmtp"]["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    deadline = t0 + 2.0
    while time.monotonic() < deadline:
        st = dw.status()
        if st["dsmtp"]["pid"] not in (None, pid) and smtp_serves(dw.srv.smtp_port):
            break
        time.sleep(0.05)
    else:
        pytest.fail("dsmtp not back within 2 s: %s\n%s" % (dw.status(), dw.log()[-3000:]))
    st = dw.status()
    assert st["dsmtp"]["deaths"] == "1" and st["dsmtp"]["last_exit"] == "signal_9"
    ded = open(os.path.join(dw.srv.work, "dsmtp.ded")).read()
    assert ded.startswith("# dsmtp pid %d died" % pid) and "signal 9" in ded
    assert "smtp listening on" in ded  # its last stderr lines


def test_sigstop_detected_as_hung(dwatch_factory):
    dw = dwatch_factory()
    pid = dw.status()["dsmtp"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    # interval 1 s + timeout 1 s to notice, then 1 s back-off and the start
    st = dw.wait_for(lambda s: s["dsmtp"]["pid"] not in (None, pid)
                     and s["dsmtp"]["state"] == "running", 6, "hung dsmtp replaced")
    took = time.monotonic() - t0
    assert not pid_alive(pid)
    assert st["dsmtp"]["deaths"] == "1"
    assert "did not answer a ping" in dw.log()
    ded = open(os.path.join(dw.srv.work, "dsmtp.ded")).read()
    assert "killed: did not answer a ping" in ded
    assert took < 6
    assert smtp_serves(dw.srv.smtp_port)


def test_exits_at_once_backoff_then_give_up(dwatch_factory):
    dw = dwatch_factory(start=False)
    blocker = socket.socket()
    blocker.bind((HOST, dw.srv.smtp_port))
    blocker.listen(1)
    try:
        dw.start(wait=False)
        st = dw.wait_for(lambda s: s.get("dsmtp", {}).get("state") == "failed", 15,
                         "dwatch gives up on dsmtp")
        assert st["dsmtp"]["deaths"] == "3" and st["dsmtp"]["pid"] is None
        assert st["dpop"]["state"] == "running"  # the other one is not affected
        log = dw.log()
        delays = [float(x) for x in re.findall(r"dsmtp: died \(exit 1\), death \d+ within 60s; "
                                              r"restarting in ([0-9.]+)s", log)]
        assert delays == [1.0, 2.0], log[-3000:]
        assert "dsmtp: died 3 times within 60s" in log and "giving up" in log
        ded = open(os.path.join(dw.srv.work, "dsmtp.ded")).read()
        assert "exit 1" in ded and "no listener" in ded
        time.sleep(1.5)
        assert dw.status()["dsmtp"]["state"] == "failed"  # stays failed
    finally:
        blocker.close()
    rc, out, err = tell(dw, "tellsmtp", "start")
    assert rc == 0, err
    dw.wait_running()
    assert smtp_serves(dw.srv.smtp_port)


def test_clean_exit_is_not_restarted(dwatch_factory):
    dw = dwatch_factory()
    pid = dw.status()["dsmtp"]["pid"]
    rc, out, err = tell(dw, "tellsmtp", "shutdown")
    assert rc == 0, err
    dw.wait_for(lambda s: s["dsmtp"]["state"] == "stopped", 10, "dsmtp stopped")
    assert not pid_alive(pid)
    time.sleep(1.5)
    assert dw.status()["dsmtp"]["state"] == "stopped"


def test_sighup_and_sigterm_reach_servers(dwatch_factory):
    dw = dwatch_factory()
    st = dw.status()
    pids = {n: st[n]["pid"] for n in st}
    dw.srv.write_conf({"max_rcpts": 9})
    dw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        outs = [tell(dw, TELL[n], "status")[1] for n in ("dsmtp", "dpop")]
        if all("reloads 1" in o for o in outs):
            break
        time.sleep(0.1)
    else:
        pytest.fail("SIGHUP did not reach both servers:\n" + dw.log()[-3000:])
    assert "max_rcpts 9" in tell(dw, "tellsmtp", "config", "max_rcpts")[1]
    assert dw.status()["dsmtp"]["pid"] == pids["dsmtp"]  # reloaded, not restarted

    dw.proc.send_signal(signal.SIGTERM)
    assert dw.proc.wait(15) == 0
    for n, pid in pids.items():
        assert not pid_alive(pid), n
    log = dw.log()
    assert log.count("shutdown asked on the control socket") == 2
    for n in ("dsmtp", "dpop", "dwatch"):
        assert not os.path.exists(os.path.join(dw.srv.work, n + ".ctl")), n


def test_reload_through_dwatch_reports_errors(dwatch_factory):
    dw = dwatch_factory()
    with open(dw.srv.conf_path, "a") as f:
        f.write("dwatch_interval often\n")
    n = sum(1 for _ in open(dw.srv.conf_path))
    st, lines, text = ctl_request(dw.ctl_path, "reload")
    assert st == "ERR" and "old configuration stays" in text
    assert "%s:%d: dwatch_interval" % (dw.srv.conf_path, n) in "\n".join(lines)
    dw.srv.write_conf({"dwatch_interval": 2})
    st, lines, text = ctl_request(dw.ctl_path, "reload")
    assert st == "OK", lines
    assert any(ln.startswith("dsmtp: OK reloaded") for ln in lines), lines
    assert any(ln.startswith("dpop: OK reloaded") for ln in lines), lines


def test_reload_changes_the_server_list(dwatch_factory):
    dw = dwatch_factory()
    pop_pid = dw.status()["dpop"]["pid"]
    dw.srv.write_conf({"dwatch_servers": "dsmtp"})
    st, lines, text = ctl_request(dw.ctl_path, "reload")
    assert st == "OK", lines
    dw.wait_for(lambda s: "dpop" not in s, 10, "dpop dropped")
    assert not pid_alive(pop_pid)
    assert not port_open(dw.pop_port)
    st_, _, text = ctl_request(dw.ctl_path, "start dpop")
    assert st_ == "ERR" and "does not watch dpop" in text
    dw.srv.write_conf({"dwatch_servers": "dsmtp,dpop"})
    dw.proc.send_signal(signal.SIGHUP)
    dw.wait_running()
    with RawPOP(dw.pop_port) as c:
        c.login("alice")


def test_systemd_notify(dwatch_factory):
    d = tempfile.mkdtemp(prefix="dmail-notify-")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        dw = dwatch_factory(start=False, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        dw.start(wait=False)
        msgs = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(m == "WATCHDOG=1" for m in msgs):
            msgs.append(sock.recv(4096).decode())
        ready = [m for m in msgs if m.startswith("READY=1")]
        assert len(ready) == 1, msgs
        assert "STATUS=2 servers running" in ready[0]
        assert msgs.index(ready[0]) < msgs.index("WATCHDOG=1")
        st = dw.status()
        assert st["dsmtp"]["state"] == "running" and st["dpop"]["state"] == "running"
        # the servers did not inherit NOTIFY_SOCKET
        with open("/proc/%d/environ" % st["dsmtp"]["pid"], "rb") as f:
            assert b"NOTIFY_SOCKET" not in f.read()
        dw.proc.send_signal(signal.SIGTERM)
        while True:
            m = sock.recv(4096).decode()
            if m == "STOPPING=1":
                break
        assert dw.proc.wait(15) == 0
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(d)


def test_make_run_under_dwatch(run_sh):
    """make run: the suite under dwatch; the printed tellsmtp/tellpop lines work, a killed
    dsmtp comes back, Ctrl-C stops everything."""
    import shlex

    proc, d = run_sh["proc"], run_sh["dir"]
    text = run_sh["out"]
    tells = [ln.strip().split("  ")[0] for ln in text.splitlines()
             if re.match(r"\s+\S*tell(smtp|pop) -c ", ln)]
    assert len(tells) == 5, text
    status = [t for t in tells if t.endswith(" status")][0]
    deadline = time.monotonic() + 10
    while True:
        r = subprocess.run(shlex.split(status), cwd=d, capture_output=True, text=True,
                           timeout=30)
        if r.returncode == 0:
            break
        assert time.monotonic() < deadline, r.stderr
        time.sleep(0.1)
    assert "dsmtp running" in r.stdout
    work = os.path.join(d, "run", "work")
    dw = Dwatch.__new__(Dwatch)
    dw.ctl_path, dw.proc, dw.seen_pids = os.path.join(work, "dwatch.ctl"), proc, set()
    dw.stderr_path = os.devnull
    st = dw.wait_running()
    os.kill(st["dsmtp"]["pid"], signal.SIGKILL)
    dw.wait_for(lambda s: s["dsmtp"]["state"] == "running"
                and s["dsmtp"]["pid"] != st["dsmtp"]["pid"], 5, "dsmtp back")
    who = [t for t in tells if t.endswith(" who")][0]
    r = subprocess.run(shlex.split(who), cwd=d, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "0 sessions" in r.stdout, r.stdout + r.stderr
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(15) == 0
    for pid in dw.seen_pids:
        assert not pid_alive(pid)
