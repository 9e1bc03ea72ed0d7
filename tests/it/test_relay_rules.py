"""Who may relay and where mail that is not for a local mailbox goes, end to end on
loopback: relay_to parks a domain (anyone may send to it, its mail goes to the domain's MX
through dnsmasq to a second dsmtp), forward_from lets envelope sender domains relay, a
forward may point at another domain, the role addresses (root, postmaster,
MAILER-DAEMON, abuse) reach a user, sysadmin (local or of another domain) or wait in the
queue, and a mailbox that refuses for good after DATA is reported to the sender."""

import os
import re
import shutil
import smtplib
import subprocess

import pytest

from dmail_site import (ALIAS_DOMAIN, BIN, DOMAIN, HOST, REMOTE, dsn_fields, dsn_reports,
                        make_message, sendmail, wait_for)

needs_dns = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")


def rcpt_replies(srv, sender, rcpts):
    """{rcpt: (code, text)} of RCPT commands in one unauthenticated transaction (RSET)."""
    out = {}
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=20) as s:
        s.ehlo()
        code, text = s.mail(sender)
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            out[r] = (code, text.decode())
        s.rset()
    return out


def send(srv, sender, rcpts, tag="relay"):
    """One unauthenticated message; every recipient must be accepted. Its Message-ID."""
    msgid, text = make_message(subject=tag, to=", ".join(rcpts))
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=20) as s:
        assert s.sendmail(sender, rcpts, text) == {}
    return msgid


def conf_check(srv):
    """dsmtp -t on the site's dmail.conf: (exit status, output)."""
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout + r.stderr


# ------------------------------------------------------------------------ relay_to


@needs_dns
def test_relay_to_parks_a_domain(pair):
    ours, theirs = pair
    stranger = "someone@elsewhere.example"
    code, text = rcpt_replies(ours, stranger, ["bob@" + REMOTE])["bob@" + REMOTE]
    assert code == 554 and "Relay access denied" in text, (code, text)
    ours.restart(relay_to=REMOTE.upper() + ".")  # any case, a final dot: normalised
    got = rcpt_replies(ours, stranger, ["bob@" + REMOTE, "x@dead.test", "x@sub." + REMOTE])
    assert got["bob@" + REMOTE][0] == 250, got
    # only the parked domain: not another one, nor its subdomains
    assert got["x@dead.test"][0] == 554 and "Relay access denied" in got["x@dead.test"][1]
    assert got["x@sub." + REMOTE][0] == 554, got
    msgid = send(ours, stranger, ["bob@" + REMOTE])
    assert wait_for(lambda: theirs.msgids("bob") == [msgid], 20), ours.log()[-3000:]
    assert ours.messages("bob") == []  # relayed, never delivered into a local mailbox
    assert re.search(r"rcpt to=<bob@remote\.test> result=ok-relay relay=relay_to", ours.log())
    assert wait_for(lambda: "status=sent" in ours.log(), 10)  # theirs may answer first
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()


@needs_dns
def test_relay_to_as_backup_mx_never_loops_back(dsmtp_factory, dns):
    """backup.test has MX mx.remote.test 10 and this host (mx.example.test) 20: mail goes
    to the better one only. selfmx.test names this host as its best MX: reported 5.4.6
    without a connection (the address of mx.example.test leads to theirs here, which
    would refuse to relay with 5.7.1)."""
    theirs = dsmtp_factory(host_domain=[REMOTE, "backup.test"], hostname="mx." + REMOTE)
    ours = dsmtp_factory(dns_host=dns, remote_smtp_port=theirs.smtp_port,
                         relay_to=["backup.test", "selfmx.test"])
    msgid = send(ours, "x@elsewhere.example", ["bob@backup.test"])
    assert wait_for(lambda: theirs.msgids("bob") == [msgid], 20), ours.log()
    send(ours, "alice@" + DOMAIN, ["x@selfmx.test"])
    assert wait_for(lambda: dsn_reports(ours, "alice"), 20), ours.log()[-3000:]
    _, per_rcpt, _ = dsn_fields(dsn_reports(ours, "alice")[0])
    assert per_rcpt[0]["Status"] == "5.4.6", per_rcpt[0]
    assert "loops back to myself" in per_rcpt[0]["Diagnostic-Code"]
    assert "relay=mx.example.test" not in ours.log()


