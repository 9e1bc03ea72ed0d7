"""dpop with real clients: Python poplib and a line-exact raw client through every command
and state (RFC 1939, 2449, 2595, 5034), the error paths, TLS, [IN-USE], the login penalty,
streaming, and UPDATE.
"""

import base64
import hashlib
import mailbox
import poplib
import socket
import threading
import time

import pytest

from dmail_site import HOST, PASSWORDS, RawPOP, client_form, hold_dotlock, tls_client_context

MSGS = [
    b"From: a@remote.example\nSubject: one\n\nfirst body\n",
    b"From: b@remote.example\nSubject: two\n\n.leading dot\n..two dots\nFrom the start\n"
    b">From quoted\n.\n",
    b"From: c@remote.example\nSubject: three\n\nline 1\nline 2\nline 3\nno newline at end",
]
UIDLS = ["uid-one", "uid-two", "uid-three"]


@pytest.fixture
def pop(dpop_factory):
    p = dpop_factory()
    p.put_mbox("alice", MSGS, UIDLS)
    return p


def parse_list(body):
    out = {}
    for ln in body.decode().split("\r\n"):
        if ln:
            n, v = ln.split(" ", 1)
            out[int(n)] = v
    return out


# ---- greeting, CAPA, TLS rules ----

def test_greeting_and_capa_before_and_after_stls(pop):
    c = pop.raw()
    assert c.greeting.startswith("+OK")
    assert "<" not in c.greeting  # APOP is off by default: no timestamp
    st, body = c.multi("CAPA")
    caps = body.decode().split("\r\n")
    for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
        assert cap in caps
    assert "USER" not in caps and not any(x.startswith("SASL") for x in caps)
    assert any(x.startswith("IMPLEMENTATION dmail-") for x in caps)
    c.stls()
    caps = c.multi("CAPA")[1].decode().split("\r\n")
    assert "USER" in caps and "SASL PLAIN LOGIN" in caps and "STLS" not in caps
    c.err("STLS")  # already TLS
    c.login("alice")
    caps = c.multi("CAPA")[1].decode().split("\r\n")
    assert "USER" not in caps and "TOP" in caps
    c.ok("QUIT")
    c.close()


def test_plaintext_login_refused_without_tls(pop):
    c = pop.raw()
    c.err("USER alice", "AUTH")
    c.err("PASS x", "AUTH")
    c.err("AUTH PLAIN " + base64.b64encode(b"\0alice\0x").decode(), "AUTH")
    c.err("AUTH LOGIN", "AUTH")
    st, body = c.multi("AUTH")  # no mechanism offered in plaintext
    assert body == b""
    c.ok("QUIT")


def test_auth_plaintext_setting_allows_it(dpop_factory):
    pop = dpop_factory(auth_plaintext=True, tls=False)
    pop.put_mbox("alice", MSGS[:1], UIDLS[:1])
    c = pop.raw()
    caps = c.multi("CAPA")[1].decode().split("\r\n")
    assert "USER" in caps and "STLS" not in caps  # no certificate: no STLS
    c.err("STLS")
    assert "1 messages" in c.login("alice")
    c.ok("QUIT")


# ---- the whole TRANSACTION state with poplib ----

