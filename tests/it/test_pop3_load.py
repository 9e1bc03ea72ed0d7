"""dpop under load and with other programs: big messages streamed in bounded memory, a
client vanishing mid-RETR, 1,000 concurrent sessions, fetchmail, mail delivered by our
dsmtp read back byte-exact, and kill -9 during UPDATE while dsmtp delivers.
"""

import hashlib
import mailbox
import os
import random
import re
import resource
import selectors
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from dmail_site import (
    BIN,
    DOMAIN,
    HOST,
    PASSWORDS,
    client_form,
    make_message,
    sha512_crypt,
)

BIG = 24 * 1024 * 1024


def big_text(size=BIG):
    """A message of about size bytes with long and short lines, dots and From lines."""
    line = b"".join(b"%06d abcdefghijklmnopqrstuvwxyz\n" % i for i in range(1000))
    body = (line + b".dot line\nFrom here\n>From there\n") * (size // (len(line) + 40) + 1)
    return b"Subject: big\nFrom: big@remote.example\n\n" + body[:size] + b"end\n"


def need(binary):
    if shutil.which(binary) is None and not os.access(binary, os.X_OK):
        pytest.skip("%s is not installed" % binary)


# ---- streaming ----

def test_big_message_streamed_in_bounded_memory(dpop_factory):
    pop = dpop_factory()
    text = big_text()
    pop.put_mbox("alice", [text], ["big-1"])
    want = client_form(text, "Status: O\r\n")
    c = pop.raw("stls")
    c.login("alice")
    rss0 = pop.rss_kb()
    assert c.ok("LIST 1") == "+OK 1 %d" % len(want)
    st = c.ok("RETR 1")
    assert st == "+OK %d octets" % len(want)
    # a slow reader: the server must wait for it, not buffer the message
    time.sleep(1.0)
    peak = pop.rss_kb()
    body = c.body()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(want).hexdigest()
    if not BIN.rstrip("/").endswith("asan"):  # ASan's quarantine keeps freed chunks
        assert peak - rss0 < 8 * 1024, "dpop grew by %d kB with a slow client" % (peak - rss0)
    st, top = c.multi("TOP 1 3")
    assert top.endswith(b"\r\n\r\n000000 abcdefghijklmnopqrstuvwxyz\r\n"
                        b"000001 abcdefghijklmnopqrstuvwxyz\r\n"
                        b"000002 abcdefghijklmnopqrstuvwxyz\r\n")
    c.ok("QUIT")


def test_client_vanishes_mid_retr(dpop_factory):
    pop = dpop_factory()
    text = big_text()
    pop.put_mbox("alice", [text, b"Subject: small\n\nsmall\n"], ["big-1", "small-2"])
    before = pop.raw_mbox("alice")
    for how in ("close", "reset"):
        c = pop.raw("stls")
        c.login("alice")
        c.ok("DELE 2")
        c.ok("RETR 1")
        got = 0
        while got < 200000:
            got += len(c.sock.recv(65536))
        if how == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        c.close()
        # the mailbox is free again at once and nothing was deleted (no QUIT)
        deadline = time.monotonic() + 5
        while True:
            d = pop.raw("stls")
            d.ok("USER alice")
            r = d.cmd("PASS " + PASSWORDS["alice"])
            if r.startswith("+OK") or time.monotonic() > deadline:
                break
            d.close()
            time.sleep(0.1)
        assert "2 messages" in r, r
        d.ok("QUIT")
        d.close()
        assert pop.alive()
    assert pop.raw_mbox("alice") == before
    assert "eof during retr" in pop.log() or "error" in pop.log()


# ---- many sessions ----

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_1000_concurrent_sessions(dpop_factory):
    n = 1000
    if raise_nofile(4 * n + 100) < 2 * n + 100:
        pytest.skip("cannot raise RLIMIT_NOFILE")
    pop = dpop_factory(auth_plaintext=True, tls=False, max_connections=n + 100,
                       max_per_ip=n + 100, start=False)
    h = sha512_crypt("load-pw")
    with open(pop.srv.users_file, "a") as f:
        for i in range(n):
            f.write("u%04d:%s\n" % (i, h))
    for i in range(n):
        pop.put_mbox("u%04d" % i, [b"Subject: for u%04d\n\nhello\n" % i], ["m-%d" % i])
    pop.start()
    sel = selectors.DefaultSelector()
    conns = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.create_connection((HOST, pop.pop_port), timeout=30)
        s.setblocking(False)
        st = {"sock": s, "buf": b"", "lines": [], "i": i}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)
        s.sendall(b"USER u%04d\r\nPASS load-pw\r\nSTAT\r\n" % i)

    def pump(want_lines, timeout):
        deadline = time.monotonic() + timeout
        while any(len(c["lines"]) < want_lines for c in conns):
            if time.monotonic() > deadline:
                late = [c["i"] for c in conns if len(c["lines"]) < want_lines]
                raise AssertionError("%d sessions did not answer: %s" % (len(late), late[:10]))
            for key, _ in sel.select(timeout=1.0):
                c = key.data
                data = c["sock"].recv(65536)
                if not data:
                    if len(c["lines"]) < want_lines:
                        raise AssertionError("session %d closed: %r" % (c["i"], c["lines"]))
                    sel.unregister(c["sock"])
                    c["closed"] = True
                    continue
                c["buf"] += data
                while b"\r\n" in c["buf"]:
                    ln, c["buf"] = c["buf"].split(b"\r\n", 1)
                    c["lines"].append(ln)

    pump(4, 120)  # greeting, USER, PASS, STAT
    login_time = time.monotonic() - t0
    for c in conns:
        assert c["lines"][2].startswith(b"+OK Logged in"), c["lines"]
        assert c["lines"][3] == b"+OK 1 %d" % len(client_form(
            b"Subject: for u%04d\n\nhello\n" % c["i"], "Status: O\r\n")), c["lines"]
    rss = pop.rss_kb()
    print("dpop: %d sessions logged in in %.2f s, RSS %d kB" % (n, login_time, rss))
    # all of them at once, still answering
    for c in conns:
        c["sock"].sendall(b"UIDL 1\r\nQUIT\r\n")
    pump(6, 60)
    for c in conns:
        assert c["lines"][4] == b"+OK 1 m-%d" % c["i"], c["lines"]
        assert c["lines"][5].startswith(b"+OK"), c["lines"]
        if not c.get("closed"):
            sel.unregister(c["sock"])
        c["sock"].close()
    assert pop.alive()


