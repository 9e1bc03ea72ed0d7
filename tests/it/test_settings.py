"""dmail.conf settings that dsmtp uses, each shown to take effect: listeners (ports set to
0, several listen addresses), io_threads, drop_max, lock_id, queue_lifetime, log_file and
log_level. (max_msg_size, max_rcpts, vrfy, the timeouts, the error budget, auth_plaintext,
hash_spool, mailbox_format, lock_timeout, queue_retry, sysadmin and host_domain have their
tests beside the feature they control.)"""

import os
import pwd
import re
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from dmail_site import (
    BIN,
    DOMAIN,
    HOST,
    RawSMTP,
    hold_dotlock,
    make_message,
    noop_session_seconds,
    qfile_bytes,
    run_as_user,
    wait_for,
)

SENDER = "sender@remote.example"


def send(port, rcpts, text, host=HOST):
    with smtplib.SMTP(host, port, local_hostname="client.example", timeout=15) as s:
        return s.sendmail(SENDER, rcpts, text)


# ---------------------------------------------------------------- listeners


def test_ports_set_to_zero_are_not_opened(dsmtp_factory):
    srv = dsmtp_factory()
    want = {(HOST, srv.smtp_port), (HOST, srv.submission_port), (HOST, srv.smtps_port)}
    assert srv.listening() == want
    sub, smtps = srv.submission_port, srv.smtps_port
    srv.restart(submission_port=0, smtps_port=0)
    assert srv.listening() == {(HOST, srv.smtp_port)}
    for port in (sub, smtps):
        with socket.socket() as s:
            assert s.connect_ex((HOST, port)) != 0, "port %d still answers" % port
    srv.restart(smtp_port=0, submission_port=sub, smtps_port=smtps)
    assert srv.listening() == {(HOST, sub), (HOST, smtps)}
    with RawSMTP(sub) as c:
        assert c.greeting[0] == 220


def test_listen_on_two_addresses(dsmtp_factory):
    srv = dsmtp_factory(listen="127.0.0.1, 127.0.0.2", smtps_port=0, submission_port=0)
    assert srv.listening() == {("127.0.0.1", srv.smtp_port), ("127.0.0.2", srv.smtp_port)}
    ids = []
    for addr in ("127.0.0.1", "127.0.0.2"):
        msgid, text = make_message()
        assert send(srv.smtp_port, ["alice@" + DOMAIN], text, host=addr) == {}
        ids.append(msgid)
    assert srv.msgids("alice") == ids
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.3", srv.smtp_port)) != 0, "listens beyond its addresses"
    # repeated lines are the same as a comma list
    srv.stop()
    srv.write_conf({"listen": ["127.0.0.2", "127.0.0.3"]})
    srv.start(wait=False)
    want = {("127.0.0.2", srv.smtp_port), ("127.0.0.3", srv.smtp_port)}
    assert wait_for(lambda: srv.listening() == want, 10), srv.listening()


# ---------------------------------------------------------------- thread pool


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def test_io_threads_sizes_the_pool(dsmtp_factory):
    counts = {}
    for n in (2, 7):
        srv = dsmtp_factory(io_threads=n)
        msgid, text = make_message()
        assert send(srv.smtp_port, ["alice@" + DOMAIN], text) == {}  # uses the pool
        assert srv.msgids("alice") == [msgid]
        counts[n] = thread_count(srv.proc.pid)
        assert "io_threads %d" % n in srv.log()
        srv.stop()
    # the loop thread plus the pool (plus whatever else the libraries start, the same
    # in both)
    assert counts[7] - counts[2] == 5, counts
    assert counts[2] >= 3, counts


def test_deliveries_run_in_parallel(dsmtp_factory):
    """A delivery stuck on a locked mailbox (waiting lock_timeout on the pool) holds up
    neither the loop nor a delivery to another mailbox."""
    srv = dsmtp_factory(io_threads=4, lock_timeout=2, queue_retry=60)
    lock = hold_dotlock(srv.mbox_path("alice"))
    result = {}

    def slow():
        t0 = time.monotonic()
        result["refused"] = send(srv.smtp_port, ["alice@" + DOMAIN], make_message()[1])
        result["took"] = time.monotonic() - t0

    t = threading.Thread(target=slow)
    t.start()
    try:
        time.sleep(0.3)
        assert noop_session_seconds(srv.smtp_port) < 0.5, "the loop waited for a delivery"
        msgid, text = make_message()
        t0 = time.monotonic()
        assert send(srv.smtp_port, ["bob@" + DOMAIN], text) == {}
        assert time.monotonic() - t0 < 1.0, "bob's delivery waited for alice's lock"
        assert srv.msgids("bob") == [msgid]
        assert "took" not in result, "alice's delivery did not wait for the lock"
    finally:
        t.join(15)
        os.unlink(lock)
    assert result["refused"] == {} and result["took"] >= 1.8, result
    assert len(srv.queue_files()) == 1


