"""XVERP (Postfix's VERP extension): MAIL FROM:<list-bounces@dom> XVERP gives every
recipient its own envelope sender list-bounces+user=example.org@dom -- the Return-Path of
a local delivery, the MAIL FROM of a remote one (one transaction per recipient), where a
report on that recipient goes -- and the delimiters survive a restart in the queue file."""

import os
import re
import smtplib
import subprocess

from dmail_site import BIN, DOMAIN, HOST, free_ports, sendmail, wait_for
from test_sendmail import parse_qfile

LIST = "list-bounces@" + DOMAIN


def send(site, sender, rcpts, params, subject="verp"):
    with smtplib.SMTP(HOST, site.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        return c.sendmail(sender, rcpts, "Subject: %s\r\n\r\npost\r\n" % subject,
                          mail_options=params)


def return_paths(site, user):
    return [m["Return-Path"] for _, m in site.messages(user)]


def test_xverp_advertised_and_local_return_path_per_recipient(dsmtp):
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        assert c.has_extn("xverp"), c.esmtp_features
    assert send(dsmtp, LIST, ["alice@" + DOMAIN, "bob@" + DOMAIN], ["XVERP"]) == {}
    assert wait_for(lambda: dsmtp.messages("alice") and dsmtp.messages("bob"), 10)
    assert return_paths(dsmtp, "alice") == ["<list-bounces+alice=%s@%s>" % (DOMAIN, DOMAIN)]
    assert return_paths(dsmtp, "bob") == ["<list-bounces+bob=%s@%s>" % (DOMAIN, DOMAIN)]
    assert "xverp=+=" in dsmtp.log()
    # without XVERP the sender stays as it is
    assert send(dsmtp, LIST, ["alice@" + DOMAIN], []) == {}
    assert wait_for(lambda: len(dsmtp.messages("alice")) == 2, 10)
    assert return_paths(dsmtp, "alice")[1] == "<%s>" % LIST


def test_xverp_delimiters_chosen_and_filtered(dsmtp):
    assert send(dsmtp, LIST, ["alice@" + DOMAIN], ["XVERP=-="]) == {}
    assert wait_for(lambda: dsmtp.messages("alice"), 10)
    assert return_paths(dsmtp, "alice") == ["<list-bounces-alice=%s@%s>" % (DOMAIN, DOMAIN)]
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        for bad in ("XVERP=*=", "XVERP=+", "XVERP=+=+"):
            code, msg = c.docmd("MAIL FROM:<%s> %s" % (LIST, bad))
            assert code == 501 and msg.startswith(b"5.5.4"), (bad, code, msg)
        code, msg = c.docmd("MAIL FROM:<> XVERP")
        assert code == 501 and b"sender" in msg, (code, msg)
        code, msg = c.docmd("MAIL FROM:<%s> XVERP XVERP" % LIST)
        assert code == 501 and b"Duplicate" in msg, (code, msg)


def test_xverp_refused_to_clients_not_allowed(dsmtp_factory):
    site = dsmtp_factory(verp_clients="192.0.2.0/24")
    with smtplib.SMTP(HOST, site.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        assert not c.has_extn("xverp"), c.esmtp_features
        code, msg = c.docmd("MAIL FROM:<%s> XVERP" % LIST)
        assert code == 550 and msg.startswith(b"5.7.1"), (code, msg)
        code, msg = c.docmd("MAIL FROM:<%s>" % LIST)
        assert code == 250, (code, msg)
    # a relay_allow (forward_from_ip) client may, as Postfix's $mynetworks
    site.restart(forward_from_ip="127.0.0.0/8")
    with smtplib.SMTP(HOST, site.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        assert c.has_extn("xverp"), c.esmtp_features


def test_bad_verp_delimiters_setting_is_refused(dsmtp_factory):
    site = dsmtp_factory(start=False, verp_delimiters="+*")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=10)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert re.search(r"dmail\.conf:\d+: verp_delimiters \"\+\*\": two characters", out), out
    site.write_conf({"verp_delimiters": "+*", "verp_delimiter_filter": "+*"})
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr


def test_xverp_remote_one_transaction_per_recipient(dsmtp_factory, sink):
    port, handler = sink
    site = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, forward_from_ip="127.0.0.0/8")
    rcpts = ["u1@far.example", "u2@far.example", "u3@other.example"]
    assert send(site, LIST, rcpts + ["alice@" + DOMAIN], ["XVERP"]) == {}
    assert wait_for(lambda: len(handler.envelopes) == 3, 30), site.log()[-3000:]
    got = sorted((e.mail_from, e.rcpt_tos) for e in handler.envelopes)
    assert got == sorted(("list-bounces+%s=%s@%s" % (r.split("@")[0], r.split("@")[1], DOMAIN),
                          [r]) for r in rcpts), got
    assert wait_for(lambda: site.messages("alice"), 10)
    assert return_paths(site, "alice") == ["<list-bounces+alice=%s@%s>" % (DOMAIN, DOMAIN)]
    assert wait_for(lambda: not site.queue_files(), 10), site.queue_files()


def test_bounce_of_verp_message_goes_to_the_verp_address(dsmtp_factory, sink):
    port, handler = sink
    handler.reply = lambda env: ("550 5.1.1 no such user" if env.rcpt_tos == ["gone@far.example"]
                                 else None)
    site = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, forward_from_ip="127.0.0.0/8")
    sender = "news-bounces@lists.example"
    assert send(site, sender, ["gone@far.example", "here@far.example"], ["XVERP"]) == {}
    # the post to here@, and one report: to the VERP address of gone@, from <>
    assert wait_for(lambda: any(e.mail_from in ("", "<>") for e in handler.envelopes), 30), \
        site.log()[-3000:]
    reports = [e for e in handler.envelopes if e.mail_from in ("", "<>")]
    assert len(reports) == 1, [(e.mail_from, e.rcpt_tos) for e in handler.envelopes]
    assert reports[0].rcpt_tos == ["news-bounces+gone=far.example@lists.example"]
    assert b"gone@far.example" in reports[0].content
    assert b"here@far.example" not in reports[0].content.split(b"\n\n", 1)[0]
    posts = [e for e in handler.envelopes if e.rcpt_tos == ["here@far.example"]]
    assert posts and posts[0].mail_from == "news-bounces+here=far.example@lists.example"


