"""Real clients and readers: swaks sends (pipelining, TLS + AUTH, SMTPS); mutt and s-nail
read the dropfile back; mboxrd quoting; maildir delivery."""

import mailbox
import os
import pty
import re
import select
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time

import pytest

from dmail_site import DOMAIN, HOST, make_message, new_msgid, read_maildir

SENDER = "sender@remote.example"


def swaks(*args, timeout=30):
    return subprocess.run(["swaks", "--server", HOST, *args], capture_output=True, text=True,
                          timeout=timeout)


def send_three(srv, user="alice"):
    """Three messages, the second with From-lines in the body; returns the Message-IDs
    and the bodies."""
    bodies = [
        "first message\n",
        "From here the body starts\n>From there quoted\n>>From deeper\nFrom\nFromage\n",
        "third message\n\nwith a blank line and\nFrom the end\n",
    ]
    ids = []
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15) as s:
        for i, b in enumerate(bodies):
            msgid, text = make_message(subject="msg %d" % (i + 1), body=b)
            assert s.sendmail(SENDER, ["%s@%s" % (user, DOMAIN)], text) == {}
            ids.append(msgid)
    return ids, bodies


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_swaks_pipeline(dsmtp):
    msgid = new_msgid("swaks")
    r = swaks("--port", str(dsmtp.smtp_port), "--to", "alice@" + DOMAIN, "--from", SENDER,
              "--pipeline", "--header", "Message-Id: " + msgid, "--body", "sent by swaks")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PIPELINING" in r.stdout
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [msgid]
    assert b"sent by swaks" in msgs[0][0]


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_swaks_starttls_auth_submission(dsmtp):
    msgid = new_msgid("swaks-tls")
    r = swaks("--port", str(dsmtp.submission_port), "--to", "bob@" + DOMAIN,
              "--from", "alice@" + DOMAIN, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
              "--auth-password", dsmtp.passwords["alice"], "--pipeline",
              "--header", "Message-Id: " + msgid)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"<~\s+235", r.stdout), r.stdout
    assert dsmtp.msgids("bob") == [msgid]
    # and LOGIN on the SMTPS port
    msgid2 = new_msgid("swaks-tlsc")
    r = swaks("--port", str(dsmtp.smtps_port), "--to", "bob@" + DOMAIN,
              "--from", "alice@" + DOMAIN, "--tls-on-connect", "--auth", "LOGIN",
              "--auth-user", "bob", "--auth-password", dsmtp.passwords["bob"],
              "--header", "Message-Id: " + msgid2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dsmtp.msgids("bob") == [msgid, msgid2]


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_swaks_wrong_password_fails(dsmtp):
    r = swaks("--port", str(dsmtp.submission_port), "--to", "bob@" + DOMAIN,
              "--from", "alice@" + DOMAIN, "--tls", "--auth", "LOGIN", "--auth-user", "alice",
              "--auth-password", "not-the-password")
    assert r.returncode != 0
    assert re.search(r"<~\*\s+535 5\.7\.8", r.stdout), r.stdout
    assert dsmtp.messages("bob") == []


def test_mbox_read_by_python_and_mboxrd_quoting(dsmtp):
    ids, bodies = send_three(dsmtp)
    raw = dsmtp.raw_mbox("alice")
    # mboxrd: ^>*From  gets one more '>'
    assert b"\n>From here the body starts\n" in raw
    assert b"\n>>From there quoted\n" in raw
    assert b"\n>>>From deeper\n" in raw
    assert b"\nFrom\n" in raw and b"\nFromage\n" in raw  # no space: not quoted
    assert b"\n>From the end\n" in raw
    # exactly three "From " separator lines, each preceded by a blank line (or file start)
    seps = re.findall(rb"(?:^|\n\n)From \S+ .*\n", raw)
    assert len(seps) == 3, seps
    msgs = dsmtp.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == ids
    assert [m["Subject"] for _, m in msgs] == ["msg 1", "msg 2", "msg 3"]
    # Python's mailbox does not undo mboxrd quoting; undo it and compare exactly
    for (mraw, _), body in zip(msgs, bodies):
        unq = re.sub(rb"(?m)^>(>*From )", rb"\1", mraw)
        assert unq.endswith(body.encode()), (unq, body)
    # and the file ends with the blank separator line
    assert raw.endswith(b"\n\n")


@pytest.mark.skipif(not shutil.which("s-nail"), reason="s-nail not installed")
def test_mbox_read_by_snail(dsmtp):
    ids, _ = send_three(dsmtp)
    home = tempfile.mkdtemp(prefix="dmail-it-home-")
    try:
        env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
               "MAILRC": "/dev/null"}
        r = subprocess.run(["s-nail", "-n", "-R", "-H", "-f", dsmtp.mbox_path("alice")],
                           capture_output=True, text=True, env=env, timeout=20,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        lines = [ln for ln in r.stdout.splitlines() if re.search(r"\bmsg [123]\b", ln)]
        assert len(lines) == 3, r.stdout
        # and one message's body, printed by s-nail
        r = subprocess.run(["s-nail", "-#", "-n", "-R", "-f", dsmtp.mbox_path("alice")],
                           input="set quiet\nprint 2\nx\n", capture_output=True, text=True,
                           env=env, timeout=20)
        assert "From here the body starts" in r.stdout, r.stdout + r.stderr
        assert ids[1] in r.stdout or "msg 2" in r.stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_in_pty(argv, env, until, answer=b"q", timeout=15):
    """Run an interactive program in a pseudo-terminal, wait for the bytes until,
    send answer, return everything it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    d = os.read(fd, 65536)
                except OSError:
                    break
                if not d:
                    break
                out += d
            if not sent and re.search(until, out):
                os.write(fd, answer)
                sent = True
    finally:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return out


@pytest.mark.skipif(not shutil.which("mutt"), reason="mutt not installed")
def test_mbox_read_by_mutt(dsmtp):
    send_three(dsmtp)
    home = tempfile.mkdtemp(prefix="dmail-it-home-")
    try:
        env = {"HOME": home, "TERM": "vt100", "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        out = run_in_pty(
            [shutil.which("mutt"), "-n", "-F", "/dev/null", "-R", "-f",
             dsmtp.mbox_path("alice"), "-e", "set folder=%s" % home, "-e", "set move=no",
             "-e", "set status_format='DMAILCOUNT=%m=END'"],
            env, rb"DMAILCOUNT=\d+=END")
        m = re.search(rb"DMAILCOUNT=(\d+)=END", out)
        assert m, out[-2000:]
        assert int(m.group(1)) == 3, out[-2000:]
        for i in (1, 2, 3):
            assert b"msg %d" % i in out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_maildir_delivery(dsmtp_factory):
    srv = dsmtp_factory(mailbox_format="maildir")
    ids = []
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15) as s:
        for i in range(3):
            msgid, text = make_message(body="maildir %d\nFrom here\n" % i)
            assert s.sendmail(SENDER, ["alice@" + DOMAIN, "bob@" + DOMAIN], text) == {}
            ids.append((msgid, text))
    for user in ("alice", "bob"):
        base = srv.mbox_path(user)
        contents = read_maildir(base)
        assert len(contents) == 3, os.listdir(os.path.join(base, "new"))
        assert os.listdir(os.path.join(base, "tmp")) == []
        for msgid, text in ids:
            match = [c for c in contents if c.endswith(text.encode())]
            assert len(match) == 1, (user, msgid)
            assert re.search(rb"(?m)^Return-Path: <%s>$" % SENDER.encode(), match[0])
            assert re.search(rb"(?m)^Received: ", match[0])
            assert not match[0].startswith(b"From "), "mbox From line in a maildir file"
        md = mailbox.Maildir(base, create=False)
        assert sorted(m["Message-ID"] for m in md) == sorted(i for i, _ in ids)
