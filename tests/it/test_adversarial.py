"""The adversarial trial's scenarios that are not a feature's own test (issue: hardening):
relay tricks, junk on the wire to SMTP and POP3, mutated configuration files, and many
clients vanishing mid-transaction. Every loop is bounded in count and time; random input
comes from a fixed seed, so a failure can be replayed. The other scenarios of the trial
live with their features: test_limits (memory in transit), test_login_guard (guessing),
test_slow_clients (slowloris), test_smuggling, test_tls (STARTTLS injection, broken
handshakes), test_tls_policy (testssl), test_pop3 (hard-linked mailbox)."""

import os
import random
import re
import socket
import subprocess

import pytest

from dmail_site import BIN, DOMAIN, HOST, RawPOP, RawSMTP, make_message

SENDER = "sender@remote.example"
SEED = 20261204


# ---------------------------------------------------------------- relay tricks

RELAY_TRICKS = [
    "victim@relay.example",
    "victim@RELAY.EXAMPLE.",
    "victim%relay.example@" + DOMAIN,
    "victim%relay.example",
    "relay.example!victim@" + DOMAIN,
    "relay.example!victim",
    "@%s:victim@relay.example" % DOMAIN,
    "@%s,@%s:victim@relay.example" % (DOMAIN, DOMAIN),
    '"victim@relay.example"@' + DOMAIN,
    '"victim@relay.example"',
    "victim@relay.example@" + DOMAIN,
    "victim@[192.0.2.1]",
    "victim@[IPv6:2001:db8::1]",
    "victim@[127.0.0.1]",
    "victim@localhost",
    "victim@sub." + DOMAIN,
    "victim@" + DOMAIN + ".relay.example",
    "victim@relay.example (comment)",
    "victim@relay.example\tx",
    "VICTIM@Relay.Example",
    "victim@xn--rlay-bsa.example",
    "victim@rélay.example",
    "postmaster@relay.example",
    "<victim@relay.example>",
]


def test_no_relay_trick_relays(dsmtp):
    """An unauthenticated client outside forward_from_ip: every trick is refused at RCPT,
    and nothing goes into the queue."""
    accepted = []
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        for rcpt in RELAY_TRICKS:
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
            if code < 400:
                accepted.append((rcpt, code, lines))
            c.expect("RSET", 250)
    assert accepted == [], accepted
    assert dsmtp.queue_files() == []


# ---------------------------------------------------------------- junk on the wire

def junk_lines(rng, n):
    verbs = ["EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "VRFY", "AUTH",
             "BDAT", "STARTTLS", "QUIT", "USER", "PASS", "LIST", "RETR", "TOP", "UIDL", "STLS"]
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        if kind == 0:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))))
        elif kind == 1:
            out.append(rng.choice(verbs).encode() + b" " + b"A" * rng.randrange(400, 3000))
        elif kind == 2:
            out.append(rng.choice(verbs).encode() + b"\x00" + b"x" * rng.randrange(20))
        elif kind == 3:
            out.append(rng.choice(verbs).encode() + b" <" + b"%" * rng.randrange(1, 60) + b">")
        else:
            out.append(rng.choice(verbs).encode() + b" " + bytes(
                rng.choice(b"@<>:\"\\.[]%!, \t\r") for _ in range(rng.randrange(1, 40))))
    return out


def spray_junk(port, rng):
    """One connection: the greeting, 30 junk lines, QUIT, read to the end (whatever the
    server does with the junk, it must not hang or crash)."""
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.settimeout(5)
        s.recv(4096)
        for line in junk_lines(rng, 30):
            try:
                s.sendall(line + b"\r\n")
            except OSError:
                break
        try:
            s.sendall(b"QUIT\r\n")
            while s.recv(65536):
                pass
        except OSError:
            pass


