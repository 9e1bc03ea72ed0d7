"""sendmail(8) to mailbox, end to end: bin/sendmail writes into spool_dir/maildrop and
the running dsmtp delivers it at once (it watches the directory), or at start-up when it
was down; mail(1) (s-nail) through our sendmail; sendmail -t with Bcc; a cron-style pipe;
an ordinary user."""

import os
import pwd
import re
import shutil
import subprocess
import time

import pytest

from dmail_site import (ALIAS_DOMAIN, BIN, DOMAIN, headers_of, is_root, new_msgid, sendmail,
                        wait_for)

SENDMAIL = os.path.join(BIN, "sendmail")
ME = pwd.getpwuid(os.getuid()).pw_name

pytestmark = pytest.mark.skipif(not os.access(SENDMAIL, os.X_OK), reason="no bin/sendmail")


def maildrop(srv):
    d = os.path.join(srv.spool, "maildrop")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def one_message(srv, user, domain=None, timeout=5):
    assert wait_for(lambda: len(srv.messages(user, domain)) == 1, timeout), \
        "not delivered to %s within %d s: %s" % (user, timeout, srv.messages(user, domain))
    return srv.messages(user, domain)[0]


def check_local_trace(raw, uid):
    hdr = re.sub(rb"\n[ \t]+", b" ", headers_of(raw)).decode()
    assert re.search(r"(?m)^Return-Path: <%s@%s>$" % (re.escape(pwd.getpwuid(uid).pw_name),
                                                      re.escape(DOMAIN)), hdr), hdr
    rec = re.findall(r"(?m)^Received: (.*)$", hdr)
    assert len(rec) == 1, hdr
    assert re.match(r"from local \(uid %d\) by mx\.%s \(dsmtp\) with local id \S+" % (
        uid, re.escape(DOMAIN)), rec[0]), rec[0]


def test_sendmail_to_running_dsmtp(dsmtp):
    msgid = new_msgid("sm")
    t0 = time.monotonic()
    sendmail(dsmtp, ["-i", "alice"],
             b"Subject: via sendmail\nMessage-ID: %s\n\nhello\n.\nlast\n" % msgid.encode())
    raw, msg = one_message(dsmtp, "alice")
    # the periodic rescan is a minute: this came through the directory watch
    assert time.monotonic() - t0 < 5
    assert msg["Message-ID"] == msgid and msg["Subject"] == "via sendmail"
    assert raw.endswith(b"\n\nhello\n.\nlast\n")
    check_local_trace(raw, os.getuid())
    assert wait_for(lambda: maildrop(dsmtp) == [], 3), maildrop(dsmtp)


def test_sendmail_while_dsmtp_down(dsmtp):
    dsmtp.stop()
    ids = []
    for user in ("alice", "bob", "dave@" + ALIAS_DOMAIN):
        ids.append(new_msgid("down"))
        sendmail(dsmtp, [user], b"Subject: while down\nMessage-ID: %s\n\nx\n" % ids[-1].encode())
    assert len(maildrop(dsmtp)) == 3
    assert dsmtp.messages("alice") == []
    dsmtp.start()
    assert one_message(dsmtp, "alice")[1]["Message-ID"] == ids[0]
    assert one_message(dsmtp, "bob")[1]["Message-ID"] == ids[1]
    assert one_message(dsmtp, "dave", ALIAS_DOMAIN)[1]["Message-ID"] == ids[2]
    assert wait_for(lambda: maildrop(dsmtp) == [], 3), maildrop(dsmtp)


def test_sendmail_t_bcc_delivered_without_bcc(dsmtp):
    msgid = new_msgid("bcc")
    text = ("From: me@%s\nTo: Alice <alice@%s>\nCc: bob\nBcc: carol@%s,\n dave@%s\n"
            "Subject: -t with Bcc\nMessage-ID: %s\n\nBcc: stays in the body\n"
            % (DOMAIN, DOMAIN, DOMAIN, ALIAS_DOMAIN, msgid)).encode()
    sendmail(dsmtp, ["-t", "-oi"], text)
    for user, dom in (("alice", None), ("bob", None), ("carol", None), ("dave", ALIAS_DOMAIN)):
        raw, msg = one_message(dsmtp, user, dom)
        assert msg["Message-ID"] == msgid, user
        assert msg.get_all("Bcc") is None, (user, raw)
        assert b"carol@" not in headers_of(raw) and b"dave@" not in headers_of(raw), raw
        # the bare "bob" is qualified with the main domain, as sendmail does
        assert msg["To"] == "Alice <alice@%s>" % DOMAIN and msg["Cc"] == "bob@%s" % DOMAIN
        assert raw.endswith(b"\n\nBcc: stays in the body\n")
        # one copy each, and "for" names nobody (several recipients)
        assert " for <" not in msg["Received"]


