"""Mail-bomb detection: bomb_max messages per (sender, recipient) pair, counters falling
by bomb_dec every bomb_interval, bomb_entries, the bomb_exception_* lists; a suspected
bomb is held in bomb_dir (the client gets 250: the message is on disk) and the admin
lists, releases (delivered as usual) or deletes it with tellsmtp bombs / bomb-release /
bomb-delete."""

import os
import re
import smtplib
import subprocess
import time

from dmail_site import BIN, DOMAIN, HOST, make_message, wait_for

SENDER = "flood@remote.example"


def send(srv, sender=SENDER, to="alice@" + DOMAIN, source="127.0.0.1", tag="bomb"):
    """One message; (Message-ID, the DATA reply text)."""
    msgid, text = make_message(subject=tag, to=to)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=15, local_hostname="client.example",
                      source_address=(source, 0)) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        assert s.rcpt(to)[0] == 250
        code, reply = s.data(text)
        assert code == 250, (code, reply)
    return msgid, reply.decode()


def held(srv, d=None):
    d = d or os.path.join(srv.spool, "bomb")
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if not f.startswith("."))


def test_bomb_held_listed_and_released(dsmtp_factory):
    srv = dsmtp_factory(bomb_max=3)
    ids = [send(srv, tag="n%d" % i)[0] for i in range(3)]
    assert srv.msgids("alice") == ids
    msgid, reply = send(srv, tag="fourth")
    qid = re.search(r"queued as (\S+)", reply).group(1)
    assert srv.msgids("alice") == ids  # held, not delivered
    assert held(srv) == [qid]
    log = srv.log()
    assert re.search(r"bomb-suspect id=%s from=<%s> to=<alice@%s> count=4 bomb_max=3"
                     % (re.escape(qid), re.escape(SENDER), re.escape(DOMAIN)), log), log[-2000:]
    assert "held id=%s reason=bomb" % qid in log
    # another sender to the same recipient has its own counter
    other = send(srv, sender="friend@remote.example", tag="other")[0]
    assert srv.msgids("alice")[-1] == other
    rc, out, err = srv.tellsmtp("bombs")
    assert rc == 0 and "1 held message" in out, (rc, out, err)
    assert re.search(r"^%s size=\d+ age=\d+s from=<%s> rcpts=1 origin=smtp 127\.0\.0\.1"
                     % (re.escape(qid), re.escape(SENDER)), out, re.M), out
    assert "  to=<alice@%s>" % DOMAIN in out
    rc, out, err = srv.tellsmtp("bomb-release", qid)
    assert rc == 0 and "released" in out, (rc, out, err)
    assert wait_for(lambda: msgid in srv.msgids("alice"), 15), srv.log()[-3000:]
    assert held(srv) == []
    assert srv.msgids("alice").count(msgid) == 1
    rc, out, _ = srv.tellsmtp("bombs")
    assert rc == 0 and "0 held messages" in out


def test_bomb_delete(dsmtp_factory):
    srv = dsmtp_factory(bomb_max=1)
    send(srv)
    msgid, reply = send(srv)
    qid = re.search(r"queued as (\S+)", reply).group(1)
    assert held(srv) == [qid]
    rc, out, err = srv.tellsmtp("bomb-delete", qid)
    assert rc == 0 and "deleted" in out, (rc, out, err)
    assert held(srv) == []
    time.sleep(0.5)
    assert msgid not in srv.msgids("alice")
    assert "bomb id=%s deleted" % qid in srv.log()


def test_bomb_commands_refuse_unknown_and_bad_ids(dsmtp_factory):
    srv = dsmtp_factory(bomb_max=1)
    for cmd in ("bomb-release", "bomb-delete"):
        rc, out, err = srv.tellsmtp(cmd, "nosuch-1")
        assert rc == 1 and "no held message nosuch-1" in out + err, (cmd, rc, out, err)
        rc, out, err = srv.tellsmtp(cmd, "../etc")
        assert rc == 1 and "not a message id" in out + err, (cmd, rc, out, err)
    rc, out, err = srv.tellsmtp("bomb-release")
    assert rc == 2  # usage


def test_bomb_dec_and_interval(dsmtp_factory):
    srv = dsmtp_factory(bomb_max=2, bomb_dec=2, bomb_interval="2s")
    send(srv)
    send(srv)
    time.sleep(2.3)  # the counter fell by 2
    send(srv)
    send(srv)
    assert len(srv.messages("alice")) == 4 and held(srv) == []
    send(srv)  # 3 within the interval
    assert len(held(srv)) == 1


def test_bomb_dec_zero_never_falls(dsmtp_factory):
    srv = dsmtp_factory(bomb_max=1, bomb_dec=0, bomb_interval="1s")
    send(srv)
    time.sleep(1.3)
    send(srv)
    assert len(held(srv)) == 1


def test_bomb_entries_bounds_the_counters(dsmtp_factory):
    """With room for one pair, a second pair pushes the first out: its count starts
    over."""
    srv = dsmtp_factory(bomb_max=2, bomb_entries=1)
    send(srv)
    send(srv)
    send(srv, sender="other@remote.example")
    send(srv)  # flood's counter was forgotten: 1 again
    assert held(srv) == []
    send(srv)
    send(srv)
    assert len(held(srv)) == 1


def test_bomb_exceptions(dsmtp_factory):
    srv = dsmtp_factory(bomb_max=1, bomb_exception_from="*@list.example",
                        bomb_exception_ip="127.0.0.5", bomb_exception_to="bob@*")
    for _ in range(3):
        send(srv, sender="news@list.example")
        send(srv, source="127.0.0.5")
        send(srv, to="bob@" + DOMAIN)
    assert held(srv) == []
    assert len(srv.messages("bob")) == 3
    send(srv)
    send(srv)  # from 127.0.0.1: counted
    assert len(held(srv)) == 1


def test_bomb_dir_setting_and_restart(dsmtp_factory):
    srv = dsmtp_factory(start=False, bomb_max=1)
    d = os.path.join(srv.dir, "bombs-here")
    srv.write_conf({"bomb_dir": d})
    srv.start()
    send(srv)
    msgid, reply = send(srv)
    qid = re.search(r"queued as (\S+)", reply).group(1)
    assert held(srv, d) == [qid]
    srv.restart()  # held on disk: still there
    rc, out, _ = srv.tellsmtp("bombs")
    assert qid in out and d in out, out
    rc, out, err = srv.tellsmtp("bomb-release", qid)
    assert rc == 0, (out, err)
    assert wait_for(lambda: msgid in srv.msgids("alice"), 15)


def test_bomb_off_by_default(dsmtp_factory):
    srv = dsmtp_factory()
    for _ in range(60):
        send(srv)
    assert held(srv) == [] and len(srv.messages("alice")) == 60


def test_bomb_bad_values_refused(dsmtp_factory):
    srv = dsmtp_factory(start=False, bomb_max=-1, bomb_dec="x", bomb_entries=0,
                        bomb_interval="0", bomb_exception_ip="nonsense",
                        bomb_exception_from="<x>", bomb_exception_to="<y>")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=10)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    for name in ("bomb_max", "bomb_dec", "bomb_entries", "bomb_interval", "bomb_exception_ip",
                 "bomb_exception_from", "bomb_exception_to"):
        assert name + ":" in out, (name, out)
