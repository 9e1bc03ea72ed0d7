"""Per-user forward files (<dropfile>.fwd; ~/.forward under unix_user is in
test_unix_user.py), read when the message is delivered, and the local delivery agent they
lead to: addresses forwarded through the queue with Delivered-To, a kept copy (\\user,
$user), loops bounced 5.4.6, unsafe files ignored or restricted, programs (/bin/sh scripts
and Debian's procmail) with their exit codes mapped (0 delivered, 75 retried from the queue,
1 bounced with the program's output, past command_time_limit killed and retried), mbox
file destinations, allow_mail_to_commands / allow_mail_to_files, and kill -9 of dsmtp while
a program runs."""

import os
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, HOST, RawSMTP, chown_like_dsmtp, dsn_fields, dsn_reports,
                        make_message, pid_alive, read_mbox, sendmail, wait_for)

SENDER = "carol@" + DOMAIN  # a local sender: reports come back into carol's mailbox
TELLSMTP = os.path.join(BIN, "tellsmtp")


def put_fwd(site, user, text, mode=0o600):
    """user's forward file next to the drop file, owned as dsmtp's own files are."""
    path = site.mbox_path(user) + ".fwd"
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    chown_like_dsmtp(path)
    return path


def workdir(site, name="out"):
    """A directory dsmtp's account (and so its programs) may write into."""
    d = os.path.join(site.dir, name)
    os.makedirs(d, exist_ok=True)
    chown_like_dsmtp(d)
    return d