def test_relay_to_that_is_local_and_forward_from_are_warnings(dsmtp_factory):
    srv = dsmtp_factory(start=False, relay_to=[ALIAS_DOMAIN, "parked.example"])
    rc, out = conf_check(srv)
    assert rc == 0, out
    assert ("warning: relay_to %s is also a host_domain: its mail is delivered here"
            % ALIAS_DOMAIN) in out, out
    assert "forward_from" not in out
    srv.write_conf({"forward_from": "trusted.example"})
    rc, out = conf_check(srv)
    assert rc == 0 and "warning: forward_from: anyone who writes such an envelope sender " \
        "may relay through this server (it is forgeable" in out, out
    srv.write_conf({"relay_to": "not a domain!"})
    rc, out = conf_check(srv)
    assert rc == 78 and "is not a valid domain" in out, (rc, out)
    srv.write_conf({"relay_to": [ALIAS_DOMAIN]})
    srv.start()
    msgid = send(srv, "x@elsewhere.example", ["dave@" + ALIAS_DOMAIN])
    assert srv.msgids("dave", ALIAS_DOMAIN) == [msgid]  # local wins


# -------------------------------------------------------------------- forward_from


@needs_dns
def test_forward_from_lets_a_sender_domain_relay(pair):
    ours, theirs = pair
    ours.restart(forward_from=["trusted.example", "Other.Example"])
    rcpt = "carol@" + REMOTE
    assert rcpt_replies(ours, "anyone@trusted.example", [rcpt])[rcpt][0] == 250
    assert rcpt_replies(ours, "anyone@OTHER.example", [rcpt])[rcpt][0] == 250
    for sender in ("anyone@sub.trusted.example", "anyone@untrusted.example", ""):
        code, text = rcpt_replies(ours, sender, [rcpt])[rcpt]
        assert code == 554 and "Relay access denied" in text, (sender, code, text)
    msgid = send(ours, "anyone@trusted.example", [rcpt])
    assert wait_for(lambda: theirs.msgids("carol") == [msgid], 20), ours.log()[-3000:]
    assert re.search(r"rcpt to=<carol@remote\.test> result=ok-relay relay=forward_from",
                     ours.log())


@needs_dns
def test_without_rules_nobody_relays_but_ip_and_auth_still_do(pair):
    ours, _ = pair
    rcpt = "carol@" + REMOTE
    code, _ = rcpt_replies(ours, "anyone@trusted.example", [rcpt])[rcpt]
    assert code == 554
    ours.restart(forward_from_ip="127.0.0.1")
    assert rcpt_replies(ours, "anyone@trusted.example", [rcpt])[rcpt][0] == 250
    assert re.search(r"rcpt to=<carol@remote\.test> result=ok-relay relay=ip", ours.log())


# ------------------------------------------------------------- forward to remote


@needs_dns
def test_forward_to_a_remote_address(pair):
    ours, theirs = pair
    ours.restart(forward=["info@%s alice@%s, bob@%s" % (DOMAIN, DOMAIN, REMOTE),
                          "fwd@%s carol@%s" % (DOMAIN, REMOTE)])
    assert conf_check(ours)[0] == 0
    # an unauthenticated client: the forward, not the client, relays
    msgid = send(ours, "someone@elsewhere.example", ["info@" + DOMAIN])
    assert ours.msgids("alice") == [msgid]
    assert wait_for(lambda: theirs.msgids("bob") == [msgid], 20), ours.log()[-3000:]
    raw = theirs.messages("bob")[0][0]
    assert b"Return-Path: <someone@elsewhere.example>" in raw, raw[:400]
    assert re.search(r"rcpt to=<info@example\.test> forward=<alice@example\.test>,"
                     r"<bob@remote\.test> result=ok-relay\n", ours.log()), ours.log()[-2000:]
    # the sendmail pickup follows the same forward
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "fwd"], b"Subject: picked\n\nup\n")
    assert wait_for(lambda: len(theirs.messages("carol")) == 1, 20), ours.log()[-3000:]
    assert re.search(r"to=<fwd@example\.test> result=forwarded", ours.log()), ours.log()[-2000:]
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()


