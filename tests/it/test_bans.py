"""ban_ip / ban_ip_except (refused at connect with 554 5.7.1), ban_mailfrom (550 5.7.1 at
MAIL) and ban_rcptto (550 5.7.1 at RCPT), each logged with the rule that matched, and a
reload that changes them applies to the next session. Clients connect from other
loopback addresses (127.0.0.x) to be told apart."""

import re
import smtplib

from dmail_site import DOMAIN, HOST, make_message, wait_for

SENDER = "sender@remote.example"


def connect(srv, source="127.0.0.1"):
    """smtplib client from source: (the client or None, greeting code, greeting text)."""
    s = smtplib.SMTP(timeout=15, local_hostname="client.example", source_address=(source, 0))
    try:
        code, text = s.connect(HOST, srv.smtp_port)
    except smtplib.SMTPConnectError as e:
        return None, e.smtp_code, e.smtp_error.decode()
    except smtplib.SMTPServerDisconnected:
        return None, None, ""
    if code != 220:
        s.close()
        return None, code, text.decode()
    return s, code, text.decode()


def greeting(srv, source):
    s, code, text = connect(srv, source)
    if s is not None:
        s.quit()
    return code, text


def reload(srv):
    rc, out, err = srv.tellsmtp("reload")
    assert rc == 0, (rc, out, err)


# ------------------------------------------------------------------------- ban_ip


def test_ban_ip_refuses_at_connect_with_554(dsmtp_factory):
    srv = dsmtp_factory(ban_ip=["127.0.0.5", "127.0.1.*"])
    code, text = greeting(srv, "127.0.0.5")
    assert code == 554 and text.startswith("5.7.1") and "banned" in text, (code, text)
    code, text = greeting(srv, "127.0.1.200")
    assert code == 554, (code, text)
    assert greeting(srv, "127.0.0.6")[0] == 220
    assert greeting(srv, "127.0.2.1")[0] == 220
    log = srv.log()
    assert re.search(r"banned stage=connect ip=<127\.0\.0\.5> setting=ban_ip rule=127\.0\.0\.5",
                     log), log[-2000:]
    assert re.search(r"banned stage=connect ip=<127\.0\.1\.200> setting=ban_ip rule=127\.0\.1\.\*",
                     log)
    assert "disconnect reason=banned" in log


def test_ban_ip_on_every_port(dsmtp_factory):
    srv = dsmtp_factory(ban_ip="127.0.0.5")
    s = smtplib.SMTP(timeout=15, source_address=("127.0.0.5", 0))
    code, text = s.connect(HOST, srv.submission_port)
    s.close()
    assert code == 554, (code, text)


def test_ban_ip_cidr_and_negation(dsmtp_factory):
    srv = dsmtp_factory(ban_ip="!127.0.3.9,127.0.3.0/24")
    assert greeting(srv, "127.0.3.8")[0] == 554
    assert greeting(srv, "127.0.3.9")[0] == 220  # the "!" entry came first


def test_ban_ip_except_exempts(dsmtp_factory):
    srv = dsmtp_factory(ban_ip="127.0.4.*", ban_ip_except=["127.0.4.7", "127.0.4.10/31"])
    assert greeting(srv, "127.0.4.1")[0] == 554
    assert greeting(srv, "127.0.4.7")[0] == 220
    assert greeting(srv, "127.0.4.10")[0] == 220
    assert greeting(srv, "127.0.4.11")[0] == 220
    assert greeting(srv, "127.0.4.12")[0] == 554
    # the exempt client gets its mail through
    msgid, text = make_message(subject="exempt")
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15, source_address=("127.0.4.7", 0)) as s:
        assert s.sendmail(SENDER, ["alice@" + DOMAIN], text) == {}
    assert srv.msgids("alice") == [msgid]


def test_ban_ip_reload_applies_to_new_sessions(dsmtp_factory):
    srv = dsmtp_factory()
    old, code, _ = connect(srv, "127.0.0.8")
    assert code == 220
    srv.write_conf({"ban_ip": "127.0.0.8"})
    reload(srv)
    assert wait_for(lambda: greeting(srv, "127.0.0.8")[0] == 554, 5)
    # the session that started before the reload keeps its snapshot
    assert old.ehlo()[0] == 250
    old.quit()
    srv.write_conf({"ban_ip": None})
    reload(srv)
    assert wait_for(lambda: greeting(srv, "127.0.0.8")[0] == 220, 5)


def test_ban_ip_bad_value_refused_on_reload(dsmtp_factory):
    srv = dsmtp_factory(ban_ip="127.0.0.5")
    srv.write_conf({"ban_ip": "not/an/ip"})
    rc, out, err = srv.tellsmtp("reload")
    assert rc != 0 and "ban_ip" in out + err, (rc, out, err)
    assert greeting(srv, "127.0.0.5")[0] == 554  # the old config stays


