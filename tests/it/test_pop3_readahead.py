"""dpop RETR/TOP through the read-ahead window: every message of big mailboxes read in one
session (one command at a time and pipelined) must be byte-for-byte what the stored text
says (mboxrd quoting undone, dot-stuffing, CRLF, Status line), whatever the window holds:
messages crossing the window's end, ending exactly on it, bigger than it (streamed), TOP
after RETR, RETR after DELE of a neighbour, mail appended by dsmtp during the session, a
maildir, and the window given back when the session goes idle.
"""

import os
import random
import re
import smtplib
import subprocess
import time

import pytest

from dmail_site import BIN, DOMAIN, HOST, client_form, make_message, mboxrd_quote

WINDOW = 128 * 1024  # RETR_WINDOW in dpop/retr.h
IDLE_S = 1.0  # RETR_IDLE_MS

LINES = [b".leading dot", b"..two leading dots", b".", b"From the start of a line",
         b">From quoted once", b">>From quoted twice", b"From: looks like a header",
         b"a line with crlf\r", b"tab\tand trailing space ", b"Status: in the body", b""]


def gen_text(rng, i, size):
    """A message of about size bytes with every awkward kind of line."""
    head = b"From: s%d@remote.example\nSubject: message %d\n" % (i, i)
    if i % 7 == 3:
        head += b"Status: R\n"
    if i % 29 == 5:  # a header and nothing else
        return head + b"X-Filler: " + b"h" * max(0, size - len(head) - 12) + b"\n"
    out = [head, b"\n"]
    total = len(head) + 1
    while total < size:
        if rng.random() < 0.5:
            ln = rng.choice(LINES)
        else:
            ln = bytes(rng.choice(b"abcdefghij .>F") for _ in range(rng.randint(1, 120)))
        out.append(ln + b"\n")
        total += len(ln) + 1
    out.append(b"last line %d" % i)
    if i % 5 != 0:  # some end without a newline
        out.append(b"\n")
    return b"".join(out)


def status_of(text):
    """The Status line dpop adds (add_status on, never seen): none when the header has
    one or there is no empty line ending it."""
    header = text.split(b"\n\n", 1)
    if len(header) == 1:
        return None
    if re.search(rb"(^|\n)status:", header[0], re.I):
        return None
    return "Status: O\r\n"


def top_form(full, n):
    """TOP n of a client form: the header, the empty line, n body lines."""
    lines = full.split(b"\r\n")[:-1]
    out, i = [], 0
    while i < len(lines) and lines[i] != b"":
        out.append(lines[i])
        i += 1
    if i < len(lines):
        out.append(b"")
        i += 1
    out += lines[i:i + n]
    return b"".join(ln + b"\r\n" for ln in out)


def sizes_for(rng, count):
    """Mostly small, some near and across the window, two bigger than it."""
    sizes = []
    for i in range(count):
        r = rng.random()
        if r < 0.75:
            sizes.append(rng.randint(60, 6000))
        elif r < 0.92:
            sizes.append(rng.randint(6000, 60000))
        else:
            sizes.append(rng.randint(60000, WINDOW - 2000))
    for n, size in ((40, WINDOW + 5000), (120, 3 * WINDOW)):
        if n < count:
            sizes[n] = size
    return sizes


def make_mailbox(pop, count=200, seed=7):
    rng = random.Random(seed)
    texts = [gen_text(rng, i, s) for i, s in enumerate(sizes_for(rng, count))]
    pop.put_mbox("alice", texts, [None] * count)
    return texts, [client_form(t, status_of(t)) for t in texts]


def retr(c, n):
    st, body = c.multi("RETR %d" % n)
    return st, body


def check_all(c, want, order):
    for n in order:
        st, body = retr(c, n)
        assert body == want[n - 1], "message %d differs" % n
        assert st == "+OK %d octets" % len(body), n


def tellpop_stats(pop):
    p = subprocess.run([os.path.join(BIN, "tellpop"), "-c", pop.srv.conf_path, "stats"],
                       capture_output=True, timeout=30, env=pop.srv.env())
    assert p.returncode == 0, p.stderr
    m = re.search(r"retr_windows (\d+)", p.stdout.decode())
    assert m, p.stdout
    return int(m.group(1))


