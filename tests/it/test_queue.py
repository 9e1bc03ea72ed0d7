"""A mailbox that cannot be written right now (its lock held by a mail reader): the
message goes to the queue, the client gets 250, and the queue delivers it once the lock
is gone -- exactly once. A spool that cannot take the queue file gets a 4xx."""

import errno
import fcntl
import os
import re
import smtplib
import stat
import subprocess
import tempfile
import time

import pytest

from dmail_site import (
    DOMAIN,
    HOST,
    RawSMTP,
    hold_dotlock,
    make_message,
    read_mbox,
    to_wire,
    wait_for,
)


def test_dotlocked_mailbox_goes_through_queue(dsmtp_factory):
    srv = dsmtp_factory(lock_timeout=1, queue_retry=1)
    lock = hold_dotlock(srv.mbox_path("alice"))
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
    # mailq reads the queue with maildrop/'s group: queue/ 2750 in that group, files 0640
    qdir, drop = os.stat(os.path.join(srv.spool, "queue")), os.stat(os.path.join(srv.spool, "maildrop"))
    assert stat.S_IMODE(qdir.st_mode) == 0o2750 and qdir.st_gid == drop.st_gid
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o640 for f in srv.queue_files())
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
    lock = hold_dotlock(srv.mbox_path("alice"))
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
            code, lines = c.data(text)
            assert 400 <= code < 500, "not a temporary failure: %d %s" % (code, lines)
            assert code == 452 and lines[-1].startswith("4.3.1"), (code, lines)
            c.expect("NOOP", 250)
    finally:
        for d, m in modes.items():
            os.chmod(d, m & 0o7777)
        os.unlink(lock)
    time.sleep(1.5)
    assert srv.messages("alice") == [], "tempfailed message delivered anyway"


def can_mount_tmpfs():
    if os.geteuid() != 0:
        return False
    d = tempfile.mkdtemp(prefix="dmail-it-mnt-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                           capture_output=True)
        if r.returncode != 0:
            return False
        subprocess.run(["umount", d], check=True)
        return True
    except OSError:
        return False
    finally:
        os.rmdir(d)


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root and tmpfs mounts")
def test_full_disk_gets_452_and_leaves_nothing(dsmtp_factory):
    """Mailboxes and spool on a full file system: the mailbox append fails (and is cut
    back), the queue file cannot be written either: 452 4.3.1, nothing left behind; once
    there is room again the same message is accepted."""
    srv = dsmtp_factory(start=False, lock_timeout=1)
    fs = os.path.join(srv.dir, "fs")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", fs], check=True)
    try:
        spool, drop = os.path.join(fs, "spool"), os.path.join(fs, "drop")
        os.makedirs(spool)
        os.makedirs(drop)
        srv.write_conf({"spool_dir": spool, "drop_path": drop})
        srv.start()
        first_id, first = make_message()
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=30) as s:
            assert s.sendmail("s@remote.example", ["alice@" + DOMAIN], first) == {}
        mbox = os.path.join(drop, "alice")
        size = os.path.getsize(mbox)
        filler = os.path.join(fs, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)
        # 36 KB: more than the room below, less than what would go to a spill file
        msgid, text = make_message(body="full disk\n" + ("x" * 70 + "\n") * 500)
        # no room at all (not even for the dotlock), then a little room: the append
        # starts and fails half-way; a larger message cannot even be spilled
        big_id, big = make_message(body=("y" * 70 + "\n") * 3000)  # 213 KB
        for room, data in ((0, text), (16384, text), (16384, big)):
            if room:
                os.truncate(filler, os.path.getsize(filler) - room)
            with RawSMTP(srv.smtp_port, timeout=30) as c:
                c.ehlo()
                c.expect("MAIL FROM:<s@remote.example>", 250)
                c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
                code, lines = c.data(data)
                assert code == 452 and lines[-1].startswith("4.3.1"), (room, code, lines)
                c.expect("NOOP", 250)
            assert os.path.getsize(mbox) == size, "a partial message was left in the mbox"
            assert srv.queue_files() == []
            assert os.listdir(os.path.join(spool, "tmp")) == []
            # a refused message's spill file is removed on the pool, after the reply
            spill = os.path.join(spool, "spill")
            assert wait_for(lambda: os.listdir(spill) == [], 5), os.listdir(spill)
            assert not os.path.exists(mbox + ".lock")
        assert re.search(r"result=deferred error=\"write .*No space left on device", srv.log())
        assert re.search(r"spill file=\S+ op=write result=failed why=\"No space left", srv.log())
        assert "reason=spill-failed" in srv.log()
        with RawSMTP(srv.smtp_port, timeout=30) as c:
            c.ehlo()
            os.unlink(filler)
            c.expect("MAIL FROM:<s@remote.example>", 250)
            c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
            code, lines = c.data(text)
            assert code == 250, (code, lines)
        assert [m["Message-ID"] for _, m in read_mbox(mbox)] == [first_id, msgid]
    finally:
        srv.stop()
        subprocess.run(["umount", "-l", fs])
