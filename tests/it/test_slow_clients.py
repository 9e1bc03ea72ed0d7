"""Slow and hoarding clients (slowloris): per-command and per-line deadlines, the session
deadline, the junk command limit, stress-dependent timeouts and the reserved slots of
max_connections (dmail.conf(5): reserved_connections, stress_connections,
stress_timeout, max_session_time, junk_command_limit)."""

import resource
import socket
import time

import pytest

from dmail_site import DOMAIN, RawSMTP, make_message, wait_for

SENDER = "sender@remote.example"


def trickle(c, data, every, until):
    """Send data one byte every `every` seconds until the server closes or `until`
    seconds pass; returns the seconds it took the server to close (None: it did not)."""
    t0 = time.monotonic()
    for b in data:
        if time.monotonic() - t0 > until:
            return None
        try:
            c.send(bytes([b]))
        except OSError:
            return time.monotonic() - t0
        if c.wait_closed(every):
            return time.monotonic() - t0
    return None


def test_command_trickled_a_byte_at_a_time_is_cut_at_smtp_timeout(dsmtp_factory):
    """Each byte used to restart the idle timeout: a command line must now be complete
    within smtp_timeout of its start."""
    srv = dsmtp_factory(smtp_timeout=3)
    with RawSMTP(srv.smtp_port) as c:
        took = trickle(c, b"EHLO " + b"a" * 200, 0.5, 15)
        assert took is not None, "a trickled command held the session past smtp_timeout"
        assert 2.5 <= took <= 6, took
        assert c.buf.startswith(b"421 "), c.buf
    assert "reason=deadline" in srv.log()


def test_message_line_trickled_is_cut_at_data_timeout(dsmtp_factory):
    srv = dsmtp_factory(smtp_timeout=30, data_timeout=3)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: slow\r\n\r\n")
        took = trickle(c, b"x" * 200, 0.5, 15)
        assert took is not None and took <= 6, took
    assert srv.messages("alice") == []


def test_slow_but_steady_message_lines_are_fine(dsmtp_factory):
    """A slow client that completes a line now and then is not cut: the deadline is per
    line, not per message."""
    srv = dsmtp_factory(smtp_timeout=30, data_timeout=2)
    msgid, text = make_message()
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        c.expect("DATA", 354)
        wire = text.replace("\n", "\r\n").encode()
        lines = wire.split(b"\r\n")
        for ln in lines:
            c.send(ln + b"\r\n")
            time.sleep(0.4)  # 4 s in all, 2 s per line allowed
        c.send(b".\r\n")
        assert c.reply()[0] == 250
    assert srv.msgids("alice") == [msgid]


def test_max_session_time(dsmtp_factory):
    srv = dsmtp_factory(max_session_time=3)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        t0 = time.monotonic()
        closed = False
        for _ in range(20):
            try:
                code, _ = c.cmd("NOOP")
            except (EOFError, OSError):
                closed = True
                break
            if code == 421:
                closed = True
                break
            time.sleep(0.5)
        assert closed and 2.5 <= time.monotonic() - t0 <= 6
    assert "reason=session-time" in srv.log()


def test_junk_command_limit(dsmtp_factory):
    """NOOPs past junk_command_limit count as errors: the error budget then ends the
    session; a delivered message starts the count again."""
    srv = dsmtp_factory(junk_command_limit=5, error_soft_limit=0, error_delay=0,
                        error_hard_limit=4)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        for _ in range(5):
            c.expect("NOOP", 250)
        msgid, text = make_message()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        assert c.data(text)[0] == 250
        for _ in range(5):
            c.expect("RSET", 250)
        codes = [c.cmd("NOOP")[0] for _ in range(4)]
        assert codes == [250, 250, 250, 250], codes
        assert c.reply()[0] == 421  # after the fourth counted one's own reply
        assert c.wait_closed(3)
    assert "too-many-errors" in srv.log()
    # 0: no limit
    srv = dsmtp_factory(junk_command_limit=0, error_hard_limit=2)
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        for _ in range(150):
            c.expect("NOOP", 250)


def test_reserved_connections(dsmtp_factory):
    """Idle clients fill max_connections less reserved_connections; then a stranger is
    refused, while the trusted network and the submission port still get in."""
    srv = dsmtp_factory(max_connections=20, reserved_connections=4, max_per_ip=100,
                        forward_from_ip="127.0.0.9")
    held = []
    try:
        for _ in range(16):
            held.append(RawSMTP(srv.smtp_port))  # the greeting read
        with RawSMTP(srv.smtp_port, greeting=False) as c:
            code, lines = c.reply()
            assert code == 421, (code, lines, srv.log()[-3000:])
        assert "the rest is reserved" in srv.log()
        with RawSMTP(srv.smtp_port, source="127.0.0.9") as c:  # trusted
            c.ehlo()
        with RawSMTP(srv.submission_port) as c:  # where users log in
            c.ehlo()
    finally:
        for c in held:
            c.close()


def test_stress_shortens_timeouts(dsmtp_factory):
    """Above stress_connections % of max_connections, idle sessions get stress_timeout
    instead of smtp_timeout; below it they keep theirs."""
    srv = dsmtp_factory(max_connections=20, stress_connections=50, stress_timeout=2,
                        smtp_timeout=300, max_per_ip=100, reserved_connections=0)
    held = []
    try:
        for _ in range(5):  # 25 %: no stress
            c = RawSMTP(srv.smtp_port)
            c.ehlo()
            held.append(c)
        assert not held[0].wait_closed(3.5)
        for _ in range(6):  # 55 %: stress
            c = RawSMTP(srv.smtp_port)
            c.ehlo()
            held.append(c)
        # idle ones are cut after stress_timeout until the load is under the mark again
        assert wait_for(lambda: "stress over" in srv.log(), 10), srv.log()[-2000:]
        assert "stress: 1" in srv.log() and "reason=stress-deadline" in srv.log()
        closed = [c for c in held if c.wait_closed(0.3)]
        assert 2 <= len(closed) <= 11, len(closed)
    finally:
        for c in held:
            c.close()


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_thousand_trickling_connections_do_not_lock_out_a_client(dsmtp_factory):
    """1,000 connections from 50 addresses trickle a byte now and then (the default
    max_connections and max_per_ip); a new client from another address still completes a
    transaction: the stress timeout ends the trickling sessions."""
    if raise_nofile(2600) < 2600:
        pytest.skip("cannot raise RLIMIT_NOFILE")
    srv = dsmtp_factory(stress_timeout=3)
    socks = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", srv.smtp_port), timeout=10,
                                         source_address=("127.0.1.%d" % (i % 50 + 1), 0))
            s.setblocking(False)
            socks.append(s)
        msgid, text = make_message()
        t0 = time.monotonic()
        done = False
        while not done and time.monotonic() - t0 < 30:
            for s in socks:  # a byte each, the greeting drained
                try:
                    s.send(b"E")
                    s.recv(4096)
                except (BlockingIOError, OSError):
                    pass
            try:
                with RawSMTP(srv.smtp_port, source="127.0.2.1", timeout=10) as c:
                    c.ehlo()
                    c.expect("MAIL FROM:<%s>" % SENDER, 250)
                    c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
                    done = c.data(text)[0] == 250
            except (AssertionError, EOFError, OSError):
                time.sleep(0.5)
        assert done, "no transaction within 30 s"
        assert srv.msgids("alice") == [msgid]
        assert "stress:" in srv.log()
    finally:
        for s in socks:
            s.close()
