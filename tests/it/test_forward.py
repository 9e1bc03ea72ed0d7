"""The forward setting of dmail.conf, end to end with smtplib: an alias delivered to its
destination's mailbox, a comma list, a catch-all, loops and unknown destinations refused at
RCPT, a remote destination accepted by `dsmtp -t` (relaying it is tested in
test_relay_rules.py), a repeated alias refused, a forward added by `tellsmtp reload`,
the sendmail pickup and the queue runner going through the same forwards, max_rcpts
counting RCPT commands, and the RCPT log line."""

import os
import re
import smtplib
import subprocess

import pytest

from dmail_site import (ALIAS_DOMAIN, BIN, DOMAIN, HOST, make_message, rcpt_reply, smtp_send,
                        wait_for)

SENDER = "sender@remote.example"
SENDMAIL = os.path.join(BIN, "sendmail")
TELLSMTP = os.path.join(BIN, "tellsmtp")


def send(srv, rcpts, tag="fwd"):
    """One message to rcpts (all must be accepted); returns its Message-ID."""
    return smtp_send(srv, rcpts, tag, SENDER)


def test_alias_to_local_user(dsmtp_factory):
    srv = dsmtp_factory(forward=["Info@%s alice@%s" % (DOMAIN, DOMAIN)])
    msgid = send(srv, ["info@" + DOMAIN])
    assert srv.msgids("alice") == [msgid]
    raw = srv.messages("alice")[0][0]
    # the trace shows the recipient as the client gave it
    assert re.search(rb"for <info@example\.test>", raw), raw[:600]
    assert not os.path.exists(srv.mbox_path("info"))
    # the log line names the alias and where it went
    assert re.search(r"rcpt to=<info@example\.test> forward=<alice@example\.test> result=ok",
                     srv.log()), srv.log()[-2000:]
    # case of the local part and of the domain does not matter
    msgid2 = send(srv, ["INFO@Example.Test"])
    assert srv.msgids("alice") == [msgid, msgid2]


def test_comma_list_two_users_and_one_copy_each(dsmtp_factory):
    srv = dsmtp_factory(forward=["team@%s alice@%s, bob@%s" % (DOMAIN, DOMAIN, DOMAIN),
                                 "sales@%s bob@%s" % (ALIAS_DOMAIN, DOMAIN)])
    msgid = send(srv, ["team@" + DOMAIN])
    assert srv.msgids("alice") == [msgid]
    assert srv.msgids("bob") == [msgid]
    assert re.search(r"rcpt to=<team@example\.test> "
                     r"forward=<alice@example\.test>,<bob@example\.test> result=ok", srv.log())
    # bob through two aliases and directly: one copy
    msgid2 = send(srv, ["team@" + DOMAIN, "sales@" + ALIAS_DOMAIN, "bob@" + DOMAIN])
    assert srv.msgids("bob") == [msgid, msgid2]
    assert srv.msgids("alice") == [msgid, msgid2]


def test_catch_all(dsmtp_factory):
    srv = dsmtp_factory(forward=["@%s carol@%s" % (ALIAS_DOMAIN, DOMAIN),
                                 "help@%s alice@%s" % (ALIAS_DOMAIN, DOMAIN)])
    m1 = send(srv, ["whoever@" + ALIAS_DOMAIN])
    m2 = send(srv, ["other.name@" + ALIAS_DOMAIN])
    assert srv.msgids("carol") == [m1, m2]
    # users of the domain and exact aliases are not caught
    m3 = send(srv, ["dave@" + ALIAS_DOMAIN])
    assert srv.msgids("dave", ALIAS_DOMAIN) == [m3]
    m4 = send(srv, ["help@" + ALIAS_DOMAIN])
    assert srv.msgids("alice") == [m4]
    assert srv.msgids("carol") == [m1, m2]
    # the main domain has no catch-all
    code, text = rcpt_reply(srv, "whoever@" + DOMAIN)
    assert code == 550 and text.startswith("5.1.1"), (code, text)


def test_loop_refused_with_550(dsmtp_factory):
    srv = dsmtp_factory(forward=["a@%s b@%s" % (DOMAIN, DOMAIN),
                                 "b@%s alice@%s,c@%s" % (DOMAIN, DOMAIN, DOMAIN),
                                 "c@%s A@%s" % (DOMAIN, DOMAIN)])
    code, text = rcpt_reply(srv, "a@" + DOMAIN)
    assert code == 550, (code, text)
    assert text.startswith("5.4.6") and "forwarding loop" in text, text
    assert re.search(r"rcpt to=<a@example\.test> chain=a@example\.test -> b@example\.test -> "
                     r"c@example\.test -> a@example\.test result=forward-error", srv.log())
    assert srv.messages("alice") == []


def test_unknown_destination_user_refused(dsmtp_factory):
    srv = dsmtp_factory(forward=["old@%s alice@%s,gone@%s" % (DOMAIN, DOMAIN, DOMAIN)])
    code, text = rcpt_reply(srv, "old@" + DOMAIN)
    assert code == 550 and text.startswith("5.1.1") and "User unknown" in text, (code, text)
    assert "gone" not in text  # where an alias leads is not told to the client
    assert re.search(r"rcpt to=<old@example\.test> forward-to=gone@example\.test result=unknown",
                     srv.log())
    assert srv.messages("alice") == []


