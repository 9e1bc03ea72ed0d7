"""authent_method unix_user: a temporary Unix account receives mail from dsmtp in
mail_spool/USER, logs in to dpop (STLS) and to dsmtp (AUTH) with its shadow password;
wrong passwords, unknown names and accounts without a password are refused.

Needs root (it adds two accounts and removes them again): a mail user with a SHA-512
password, and a run_as account in groups shadow and mail, so that no existing account's
groups change. Skipped otherwise.
"""

import os
import random
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from dmail_site import DOMAIN, HOST, POPError, RawPOP, RawSMTP, is_root, tls_client_context

SENDER = "sender@remote.example"
PASSWORD = "Unix-pass 123"

pytestmark = pytest.mark.skipif(not is_root() or shutil.which("useradd") is None,
                                reason="needs root and useradd")


def _run(*args, **kw):
    subprocess.run(list(args), check=True, capture_output=True, **kw)


@pytest.fixture
def accounts():
    """(mail user, run_as user, locked user, spool dir); all removed afterwards."""
    n = random.randrange(1000, 10000)
    user, run_as, locked = "dmailtest%d" % n, "dmailrun%d" % n, "dmaillock%d" % n
    spool = tempfile.mkdtemp(prefix="dmail-it-spool-")
    made = []
    try:
        _run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", user)
        made.append(user)
        _run("chpasswd", "-c", "SHA512", input=("%s:%s\n" % (user, PASSWORD)).encode())
        _run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", locked)  # password "!"
        made.append(locked)
        _run("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", "-G", "shadow,mail", run_as)
        made.append(run_as)
        # the spool like Debian's /var/mail: root:mail 2775
        os.chown(spool, 0, 8 if _gid("mail") is None else _gid("mail"))
        os.chmod(spool, 0o2775)
        yield user, run_as, locked, spool
    finally:
        # (the servers are stopped by then: tests list accounts before dpop_factory)
        for u in made:
            r = subprocess.run(["userdel", u], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["userdel", "-f", u], capture_output=True)
        shutil.rmtree(spool, ignore_errors=True)
        # a leftover of a run against the real /var/mail, should there be one
        for u in (user, locked):
            p = os.path.join("/var/mail", u)
            if os.path.isfile(p):
                os.unlink(p)


def _gid(group):
    import grp
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _serve(dpop_factory, accounts, **settings):
    user, run_as, locked, spool = accounts
    conf = {"mail_spool": spool}
    conf.update(settings)
    pop = dpop_factory(start=False, authent_method="unix_user", run_as=run_as,
                       sysadmin=None, **conf)
    srv = pop.srv
    srv.owner = run_as  # the test directory belongs to the temporary run_as account
    srv.start()
    pop.start()
    return srv, pop


def test_unix_user_delivery_and_pop_login(accounts, dpop_factory):
    user, run_as, locked, spool = accounts
    srv, pop = _serve(dpop_factory, accounts)
    text = "From: %s\r\nSubject: unix user\r\n\r\nhello %s\r\n" % (SENDER, user)
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=15) as s:
        assert s.sendmail(SENDER, ["%s@%s" % (user.upper(), DOMAIN)], text) == {}
        # an unknown name and a users-file user are no local users here
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail(SENDER, ["alice@" + DOMAIN], text)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail(SENDER, ["nosuch%s@%s" % (user, DOMAIN)], text)
        # an account without a password still receives mail
        assert s.sendmail(SENDER, ["%s@%s" % (locked, DOMAIN)], text) == {}
    mbox = os.path.join(spool, user)
    with open(mbox, "rb") as f:
        data = f.read()
    assert b"hello " + user.encode() in data
    assert os.path.isfile(os.path.join(spool, locked))
    assert not os.path.exists(os.path.join(srv.drop, user))

    c = RawPOP(pop.pop_port)
    c.stls()
    c.ok("USER " + user)
    with pytest.raises(POPError):
        c.ok("PASS wrong-" + PASSWORD)
    c.close()

    c = RawPOP(pop.pop_port)
    c.stls()
    assert "1 messages" in c.login(user, PASSWORD)
    st, body = c.multi("RETR 1")
    assert b"hello " + user.encode() in body
    c.ok("DELE 1")
    c.ok("QUIT")
    c.close()
    with open(mbox, "rb") as f:
        assert b"hello " + user.encode() not in f.read()

    # user@local-domain works as a login too; the locked account cannot log in
    c = RawPOP(pop.pop_port)
    c.stls()
    assert "0 messages" in c.login("%s@%s" % (user, DOMAIN), PASSWORD)
    c.ok("QUIT")
    c.close()
    for name, pw in ((locked, ""), (locked, "x"), ("alice", None), ("root", "root")):
        c = RawPOP(pop.pop_port)
        c.stls()
        c.ok("USER " + name)
        with pytest.raises(POPError):
            c.ok("PASS " + (pw if pw is not None else srv.passwords["alice"]))
        c.close()