# ---- fetchmail ----

def fetchmail(pop, home, ssl_mode, keep, out):
    need("fetchmail")
    rc = os.path.join(home, "fetchmailrc")
    port = pop.pop3s_port if ssl_mode == "pop3s" else pop.pop_port
    with open(rc, "w") as f:
        f.write("set no syslog\n")
        f.write("poll %s with proto POP3 service %d uidl\n" % (HOST, port))
        f.write('  user "alice" there with password "%s" is "%s" here\n'
                % (PASSWORDS["alice"], os.environ.get("USER", "root")))
        f.write("  options %s %s no sslcertck sslproto 'TLS1.2+'\n"
                % ("keep" if keep else "no keep", "ssl" if ssl_mode == "pop3s" else ""))
        f.write("  mda \"/bin/sh -c 'cat >> %s; echo ==END== >> %s'\"\n" % (out, out))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
    r = subprocess.run(["fetchmail", "-f", rc, "-v", "--nodetach", "--nosyslog"],
                       capture_output=True, env=env, timeout=60)
    return r.returncode, r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")


def test_fetchmail_stls_keep_then_pop3s_delete(dpop_factory, tmp_path):
    need("fetchmail")
    pop = dpop_factory()
    texts = [b"Subject: fm %d\nMessage-ID: <fm%d@x>\n\nbody %d\n.dot\n" % (i, i, i)
             for i in range(3)]
    pop.put_mbox("alice", texts, ["fm-%d" % i for i in range(3)])
    before = pop.raw_mbox("alice")
    out = tmp_path / "out"
    rc, log = fetchmail(pop, str(tmp_path), "stls", True, out)
    assert rc == 0, log
    assert "STLS" in log, log
    got = out.read_bytes()
    assert got.count(b"==END==") == 3, got
    for i in range(3):
        assert b"Subject: fm %d" % i in got and b"body %d\n.dot\n" % i in got
    assert pop.raw_mbox("alice") == before  # kept
    # UIDLs remembered: nothing new the second time
    rc, log = fetchmail(pop, str(tmp_path), "stls", True, out)
    assert rc == 1, log  # 1: no mail
    assert out.read_bytes().count(b"==END==") == 3
    # over POP3S without keep: everything fetched and deleted
    os.unlink(str(tmp_path / ".fetchids")) if os.path.exists(str(tmp_path / ".fetchids")) else None
    out2 = tmp_path / "out2"
    rc, log = fetchmail(pop, str(tmp_path), "pop3s", False, out2)
    assert rc == 0, log
    assert out2.read_bytes().count(b"==END==") == 3, log
    assert pop.raw_mbox("alice") == b""


# ---- with dsmtp ----

def need_dsmtp():
    if not os.access(os.path.join(BIN, "dsmtp"), os.X_OK):
        pytest.skip("no dsmtp binary in %s" % BIN)