def test_remote_destination_accepted_repeated_alias_refused(dsmtp_factory):
    srv = dsmtp_factory(start=False)
    with open(srv.conf_path, "a") as f:
        f.write("forward ok@%s alice@%s\n" % (DOMAIN, DOMAIN))
        f.write("forward out@%s someone@elsewhere.example\n" % DOMAIN)
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "forward" not in r.stdout + r.stderr, r.stdout + r.stderr
    # a repeated alias names the earlier line
    srv.write_conf({"forward": ["x@%s alice@%s" % (DOMAIN, DOMAIN),
                                "X@%s bob@%s" % (DOMAIN, DOMAIN)]})
    lines = open(srv.conf_path).read().splitlines()
    first = 1 + next(i for i, ln in enumerate(lines) if ln.startswith("forward x@"))
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 78
    assert ("%s:%d: forward: x@example.test is already forwarded at %s:%d"
            % (srv.conf_path, first + 1, srv.conf_path, first)) in r.stdout + r.stderr


@pytest.mark.skipif(not os.access(TELLSMTP, os.X_OK), reason="no bin/tellsmtp")
def test_reload_adds_forward(dsmtp_factory):
    srv = dsmtp_factory()
    code, text = rcpt_reply(srv, "new@" + DOMAIN)
    assert code == 550
    pid = srv.proc.pid
    srv.write_conf({"forward": ["new@%s bob@%s" % (DOMAIN, DOMAIN)]})
    r = subprocess.run([TELLSMTP, "-c", srv.conf_path, "reload"], capture_output=True,
                       text=True, timeout=30, env=srv.env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 setting changed" in r.stdout, r.stdout
    msgid = send(srv, ["new@" + DOMAIN])
    assert srv.msgids("bob") == [msgid]
    assert srv.proc.pid == pid and srv.alive()
    r = subprocess.run([TELLSMTP, "-c", srv.conf_path, "config", "forward"],
                       capture_output=True, text=True, timeout=30, env=srv.env())
    assert re.search(r"forward 1 forward, digest [0-9a-f]{16}", r.stdout), r.stdout
    # a reload with a bad forward keeps the old table
    srv.write_conf({"forward": ["new@%s bob@%s" % (DOMAIN, DOMAIN),
                                "NEW@%s alice@%s" % (DOMAIN, DOMAIN)]})
    r = subprocess.run([TELLSMTP, "-c", srv.conf_path, "reload"], capture_output=True,
                       text=True, timeout=30, env=srv.env())
    assert r.returncode == 1 and "is already forwarded" in r.stdout, r.stdout + r.stderr
    assert send(srv, ["new@" + DOMAIN]) in srv.msgids("bob")


@pytest.mark.skipif(not os.access(SENDMAIL, os.X_OK), reason="no bin/sendmail")
def test_sendmail_pickup_honours_forwards(dsmtp_factory):
    srv = dsmtp_factory(forward=["list@%s alice@%s,carol@%s" % (DOMAIN, DOMAIN, DOMAIN),
                                 "loop@%s loop2@%s" % (DOMAIN, DOMAIN),
                                 "loop2@%s loop@%s" % (DOMAIN, DOMAIN)])
    env = dict(os.environ, DMAIL_CONF=srv.conf_path, LC_ALL="C")
    body = b"Subject: picked up\nMessage-ID: <pickup.fwd@it>\n\nhello\n"
    p = subprocess.run([SENDMAIL, "-i", "list", "loop@" + DOMAIN], input=body,
                       capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert wait_for(lambda: len(srv.messages("alice")) == 1 and len(srv.messages("carol")) == 1,
                    10), srv.log()[-3000:]
    assert srv.msgids("alice") == ["<pickup.fwd@it>"]
    assert srv.msgids("carol") == ["<pickup.fwd@it>"]
    assert wait_for(lambda: re.search(r"to=<loop@example\.test> result=failed "
                                      r"error=\"forwarding loop", srv.log()), 5), srv.log()[-2000:]
    assert not os.path.exists(srv.mbox_path("list"))


def test_queue_runner_follows_a_forward_added_later(dsmtp_factory):
    """Mail for postmaster waits in the queue while nobody can take it; a forward added
    by a restart with a new file takes it to its destination on the next queue run."""
    srv = dsmtp_factory(sysadmin=None)
    send(srv, ["postmaster@" + DOMAIN])
    assert wait_for(lambda: len(srv.queue_files()) == 1, 5)
    srv.restart(forward=["postmaster@%s carol@%s" % (DOMAIN, DOMAIN)])
    assert wait_for(lambda: len(srv.messages("carol")) == 1, 10), srv.log()[-3000:]
    assert wait_for(lambda: srv.queue_files() == [], 5), srv.queue_files()
    assert re.search(r"queue id=\S+ to=<postmaster@example\.test> result=forwarded "
                     r"forward=\"<carol@example\.test>\"", srv.log())


def test_max_rcpts_counts_rcpt_commands(dsmtp_factory):
    srv = dsmtp_factory(max_rcpts=2,
                        forward=["all@%s alice@%s,bob@%s,carol@%s" % ((DOMAIN,) * 4)])
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=15) as s:
        s.ehlo()
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt("all@" + DOMAIN)[0] == 250
        assert s.rcpt("dave@" + ALIAS_DOMAIN)[0] == 250
        code, text = s.rcpt("alice@" + DOMAIN)
        assert code == 452, (code, text)
        msgid, msg = make_message()
        code, _ = s.data(msg)
        assert code == 250
    for user in ("alice", "bob", "carol"):
        assert srv.msgids(user) == [msgid], user
    assert srv.msgids("dave", ALIAS_DOMAIN) == [msgid]
    assert re.search(r"delivered id=\S+ size=\d+ rcpts=2 mailboxes=4", srv.log()), \
        srv.log()[-2000:]