def test_forward_loop_through_a_remote_address_refused(dsmtp_factory):
    srv = dsmtp_factory(forward=["a@%s b@%s" % (DOMAIN, DOMAIN),
                                 "b@%s x@%s, a@%s" % (DOMAIN, REMOTE, DOMAIN)])
    code, text = rcpt_replies(srv, "s@elsewhere.example", ["a@" + DOMAIN])["a@" + DOMAIN]
    assert code == 550 and text.startswith("5.4.6") and "forwarding loop" in text, (code, text)
    assert srv.queue_files() == []


# ------------------------------------------------------------------ role addresses


def test_role_addresses_go_to_sysadmin(dsmtp):
    """sysadmin is bob here; none of the roles is a user."""
    rcpts = ["root@" + DOMAIN, "ABUSE@" + ALIAS_DOMAIN, "Mailer-Daemon@" + DOMAIN,
             "postmaster@" + DOMAIN]
    for r in rcpts:
        send(dsmtp, "x@elsewhere.example", [r], tag=r)
    assert sorted(m["Subject"] for _, m in dsmtp.messages("bob")) == sorted(rcpts)
    for r in ("root", "abuse", "mailer-daemon"):
        assert not os.path.exists(dsmtp.mbox_path(r))
    # not a role: unknown
    code, _ = rcpt_replies(dsmtp, "x@elsewhere.example", ["hostmaster@" + DOMAIN])[
        "hostmaster@" + DOMAIN]
    assert code == 550


def test_sendmail_root_reaches_sysadmin(dsmtp):
    sendmail(dsmtp, ["-i", "root"], b"Subject: cron output\n\nroot's mail\n")
    assert wait_for(lambda: dsmtp.messages("bob"), 15), dsmtp.log()[-2000:]
    assert dsmtp.messages("bob")[0][1]["Subject"] == "cron output"
    assert wait_for(lambda: dsmtp.queue_files() == [], 5), dsmtp.queue_files()


def test_role_user_and_forward_come_before_sysadmin(dsmtp_factory):
    srv = dsmtp_factory(start=False, forward=["root@%s carol@%s" % (DOMAIN, DOMAIN)])
    srv.add_user("abuse", "abuse-pw-1")
    srv.start()
    m1 = send(srv, "x@elsewhere.example", ["abuse@" + DOMAIN])
    m2 = send(srv, "x@elsewhere.example", ["root@" + DOMAIN])
    assert srv.msgids("abuse") == [m1]
    assert srv.msgids("carol") == [m2]
    assert srv.messages("bob") == []


def test_role_without_sysadmin_waits_in_queue_not_dropped(dsmtp_factory):
    srv = dsmtp_factory(sysadmin=None, queue_retry=1)
    msgid = send(srv, "x@elsewhere.example", ["abuse@" + DOMAIN])
    (qf,) = srv.queue_files()
    with open(qf, "rb") as f:
        assert b"<abuse@example.test> no mailbox for postmaster (set sysadmin)" in f.read()
    assert "result=ok-postmaster-queued" in srv.log()
    # the user postmaster, when there is one, is the default
    srv.add_user("postmaster", "pm-pw-1")
    srv.restart()
    assert wait_for(lambda: srv.msgids("postmaster") == [msgid], 10), srv.log()[-2000:]
    assert wait_for(lambda: not srv.queue_files(), 5)


@needs_dns
def test_remote_sysadmin_gets_role_mail_relayed(pair):
    ours, theirs = pair
    ours.restart(sysadmin="carol@" + REMOTE)
    msgid = send(ours, "x@elsewhere.example", ["root@" + DOMAIN])
    assert wait_for(lambda: theirs.msgids("carol") == [msgid], 20), ours.log()[-3000:]
    assert re.search(r"rcpt to=<root@example\.test> forward=<carol@remote\.test> "
                     r"result=ok-relay\n", ours.log()), ours.log()[-2000:]
    sendmail(ours, ["-i", "abuse"], b"Subject: by sendmail\n\nx\n")
    assert wait_for(lambda: len(theirs.messages("carol")) == 2, 20), ours.log()[-3000:]