def test_unix_user_smtp_auth(accounts, dpop_factory):
    user, run_as, locked, spool = accounts
    srv, pop = _serve(dpop_factory, accounts)
    for attempt in range(2):  # the second one is answered from the cache
        with smtplib.SMTP(HOST, srv.submission_port, local_hostname="c.example",
                          timeout=15) as s:
            s.starttls(context=tls_client_context())
            s.ehlo()
            code, _ = s.login(user, PASSWORD)
            assert code == 235
    with smtplib.SMTP(HOST, srv.submission_port, local_hostname="c.example", timeout=15) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(user, PASSWORD + "x")
    assert PASSWORD not in srv.log()


def _wait_log(srv, text, count=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.log().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def test_unix_user_pipelined_rcpt_lookups_keep_order(accounts, dpop_factory):
    """RCPT of accounts not looked up yet waits for the thread pool; pipelined replies
    still come in command order and DATA delivers to both mailboxes."""
    user, run_as, locked, spool = accounts
    srv, pop = _serve(dpop_factory, accounts, log_level="debug")
    unknown = "nosuch%s" % user
    body = "From: %s\r\nSubject: pipelined\r\n\r\npipelined to two accounts\r\n.\r\n" % SENDER
    c = RawSMTP(srv.smtp_port)
    assert "PIPELINING" in c.ehlo()
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s@%s>\r\nRCPT TO:<%s@%s>\r\n"
           "RCPT TO:<%s@%s>\r\nDATA\r\n" % (SENDER, user, DOMAIN, unknown, DOMAIN,
                                             locked, DOMAIN))
    replies = [c.reply() for _ in range(5)]
    codes = [r[0] for r in replies]
    assert codes == [250, 250, 550, 250, 354], replies
    assert replies[1][1][-1].startswith("2.1.5")
    assert replies[2][1][-1] == ("5.1.1 <%s@%s>: Recipient address rejected: User unknown"
                                 % (unknown, DOMAIN))
    assert replies[3][1][-1].startswith("2.1.5")
    c.send(body)
    code, lines = c.reply()
    assert code == 250 and lines[-1].startswith("2.0.0 Ok: queued as"), lines
    c.expect("QUIT", 221)
    c.close()
    for name in (user, locked):
        with open(os.path.join(spool, name), "rb") as f:
            assert b"pipelined to two accounts" in f.read()
    log = srv.log()
    # all three went to the pool (none was cached), each logged once
    for name in (user, unknown, locked):
        assert log.count("rcpt lookup=pool to=<%s@%s>" % (name, DOMAIN)) == 1, name
    assert "result=unknown" in log


def test_unix_user_rcpt_then_close_while_looking_up(accounts, dpop_factory):
    """A client that resets the connection right after RCPTs that need lookups: the session
    goes while a lookup runs, its result is dropped, and dsmtp stays up (and clean under
    ASan: the fixture checks the sanitizer report). Unknown names are never cached, so
    every one of them goes to the pool."""
    user, run_as, locked, spool = accounts
    srv, pop = _serve(dpop_factory, accounts, log_level="debug")
    n = 8
    for i in range(n):
        c = RawSMTP(srv.smtp_port)
        c.ehlo()
        first = user if i == 0 else "gone%d%s" % (i, user)
        c.send("MAIL FROM:<%s>\r\n" % SENDER + "".join(
            "RCPT TO:<%s@%s>\r\n" % (name, DOMAIN)
            for name in (first, "gone%da%s" % (i, user), "gone%db%s" % (i, user))))
        # RST at once: the replies cannot be written
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    assert _wait_log(srv, "disconnect reason=", n)
    assert _wait_log(srv, "rcpt lookup=pool result=dropped reason=client-gone"), \
        srv.log()[-4000:]
    # still serving, and the account found by an abandoned session is known
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=15) as s:
        text = "From: %s\r\nSubject: after\r\n\r\nafter the close\r\n" % SENDER
        assert s.sendmail(SENDER, ["%s@%s" % (user, DOMAIN)], text) == {}
    with open(os.path.join(spool, user), "rb") as f:
        assert b"after the close" in f.read()


