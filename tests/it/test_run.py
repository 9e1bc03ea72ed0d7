"""make run (scripts/run.sh): a newcomer's first minutes. Start it in a temp directory
on free ports, run the swaks lines it prints, find the mail where it says, stop it with
Ctrl-C."""

import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from dmail_site import BIN, SANITIZER_MARKS, port_open, read_mbox, start_run_sh


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
    deadline = time.monotonic() + 10
    while not port_open(smtp_port):
        assert proc.poll() is None, "dsmtp exited:\n" + out + drain(proc, 1)
        assert time.monotonic() < deadline, "dsmtp did not listen on %d" % smtp_port
        time.sleep(0.1)
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
    # Ctrl-C ends it
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("dsmtp did not stop on Ctrl-C (SIGINT)")
    log = out + drain(proc, 0.5)
    for mark in SANITIZER_MARKS:
        assert mark not in log, log[-3000:]
    # a second start reuses run/ and keeps the password
    r2 = start_run_sh(run_sh["dir"], run_sh["ports"])
    try:
        out2 = drain(r2, 3)
        assert "password: %s" % password in out2, out2
    finally:
        if r2.poll() is None:
            os.killpg(r2.pid, signal.SIGINT)
            try:
                r2.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(r2.pid, signal.SIGKILL)
                r2.wait(5)