@needs_dns
def test_queued_role_mail_follows_a_sysadmin_of_another_domain_set_later(pair):
    ours, theirs = pair
    ours.restart(sysadmin=None)
    msgid = send(ours, "x@elsewhere.example", ["abuse@" + DOMAIN])
    assert len(ours.queue_files()) == 1
    ours.restart(sysadmin="carol@" + REMOTE)
    assert wait_for(lambda: theirs.msgids("carol") == [msgid], 20), ours.log()[-3000:]
    assert re.search(r"queue id=\S+ to=<abuse@example\.test> result=forwarded "
                     r"forward=\"?<carol@remote\.test>", ours.log()), ours.log()[-3000:]
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()


# ---------------------------------------------------- permanent failures after DATA


def break_mailbox(srv, user):
    """user's mailbox becomes a directory: every delivery to it fails for good."""
    os.makedirs(srv.mbox_path(user))


def test_permanent_mailbox_failure_after_data_is_bounced(dsmtp):
    break_mailbox(dsmtp, "carol")
    msgid = send(dsmtp, "alice@" + DOMAIN, ["bob@" + DOMAIN, "carol@" + DOMAIN])
    assert dsmtp.msgids("bob") == [msgid]
    assert wait_for(lambda: dsn_reports(dsmtp, "alice"), 15), dsmtp.log()[-3000:]
    (rep,) = dsn_reports(dsmtp, "alice")
    _, per_rcpt, parts = dsn_fields(rep)
    assert len(per_rcpt) == 1
    assert per_rcpt[0]["Final-Recipient"].replace(" ", "") == "rfc822;carol@" + DOMAIN
    assert per_rcpt[0]["Action"] == "failed" and per_rcpt[0]["Status"] == "5.2.0"
    assert msgid.encode() in parts[2].as_bytes()
    assert re.search(r"delivered id=\S+ size=\d+ rcpts=2 mailboxes=1 queued=0 failed=1",
                     dsmtp.log())
    assert wait_for(lambda: not dsmtp.queue_files(), 10), dsmtp.queue_files()


def test_every_recipient_failing_for_good_is_refused_not_bounced(dsmtp):
    break_mailbox(dsmtp, "carol")
    msgid, text = make_message(to="carol@" + DOMAIN)
    with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=20) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@" + DOMAIN, ["carol@" + DOMAIN], text)
    assert e.value.smtp_code == 554
    assert "reason=delivery-failed" in dsmtp.log()
    assert dsn_reports(dsmtp, "alice") == []  # the client was told: no report as well
    assert dsmtp.queue_files() == []


def test_sendmail_to_a_broken_mailbox_is_bounced(dsmtp):
    break_mailbox(dsmtp, "carol")
    sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "carol"], b"Subject: broken\n\nx\n")
    assert wait_for(lambda: dsn_reports(dsmtp, "alice"), 15), dsmtp.log()[-3000:]
    _, per_rcpt, _ = dsn_fields(dsn_reports(dsmtp, "alice")[0])
    assert per_rcpt[0]["Status"] == "5.2.0"


def test_sendmail_to_an_unknown_local_user_is_bounced(dsmtp):
    """sendmail cannot read the users file (it runs as the caller), so it accepts (exit 0)
    and dsmtp's pickup reports the unknown user to the sender: never silent."""
    p = sendmail(dsmtp, ["-i", "-f", "alice@" + DOMAIN, "nosuchuser", "bob"],
                 b"Subject: half\n\nx\n")
    assert p.returncode == 0
    assert wait_for(lambda: dsn_reports(dsmtp, "alice"), 15), dsmtp.log()[-3000:]
    _, per_rcpt, _ = dsn_fields(dsn_reports(dsmtp, "alice")[0])
    assert [r["Status"] for r in per_rcpt] == ["5.1.1"]
    assert len(dsmtp.messages("bob")) == 1
    assert "result=dropped" not in dsmtp.log()
