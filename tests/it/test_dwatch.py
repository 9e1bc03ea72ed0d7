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

from conftest import BIN, HOST, SANITIZER_MARKS, free_ports, port_open
from dmail_it import RawSMTP
from pop_fixtures import RawPOP

TELL = {"dsmtp": "tellsmtp", "dpop": "tellpop"}


def ctl(path, line, timeout=10.0):
    """One control request: (status "OK"/"ERR", [data lines], text)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    buf, lines = b"", []
    try:
        while True:
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError("closed before the status line: %r" % lines)
                buf += chunk
            ln, buf = buf.split(b"\n", 1)
            ln = ln.decode()
            for word in ("OK", "ERR"):
                if ln == word or ln.startswith(word + " "):
                    return word, lines, ln[len(word) + 1:]
            lines.append(ln[1:] if ln.startswith("\\") else ln)
    finally:
        s.close()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Dwatch:
    def __init__(self, srv, env=None):
        self.srv = srv
        self.proc = None
        self.env = env or {}
        self.stderr_path = os.path.join(srv.dir, "dwatch.stderr")
        self.ctl_path = os.path.join(srv.work, "dwatch.ctl")
        self.seen_pids = set()

    @property
    def pop_port(self):
        return int(self.srv.settings["pop_port"])

    def start(self, wait=True):
        env = self.srv.env()
        env.update(self.env)
        self.srv.chown()
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "dwatch"), "-f", "-c", self.srv.conf_path],
                                     cwd=self.srv.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err, env=env)
        if wait:
            self.wait_running()
        return self

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def status(self):
        """{name: {state, pid, restarts, deaths, ...}} from dwatch's status."""
        st, lines, text = ctl(self.ctl_path, "status")
        assert st == "OK", text
        out = {}
        for ln in lines:
            name, rest = ln.split(" ", 1)
            fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
            fields["pid"] = int(fields["pid"]) if fields["pid"] != "-" else None
            if fields["pid"]:
                self.seen_pids.add(fields["pid"])
            out[name] = fields
        return out

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "dwatch exited:\n" + self.log()[-3000:]
            if os.path.exists(self.ctl_path):
                try:
                    last = self.status()
                    if pred(last):
                        return last
                except (OSError, EOFError):
                    pass
            time.sleep(0.05)
        pytest.fail("%s not within %.1fs; last status %s\n%s"
                    % (what, timeout, last, self.log()[-4000:]))

    def wait_running(self, names=("dsmtp", "dpop"), timeout=10):
        return self.wait_for(lambda s: all(n in s and s[n]["state"] == "running" for n in names),
                             timeout, "%s running" % (names,))

    def stop(self, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        self._err.close()
        self.proc = None
        return rc


@pytest.fixture
def dwatch_factory(request, dsmtp_factory):
    made = []

    def make(start=True, env=None, **settings):
        conf = {"dwatch_interval": 1, "dwatch_timeout": 1, "dwatch_backoff_max": 4,
                "dwatch_give_up": 3, "dwatch_window": 60, "auth_plaintext": True,
                "auth_fail_delay": 0}
        conf.update(settings)
        srv = dsmtp_factory(start=False, **conf)
        p1, p2 = free_ports(2)
        srv.write_conf({"pop_port": p1, "pop3s_port": p2})
        dw = Dwatch(srv, env)
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
        text = dw.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.find(mark)
                problems.append("sanitizer report:\n" + text[max(0, i - 500):i + 3000])
                break
        left = [p for p in dw.seen_pids if pid_alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        if left:
            problems.append("servers left running after dwatch stopped: %s" % left)
    if problems:
        pytest.fail("\n\n".join(problems) + "\n" + made[0].log()[-3000:], pytrace=False)


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
    st_, _, text = ctl(dw.ctl_path, "restart dlist")
    assert st_ == "ERR" and "does not watch dlist" in text
    st_, _, text = ctl(dw.ctl_path, "restart")
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
    st, lines, text = ctl(dw.ctl_path, "reload")
    assert st == "ERR" and "old configuration stays" in text
    assert "%s:%d: dwatch_interval" % (dw.srv.conf_path, n) in "\n".join(lines)
    dw.srv.write_conf({"dwatch_interval": 2})
    st, lines, text = ctl(dw.ctl_path, "reload")
    assert st == "OK", lines
    assert any(ln.startswith("dsmtp: OK reloaded") for ln in lines), lines
    assert any(ln.startswith("dpop: OK reloaded") for ln in lines), lines


def test_reload_changes_the_server_list(dwatch_factory):
    dw = dwatch_factory()
    pop_pid = dw.status()["dpop"]["pid"]
    dw.srv.write_conf({"dwatch_servers": "dsmtp"})
    st, lines, text = ctl(dw.ctl_path, "reload")
    assert st == "OK", lines
    dw.wait_for(lambda s: "dpop" not in s, 10, "dpop dropped")
    assert not pid_alive(pop_pid)
    assert not port_open(dw.pop_port)
    st_, _, text = ctl(dw.ctl_path, "start dpop")
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


def test_make_run_under_dwatch():
    """make run: the suite under dwatch; the printed tellsmtp/tellpop lines work, a killed
    dsmtp comes back, Ctrl-C stops everything."""
    import select
    import shlex
    import shutil

    from conftest import REPO

    d = tempfile.mkdtemp(prefix="dmail-it-run-")
    os.chmod(d, 0o755)
    ports = free_ports(5)
    env = dict(os.environ, DMAIL_RUN_DIR=os.path.join(d, "run"),
               DMAIL_SMTP_PORT=str(ports[0]), DMAIL_SUBMISSION_PORT=str(ports[1]),
               DMAIL_SMTPS_PORT=str(ports[2]), DMAIL_POP_PORT=str(ports[3]),
               DMAIL_POP3S_PORT=str(ports[4]))
    proc = subprocess.Popen([os.path.join(REPO, "scripts", "run.sh"), BIN], cwd=d, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while b"Ctrl-C" not in out and time.monotonic() < deadline and proc.poll() is None:
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                out += os.read(proc.stdout.fileno(), 65536)
        text = out.decode()
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
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)
