"""make run (scripts/run.sh): a newcomer's first minutes. Start it in a temp directory
on free ports, run every command line it prints (swaks, python3 poplib, fetchmail, the
tell tools) and those of the README's "Try it", find the mail where it says, stop it with
Ctrl-C; a second start keeps run/dmail.conf and the users, a start while it runs is
refused and changes nothing, RESET=1 starts over."""

import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from dmail_site import BIN, REPO, SANITIZER_MARKS, port_open, read_mbox, start_run_sh


def wait_port(proc, port, out):
    deadline = time.monotonic() + 10
    while not port_open(port):
        assert proc.poll() is None, "dsmtp exited:\n" + out + drain(proc, 1)
        assert time.monotonic() < deadline, "dsmtp did not listen on %d" % port
        time.sleep(0.1)


def printed(out, *starts):
    """The printed command lines starting with one of starts (the "(...)" note cut)."""
    lines = []
    for ln in out.splitlines():
        ln = ln.strip()
        if any(ln.startswith(st) for st in starts):
            lines.append(re.sub(r"\s+\([^()]*\)$", "", ln))
    return lines


def run_line(line, cwd, **kw):
    r = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60, cwd=cwd,
                       **kw)
    assert r.returncode == 0, line + "\n" + r.stdout + r.stderr
    return r