def test_unix_user_rcpt_and_vrfy_served_from_cache(accounts, dpop_factory):
    """An account found once is not looked up again: the second RCPT (another session)
    and VRFY answer at once, without a pool trip; an unknown name goes to the pool every
    time (absence is not cached)."""
    user, run_as, locked, spool = accounts
    srv, pop = _serve(dpop_factory, accounts, log_level="debug", vrfy=True)
    rcpt = "rcpt lookup=pool to=<%s@%s>" % (user.upper(), DOMAIN)
    for attempt in range(2):
        c = RawSMTP(srv.smtp_port)
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s@%s>" % (user.upper(), DOMAIN), 250, "2.1.5")
        c.expect("RCPT TO:<nosuch%s@%s>" % (user, DOMAIN), 550, "5.1.1")
        c.expect("VRFY %s" % user, 250, "2.1.5")
        c.expect("QUIT", 221)
        c.close()
    log = srv.log()
    assert log.count(rcpt) == 1, log[-3000:]
    assert log.count("rcpt lookup=pool to=<nosuch%s@%s>" % (user, DOMAIN)) == 2
    assert "vrfy lookup=pool to=<%s@%s>" % (user, DOMAIN) not in log
    # VRFY of an account not seen yet goes to the pool, then is cached as well
    c = RawSMTP(srv.smtp_port)
    c.ehlo()
    c.expect("VRFY <%s@%s>" % (locked, DOMAIN), 250, "2.1.5")
    c.expect("VRFY nosuch%s" % user, 550, "5.1.1")
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s@%s>" % (locked, DOMAIN), 250, "2.1.5")
    c.expect("QUIT", 221)
    c.close()
    log = srv.log()
    assert log.count("vrfy lookup=pool to=<%s@%s>" % (locked, DOMAIN)) == 1
    assert "rcpt lookup=pool to=<%s@%s>" % (locked, DOMAIN) not in log


def test_unix_user_recipients_added_by_milter_looked_up_on_pool(accounts, dpop_factory):
    """Recipients a milter adds at end of message that are Unix accounts not seen yet are
    looked up on the thread pool (NSS may block), not on the loop: each added account gets
    the message, an unknown one is skipped, and the message still reaches the original
    recipient."""
    import milter_fake as mf
    user, run_as, locked, spool = accounts
    milter = mf.FakeMilter().start()
    try:
        unknown = "nosuch%s" % user
        milter.on("eom", ("addrcpt", "<%s@%s>" % (user, DOMAIN)),
                  ("addrcpt", "<%s@%s>" % (unknown, DOMAIN)), mf.CONTINUE)
        srv, pop = _serve(dpop_factory, accounts, log_level="debug", milters=milter.address,
                          milter_content_timeout="10s")
        text = "From: %s\r\nSubject: added\r\n\r\nadded by the milter\r\n" % SENDER
        with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example",
                          timeout=15) as s:
            assert s.sendmail(SENDER, ["%s@%s" % (locked, DOMAIN)], text) == {}
        for name in (user, locked):
            with open(os.path.join(spool, name), "rb") as f:
                assert b"added by the milter" in f.read(), name
        assert not os.path.exists(os.path.join(spool, unknown))
        log = srv.log()
        assert log.count("milter rcpt-add lookup=pool") == 2, log
        assert "rcpt-add to=<%s@%s> result=ok" % (user, DOMAIN) in log
        assert "rcpt-add to=<%s@%s> result=unknown" % (unknown, DOMAIN) in log
    finally:
        milter.stop()
    assert not milter.errors, milter.errors


def test_unix_user_mailboxes_in_drop_path_when_mail_spool_is_not_set(accounts, dpop_factory):
    """DMail's meaning: without mail_spool, a drop_path set in the file holds the Unix
    accounts' mailboxes (dsmtp writes there, dpop reads there)."""
    user, run_as, locked, spool = accounts
    srv, pop = _serve(dpop_factory, accounts, mail_spool=None, drop_path=spool)
    text = "From: %s\r\nSubject: drop_path\r\n\r\nin drop_path\r\n" % SENDER
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=15) as s:
        assert s.sendmail(SENDER, ["%s@%s" % (user, DOMAIN)], text) == {}
    with open(os.path.join(spool, user), "rb") as f:
        assert b"in drop_path" in f.read()
    assert not os.path.exists(os.path.join("/var/mail", user))
    c = RawPOP(pop.pop_port)
    c.stls()
    assert "1 messages" in c.login(user, PASSWORD)
    c.ok("QUIT")
