"""A mailbox that cannot be written right now (its lock held by a mail reader): the
message goes to the queue, the client gets 250, and the queue delivers it once the lock
is gone -- exactly once. A spool that cannot take the queue file gets a 4xx."""

import fcntl
import os
import pwd
import smtplib
import time

from dmail_it import DOMAIN, HOST, RawSMTP, make_message, to_wire


def chown_like_dsmtp(path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def test_dotlocked_mailbox_goes_through_queue(dsmtp_factory):
    srv = dsmtp_factory(lock_timeout=1, queue_retry=1)
    lock = srv.mbox_path("alice") + ".lock"
    # a live dotlock of another node (as mutt or procmail on another host would hold)
    with open(lock, "w") as f:
        f.write("%d other-node.example\n" % os.getpid())
    chown_like_dsmtp(lock)
    msgid, text = make_message(to="alice, bob")
    t0 = time.monotonic()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=30) as s:
        assert s.sendmail("s@remote.example", ["alice@" + DOMAIN, "bob@" + DOMAIN], text) == {}
    waited = time.monotonic() - t0
    assert waited >= 0.8, "lock_timeout not waited for"
    assert waited < 3, "waited %.1f s: lock_timeout 1 not in force (the default is 10)" % waited
    assert srv.msgids("bob") == [msgid]
    assert srv.msgids("alice") == []
    assert len(srv.queue_files()) >= 1, "acknowledged but not in the queue"
    os.unlink(lock)
    assert wait_for(lambda: srv.msgids("alice") == [msgid], 15), "queue never delivered"
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()
    time.sleep(1.5)  # one more retry period: no second copy
    assert srv.msgids("alice") == [msgid]
    assert srv.msgids("bob") == [msgid]
    raw = srv.messages("alice")[0][0]
    assert raw.endswith(text.encode())
    assert b"Return-Path: <s@remote.example>" in raw


def test_fcntl_locked_mailbox_goes_through_queue(dsmtp_factory):
    """mutt and procmail hold a POSIX fcntl lock; dsmtp must respect it."""
    srv = dsmtp_factory(lock_timeout=1, queue_retry=1)
    first_id, first = make_message()
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=30) as s:
        s.sendmail("s@remote.example", ["alice@" + DOMAIN], first)
    path = srv.mbox_path("alice")
    size_before = os.path.getsize(path)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        msgid, text = make_message()
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=30) as s:
            assert s.sendmail("s@remote.example", ["alice@" + DOMAIN], text) == {}
        assert os.path.getsize(path) == size_before, "appended while the fcntl lock was held"
        assert srv.queue_files(), "acknowledged but not in the queue"
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert wait_for(lambda: srv.msgids("alice") == [first_id, msgid], 15), srv.msgids("alice")
    assert wait_for(lambda: not srv.queue_files(), 10), srv.queue_files()


def test_queue_unwritable_gets_tempfail(dsmtp_factory):
    srv = dsmtp_factory(lock_timeout=1, queue_retry=1)
    lock = srv.mbox_path("alice") + ".lock"
    with open(lock, "w") as f:
        f.write("%d other-node.example\n" % os.getpid())
    chown_like_dsmtp(lock)
    dirs = [os.path.join(srv.spool, d) for d in os.listdir(srv.spool) if d != "maildrop"]
    dirs = [d for d in dirs if os.path.isdir(d)]
    modes = {d: os.stat(d).st_mode for d in dirs}
    for d in dirs:
        os.chmod(d, 0o500)
    try:
        _, text = make_message()
        with RawSMTP(srv.smtp_port, timeout=30) as c:
            c.ehlo()
            c.expect("MAIL FROM:<s@remote.example>", 250)
            c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
            c.expect("DATA", 354)
            c.send(to_wire(text) + b".\r\n")
            code, lines = c.reply()
            assert 400 <= code < 500, "not a temporary failure: %d %s" % (code, lines)
            assert code == 452 and lines[-1].startswith("4.3.1"), (code, lines)
            c.expect("NOOP", 250)
    finally:
        for d, m in modes.items():
            os.chmod(d, m & 0o7777)
        os.unlink(lock)
    time.sleep(1.5)
    assert srv.messages("alice") == [], "tempfailed message delivered anyway"