def script(site, name, body):
    """An executable /bin/sh script under the site."""
    path = os.path.join(site.dir, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def send(site, rcpts, tag="dotfwd", sender=SENDER):
    msgid, text = make_message(subject=tag, to=", ".join(rcpts))
    with smtplib.SMTP(HOST, site.smtp_port, timeout=60) as s:
        assert s.sendmail(sender, ["%s@%s" % (r, DOMAIN) for r in rcpts], text) == {}
    return msgid, text


def flush(site):
    r = subprocess.run([TELLSMTP, "-c", site.conf_path, "flush"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr


def failed_rcpts(site, user=SENDER.split("@")[0]):
    """[(Final-Recipient, Status, Diagnostic-Code)] of the reports in user's mailbox."""
    out = []
    for rep in dsn_reports(site, user):
        _, per_rcpt, _ = dsn_fields(rep)
        out.extend((p["Final-Recipient"].replace(" ", ""), p["Status"],
                    p.get("Diagnostic-Code", "")) for p in per_rcpt)
    return out


# -- addresses, kept copies, precedence, loops ------------------------------------------


def test_fwd_file_forwards_and_keeps_copy(dsmtp_factory):
    srv = dsmtp_factory(queue_retry=1)
    put_fwd(srv, "alice", "# alice is away\n\nbob@%s, carol\n\\alice\n" % DOMAIN)
    msgid, _ = send(srv, ["alice"])
    assert srv.msgids("alice") == [msgid]  # \alice: the copy is kept
    assert wait_for(lambda: srv.msgids("bob") == [msgid], 15), srv.log()[-3000:]
    assert wait_for(lambda: srv.msgids("carol") == [msgid], 15), srv.log()[-3000:]
    raw = srv.messages("bob")[0][0]
    assert b"Delivered-To: alice@" + DOMAIN.encode() in raw, raw[:600]
    assert "forward-file=%s.fwd result=forwarded copies=2" % srv.mbox_path("alice") in srv.log()
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()


def test_fwd_without_copy_and_dollar_user(dsmtp_factory):
    srv = dsmtp_factory(queue_retry=1)
    put_fwd(srv, "alice", "bob@%s\n" % DOMAIN)
    m1, _ = send(srv, ["alice"])
    assert wait_for(lambda: srv.msgids("bob") == [m1], 15), srv.log()[-3000:]
    assert srv.msgids("alice") == []
    put_fwd(srv, "alice", "$user, bob@%s\n" % DOMAIN)  # DMail's way to keep a copy
    m2, _ = send(srv, ["alice"])
    assert srv.msgids("alice") == [m2]
    assert wait_for(lambda: srv.msgids("bob") == [m1, m2], 15), srv.log()[-3000:]


def test_fwd_created_after_rcpt_is_honoured(dsmtp_factory):
    srv = dsmtp_factory(queue_retry=1)
    msgid, text = make_message(subject="late fwd")
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        put_fwd(srv, "alice", "bob@%s\n" % DOMAIN)  # after the RCPT, before the DATA
        code, _ = c.data(text)
        assert code == 250
    assert wait_for(lambda: srv.msgids("bob") == [msgid], 15), srv.log()[-3000:]
    assert srv.msgids("alice") == []


def test_alias_wins_over_fwd_file(dsmtp_factory):
    """REFERENCE 5.2: a forward line (or alias) that applies means no forward file."""
    srv = dsmtp_factory(forward=["info@%s alice@%s" % (DOMAIN, DOMAIN)], queue_retry=1)
    put_fwd(srv, "alice", "bob@%s\n" % DOMAIN)
    msgid, _ = send(srv, ["info"])
    assert srv.msgids("alice") == [msgid]
    time.sleep(1.5)
    assert srv.msgids("bob") == []


def test_fwd_loop_bounced_546(dsmtp_factory):
    srv = dsmtp_factory(queue_retry=1)
    put_fwd(srv, "alice", "bob@%s\n" % DOMAIN)
    put_fwd(srv, "bob", "alice@%s\n" % DOMAIN)
    send(srv, ["alice"])
    assert wait_for(lambda: failed_rcpts(srv), 20), srv.log()[-3000:]
    [(final, status, diag)] = failed_rcpts(srv)
    assert final == "rfc822;alice@" + DOMAIN and status == "5.4.6", (final, status, diag)
    assert "mail forwarding loop for alice@" + DOMAIN in diag
    assert srv.msgids("alice") == [] and srv.msgids("bob") == []
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()


def test_unsafe_fwd_files(dsmtp_factory):
    """World-writable: ignored (the mailbox gets the mail); group-writable: addresses
    honoured, programs refused with the reason in the report."""
    srv = dsmtp_factory(queue_retry=1)
    out = workdir(srv)
    put_fwd(srv, "alice", "bob@%s\n" % DOMAIN, mode=0o666)
    m1, _ = send(srv, ["alice"])
    assert srv.msgids("alice") == [m1]
    assert "world-writable" in srv.log()
    put_fwd(srv, "alice", '"|cat > %s/x"\n' % out, mode=0o660)
    send(srv, ["alice", "bob"])
    assert wait_for(lambda: failed_rcpts(srv), 15), srv.log()[-3000:]
    [(final, status, diag)] = failed_rcpts(srv)
    assert status == "5.7.1" and "group-writable" in diag, diag
    assert not os.path.exists(os.path.join(out, "x"))


# -- programs ------------------------------------------------------------------------


def test_program_gets_message_and_environment(dsmtp_factory):
    srv = dsmtp_factory()
    out = workdir(srv)
    prog = script(srv, "prog.sh", 'cat > "%s/msg"; env > "%s/env"; pwd > "%s/pwd"; '
                  'ls -ln "%s/msg" > "%s/mode"; exit 0\n' % ((out,) * 5))
    put_fwd(srv, "alice", "|%s\n" % prog)
    msgid, text = send(srv, ["alice"])
    assert wait_for(lambda: os.path.exists(os.path.join(out, "mode")) and
                    os.path.getsize(os.path.join(out, "mode")) > 0, 15), srv.log()[-2000:]
    with open(os.path.join(out, "msg"), "rb") as f:
        got = f.read()
    assert got.startswith(b"Return-Path: <%s>\nDelivered-To: alice@%s\n" % (
        SENDER.encode(), DOMAIN.encode())), got[:300]
    assert msgid.encode() in got
    env = dict(line.split("=", 1) for line in open(os.path.join(out, "env")).read().splitlines()
               if "=" in line)
    assert env["PATH"] == "/usr/bin:/bin" and env["USER"] == "alice", env
    assert env["SENDER"] == SENDER and env["RECIPIENT"] == "alice@" + DOMAIN
    assert env["HOME"] == srv.drop and open(os.path.join(out, "pwd")).read().strip() == srv.drop
    assert open(os.path.join(out, "mode")).read().startswith("-rw-------")  # umask 077
    assert srv.msgids("alice") == []
    assert re.search(r"to=<alice@example\.test> command=\S*prog\.sh\S* result=ok", srv.log())
    assert re.search(r"lda: uv_spawn pid=\d+", srv.log())  # spawned by the loop (libuv)


def test_program_tempfail_queued_then_delivered(dsmtp_factory):
    srv = dsmtp_factory(queue_retry=3600)  # retried only when flushed
    out = workdir(srv)
    prog = script(srv, "prog.sh", 'echo "try later" ; exit 75\n')
    put_fwd(srv, "alice", "|%s\n" % prog)
    msgid, _ = send(srv, ["alice"])
    assert wait_for(lambda: "command exited with status 75: try later" in srv.log(), 15)
    assert len(srv.queue_files()) == 1
    script(srv, "prog.sh", 'cat >> "%s/msg"; exit 0\n' % out)
    flush(srv)
    assert wait_for(lambda: not srv.queue_files(), 15), srv.log()[-3000:]
    got = open(os.path.join(out, "msg"), "rb").read()
    assert got.count(msgid.encode()) == 1
    assert failed_rcpts(srv) == []


def test_program_failure_bounced_with_its_output(dsmtp_factory):
    srv = dsmtp_factory()
    prog = script(srv, "prog.sh", 'cat > /dev/null; echo "no such folder: Inbox/x" >&2; exit 1\n')
    put_fwd(srv, "alice", "|%s\n" % prog)
    send(srv, ["alice", "bob"])  # bob takes it: alice's failure is a report
    assert wait_for(lambda: failed_rcpts(srv), 15), srv.log()[-3000:]
    [(final, status, diag)] = failed_rcpts(srv)
    assert final == "rfc822;alice@" + DOMAIN and status == "5.3.0", (final, status)
    assert "command exited with status 1: no such folder: Inbox/x" in diag, diag
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()  # not retried


def test_program_time_limit_kills_and_defers(dsmtp_factory):
    srv = dsmtp_factory(command_time_limit=2, queue_retry=3600)
    out = workdir(srv)
    prog = script(srv, "prog.sh", 'echo $$ > "%s/pid"; sleep 60; exit 0\n' % out)
    put_fwd(srv, "alice", "|%s\n" % prog)
    t0 = time.monotonic()
    send(srv, ["alice"])
    assert time.monotonic() - t0 < 2  # the 250 does not wait for the program
    assert wait_for(lambda: "command time limit exceeded (2s)" in srv.log(), 15)
    assert len(srv.queue_files()) == 1
    pid = int(open(os.path.join(out, "pid")).read())
    assert wait_for(lambda: not pid_alive(pid), 5), "the program was not killed"


def test_program_runs_after_the_250(dsmtp_factory):
    """The client has its 250 while the program still runs (it is queued, fsynced, then
    started at once by the program deliveries' runner): no pool thread and no client wait
    for it."""
    srv = dsmtp_factory(queue_retry=3600)  # started by the kick, not by a periodic scan
    out = workdir(srv)
    prog = script(srv, "prog.sh", 'touch "%s/started"; sleep 4; cat > "%s/msg"; exit 0\n'
                  % (out, out))
    put_fwd(srv, "alice", "|%s\n" % prog)
    t0 = time.monotonic()
    msgid, _ = send(srv, ["alice", "bob"])
    assert time.monotonic() - t0 < 2
    assert srv.msgids("bob") == [msgid]  # the others are delivered meanwhile
    assert [f for f in srv.queue_files() if f.endswith(".lda")], srv.queue_files()
    assert wait_for(lambda: os.path.exists(os.path.join(out, "started")), 10), srv.log()[-2000:]
    assert not os.path.exists(os.path.join(out, "msg"))
    assert wait_for(lambda: os.path.exists(os.path.join(out, "msg")) and
                    msgid.encode() in open(os.path.join(out, "msg"), "rb").read(), 15)
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()
    assert re.search(r"to=<alice@example\.test> result=queued-for-program", srv.log())


def test_command_concurrency_limits_programs_at_once(dsmtp_factory):
    """Six messages for a program taking a second each: never more than command_concurrency
    (2) run at once, and they do run side by side."""
    srv = dsmtp_factory(command_concurrency=2, queue_retry=3600)
    out = workdir(srv)
    log = os.path.join(out, "runs")
    prog = script(srv, "prog.sh", 'echo "S $(date +%%s.%%N)" >> "%s"; sleep 1; cat > /dev/null; '
                  'echo "E $(date +%%s.%%N)" >> "%s"; exit 0\n' % (log, log))
    put_fwd(srv, "alice", "|%s\n" % prog)
    for i in range(6):
        send(srv, ["alice"], tag="run %d" % i)
    assert wait_for(lambda: os.path.exists(log) and
                    open(log).read().count("E ") == 6, 30), srv.log()[-3000:]
    events = sorted((float(t), k) for k, t in (line.split() for line in open(log)))
    now = peak = 0
    for _, k in events:
        now += 1 if k == "S" else -1
        peak = max(peak, now)
    assert peak == 2, events
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()


def test_sendmail_to_a_program_is_moved_out_of_the_queue_scan(dsmtp_factory):
    """Mail from sendmail goes through the queue: its program recipient is moved into a
    file of its own for the program deliveries' runner, delivered once."""
    srv = dsmtp_factory(queue_retry=3600)
    out = workdir(srv)
    prog = script(srv, "prog.sh", 'cat >> "%s/msg"; exit 0\n' % out)
    put_fwd(srv, "alice", "|%s\n" % prog)
    msgid, text = make_message(subject="via sendmail", to="alice@" + DOMAIN)
    sendmail(srv, ["-f", SENDER, "alice@" + DOMAIN], text.encode())
    assert wait_for(lambda: os.path.exists(os.path.join(out, "msg")), 15), srv.log()[-3000:]
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()
    got = open(os.path.join(out, "msg"), "rb").read()
    assert got.count(msgid.encode()) == 1
    assert re.search(r"to=<alice@example\.test> result=moved to=\S+\.lda", srv.log())


@pytest.mark.parametrize("value", ["", "alias"])
def test_commands_not_allowed(dsmtp_factory, value):
    """allow_mail_to_commands empty turns program delivery off; without forward, forward
    files may not name programs."""
    srv = dsmtp_factory(allow_mail_to_commands=value)
    out = workdir(srv)
    put_fwd(srv, "alice", "|/usr/bin/touch %s/ran\n" % out)
    send(srv, ["alice", "bob"])
    assert wait_for(lambda: failed_rcpts(srv), 15), srv.log()[-3000:]
    [(final, status, diag)] = failed_rcpts(srv)
    assert status == "5.7.1", status
    assert "mail to command is restricted: allow_mail_to_commands lacks forward" in diag
    assert not os.path.exists(os.path.join(out, "ran"))


def test_allow_values_checked(dsmtp_factory):
    srv = dsmtp_factory(start=False, allow_mail_to_files="alias, everything")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert re.search(r"dmail\.conf:\d+: allow_mail_to_files: 'everything' is neither alias nor "
                     r"forward", r.stdout + r.stderr), r.stdout + r.stderr


def test_kill9_while_program_runs_loses_nothing(dsmtp_factory):
    """The message waits in the queue for its program; dsmtp dies (kill -9) while the
    program runs, and the program with it; the restarted dsmtp runs it again: delivered
    once, the queue empties."""
    srv = dsmtp_factory(queue_retry=1)
    out = workdir(srv)
    prog = script(srv, "prog.sh", "exit 75\n")
    put_fwd(srv, "alice", "|%s\n" % prog)
    msgid, _ = send(srv, ["alice"])
    assert len(srv.queue_files()) == 1
    script(srv, "prog.sh", 'touch "%s/started"; sleep 2; cat >> "%s/msg"; exit 0\n' % (out, out))
    assert wait_for(lambda: os.path.exists(os.path.join(out, "started")), 15), srv.log()[-2000:]
    srv.kill9()
    assert len(srv.queue_files()) == 1
    srv.start()
    assert wait_for(lambda: not srv.queue_files(), 20), srv.log()[-3000:]
    assert wait_for(lambda: os.path.exists(os.path.join(out, "msg")), 10)
    time.sleep(3)  # the first run, had it survived, would have written by now
    got = open(os.path.join(out, "msg"), "rb").read()
    assert got.count(b"Return-Path: ") == 1 and msgid.encode() in got, got


@pytest.mark.skipif(not os.access("/usr/bin/procmail", os.X_OK), reason="no procmail")
def test_procmail_in_fwd_file(dsmtp_factory):
    srv = dsmtp_factory()
    out = workdir(srv)
    workdir(srv, "out/Mail")
    rc = os.path.join(out, "procmailrc")
    with open(rc, "w") as f:
        f.write("MAILDIR=%s/Mail\nLOGFILE=%s/procmail.log\n\n:0\n* ^Subject:.*lists\nlists/\n\n"
                ":0\ninbox/\n" % (out, out))
    put_fwd(srv, "alice", '"|/usr/bin/procmail -m %s"\n' % rc)
    m1, _ = send(srv, ["alice"], tag="about lists")
    m2, _ = send(srv, ["alice"], tag="other")
    assert wait_for(lambda: all(os.path.isdir(os.path.join(out, "Mail", b, "new")) and
                                os.listdir(os.path.join(out, "Mail", b, "new"))
                                for b in ("lists", "inbox")), 15), srv.log()[-2000:]
    lists = os.listdir(os.path.join(out, "Mail", "lists", "new"))
    inbox = os.listdir(os.path.join(out, "Mail", "inbox", "new"))
    assert len(lists) == 1 and len(inbox) == 1, (lists, inbox)
    with open(os.path.join(out, "Mail", "inbox", "new", inbox[0]), "rb") as f:
        got = f.read()
    assert m2.encode() in got and b"Delivered-To: alice@" + DOMAIN.encode() in got
    assert srv.msgids("alice") == []


# -- files ---------------------------------------------------------------------------


def test_file_destination_appends_mbox(dsmtp_factory):
    srv = dsmtp_factory()
    out = workdir(srv)
    box = os.path.join(out, "archive.mbox")
    put_fwd(srv, "alice", "%s, \\alice\n" % box)
    m1, _ = send(srv, ["alice"])
    m2, _ = send(srv, ["alice"])
    msgs = read_mbox(box)
    assert [m.get("Message-ID") for _, m in msgs] == [m1, m2]
    assert msgs[0][1].get("Delivered-To") == "alice@" + DOMAIN
    assert stat.S_IMODE(os.stat(box).st_mode) == 0o600
    assert srv.msgids("alice") == [m1, m2]


def test_file_destination_symlink_refused(dsmtp_factory):
    srv = dsmtp_factory()
    out = workdir(srv)
    target = os.path.join(out, "target")
    open(target, "w").close()
    chown_like_dsmtp(target)
    link = os.path.join(out, "link")
    os.symlink(target, link)
    put_fwd(srv, "alice", "%s\n" % link)
    send(srv, ["alice", "bob"])
    assert wait_for(lambda: failed_rcpts(srv), 15), srv.log()[-3000:]
    [(final, status, diag)] = failed_rcpts(srv)
    assert "symbolic link" in diag, diag
    assert os.path.getsize(target) == 0


def test_files_not_allowed(dsmtp_factory):
    srv = dsmtp_factory(allow_mail_to_files="alias")
    out = workdir(srv)
    put_fwd(srv, "alice", "%s/box\n" % out)
    send(srv, ["alice", "bob"])
    assert wait_for(lambda: failed_rcpts(srv), 15), srv.log()[-3000:]
    [(final, status, diag)] = failed_rcpts(srv)
    assert "mail to file is restricted: allow_mail_to_files lacks forward" in diag
    assert not os.path.exists(os.path.join(out, "box"))


# -- ~/.forward under authent_method unix_user (temporary accounts, root only) ------------

from test_unix_user import _serve as unix_serve  # noqa: E402
from test_unix_user import accounts  # noqa: E402,F401 (fixture by import)


def home_forward(user, spool, text, mode=0o644):
    """user's home directory (under spool's parent) with a ~/.forward owned by user."""
    import pwd
    home = spool + "-home"
    os.makedirs(home, exist_ok=True)
    subprocess.run(["usermod", "-d", home, user], check=True, capture_output=True)
    pw = pwd.getpwnam(user)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o755)
    path = os.path.join(home, ".forward")
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)
    return home


def ldapriv_helper(dsmtp_pid):
    """The pid of dsmtp's root helper (dsmtp-ldapriv, a child of its keeper dsmtp-ldakeep,
    a child of dsmtp), or None."""
    def field(pid, name):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split()[1]
        return None
    for d in os.listdir("/proc"):
        try:
            if not d.isdigit() or field(int(d), "Name") != "dsmtp-ldapriv":
                continue
            keeper = int(field(int(d), "PPid"))
            if field(keeper, "Name") == "dsmtp-ldakeep" and int(field(keeper, "PPid")) == dsmtp_pid:
                return int(d)
        except (OSError, TypeError, ValueError):
            continue
    return None


def unix_send(srv, rcpts, tag):
    msgid, text = make_message(subject=tag, to=", ".join(rcpts))
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=60) as s:
        assert s.sendmail("sender@remote.example", ["%s@%s" % (r, DOMAIN) for r in rcpts],
                          text) == {}
    return msgid