def test_kill9_and_restart_keep_verp(dsmtp_factory, sink_factory):
    port = free_ports(1)[0]  # nobody listens yet: the message waits in the queue
    site = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, queue_retry=1,
                         forward_from_ip="127.0.0.0/8")
    assert send(site, LIST, ["u1@far.example", "u2@far.example"], ["XVERP=-="]) == {}
    assert wait_for(lambda: site.queue_files(), 10)
    q = parse_qfile(site.queue_files()[0])
    assert q["verp"] == "-=" and q["sender"] == LIST, q
    site.kill9()
    _, handler = sink_factory(port=port)
    site.start()
    assert wait_for(lambda: len(handler.envelopes) == 2, 30), site.log()[-3000:]
    assert sorted(e.mail_from for e in handler.envelopes) == [
        "list-bounces-u1=far.example@" + DOMAIN, "list-bounces-u2=far.example@" + DOMAIN]


def test_sendmail_xv(dsmtp):
    """sendmail -XV (and -XVXY) as Postfix's: the pickup keeps VERP for each recipient;
    delimiters outside verp_delimiter_filter are a usage error."""
    sendmail(dsmtp, ["-i", "-XV", "-f", LIST, "alice", "bob"], b"Subject: xv\n\nx\n")
    assert wait_for(lambda: dsmtp.messages("alice") and dsmtp.messages("bob"), 15), dsmtp.log()
    assert return_paths(dsmtp, "alice") == ["<list-bounces+alice=%s@%s>" % (DOMAIN, DOMAIN)]
    assert return_paths(dsmtp, "bob") == ["<list-bounces+bob=%s@%s>" % (DOMAIN, DOMAIN)]
    sendmail(dsmtp, ["-i", "-XV-=", "-f", LIST, "alice"], b"Subject: xv2\n\nx\n")
    assert wait_for(lambda: len(dsmtp.messages("alice")) == 2, 15), dsmtp.log()
    assert return_paths(dsmtp, "alice")[1] == "<list-bounces-alice=%s@%s>" % (DOMAIN, DOMAIN)
    env = dict(os.environ, DMAIL_CONF=dsmtp.conf_path, LC_ALL="C")
    for bad in (["-XV*="], ["-XV+"]):
        p = subprocess.run([os.path.join(BIN, "sendmail"), *bad, "alice"], input=b"x\n",
                           capture_output=True, env=env, timeout=30)
        assert p.returncode == 64 and b"-XV" in p.stderr, (bad, p.returncode, p.stderr)
    # -X FILE (the historic traffic log) is still accepted and ignored
    sendmail(dsmtp, ["-i", "-X", "/tmp/traffic", "-f", LIST, "bob"], b"Subject: x\n\nx\n")
    assert wait_for(lambda: len(dsmtp.messages("bob")) == 2, 15), dsmtp.log()
    assert return_paths(dsmtp, "bob")[1] == "<%s>" % LIST


def test_xverp_kept_through_the_bomb_hold(dsmtp):
    """A VERP message held as a suspected bomb keeps its delimiters in the held file; its
    release delivers it with the recipient's VERP Return-Path."""
    dsmtp.restart(bomb_max=1)
    assert send(dsmtp, LIST, ["alice@" + DOMAIN], ["XVERP=-="], subject="one") == {}
    assert send(dsmtp, LIST, ["alice@" + DOMAIN], ["XVERP=-="], subject="two") == {}
    bombs = os.path.join(dsmtp.spool, "bomb")
    assert wait_for(lambda: os.path.isdir(bombs) and os.listdir(bombs), 10), dsmtp.log()[-2000:]
    qid = os.listdir(bombs)[0]
    assert parse_qfile(os.path.join(bombs, qid))["verp"] == "-="
    assert len(dsmtp.messages("alice")) == 1
    rc, out, err = dsmtp.tellsmtp("bomb-release", qid)
    assert rc == 0 and "released" in out, (rc, out, err)
    assert wait_for(lambda: len(dsmtp.messages("alice")) == 2, 15), dsmtp.log()[-2000:]
    assert return_paths(dsmtp, "alice") == ["<list-bounces-alice=%s@%s>" % (DOMAIN, DOMAIN)] * 2