def test_dsmtp_delivery_read_back_byte_exact(dpop_factory):
    need_dsmtp()
    pop = dpop_factory(add_status=False)
    pop.srv.start()
    body = ("First line.\n.leading dot line\n..two leading dots\n.\nFrom the start\n"
            ">From quoted\n>>From twice\ntab\there and trailing space \n\n" + "x" * 990 +
            "\nlast line\n")
    msgid, text = make_message(body=body)
    with smtplib.SMTP(HOST, pop.srv.smtp_port, local_hostname="client.example",
                      timeout=15) as s:
        assert s.sendmail("sender@remote.example", ["alice@" + DOMAIN], text) == {}
    raw_mbox = pop.raw_mbox("alice")
    xuidl = re.search(rb"\nX-UIDL: (\S+)\n", raw_mbox).group(1).decode()
    c = pop.raw("stls")
    c.login("alice")
    assert c.ok("UIDL 1") == "+OK 1 " + xuidl
    st, got = c.multi("RETR 1")
    want = client_form(text.encode())
    assert got.endswith(want), got
    assert int(st.split()[1]) == len(got)
    prefix = got[:len(got) - len(want)]
    for ln in prefix.rstrip(b"\r\n").split(b"\r\n"):
        assert re.match(rb"^(Return-Path:|Received:|[ \t])", ln), ln
    assert b"X-UIDL" not in got  # the store's own line is not served
    c.ok("DELE 1")
    c.ok("QUIT")
    assert pop.srv.messages("alice") == []


def test_kill9_during_update_while_dsmtp_delivers(dpop_factory):
    need_dsmtp()
    pop = dpop_factory(lock_timeout=20)
    pop.srv.start()
    filler = "".join("%05d %s\n" % (i, "f" * 70) for i in range(400))  # ~31 KB each
    acked, lock = [], threading.Lock()

    def send(tag):
        msgid, text = make_message(msgid="<%s@it.%s>" % (tag, DOMAIN), body=filler)
        with smtplib.SMTP(HOST, pop.srv.smtp_port, local_hostname="c.example", timeout=60) as s:
            s.sendmail("sender@remote.example", ["alice@" + DOMAIN], text)
        with lock:
            acked.append(msgid)

    for i in range(300):  # a ~10 MB mbox, so that UPDATE takes a while
        send("init%d" % i)
    stop = threading.Event()

    def deliverer():
        i = 0
        while not stop.is_set():
            send("late%d" % i)
            i += 1
            time.sleep(0.01)

    th = threading.Thread(target=deliverer)
    th.start()
    gone = set()         # deleted by an UPDATE (answered or not)
    cut = 0              # UPDATEs interrupted by kill -9 before their +OK
    rng = random.Random(7)
    hi = 0.06            # longest wait before the kill; adapted to this machine's speed
    try:
        for rnd in range(24):
            if rnd >= 12 and gone and cut > 0:
                break
            c = pop.raw("stls")
            c.login("alice")
            n = int(c.ok("STAT").split()[1])
            picks = rng.sample(range(1, n + 1), 3)
            batch = set()
            for k in picks:
                st, hdr = c.multi("TOP %d 0" % k)
                batch.add(re.search(rb"(?mi)^Message-ID: (\S+)", hdr).group(1).decode())
                c.ok("DELE %d" % k)
            c.send("QUIT\r\n")
            time.sleep(rng.uniform(0, hi))
            pop.kill9()
            try:
                r = c.readline()
            except (EOFError, OSError):
                r = ""
            c.close()
            pop.start()
            # after every crash the mbox parses, nothing is duplicated, and the UPDATE was
            # done wholly (always so after +OK) or not at all
            ids = [m["Message-ID"] for m in mailbox.mbox(pop.mbox_path("alice"), create=False)]
            assert len(ids) == len(set(ids)), "duplicated messages after round %d" % rnd
            left = batch & set(ids)
            if r.startswith("+OK"):
                assert not left, "deleted after +OK but still there: %s" % left
            else:
                assert len(left) in (0, len(batch)), "an UPDATE was half done: %s" % left
                cut += 1
            if not left:
                gone |= batch
            # a loaded machine may make every UPDATE slower than the kill, or faster: aim so
            # that both outcomes occur
            if not gone:
                hi = min(hi * 2, 3.0)
            elif cut == 0:
                hi /= 2
    finally:
        stop.set()
        th.join(60)
    ids = [m["Message-ID"] for m in mailbox.mbox(pop.mbox_path("alice"), create=False)]
    assert len(ids) == len(set(ids))
    present = set(ids)
    for msgid in acked:
        if msgid in gone:
            assert msgid not in present, msgid
        else:
            assert msgid in present, "acknowledged message %s lost" % msgid
    assert present <= set(acked)
    assert gone and cut > 0, "no UPDATE was cut (gone %d, cut %d)" % (len(gone), cut)
    # temp files of UPDATEs killed while copying (removed after an hour by later ones)
    temps = [f for f in os.listdir(os.path.dirname(pop.mbox_path("alice")))
             if f.startswith(".dpop.alice.")]
    print("kill -9 rounds: %d UPDATEs cut (%d while copying), %d messages deleted"
          % (cut, len(temps), len(gone)))
    # and dpop serves the result
    c = pop.raw("stls")
    assert "%d messages" % len(present) in c.login("alice")
    c.ok("QUIT")