def test_postmaster_without_sysadmin_waits_in_queue(dsmtp_factory):
    """postmaster is always accepted; with no sysadmin (and no postmaster user) it waits
    in the queue, and goes to sysadmin once one is configured."""
    srv = dsmtp_factory(sysadmin=None, queue_retry=1)
    msgid, text = make_message(to="postmaster@" + DOMAIN)
    assert send(srv.smtp_port, ["postmaster@" + DOMAIN], text) == {}
    (qf,) = srv.queue_files()
    with open(qf, "rb") as f:
        assert b"<postmaster@example.test> no mailbox for postmaster (set sysadmin)" in f.read()
    srv.restart(sysadmin="carol@" + DOMAIN)
    assert wait_for(lambda: srv.msgids("carol") == [msgid], 10), srv.msgids("carol")
    assert wait_for(lambda: not srv.queue_files(), 5)


# ---------------------------------------------------------------- mailboxes


def test_drop_max_sends_to_queue_then_delivers(dsmtp_factory):
    """A mailbox over drop_max is a temporary failure: the message is queued (250), and
    delivered once the user has made room."""
    srv = dsmtp_factory(drop_max=8, queue_retry=1)  # a bare number is KB, as in DMail
    first_id, first = make_message(body="a" * 70 + "\n" + ("b" * 70 + "\n") * 70)  # ~5 KB
    second_id, second = make_message(body=("c" * 70 + "\n") * 70)
    assert send(srv.smtp_port, ["alice@" + DOMAIN], first) == {}
    size = os.path.getsize(srv.mbox_path("alice"))
    assert 4096 < size < 8192
    assert send(srv.smtp_port, ["alice@" + DOMAIN, "bob@" + DOMAIN], second) == {}
    assert srv.msgids("bob") == [second_id]
    assert srv.msgids("alice") == [first_id]
    assert os.path.getsize(srv.mbox_path("alice")) == size
    qf = srv.queue_files()
    assert len(qf) == 1
    with open(qf[0], "rb") as f:
        q = f.read()
    assert b"<alice@example.test>" in q and b"mailbox full" in q and b"<bob@" not in q
    time.sleep(1.5)  # a retry or two: still full, still queued
    assert srv.msgids("alice") == [first_id] and srv.queue_files()
    # the user fetches and deletes the first message (as POP3 DELE + QUIT would)
    os.truncate(srv.mbox_path("alice"), 0)
    assert wait_for(lambda: srv.msgids("alice") == [second_id], 10), srv.msgids("alice")
    assert wait_for(lambda: not srv.queue_files(), 5)
    assert srv.msgids("bob") == [second_id]


def test_lock_id_names_the_node(dsmtp_factory):
    srv = dsmtp_factory(lock_id="node7")
    _, text = make_message()
    assert send(srv.smtp_port, ["alice@" + DOMAIN], text) == {}
    (raw, msg), = srv.messages("alice")
    assert re.fullmatch(r"\d+\.\d+_\d+_[0-9a-f]+\.node7", msg["X-UIDL"]), msg["X-UIDL"]
    srv.restart(mailbox_format="maildir", lock_id="node8")
    assert send(srv.smtp_port, ["bob@" + DOMAIN], text) == {}
    (name,) = os.listdir(os.path.join(srv.mbox_path("bob"), "new"))
    assert ".node8," in name, name


# ---------------------------------------------------------------- queue


def queue_file(qid, arrival, rcpt, text):
    return qfile_bytes(qid, [rcpt], text, sender="q@remote.example", arrival=arrival,
                       origin="smtp 192.0.2.1", error="451 4.2.0 earlier failure")