def ctrl_c(proc):
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("the suite did not stop on Ctrl-C (SIGINT)")


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def drain(proc, wait):
    out = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    return out.decode("utf-8", "replace")


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_make_run_prints_working_commands(run_sh):
    out, proc = run_sh["out"], run_sh["proc"]
    assert "Ctrl-C" in out, "run.sh did not get to its instructions:\n" + out
    smtp_port = run_sh["ports"][0]
    wait_port(proc, smtp_port, out)
    m = re.search(r"password: (\S+)", out)
    assert m, out
    password = m.group(1)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("swaks ")]
    assert len(lines) >= 2, out
    assert lines[0] == "swaks --server 127.0.0.1:%d --to demo@example.test" % smtp_port
    assert any("--auth" in ln and password in ln for ln in lines[1:]), lines
    m = re.search(r"It lands in (\S+)", out)
    assert m, out
    mbox = m.group(1)
    if not os.path.isabs(mbox):
        mbox = os.path.join(run_sh["dir"], mbox)
    assert mbox == os.path.join(run_sh["dir"], "run", "drop", "demo")
    for n, line in enumerate(lines):
        r = subprocess.run(shlex.split(line) + ["--header", "Subject: run line %d" % n],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, line + "\n" + r.stdout + r.stderr
    subjects = [msg["Subject"] for _, msg in read_mbox(mbox)]
    assert subjects == ["run line %d" % n for n in range(len(lines))], subjects
    # the printed "read your mail" line works against the dpop it started
    if os.access(os.path.join(BIN, "dpop"), os.X_OK):
        pop = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("python3 -c")]
        assert len(pop) == 1, out
        assert "127.0.0.1',%d)" % run_sh["ports"][3] in pop[0], pop[0]
        r = subprocess.run(shlex.split(pop[0]), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, pop[0] + "\n" + r.stdout + r.stderr
        assert r.stdout.startswith("(%d, " % len(lines)), r.stdout
        assert "Subject: run line 0" in r.stdout, r.stdout
    # the fetchmail line (the password from ~/.netrc, as a user would have typed it)
    if shutil.which("fetchmail") and os.access(os.path.join(BIN, "dpop"), os.X_OK):
        (fm,) = printed(out, "fetchmail ")
        assert "--nosslcertck" in fm and "--mda" in fm and "-P %d " % run_sh["ports"][4] in fm
        home = os.path.join(run_sh["dir"], "home")
        os.mkdir(home, 0o700)
        with open(os.path.join(home, ".netrc"), "w") as f:
            f.write("machine 127.0.0.1 login demo password %s\n" % password)
        os.chmod(os.path.join(home, ".netrc"), 0o600)
        run_line(fm, run_sh["dir"], env=dict(os.environ, HOME=home), stdin=subprocess.DEVNULL)
        m = re.search(r"cat >>(\S+)'", fm)
        fetched = open(os.path.join(run_sh["dir"], m.group(1))).read()
        assert "Subject: run line 0" in fetched and "Subject: run line 2" in fetched
        assert len(read_mbox(mbox)) == len(lines)  # -k: kept on the server
    # the control lines, restart last
    tell = printed(out, os.path.join(BIN, "tellsmtp"), os.path.join(BIN, "tellpop"))
    assert len(tell) >= 3, out
    restart = [t for t in tell if t.endswith(" restart")]
    for line in [t for t in tell if not t.endswith(" restart")] + restart:
        r = run_line(line, run_sh["dir"], input="alice-pw\n")
        if line.endswith(" status"):
            assert "dsmtp running" in r.stdout, r.stdout
    if os.access(os.path.join(BIN, "dpop"), os.X_OK):
        assert re.search(r"^alice:", open(os.path.join(run_sh["dir"], "run", "users")).read(),
                         re.M)
    time.sleep(0.5)
    wait_port(proc, smtp_port, out)
    # Ctrl-C ends it, without a misleading word from dwatch
    ctrl_c(proc)
    log = out + drain(proc, 0.5)
    for mark in SANITIZER_MARKS:
        assert mark not in log, log[-3000:]
    assert "shutdown by control socket failed" not in log, log[-3000:]
    assert not re.search(r"(dsmtp|dpop): stopped \(signal", log), log[-3000:]
    # a second start reuses run/: the password, the users added and config edits stay
    conf = os.path.join(run_sh["dir"], "run", "dmail.conf")
    with open(conf, "a") as f:
        f.write("# edited by hand\n")
    users = open(os.path.join(run_sh["dir"], "run", "users")).read()
    r2 = start_run_sh(run_sh["dir"], run_sh["ports"])
    try:
        out2 = drain(r2, 3)
        assert "password: %s" % password in out2, out2
        assert "keeping" in out2 and "RESET=1" in out2, out2
        assert open(conf).read().endswith("# edited by hand\n")
        assert open(os.path.join(run_sh["dir"], "run", "users")).read() == users
        wait_port(r2, smtp_port, out2)
        # a third start while it runs is refused and rewrites nothing
        before = (os.stat(conf).st_mtime_ns, open(conf).read())
        r3 = start_run_sh(run_sh["dir"], run_sh["ports"])
        out3 = drain(r3, 5)
        assert r3.wait(10) != 0, out3
        assert "already runs" in out3, out3
        assert (os.stat(conf).st_mtime_ns, open(conf).read()) == before
        assert r2.poll() is None
    finally:
        stop(r2)
    # RESET=1 starts over
    r4 = start_run_sh(run_sh["dir"], run_sh["ports"], RESET="1")
    try:
        out4 = drain(r4, 3)
        assert "starting over" in out4, out4
        assert "# edited by hand" not in open(conf).read()
        assert "alice:" not in open(os.path.join(run_sh["dir"], "run", "users")).read()
        assert "password: %s" % password not in out4, out4
    finally:
        stop(r4)


def readme_try_it_lines():
    """The command lines of the README's "Try it" section (continuations joined)."""
    readme = open(os.path.join(REPO, "README.md")).read()
    section = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    lines, cur = [], ""
    for ln in section.splitlines():
        if not ln.startswith("    "):
            continue
        ln = ln.strip()
        cur = cur + " " + ln if cur else ln
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip()
            continue
        lines.append(re.sub(r"\s+#.*$", "", cur))
        cur = ""
    return [ln for ln in lines if not ln.startswith("make ")]


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_readme_try_it_lines_work(run_sh):
    out, proc, d, ports = run_sh["out"], run_sh["proc"], run_sh["dir"], run_sh["ports"]
    assert "Ctrl-C" in out, out
    wait_port(proc, ports[0], out)
    password = re.search(r"password: (\S+)", out).group(1)
    lines = readme_try_it_lines()
    assert any(ln.startswith("swaks") for ln in lines), lines
    assert any("tellsmtp" in ln for ln in lines) and any("sendmail" in ln for ln in lines)
    with open(os.path.join(d, "message"), "w") as f:
        f.write("Subject: from the README\n\nhello\n")
    # the README's fixed ports and placeholders, for this run
    subst = [("127.0.0.1:2525", "127.0.0.1:%d" % ports[0]),
             ("127.0.0.1:2587", "127.0.0.1:%d" % ports[1]),
             ("'127.0.0.1',2110", "'127.0.0.1',%d" % ports[3]),
             ("PASSWORD", password)]
    restart = [ln for ln in lines if ln.endswith(" restart")]
    for line in [ln for ln in lines if not ln.endswith(" restart")] + restart:
        for a, b in subst:
            line = line.replace(a, b)
        assert "2525" not in line and "2587" not in line and "2110" not in line, line
        if line.startswith("python3 -c") and not os.access(os.path.join(BIN, "dpop"), os.X_OK):
            continue
        stdin = None
        if " < " in line:
            line, name = line.split(" < ")
            stdin = open(os.path.join(d, name.strip()))
        line = re.sub(r"^bin/", BIN.rstrip("/") + "/", line)
        kw = {"stdin": stdin} if stdin is not None else {"input": "alice-pw\n"}
        run_line(line, d, **kw)
    time.sleep(0.5)
    wait_port(proc, ports[0], out)
    mbox = os.path.join(d, "run", "drop", "demo")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        subjects = [msg["Subject"] for _, msg in read_mbox(mbox)] if os.path.exists(mbox) else []
        if "from the README" in subjects:
            break
        time.sleep(0.1)
    assert "from the README" in subjects, subjects
    ctrl_c(proc)