def test_poplib_every_command(pop):
    p = poplib.POP3(HOST, pop.pop_port, timeout=10)
    p.stls(tls_client_context())
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    sizes = [len(client_form(m, "Status: O\r\n")) for m in MSGS]
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert [ln.decode() for ln in lines] == ["%d %d" % (i + 1, s) for i, s in enumerate(sizes)]
    assert p.list(2).decode() == "+OK 2 %d" % sizes[1]
    resp, lines, _ = p.uidl()
    assert [ln.decode() for ln in lines] == ["%d %s" % (i + 1, u) for i, u in enumerate(UIDLS)]
    assert p.uidl(3).decode() == "+OK 3 uid-three"
    for i, m in enumerate(MSGS):
        resp, lines, octets = p.retr(i + 1)
        want = client_form(m, "Status: O\r\n")
        assert b"\r\n".join(lines) + b"\r\n" == want
        assert octets >= len(want)  # poplib counts the stuffed form
    resp, lines, _ = p.top(3, 2)
    assert lines == [b"From: c@remote.example", b"Subject: three", b"Status: O", b"",
                     b"line 1", b"line 2"]
    resp, lines, _ = p.top(1, 0)
    assert lines[-1] == b"" and lines[-2] == b"Status: O"
    assert p.noop().startswith(b"+OK")
    p.dele(2)
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    with pytest.raises(poplib.error_proto):
        p.dele(2)
    with pytest.raises(poplib.error_proto):
        p.top(2, 1)
    with pytest.raises(poplib.error_proto):
        p.list(2)
    with pytest.raises(poplib.error_proto):
        p.uidl(2)
    assert p.stat() == (2, sizes[0] + sizes[2])
    assert [ln.split()[0] for ln in p.uidl()[1]] == [b"1", b"3"]
    p.rset()
    assert p.stat() == (3, sum(sizes))
    p.dele(1)
    assert p.quit().startswith(b"+OK")
    # UPDATE happened: message 1 gone, the others intact
    box = mailbox.mbox(pop.mbox_path("alice"), create=False)
    subjects = [m["Subject"] for m in box]
    box.close()
    assert subjects == ["two", "three"]
    p = poplib.POP3_SSL(HOST, pop.pop3s_port, context=tls_client_context(), timeout=10)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert [ln.decode() for ln in p.uidl()[1]] == ["1 uid-two", "2 uid-three"]
    # retrieved last time: now Status: RO, and the size says so
    resp, lines, _ = p.retr(1)
    assert b"Status: RO" in lines
    assert p.list(1).decode() == "+OK 1 %d" % len(client_form(MSGS[1], "Status: RO\r\n"))
    p.quit()


def alice_session(pop):
    """alice's mbox as it is now, and a session logged in as alice after STLS."""
    before = pop.raw_mbox("alice")
    c = pop.raw("stls")
    c.login("alice")
    return before, c


def test_quit_without_dele_changes_nothing(pop):
    before, c = alice_session(pop)
    c.multi("RETR 1")
    c.ok("QUIT")
    c.close()
    assert pop.raw_mbox("alice") == before


def test_no_quit_means_no_update(pop):
    before, c = alice_session(pop)
    c.ok("DELE 1")
    c.ok("DELE 2")
    c.close()  # gone without QUIT
    time.sleep(0.3)
    assert pop.raw_mbox("alice") == before
    c = pop.raw("stls")
    assert "3 messages" in c.login("alice")
    c.ok("QUIT")


def test_delete_all(pop):
    c = pop.raw("pop3s")
    c.login("alice")
    for i in (1, 2, 3):
        c.ok("DELE %d" % i)
    assert c.ok("STAT") == "+OK 0 0"
    assert c.multi("LIST")[1] == b""
    assert "0 messages left" in c.ok("QUIT")
    assert pop.raw_mbox("alice") == b""


def test_empty_and_missing_mailbox(pop):
    c = pop.raw("stls")
    assert "0 messages (0 octets)" in c.login("bob")  # bob has no mbox at all
    assert c.ok("STAT") == "+OK 0 0"
    c.err("RETR 1")
    c.ok("QUIT")


# ---- exact bytes ----

def test_retr_exact_bytes_and_sizes(dpop_factory):
    pop = dpop_factory(add_status=False)
    texts = MSGS + [b"Subject: crlf\r\n\r\nalready\r\ncrlf\r\n",
                    b"Subject: empty body\n\n",
                    b"Subject: no body at all\n",
                    b"Subject: long\n\n" + b"x" * 100000 + b"\n" + b".\n" * 1000]
    pop.put_mbox("alice", texts, [None] * len(texts))
    c = pop.raw("stls")
    c.login("alice")
    sizes = parse_list(c.multi("LIST")[1])
    for i, t in enumerate(texts):
        st, body = c.multi("RETR %d" % (i + 1))
        want = client_form(t)
        assert body == want, i
        assert int(sizes[i + 1]) == len(want)
        assert st == "+OK %d octets" % len(want)
    st, body = c.multi("TOP 4 0")
    assert body == b"Subject: crlf\r\n\r\n"
    st, body = c.multi("TOP 6 5")  # no empty line: the whole header
    assert body == b"Subject: no body at all\r\n"
    c.ok("QUIT")


