"""Large messages on their way in (dsmtp/spill.c): past about 48 KB a message's middle
goes to a spill file in spool_dir/spill while it arrives, so a session holds tens of KB
whatever the size; the message comes back whole at its end, by DATA and by BDAT. A client
that vanishes leaves no file; files left by a crash are removed at start."""

import os
import socket
import struct

import pytest

from dmail_site import DOMAIN, RawSMTP, wait_for

SENDER = "sender@remote.example"
ALICE = "alice@" + DOMAIN


def big_body(n_lines):
    """Lines of varied length, some starting with a dot (stuffed on the wire)."""
    return "".join(("." if i % 97 == 0 else "") + ("line %d " % i) + "x" * (i % 120) + "\n"
                   for i in range(n_lines))


def message(body):
    return ("From: a@remote.example\nTo: alice@%s\nSubject: big\nMessage-ID: <big@x>\n\n%s"
            % (DOMAIN, body))


def wire(text):
    out = []
    for ln in text.split("\n")[:-1]:
        out.append(("." + ln) if ln.startswith(".") else ln)
    return ("\r\n".join(out) + "\r\n").encode()


def spill_dir(srv):
    return os.path.join(srv.spool, "spill")


def body_of(srv):
    msgs = srv.messages("alice")
    assert len(msgs) == 1, len(msgs)
    raw = msgs[0][0].decode()
    return raw[raw.index("\n\n") + 2:]


def test_large_message_by_data_arrives_whole(dsmtp_factory):
    srv = dsmtp_factory(max_msg_size="10M")
    body = big_body(40000)  # about 3 MB
    with RawSMTP(srv.smtp_port) as c:
        c.open_tx(SENDER, ALICE)
        c.send(wire(message(body)) + b".\r\n")
        code, lines = c.reply()
        assert code == 250, (code, lines)
    assert body_of(srv) == body
    assert os.listdir(spill_dir(srv)) == []


def test_large_message_by_bdat_arrives_whole(dsmtp_factory):
    srv = dsmtp_factory(max_msg_size="10M")
    body = big_body(30000)
    data = message(body).replace("\n", "\r\n").encode()  # BDAT: no dot-stuffing
    with RawSMTP(srv.smtp_port) as c:
        c.open_tx(SENDER, ALICE, data=False)
        half = len(data) // 2
        assert c.bdat(data[:half])[0] == 250
        code, lines = c.bdat(data[half:], last=True)
        assert code == 250, (code, lines)
    assert body_of(srv) == body
    assert os.listdir(spill_dir(srv)) == []


def test_vanishing_client_leaves_no_spill_file(dsmtp_factory):
    srv = dsmtp_factory(max_msg_size="10M")
    c = RawSMTP(srv.smtp_port)
    c.open_tx(SENDER, ALICE)
    c.send(wire(message(big_body(20000))))
    assert wait_for(lambda: os.listdir(spill_dir(srv)) != [], 10)
    c.close()
    assert wait_for(lambda: os.listdir(spill_dir(srv)) == [], 10), os.listdir(spill_dir(srv))
    assert "reason=eof-in-data" in srv.log()
    assert srv.messages("alice") == []
    # the buffer's share of data_memory_max came back with the session
    rc, out, err = srv.tellsmtp("stats")
    assert rc == 0, err
    assert "data_memory_bytes 0" in out.splitlines(), out
    with RawSMTP(srv.smtp_port) as d:  # still serving
        d.ehlo()


def test_spill_files_of_a_crash_are_removed_at_start(dsmtp_factory):
    srv = dsmtp_factory()
    left = os.path.join(spill_dir(srv), "0123-1")
    with open(left, "w") as f:
        f.write("half a message")
    srv.restart()
    assert not os.path.exists(left)
    assert "spill: removed 1 file" in srv.log()


def _bdat_message(srv, data, cuts):
    """Send data in BDAT chunks that end at the offsets cuts (the last one LAST)."""
    with RawSMTP(srv.smtp_port) as c:
        c.open_tx(SENDER, ALICE, data=False)
        start = 0
        for end in list(cuts) + [len(data)]:
            last = end == len(data)
            code, lines = c.bdat(data[start:end], last=last)
            assert code == 250, (start, end, code, lines)
            start = end


SPILL_AT, SPILL_KEEP = 49152, 16384  # dsmtp/data.h


@pytest.mark.parametrize("cut", [SPILL_KEEP, SPILL_AT - 1, SPILL_AT, SPILL_AT + 1,
                                 2 * SPILL_AT])
def test_bdat_chunk_ending_at_the_spill_threshold(dsmtp_factory, cut):
    """A BDAT chunk that ends exactly at (or one octet around) the point where a message
    starts to spill, then a 1-octet chunk, then the rest: the message arrives whole."""
    srv = dsmtp_factory(max_msg_size="10M")
    body = big_body(6000)  # about 400 KB
    data = message(body).replace("\n", "\r\n").encode()
    _bdat_message(srv, data, [cut, cut + 1])
    assert body_of(srv) == body
    assert os.listdir(spill_dir(srv)) == []


def test_bdat_many_small_chunks_across_spills(dsmtp_factory):
    """A large message in 4,000-octet chunks crosses the spill point many times."""
    srv = dsmtp_factory(max_msg_size="10M")
    body = big_body(4000)
    data = message(body).replace("\n", "\r\n").encode()
    _bdat_message(srv, data, range(4000, len(data), 4000))
    assert body_of(srv) == body
    assert os.listdir(spill_dir(srv)) == []


def test_clients_vanishing_while_spill_writes_run(dsmtp_factory):
    """Clients that reset the connection right after pouring a large message in (spill
    writes in flight on the pool) leave no spill file and no message; the server goes
    on serving and a whole message still arrives."""
    srv = dsmtp_factory(max_msg_size="10M")
    payload = wire(message(big_body(8000)))
    for _ in range(3):
        clients = []
        for _ in range(8):
            c = RawSMTP(srv.smtp_port)
            c.open_tx(SENDER, ALICE)
            clients.append(c)
        for c in clients:
            c.sock.setblocking(False)
            try:
                c.sock.send(payload)
            except BlockingIOError:
                pass
        for c in clients:  # RST, not FIN: the session ends at once
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
    assert wait_for(lambda: os.listdir(spill_dir(srv)) == [], 15), os.listdir(spill_dir(srv))
    assert srv.messages("alice") == []
    assert wait_for(lambda: srv.log().count("discarded reason=eof-in-data") == 24, 10)
    assert wait_for(lambda: "data_memory_bytes 0" in srv.tellsmtp("stats")[1].splitlines(), 10)
    body = big_body(8000)
    with RawSMTP(srv.smtp_port) as c:
        c.open_tx(SENDER, ALICE)
        c.send(wire(message(body)) + b".\r\n")
        assert c.reply()[0] == 250
    assert body_of(srv) == body