@pytest.mark.skipif(not shutil.which("s-nail"), reason="s-nail not installed")
def test_mail_command_to_mbox(dsmtp, tmp_path):
    env = dict(os.environ, DMAIL_CONF=dsmtp.conf_path, HOME=str(tmp_path), MAILRC="/dev/null",
               LC_ALL="C")
    p = subprocess.run(["s-nail", "-n", "-#", "-S", "mta=" + SENDMAIL, "-S", "sendwait",
                        "-s", "hello from mail(1)", "alice"],
                       input=b"Typed by a user.\n.\nwith a lone dot above\n", capture_output=True,
                       env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    raw, msg = one_message(dsmtp, "alice")
    assert msg["Subject"] == "hello from mail(1)"
    assert msg["To"] == "alice@" + DOMAIN  # mail(1) wrote "To: alice"; qualified
    assert b"\n\nTyped by a user.\n.\nwith a lone dot above\n" in raw
    check_local_trace(raw, os.getuid())
    # and s-nail reads it back from the mbox
    r = subprocess.run(["s-nail", "-n", "-R", "-H", "-f", dsmtp.mbox_path("alice")],
                       capture_output=True, text=True, env=env, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert "hello from mail(1)" in r.stdout, r.stdout + r.stderr


def test_cron_style_pipe_delivered(dsmtp):
    sendmail(dsmtp, [], b"", prefix=("sh", "-c",
             'echo "job output" | "$0" -FCronDaemon -odi -oem -oi bob',))
    raw, msg = one_message(dsmtp, "bob")
    assert msg["From"] == "CronDaemon <%s@%s>" % (ME, DOMAIN)
    assert raw.endswith(b"\n\njob output\n")


@pytest.mark.skipif(not is_root() or not shutil.which("setpriv"), reason="needs root, setpriv")
def test_ordinary_user_sendmail_delivered(dsmtp):
    """An ordinary user (here the owner of the spool, as in a one-user set-up) submits;
    the envelope sender and the Received: header name that user."""
    nobody = pwd.getpwnam("nobody")
    sendmail(dsmtp, ["carol"], b"Subject: from nobody\n\nhi\n",
             prefix=("setpriv", "--reuid=nobody", "--regid=%d" % nobody.pw_gid,
                     "--clear-groups"))
    raw, msg = one_message(dsmtp, "carol")
    assert msg["Subject"] == "from nobody"
    check_local_trace(raw, nobody.pw_uid)


def test_queue_write_failure_delivers_nothing_twice(dsmtp_factory):
    """The maildrop file becomes a queue file before anyone gets the message: when that
    write fails nothing is delivered and the file stays; once the spool is writable again
    every recipient gets exactly one copy (earlier, recipients delivered before a failed
    queue write got a second copy on the retry)."""
    from dmail_site import hold_dotlock

    srv = dsmtp_factory(lock_timeout=1, queue_retry=1)
    srv.stop()
    msgid = new_msgid("twice")
    sendmail(srv, ["-i", "alice", "bob", "carol"],
             b"Subject: once\nMessage-ID: %s\n\nx\n" % msgid.encode())
    lock = hold_dotlock(srv.mbox_path("carol"))  # carol's copy has to wait in the queue
    dirs = [os.path.join(srv.spool, d) for d in ("queue", "tmp")]
    for d in dirs:
        os.chmod(d, 0o500)
    try:
        srv.start()
        assert wait_for(lambda: "result=queue-write-failed" in srv.log(), 10), srv.log()[-2000:]
        time.sleep(1)
        assert srv.messages("alice") == [] and srv.messages("bob") == []
        assert len(maildrop(srv)) == 1
    finally:
        for d in dirs:
            os.chmod(d, 0o700)
    os.unlink(lock)
    srv.restart()  # a scan at start-up
    for user in ("alice", "bob", "carol"):
        assert wait_for(lambda: len(srv.messages(user)) >= 1, 10), (user, srv.log()[-2000:])
    time.sleep(1.5)  # a queue retry period: no second copy anywhere
    for user in ("alice", "bob", "carol"):
        assert srv.msgids(user) == [msgid], user
    assert maildrop(srv) == []