def test_add_status_respects_existing_header(dpop_factory):
    pop = dpop_factory()
    pop.put_mbox("alice", [b"Subject: s\nStatus: R\n\nbody\n", b"Subject: t\n\nbody\n"])
    c = pop.raw("stls")
    c.login("alice")
    assert c.multi("RETR 1")[1] == b"Subject: s\r\nStatus: R\r\n\r\nbody\r\n"
    assert c.multi("RETR 2")[1] == b"Subject: t\r\nStatus: O\r\n\r\nbody\r\n"
    c.ok("QUIT")


# ---- errors and limits ----

def test_error_paths(pop):
    c = pop.raw("stls")
    c.err("STAT")           # not logged in
    c.err("RETR 1")
    c.err("PASS x")         # USER first
    c.err("FOO")            # unknown
    c.err("")               # empty line
    c.err("USER")           # missing argument
    c.err("APOP alice 0123456789abcdef0123456789abcdef")  # APOP off
    c.login("alice")
    c.err("USER alice")     # wrong state
    c.err("PASS x")
    c.err("STLS")
    c.err("RETR")
    c.err("RETR x")
    c.err("RETR 0")
    c.err("RETR 4")         # no such message
    c.err("LIST 99")
    c.err("TOP 1")
    c.err("TOP 1 -1")
    c.err("DELE 1 2")
    c.err("LAST")
    c.err("X" * 300)        # over 255 octets
    assert c.ok("NOOP") == "+OK"  # still in sync
    c.ok("QUIT")


def test_line_too_long_stays_in_sync(pop):
    c = pop.raw("stls")
    c.send("NOOP " + "y" * 5000 + "\r\nCAPA\r\n")
    assert c.readline().startswith("-ERR")
    assert c.readline().startswith("+OK Capability")
    c.body()
    c.send("USER " + "a" * 248 + "\r\n")  # 255 octets with CRLF: accepted
    assert c.readline() == "+OK"
    c.send("USER " + "a" * 249 + "\r\n")  # 256: refused
    assert c.readline().startswith("-ERR")
    c.ok("QUIT")


def test_error_budget_closes(dpop_factory):
    pop = dpop_factory(pop_error_limit=5)
    c = pop.raw()
    for _ in range(4):
        c.err("BOGUS")
    r = c.cmd("BOGUS")
    assert r.startswith("-ERR") and "Too many" in r
    assert c.closed()


def test_idle_timeout(dpop_factory):
    pop = dpop_factory(pop_timeout=2)
    pop.put_mbox("alice", MSGS, UIDLS)
    before = pop.raw_mbox("alice")
    c = pop.raw("stls")
    c.login("alice")
    c.ok("DELE 1")
    t0 = time.monotonic()
    assert c.closed(timeout=8)
    assert 1.5 < time.monotonic() - t0 < 7
    assert b"-ERR" in c.buf and b"inactivity" in c.buf
    assert pop.raw_mbox("alice") == before  # autologout: no UPDATE


# ---- SASL and APOP ----

def test_auth_plain_and_login(pop):
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    c = pop.raw("stls")
    c.ok("AUTH")
    assert c.body() == b"PLAIN\r\nLOGIN\r\n"
    c.err("AUTH CRAM-MD5")
    c.err("AUTH PLAIN " + b64("\0alice\0wrong"), "AUTH")
    c.err("AUTH PLAIN not-base64!", "AUTH")
    c.err("AUTH PLAIN " + b64("bob\0alice\0" + PASSWORDS["alice"]), "AUTH")  # authzid
    assert c.cmd("AUTH PLAIN") == "+ "
    assert c.err("*") == "-ERR Authentication cancelled"
    assert c.cmd("AUTH PLAIN") == "+ "
    assert "3 messages" in c.ok(b64("\0alice\0" + PASSWORDS["alice"]))
    c.ok("QUIT")
    c = pop.raw("stls")
    assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
    assert c.cmd(b64("bob")) == "+ UGFzc3dvcmQ6"
    c.ok(b64(PASSWORDS["bob"]))  # bob's password has a space and a colon
    c.ok("QUIT")
    c = pop.raw("pop3s")
    assert c.cmd("AUTH LOGIN " + b64("alice")) == "+ UGFzc3dvcmQ6"
    c.ok(b64(PASSWORDS["alice"]))
    c.ok("QUIT")
    c = pop.raw("stls")
    c.ok("AUTH PLAIN " + b64("alice\0alice\0" + PASSWORDS["alice"]))  # authzid = authcid
    c.ok("QUIT")