def wait_windows(pop, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        got = tellpop_stats(pop)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_every_message_in_one_session_matches_a_fresh_session(dpop_factory):
    pop = dpop_factory(auth_plaintext=True)
    texts, want = make_mailbox(pop)
    # the windows start wherever the client is: in order, backwards, and at random
    c = pop.raw()
    c.login("alice")
    assert c.ok("STAT") == "+OK %d %d" % (len(texts), sum(len(w) for w in want))
    check_all(c, want, range(1, len(texts) + 1))
    check_all(c, want, range(len(texts), 0, -1))
    order = list(range(1, len(texts) + 1))
    random.Random(3).shuffle(order)
    check_all(c, want, order)
    c.close()  # no QUIT: nothing becomes seen
    # a fresh session per message reads each one at the start of its own window
    for n in (1, 2, 41, 42, 121, 150, len(texts)):
        c = pop.raw()
        c.login("alice")
        assert retr(c, n)[1] == want[n - 1], n
        c.close()


def test_window_edges(dpop_factory):
    """Messages ending exactly at the window's end, one byte past it, exactly a window
    long, and one byte longer than a window."""
    pop = dpop_factory(auth_plaintext=True, add_status=False)
    a = b"Subject: a\n\n" + b"a" * 999 + b"\n"
    fill = lambda n: b"Subject: f\n\n" + b"f" * (n - 13) + b"\n"  # noqa: E731
    texts = [a, fill(WINDOW - len(a)), a, fill(WINDOW - len(a) + 1), a,
             fill(WINDOW), fill(WINDOW + 1), a, fill(WINDOW - 1), fill(1), a]
    assert len(mboxrd_quote(texts[1])) + len(a) == WINDOW
    assert len(texts[5]) == WINDOW and len(texts[6]) == WINDOW + 1
    pop.put_mbox("alice", texts, ["e%d" % i for i in range(len(texts))])
    want = [client_form(t) for t in texts]
    c = pop.raw()
    c.login("alice")
    check_all(c, want, range(1, len(texts) + 1))
    check_all(c, want, [2, 1, 4, 3, 6, 5, 7, 9, 10, 8, 11])
    c.ok("QUIT")


def test_top_after_retr_and_dele_of_a_neighbour(dpop_factory):
    pop = dpop_factory(auth_plaintext=True)
    texts, want = make_mailbox(pop, count=60, seed=11)
    c = pop.raw()
    c.login("alice")
    assert retr(c, 5)[1] == want[4]
    for n, lines in ((5, 0), (5, 3), (6, 0), (6, 2), (7, 1000000), (8, 1)):
        assert c.multi("TOP %d %d" % (n, lines))[1] == top_form(want[n - 1], lines), n
    assert retr(c, 6)[1] == want[5]
    c.ok("DELE 7")
    assert retr(c, 8)[1] == want[7]
    assert c.cmd("RETR 7").startswith("-ERR")
    assert c.cmd("TOP 7 1").startswith("-ERR")
    assert retr(c, 6)[1] == want[5]
    c.ok("RSET")
    assert retr(c, 7)[1] == want[6]
    assert c.multi("TOP 41 2")[1] == top_form(want[40], 2)  # bigger than a window
    assert retr(c, 42)[1] == want[41]
    c.close()


def test_pipelined_retr_and_top(dpop_factory):
    pop = dpop_factory(auth_plaintext=True)
    texts, want = make_mailbox(pop, count=200, seed=5)
    c = pop.raw()
    c.login("alice")
    c.ok("DELE 10")
    cmds, expect = [], []
    for n in list(range(1, 61)) + [10, 150, 3, 120, 121, 200]:
        cmds.append("RETR %d" % n)
        expect.append(None if n == 10 else want[n - 1])
        cmds.append("TOP %d 2" % n)
        expect.append(None if n == 10 else top_form(want[n - 1], 2))
    c.send("".join(x + "\r\n" for x in cmds))
    for cmd, w in zip(cmds, expect):
        if w is None:
            assert c.readline().startswith("-ERR"), cmd
            continue
        assert c.readline().startswith("+OK"), cmd
        assert c.body() == w, cmd
    assert c.cmd("NOOP") == "+OK"
    c.close()


def test_new_mail_during_the_session_is_not_seen(dpop_factory):
    if not os.access(os.path.join(BIN, "dsmtp"), os.X_OK):
        pytest.skip("no dsmtp binary in %s" % BIN)
    pop = dpop_factory(auth_plaintext=True)
    pop.srv.start()
    texts, want = make_mailbox(pop, count=80, seed=13)
    total = sum(len(w) for w in want)
    c = pop.raw()
    c.login("alice")
    assert c.ok("STAT") == "+OK 80 %d" % total
    check_all(c, want, [78, 79, 80])  # the window reaches the end of the snapshot
    check_all(c, want, range(1, 31))
    new = []
    for i in range(3):
        msgid, text = make_message(body="new mail %d\n.dot\nFrom x\n" % i + ("n" * 70 + "\n") * 70)
        new.append(text)
        with smtplib.SMTP(HOST, pop.srv.smtp_port, local_hostname="client.example",
                          timeout=15) as s:
            assert s.sendmail("sender@remote.example", ["alice@" + DOMAIN], text) == {}
    check_all(c, want, range(31, 81))
    check_all(c, want, [80, 79])
    assert c.ok("STAT") == "+OK 80 %d" % total
    assert c.cmd("RETR 81").startswith("-ERR")
    c.ok("QUIT")
    c = pop.raw()
    assert "83 messages" in c.login("alice")
    for i, n in enumerate((81, 82, 83)):
        assert retr(c, n)[1].endswith(client_form(new[i].encode(), "Status: O\r\n"))
    assert retr(c, 80)[1] == client_form(texts[79], "Status: RO\r\n" if status_of(texts[79])
                                         else None)
    c.close()


def test_maildir_every_message(dpop_factory):
    pop = dpop_factory(auth_plaintext=True, mailbox_format="maildir", add_status=False)
    rng = random.Random(17)
    sizes = [rng.randint(60, 9000) for _ in range(70)]
    sizes[30] = WINDOW + 100
    sizes[31] = WINDOW - 50
    texts = [gen_text(rng, i, s) for i, s in enumerate(sizes)]
    pop.srv.put_maildir("alice", [("17000%05d.1_%d.host" % (i, i), t)
                                  for i, t in enumerate(texts)])
    want = [client_form(t) for t in texts]
    c = pop.raw()
    assert "70 messages" in c.login("alice")
    check_all(c, want, range(1, 71))
    check_all(c, want, [31, 32, 33, 70, 1, 29, 30])
    c.send("".join("RETR %d\r\n" % n for n in range(20, 40)))
    for n in range(20, 40):
        assert c.readline().startswith("+OK")
        assert c.body() == want[n - 1], n
    c.close()


def test_window_given_back_when_idle(dpop_factory):
    pop = dpop_factory(auth_plaintext=True)
    texts, want = make_mailbox(pop, count=30, seed=19)
    assert tellpop_stats(pop) == 0
    c = pop.raw()
    c.login("alice")
    assert wait_windows(pop, 0) == 0  # a logged-in session holds none
    check_all(c, want, [1, 2, 3])
    assert tellpop_stats(pop) == 1
    time.sleep(IDLE_S + 1.0)
    assert wait_windows(pop, 0) == 0  # freed while the session stays
    check_all(c, want, [4, 5])  # read again
    assert tellpop_stats(pop) == 1
    c.close()  # a session that goes gives it back at once
    assert wait_windows(pop, 0, timeout=IDLE_S / 2) == 0


@pytest.mark.parametrize("big", [False, True], ids=["window", "streamed"])
def test_message_file_gone_drops_only_that_session(dpop_factory, big):
    """A maildir message removed behind dpop's back after login: RETR of it cannot be
    answered, so dpop logs the read error and drops that client (the +OK may already be
    out); the messages before it were served, and the next session sees the mailbox as it
    is now."""
    pop = dpop_factory(auth_plaintext=True, mailbox_format="maildir", add_status=False)
    rng = random.Random(23)
    sizes = [800, 900, WINDOW * 3 if big else 1000, 700, 600]
    texts = [gen_text(rng, i, s) for i, s in enumerate(sizes)]
    files = [("17100%05d.1_%d.host" % (i, i), t) for i, t in enumerate(texts)]
    md = pop.srv.put_maildir("alice", files)
    names = [os.path.join(md, "new", name) for name, _ in files]
    want = [client_form(t) for t in texts]
    c = pop.raw()
    assert "5 messages" in c.login("alice")
    os.unlink(names[2])
    check_all(c, want, [1, 2])
    c.send("RETR 3\r\n")
    with pytest.raises((EOFError, ConnectionError)):
        for _ in range(100000):  # bounded: the whole message is 3 windows at most
            c._fill()
    c.close()
    deadline = time.monotonic() + 5
    while "retr user=alice msg=3 error=" not in pop.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "retr user=alice msg=3 error=" in pop.log()
    d = pop.raw()
    assert "4 messages" in d.login("alice")
    check_all(d, [want[0], want[1], want[3], want[4]], [1, 2, 3, 4])
    d.ok("QUIT")
    d.close()