def test_queue_lifetime_gives_up(dsmtp_factory):
    """A queue file older than queue_lifetime is given up; a younger one is delivered
    (the queue file format of dmail-queue(5), written by hand)."""
    srv = dsmtp_factory(start=False, queue_lifetime=60, queue_retry=1)
    qdir = os.path.join(srv.spool, "queue")
    os.makedirs(qdir)
    old_id, old = make_message(subject="old")
    new_id, new = make_message(subject="new")
    now = int(time.time())
    with open(os.path.join(qdir, "old-1"), "wb") as f:
        f.write(queue_file("old-1", now - 120, "alice@" + DOMAIN, old))
    with open(os.path.join(qdir, "new-1"), "wb") as f:
        f.write(queue_file("new-1", now - 30, "alice@" + DOMAIN, new))
    srv.start()

    def only_the_report():
        names = [os.path.basename(n) for n in srv.queue_files()]
        if len(names) != 1 or names[0] in ("old-1", "new-1"):
            return None
        return open(os.path.join(qdir, names[0]), "rb").read()
    assert wait_for(only_the_report, 10), srv.queue_files()
    msgs = srv.messages("alice")
    assert [m["Message-ID"] for _, m in msgs] == [new_id]
    assert msgs[0][1]["Return-Path"] == "<q@remote.example>"
    assert re.search(r"queue id=old-1 to=<alice@example.test> result=given-up age=1\d\ds ",
                     srv.log())
    # the sender's report waits in the queue for outbound delivery (another domain)
    report = only_the_report()
    assert b"\nsender <>\n" in report and b"\norigin bounce old-1\n" in report, report[:400]
    assert b"<q@remote.example>" in report and b"Status: 4.4.7" in report


# ---------------------------------------------------------------- logging


def test_log_file_and_log_level(dsmtp_factory):
    srv = dsmtp_factory(start=False, log_level="info")
    logf = os.path.join(srv.dir, "dsmtp.log")
    srv.write_conf({"log_file": logf})
    srv.flags = []  # not -f: log to log_file
    srv.start()
    _, text = make_message()
    assert send(srv.smtp_port, ["alice@" + DOMAIN], text) == {}
    assert wait_for(lambda: "disconnect" in open(logf).read(), 5)
    log = open(logf).read()
    assert re.search(r"(?m)^\S+ dsmtp\[\d+\]: info: [0-9a-f]{16} connect ip=127\.0\.0\.1 ",
                     log), log
    assert " debug: " not in log
    assert "started" in log and "delivered" in log
    assert "info:" not in srv.log(), "log lines on stderr although log_file is set"
    srv.restart(log_level="debug")
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("QUIT", 221)
    assert wait_for(lambda: "debug: " in open(logf).read(), 5)
    assert re.search(r'debug: [0-9a-f]{16} command line="EHLO client\.example"', open(logf).read())


@pytest.mark.parametrize("bad", ["log_level chatty", "io_threads 0", "max_rcpts 0",
                                 "smtp_port 70000", "mailbox_format mh", "bare_newline maybe",
                                 "spf_reject always", "spf_check perhaps",
                                 "forward_user_window 0", "lookup_names 2"])
def test_bad_setting_values_refused(dsmtp_factory, bad):
    srv = dsmtp_factory(start=False)
    with open(srv.conf_path, "a") as f:
        f.write(bad + "\n")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 78, (bad, r.stdout, r.stderr)
    n = sum(1 for _ in open(srv.conf_path))
    assert "%s:%d:" % (srv.conf_path, n) in r.stdout + r.stderr


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_external_without_helper_refused(dsmtp_factory, prog):
    """authent_method external without authent_process stops dsmtp and dpop (one server
    core) instead of being replaced by the users file unnoticed."""
    srv = dsmtp_factory(start=False, authent_method="external")
    r = subprocess.run([os.path.join(BIN, prog), "-f", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 78, (r.returncode, r.stderr)
    assert "authent_method external needs authent_process" in r.stderr
    with socket.socket() as s:
        assert s.connect_ex((HOST, srv.smtp_port)) != 0


def test_spool_and_work_directories_created(dsmtp_factory):
    srv = dsmtp_factory(start=False)
    work, spool = os.path.join(srv.dir, "new", "work"), os.path.join(srv.dir, "new", "spool")
    os.makedirs(os.path.join(srv.dir, "new"))
    srv.write_conf({"work_path": work, "spool_dir": spool})
    srv.start()
    for d, mode in ((work, 0o700), (os.path.join(spool, "queue"), 0o2750),
                    (os.path.join(spool, "maildrop"), 0o3770)):
        st = os.stat(d)
        assert st.st_mode & 0o7777 == mode, (d, oct(st.st_mode))
        assert st.st_uid == pwd.getpwnam(run_as_user()).pw_uid, d