def test_pass_with_spaces_and_case_insensitive_commands(pop):
    c = pop.raw("stls")
    c.ok("user bob")
    c.ok("pass " + PASSWORDS["bob"])
    c.ok("stat")
    c.ok("quit")


def test_apop(dpop_factory):
    pop = dpop_factory(apop_enable=True)
    pop.add_user("erin", "erin-pw", "apop=erin-apop-secret")
    pop.srv.chown()
    pop.restart()
    pop.put_mbox("erin", MSGS[:1], UIDLS[:1])
    p = poplib.POP3(HOST, pop.pop_port, timeout=10)
    assert b"<" in p.getwelcome()
    assert p.apop("erin", "erin-apop-secret").startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()
    p = poplib.POP3(HOST, pop.pop_port, timeout=10)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.apop("erin", "wrong")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.apop("alice", PASSWORDS["alice"])  # no APOP secret: APOP never works for alice
    p.quit()
    # the digest is bound to this greeting's timestamp: replaying another fails
    c = pop.raw()
    ts = c.greeting[c.greeting.index("<"):c.greeting.index(">") + 1]
    digest = hashlib.md5((ts + "erin-apop-secret").encode()).hexdigest()
    d = pop.raw()
    d.err("APOP erin " + digest, "AUTH")
    c.ok("APOP erin " + digest.upper())
    c.ok("QUIT")


# ---- one session per mailbox ----

def test_in_use(pop):
    a = pop.raw("stls")
    a.login("alice")
    b = pop.raw("stls")
    b.ok("USER alice")
    b.err("PASS " + PASSWORDS["alice"], "IN-USE")
    b.ok("QUIT")
    a.ok("DELE 1")
    a.ok("QUIT")
    a.close()
    c = pop.raw("stls")
    assert "2 messages" in c.login("alice")
    c.ok("QUIT")


# ---- login penalty ----

def test_login_penalty_doubles_and_does_not_block(dpop_factory):
    pop = dpop_factory(auth_fail_delay=1, login_penalty_max=4, auth_plaintext=True, tls=False)
    pop.put_mbox("alice", MSGS, UIDLS)
    times = []
    c = pop.raw()
    for _ in range(5):
        c.ok("USER alice")
        t0 = time.monotonic()
        c.err("PASS wrong", "AUTH")
        times.append(time.monotonic() - t0)
    # delay = failure delay 1 s + penalty 0, 1, 2, 4, 4 s
    for got, want in zip(times, (1, 2, 3, 5, 5)):
        assert want - 0.3 < got < want + 1.5, times
    # meanwhile another session (another login name, same address) is not stuck behind it
    c.ok("USER alice")
    c.send("PASS wrong\r\n")
    other = pop.raw()
    t0 = time.monotonic()
    other.ok("CAPA")
    other.body()
    assert time.monotonic() - t0 < 0.5
    assert c.readline().startswith("-ERR [AUTH]")
    # the right password still works (after the penalty), and clears it
    t0 = time.monotonic()
    other.ok("USER alice")
    other.ok("PASS " + PASSWORDS["alice"])
    assert time.monotonic() - t0 > 3
    other.ok("QUIT")
    d = pop.raw()
    t0 = time.monotonic()
    d.ok("USER alice")
    d.ok("PASS " + PASSWORDS["alice"])
    assert time.monotonic() - t0 < 1
    d.ok("QUIT")


# ---- pipelining and STLS injection ----