def test_home_forward_under_unix_user(accounts, dpop_factory):
    user, run_as, locked, spool = accounts
    home = home_forward(user, spool, "# to the other account\n%s\n" % locked)
    try:
        srv, pop = unix_serve(dpop_factory, accounts, queue_retry=1)
        msgid = unix_send(srv, [user], "home forward")
        assert wait_for(lambda: msgid.encode() in open(os.path.join(spool, locked), "rb").read()
                        if os.path.exists(os.path.join(spool, locked)) else False, 15), \
            srv.log()[-3000:]
        assert not os.path.exists(os.path.join(spool, user)) or \
            msgid.encode() not in open(os.path.join(spool, user), "rb").read()
        assert "forward-file=%s/.forward result=forwarded copies=1" % home in srv.log()
        # a program in ~/.forward runs as the user (dsmtp's root helper, ldapriv), not as
        # dsmtp's account nor root: what it writes is the user's
        import pwd
        pw = pwd.getpwnam(user)
        home_forward(user, spool, "|/usr/bin/id -u > %s/uid.txt\n" % home)
        unix_send(srv, [user, locked], "home program")
        out = os.path.join(home, "uid.txt")
        assert wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 15), \
            srv.log()[-3000:]
        assert open(out).read().strip() == str(pw.pw_uid)
        assert os.stat(out).st_uid == pw.pw_uid
        # the root helper killed (kill -9): its keeper starts it again, programs still run
        # as the user, none is lost (the delivery waits in the helper's socket)
        helper = ldapriv_helper(srv.dsmtp.proc.pid)
        os.kill(helper, signal.SIGKILL)
        os.remove(out)
        unix_send(srv, [user, locked], "after the helper was killed")
        assert wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 15), \
            srv.log()[-3000:]
        assert open(out).read().strip() == str(pw.pw_uid)
        assert wait_for(lambda: ldapriv_helper(srv.dsmtp.proc.pid) not in (None, helper), 5)
        # Debian's procmail from ~/.forward, as the user, into the user's own mailbox file
        with open(os.path.join(home, ".procmailrc"), "w") as f:
            f.write("MAILDIR=%s\nDEFAULT=%s/inbox\n" % (home, home))
        os.chown(os.path.join(home, ".procmailrc"), pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(home, ".procmailrc"), 0o644)
        home_forward(user, spool, "|/usr/bin/procmail\n")
        m2 = unix_send(srv, [user], "procmail as the user")
        inbox = os.path.join(home, "inbox")
        assert wait_for(lambda: os.path.exists(inbox) and m2.encode() in open(inbox, "rb").read(),
                        15), srv.log()[-3000:]
        assert os.stat(inbox).st_uid == pw.pw_uid
        # a file destination in another account's ~/.forward: written as that account
        # (the root helper appends, as the user, in mbox format)
        home_forward(user, spool, "%s/direct\n" % home)
        m4 = unix_send(srv, [user, locked], "home file")
        direct = os.path.join(home, "direct")
        assert wait_for(lambda: os.path.exists(direct) and m4.encode() in open(direct, "rb").read(),
                        15), srv.log()[-3000:]
        assert os.stat(direct).st_uid == pw.pw_uid
        box = read_mbox(direct)
        assert [m["Message-ID"] for _, m in box] == [m4]
        assert box[0][1]["Delivered-To"] == "%s@%s" % (user, DOMAIN)
        # ... and not where the user may not write (drop.h: deferred, with the reason)
        home_forward(user, spool, "/etc/dmail-it-not-yours\n")
        unix_send(srv, [user, locked], "file not writable")
        assert wait_for(lambda: re.search(r"to=<%s@%s> file=\S*dmail-it-not-yours\S* "
                                          r"result=deferred error=\"cannot open "
                                          r"/etc/dmail-it-not-yours: Permission denied"
                                          % (user, DOMAIN), srv.log()), 15), srv.log()[-3000:]
        assert not os.path.exists("/etc/dmail-it-not-yours")
        # no_dotforward true: ~/.forward is not read (a .fwd next to the drop file would be)
        home_forward(user, spool, "%s\n" % locked)
        srv.write_conf({"no_dotforward": True})
        assert srv.tellsmtp("reload")[0] == 0
        m3 = unix_send(srv, [user], "no dotforward")
        assert msgid.encode() not in open(os.path.join(spool, user), "rb").read()
        assert m3.encode() in open(os.path.join(spool, user), "rb").read()
    finally:
        shutil.rmtree(home, ignore_errors=True)
