"""Password guessing against SMTP AUTH and POP3 (login_penalty_max, login_fail_max):
attempts from one address queue behind each other once it has failed, so parallel
sessions do not multiply the guesses; the owner logging in from another address is not
slowed; after login_fail_max failures the address is cut off while its mail still flows."""

import base64
import threading
import time

from dmail_site import DOMAIN, PASSWORDS, RawPOP, RawSMTP

ATTACKER, OWNER = "127.0.0.1", "127.0.0.2"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def smtp_guess(srv, source, password, user="alice"):
    """(code, seconds) of one AUTH PLAIN on a new session from source."""
    with RawSMTP(srv.smtp_port, source=source, timeout=60) as c:
        c.secure()
        t0 = time.monotonic()
        code, _ = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)))
        return code, time.monotonic() - t0


def parallel(fn, n):
    out, threads = [], []
    lock = threading.Lock()

    def run(i):
        r = fn(i)
        with lock:
            out.append(r)

    for i in range(n):
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join(90)
    assert len(out) == n
    return out


def test_smtp_parallel_guesses_queue_per_address(dsmtp_factory):
    srv = dsmtp_factory(auth_fail_delay=1, login_penalty_max=2, login_fail_max=0)
    t0 = time.monotonic()
    # one failure first: from then on the address queues
    assert smtp_guess(srv, ATTACKER, "wrong")[0] == 535
    done = parallel(lambda i: (smtp_guess(srv, ATTACKER, "wrong%d" % i)[0],
                               time.monotonic() - t0), 4)
    assert all(code == 535 for code, _ in done), done
    # checked one per penalty (1 s after one failure), not all four at once
    at = sorted(t for _, t in done)
    gaps = [b - a for a, b in zip(at, at[1:])]
    assert all(g > 0.7 for g in gaps), at
    # the owner, from an address that never failed, is not slowed by alice's failures
    code, took = smtp_guess(srv, OWNER, srv.passwords["alice"])
    assert code == 235 and took < 0.8, (code, took)
    # and the attacker's address still waits, even with the right password
    code, took = smtp_guess(srv, ATTACKER, srv.passwords["alice"])
    assert code == 235 and took > 1.5, (code, took)


def test_smtp_cut_off_after_login_fail_max(dsmtp_factory):
    srv = dsmtp_factory(auth_fail_delay=1, login_penalty_max=1, login_fail_max=3)
    with RawSMTP(srv.smtp_port, source=ATTACKER, timeout=30) as c:
        c.secure()
        for i in range(3):
            c.expect("AUTH PLAIN " + b64("\0alice\0wrong%d" % i), 535, "5.7.8")
        code, lines = c.cmd("AUTH PLAIN " + b64("\0alice\0" + srv.passwords["alice"]))
        assert code == 421 and lines[-1].startswith("4.7.0"), (code, lines)
        assert c.wait_closed()
    # a new session: cut off at once, without a check; mail without AUTH still flows
    with RawSMTP(srv.smtp_port, source=ATTACKER) as c:
        c.secure()
        t0 = time.monotonic()
        assert c.cmd("AUTH PLAIN " + b64("\0bob\0" + srv.passwords["bob"]))[0] == 421
        assert time.monotonic() - t0 < 0.8
    with RawSMTP(srv.smtp_port, source=ATTACKER) as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@remote.example>", 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
    # another address logs in
    assert smtp_guess(srv, OWNER, srv.passwords["alice"])[0] == 235
    assert "auth refused reason=too-many-failures ip=127.0.0.1" in srv.log()


def pop_guess(pop, source, password, user="alice"):
    c = RawPOP(pop.pop_port, source=source, timeout=60)
    try:
        c.ok("USER " + user)
        t0 = time.monotonic()
        r = c.cmd("PASS " + password)
        return r, time.monotonic() - t0
    finally:
        c.close()


def test_pop_parallel_guesses_queue_and_owner_not_slowed(dpop_factory):
    pop = dpop_factory(auth_fail_delay=1, login_penalty_max=2, login_fail_max=0,
                       auth_plaintext=True, tls=False)
    t0 = time.monotonic()
    assert pop_guess(pop, ATTACKER, "wrong")[0].startswith("-ERR [AUTH]")
    done = parallel(lambda i: (pop_guess(pop, ATTACKER, "wrong%d" % i)[0],
                               time.monotonic() - t0), 4)
    assert all(r.startswith("-ERR [AUTH]") for r, _ in done), done
    at = sorted(t for _, t in done)
    assert all(b - a > 0.7 for a, b in zip(at, at[1:])), at
    r, took = pop_guess(pop, OWNER, PASSWORDS["alice"])
    assert r.startswith("+OK") and took < 0.8, (r, took)


def test_pop_cut_off_after_login_fail_max(dpop_factory):
    pop = dpop_factory(auth_fail_delay=1, login_penalty_max=1, login_fail_max=2,
                       auth_plaintext=True, tls=False)
    c = RawPOP(pop.pop_port, source=ATTACKER, timeout=30)
    for i in range(2):
        c.ok("USER alice")
        c.err("PASS wrong%d" % i, "AUTH")
    c.ok("USER alice")
    r = c.cmd("PASS " + PASSWORDS["alice"])
    assert r.startswith("-ERR [SYS/TEMP]"), r
    assert c.closed()
    assert pop_guess(pop, OWNER, PASSWORDS["alice"])[0].startswith("+OK")