def test_pipelining_replies_in_order(dpop_factory):
    pop = dpop_factory(auth_plaintext=True)
    pop.put_mbox("alice", MSGS, UIDLS)
    c = pop.raw()
    c.send("USER alice\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 2\r\nTOP 1 0\r\nDELE 3\r\n"
           "BOGUS\r\nNOOP\r\nQUIT\r\n" % PASSWORDS["alice"])
    assert c.readline() == "+OK"
    assert c.readline().startswith("+OK Logged in")
    assert c.readline().startswith("+OK 3 ")
    assert c.readline().startswith("+OK 3 messages")
    assert len(parse_list(c.body())) == 3
    assert c.readline() == "+OK 2 uid-two"
    assert c.readline().startswith("+OK")
    assert c.body() == client_form(MSGS[1], "Status: O\r\n")
    assert c.readline().startswith("+OK")
    c.body()
    assert c.readline() == "+OK Message 3 deleted"
    assert c.readline().startswith("-ERR")
    assert c.readline() == "+OK"
    r = c.readline()
    assert r.startswith("+OK") and "2 messages left" in r
    assert c.closed()


def test_stls_discards_pipelined_plaintext(pop):
    s = socket.create_connection((HOST, pop.pop_port), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"STLS\r\nCAPA\r\n")
    assert f.readline().startswith(b"+OK")
    t = tls_client_context().wrap_socket(s)
    t.sendall(b"NOOP\r\n")
    data = b""
    while b"\r\n" not in data:
        data += t.recv(4096)
    # the injected CAPA got no answer: the first reply over TLS is the NOOP's -ERR (not
    # logged in), not a capability list
    assert data.startswith(b"-ERR"), data
    t.close()


def test_openssl_s_client_starttls(pop):
    import subprocess
    script = "USER alice\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" % PASSWORDS["alice"]
    out = subprocess.run(["openssl", "s_client", "-starttls", "pop3", "-connect",
                          "%s:%d" % (HOST, pop.pop_port), "-quiet", "-crlf"],
                         input=script.replace("\r\n", "\n").encode(), capture_output=True,
                         timeout=30)
    text = out.stdout.decode("utf-8", "replace")
    assert "+OK Logged in, maildrop has 3 messages" in text, text + out.stderr.decode()
    assert "+OK 3 " in text


# ---- UIDL stability ----

def test_uidl_stable_without_x_uidl(dpop_factory):
    pop = dpop_factory()
    pop.put_mbox("alice", MSGS + [MSGS[0]], None)  # no X-UIDL; a duplicate too
    c = pop.raw("stls")
    c.login("alice")
    uids = parse_list(c.multi("UIDL")[1])
    assert len(set(uids.values())) == 4
    c.ok("DELE 1")
    c.ok("DELE 3")
    c.ok("QUIT")
    c = pop.raw("stls")
    c.login("alice")
    after = parse_list(c.multi("UIDL")[1])
    assert list(after.values()) == [uids[2], uids[4]]
    c.ok("QUIT")


# ---- maildir ----

def test_maildir(dpop_factory):
    import os
    pop = dpop_factory(mailbox_format="maildir")
    names = ["1700000001.1_1.host,S=10", "1700000002.1_2.host", "1700000003.1_3.host:2,F"]
    md = pop.srv.put_maildir("alice", list(zip(names, MSGS)))
    c = pop.raw("stls")
    assert "3 messages" in c.login("alice")
    assert list(parse_list(c.multi("UIDL")[1]).values()) == [
        "1700000001.1_1.host", "1700000002.1_2.host", "1700000003.1_3.host"]
    assert c.multi("RETR 2")[1] == client_form(MSGS[1], "Status: O\r\n")
    c.ok("DELE 1")
    c.ok("QUIT")
    assert sorted(os.listdir(os.path.join(md, "new"))) == []
    assert sorted(os.listdir(os.path.join(md, "cur"))) == [
        "1700000002.1_2.host:2,S", "1700000003.1_3.host:2,F"]
    c = pop.raw("stls")
    assert "2 messages" in c.login("alice")
    assert b"Status: RO" in c.multi("RETR 1")[1]
    c.ok("QUIT")


# ---- [SYS/TEMP] and [SYS/PERM] ----