def test_smtp_junk_keeps_serving(dsmtp_factory):
    """300 junk lines over 10 connections (random bytes, oversized, NUL, bare CR/LF,
    address syntax soup): the server never crashes, and then delivers a clean message."""
    srv = dsmtp_factory(error_hard_limit=1000, error_soft_limit=1000)
    rng = random.Random(SEED)
    for _ in range(10):
        spray_junk(srv.smtp_port, rng)
        assert srv.alive(), srv.log()[-2000:]
    msgid, text = make_message()
    with RawSMTP(srv.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        assert c.data(text)[0] == 250
    assert srv.msgids("alice") == [msgid]


def test_pop3_junk_keeps_serving(dpop_factory):
    pop = dpop_factory(auth_plaintext=True, pop_error_limit=1000)
    site = pop.site
    rng = random.Random(SEED + 1)
    for _ in range(10):
        spray_junk(pop.pop_port, rng)
        assert pop.alive()
    with RawPOP(pop.pop_port) as c:
        c.login("alice", site.passwords["alice"])
        assert c.cmd("STAT").startswith("+OK")


def test_vanishing_clients_lose_nothing(dsmtp):
    """50 clients vanish at every stage of a transaction (mid-command, after RCPT, mid-DATA,
    right after the final dot): the server stays up, nothing half-written is delivered,
    and each message whose dot was sent whole is delivered once."""
    rng = random.Random(SEED + 2)
    whole = []
    for i in range(50):
        stage = i % 5
        msgid, text = make_message()
        s = socket.create_connection((HOST, dsmtp.smtp_port), timeout=10)
        s.settimeout(10)
        s.recv(4096)
        wire = [b"EHLO x\r\n", b"MAIL FROM:<%s>\r\n" % SENDER.encode(),
                b"RCPT TO:<alice@%s>\r\n" % DOMAIN.encode(), b"DATA\r\n"]
        if stage == 0:
            s.sendall(b"EHLO half-a-comm")
        else:
            for w in wire[:stage + 1 if stage < 4 else 4]:
                s.sendall(w)
                s.recv(4096)
            if stage >= 3:
                body = text.replace("\n", "\r\n").encode()
                if stage == 3:
                    s.sendall(body[:rng.randrange(1, len(body))])
                else:
                    s.sendall(body + b".\r\n")
                    assert s.recv(4096).startswith(b"250"), msgid  # acknowledged
                    whole.append(msgid)
        s.close()
    assert dsmtp.alive()
    assert dsmtp.msgids("alice") == whole


@pytest.mark.parametrize("stage", ["mail", "rcpt"])
def test_client_vanishing_after_requiretls_leaves_nothing(dsmtp, stage):
    """Clients that vanish (a TCP reset, or a plain close) right after MAIL FROM:<a>
    REQUIRETLS over STARTTLS, or after its RCPT: nothing is queued or delivered, and a
    client at the same time and one after are served (their REQUIRETLS message
    delivered)."""
    assert dsmtp.queue_files() == []
    other = RawSMTP(dsmtp.smtp_port)
    assert "REQUIRETLS" in " ".join(other.secure()).upper()
    for i in range(10):
        c = RawSMTP(dsmtp.smtp_port)
        assert "REQUIRETLS" in " ".join(c.secure()).upper()
        c.expect("MAIL FROM:<%s> REQUIRETLS" % SENDER, 250)
        if stage == "rcpt":
            c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
        if i % 2 == 0:  # a reset, no TLS close_notify
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        c.sock.close()
    msgid, text = make_message()
    other.expect("MAIL FROM:<%s> REQUIRETLS" % SENDER, 250)
    other.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)
    assert other.data(text)[0] == 250
    other.close()
    assert dsmtp.alive()
    assert dsmtp.msgids("alice") == [msgid]
    assert dsmtp.queue_files() == []
    c = RawSMTP(dsmtp.smtp_port)  # and the next client is served
    c.secure()
    c.expect("NOOP", 250)
    c.close()
    assert dsmtp.sanitizer_report() is None, dsmtp.sanitizer_report()


# ---------------------------------------------------------------- mutated configurations

def mutate(rng, text):
    lines = text.splitlines()
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(lines))
        op = rng.randrange(6)
        ln = lines[i]
        if op == 0:
            lines[i] = ln[:rng.randrange(len(ln) + 1)]
        elif op == 1:
            lines[i] = ln + rng.choice([" ", "\t", " x", " -1", " 99999999999999999999", " 1q",
                                        " ,,", " \\", " #", " %s" % ("z" * 5000)])
        elif op == 2:
            lines.insert(i, rng.choice(["max_connections", "listen ::1:bad", "smtp_port 70000",
                                        "bare_newline maybe", "#include /nonexistent",
                                        "#include /dev/null", "\x00", "tls_min_version SSLv3",
                                        "forward a@b", "dns_host 1.2.3.4:99999",
                                        "rbl_reject", "ban_ip 300.1.1.1", "data_memory_max -5"]))
        elif op == 3:
            lines[i] = "".join(rng.sample(ln, len(ln)))
        elif op == 4:
            del lines[i]
        else:
            lines[i] = ln.replace(" ", rng.choice(["=", "  ", "\t", ""]), 1)
        if not lines:
            lines = [""]
    return "\n".join(lines) + rng.choice(["\n", "", "\r\n"])


def test_mutated_configs_are_refused_with_file_and_line(dsmtp, tmp_path):
    """300 mutations of a working dmail.conf through dsmtp -t: exit 0 or 78 (EX_CONFIG),
    never a crash or a hang, and every refusal names file:line."""
    with open(dsmtp.conf_path) as f:
        base = f.read()
    rng = random.Random(SEED + 3)
    path = tmp_path / "mut.conf"
    codes = {}
    for i in range(300):
        path.write_text(mutate(rng, base))
        r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", str(path)],
                           capture_output=True, text=True, timeout=10)
        codes[r.returncode] = codes.get(r.returncode, 0) + 1
        assert r.returncode in (0, 78), (i, r.returncode, r.stderr[-500:], path.read_text())
        if r.returncode == 78:
            assert re.search(r"%s:\d+: " % re.escape(str(path)), r.stderr), (i, r.stderr[-500:])
    assert codes.get(78, 0) > 30, codes  # the mutations do break things