# ------------------------------------------------------------------- ban_mailfrom


def mail_reply(srv, sender, source="127.0.0.1"):
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15, local_hostname="client.example",
                      source_address=(source, 0)) as s:
        s.ehlo()
        code, text = s.mail(sender)
        if code == 250:
            s.rset()
        return code, text.decode()


def test_ban_mailfrom_refuses_at_mail_with_550(dsmtp_factory):
    srv = dsmtp_factory(ban_mailfrom=["!boss@spam.example,*@spam.example", "offers-*@*"])
    code, text = mail_reply(srv, "x@SPAM.example")
    assert code == 550 and text.startswith("5.7.1") and "Sender address rejected" in text, \
        (code, text)
    assert mail_reply(srv, "offers-1@shop.example")[0] == 550
    assert mail_reply(srv, "boss@spam.example")[0] == 250
    assert mail_reply(srv, "x@spam.example.org")[0] == 250
    assert mail_reply(srv, "")[0] == 250  # the null sender matches only "*"
    log = srv.log()
    assert re.search(r"banned stage=mail from=<x@spam\.example> setting=ban_mailfrom "
                     r"rule=\*@spam\.example", log, re.I), log[-2000:]
    assert re.search(r"rule=offers-\*@\*", log)


def test_ban_mailfrom_then_a_good_sender_in_the_same_session(dsmtp_factory):
    srv = dsmtp_factory(ban_mailfrom="*@spam.example")
    msgid, text = make_message(subject="second try")
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15) as s:
        s.ehlo()
        assert s.mail("a@spam.example")[0] == 550
        assert s.sendmail(SENDER, ["alice@" + DOMAIN], text) == {}
    assert srv.msgids("alice") == [msgid]


def test_ban_mailfrom_applies_to_authenticated_clients_too(dsmtp_factory):
    srv = dsmtp_factory(ban_mailfrom="*@spam.example", auth_plaintext=True)
    with smtplib.SMTP(HOST, srv.submission_port, timeout=15) as s:
        s.ehlo()
        s.login("alice", srv.passwords["alice"])
        code, text = s.mail("a@spam.example")
        assert code == 550, (code, text)


def test_ban_mailfrom_reload(dsmtp_factory):
    srv = dsmtp_factory()
    assert mail_reply(srv, "a@spam.example")[0] == 250
    srv.write_conf({"ban_mailfrom": "*@spam.example"})
    reload(srv)
    assert wait_for(lambda: mail_reply(srv, "a@spam.example")[0] == 550, 5)


# --------------------------------------------------------------------- ban_rcptto


def test_ban_rcptto_refuses_at_rcpt_with_550(dsmtp_factory):
    srv = dsmtp_factory(ban_rcptto=["carol@" + DOMAIN, "*@nowhere.example"])
    msgid, text = make_message(subject="rcpt ban", to="alice@" + DOMAIN)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15) as s:
        s.ehlo()
        assert s.mail(SENDER)[0] == 250
        code, t = s.rcpt("Carol@" + DOMAIN.upper())
        assert code == 550 and t.decode().startswith("5.7.1") and \
            "Recipient address rejected" in t.decode(), (code, t)
        assert s.rcpt("alice@" + DOMAIN)[0] == 250  # the others are not affected
        code, t = s.data(text)
        assert code == 250, (code, t)
    assert srv.msgids("alice") == [msgid]
    assert srv.messages("carol") == []
    assert re.search(r"banned stage=rcpt to=<Carol@%s> setting=ban_rcptto rule=carol@%s"
                     % (re.escape(DOMAIN), re.escape(DOMAIN)), srv.log()), \
        srv.log()[-2000:]


def test_ban_rcptto_before_relay_and_forwards(dsmtp_factory):
    """The address is checked as given: a relay destination is refused with the ban's
    5.7.1 even for a client that may relay."""
    srv = dsmtp_factory(ban_rcptto="*@nowhere.example", forward_from_ip="127.0.0.1")
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15) as s:
        s.ehlo()
        s.mail(SENDER)
        code, t = s.rcpt("x@nowhere.example")
        assert code == 550 and b"Access denied" in t, (code, t)
        assert s.rcpt("x@elsewhere.example")[0] == 250  # relayed: forward_from_ip


def test_ban_rcptto_reload(dsmtp_factory):
    srv = dsmtp_factory()

    def rcpt_code():
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=15) as s:
            s.ehlo()
            s.mail(SENDER)
            return s.rcpt("alice@" + DOMAIN)[0]

    assert rcpt_code() == 250
    srv.write_conf({"ban_rcptto": "alice@*"})
    reload(srv)
    assert wait_for(lambda: rcpt_code() == 550, 5)