def test_locked_mailbox_is_sys_temp(dpop_factory):
    import os
    pop = dpop_factory(lock_timeout=1)
    path = pop.put_mbox("alice", MSGS, UIDLS)
    before = pop.raw_mbox("alice")
    # a changed mailbox must be read under the lock: busy lock -> [SYS/TEMP] at login
    hold_dotlock(path, "1 some-other-node\n")
    c = pop.raw("stls")
    c.ok("USER alice")
    c.err("PASS " + PASSWORDS["alice"], "SYS/TEMP")
    os.unlink(path + ".lock")
    c.login("alice")
    c.ok("DELE 1")
    # the lock is taken again at QUIT: busy -> [SYS/TEMP] and nothing changes
    hold_dotlock(path, "1 some-other-node\n")
    r = c.cmd("QUIT")
    assert r.startswith("-ERR [SYS/TEMP]"), r
    assert c.closed()
    os.unlink(path + ".lock")
    assert pop.raw_mbox("alice") == before
    # the mailbox is free again and intact
    c = pop.raw("stls")
    assert "3 messages" in c.login("alice")
    c.ok("QUIT")


def test_unusable_mailbox_is_sys_perm(dpop_factory):
    import os
    pop = dpop_factory()
    os.makedirs(pop.mbox_path("alice"))  # a directory where the mbox should be
    os.symlink("/etc/passwd", pop.mbox_path("bob"))
    # a hard link to another file (someone else's mailbox): refused as delivery refuses it
    other = os.path.join(pop.dir, "someone-elses-mail")
    with open(other, "wb") as f:
        f.write(b"From x@y Thu Jan  1 00:00:00 2026\nSubject: not yours\n\nsecret\n")
    os.link(other, pop.mbox_path("carol"))
    pop.srv.chown()
    for user in ("alice", "bob", "carol"):
        c = pop.raw("stls")
        c.ok("USER " + user)
        c.err("PASS " + PASSWORDS[user], "SYS/PERM")
        c.ok("QUIT")


# ---- bulletins ----

def test_bulletins_once_per_user(dpop_factory):
    import os
    pop = dpop_factory(start=False, bulletin_from="Help Desk")
    bdir = os.path.join(pop.dir, "bulletins")
    os.makedirs(bdir)
    with open(os.path.join(bdir, "1.txt"), "w") as f:
        f.write("Subject: Welcome\n\nThe new mail server is up.\n")
    pop.srv.write_conf({"bulletin_path": bdir})
    pop.start()
    pop.put_mbox("alice", MSGS[:1], UIDLS[:1])
    c = pop.raw("stls")
    assert "2 messages" in c.login("alice")
    body = c.multi("RETR 2")[1]
    assert b"Subject: Welcome\r\n" in body and b"From: Help Desk <postmaster@" in body
    assert body.endswith(b"\r\n\r\nThe new mail server is up.\r\n")
    c.ok("DELE 2")
    c.ok("QUIT")
    c = pop.raw("stls")
    assert "1 messages" in c.login("alice")  # deleted, and not delivered again
    c.ok("QUIT")
    with open(os.path.join(bdir, "2.txt"), "w") as f:
        f.write("Second notice.\n")
    pop.srv.chown()
    c = pop.raw("stls")
    assert "2 messages" in c.login("alice")
    assert b"Subject: Bulletin 2\r\n" in c.multi("TOP 2 0")[1]
    c.ok("QUIT")
    c = pop.raw("stls")
    assert "2 messages" in c.login("bob")  # bob gets both
    c.ok("QUIT")


# ---- connection caps and shutdown ----

def test_max_per_ip_refused_with_sys_temp(dpop_factory):
    pop = dpop_factory(max_per_ip=2)
    a, b = pop.raw(), pop.raw()
    c = RawPOP(pop.pop_port, greeting=False)
    r = c.readline()
    assert r.startswith("-ERR [SYS/TEMP]"), r
    assert c.closed()
    a.ok("QUIT")
    a.close()
    time.sleep(0.3)
    d = pop.raw()
    assert d.greeting.startswith("+OK")
    for x in (b, d):
        x.ok("QUIT")


def test_sigterm_tells_idle_sessions(pop):
    import signal
    c = pop.raw("stls")
    c.login("alice")
    c.ok("DELE 1")
    before = pop.raw_mbox("alice")
    pop.proc.send_signal(signal.SIGTERM)
    assert c.closed()
    assert c.buf.startswith(b"-ERR [SYS/TEMP]"), c.buf
    assert pop.proc.wait(10) == 0
    pop._reap()
    assert pop.raw_mbox("alice") == before  # no QUIT: no UPDATE
