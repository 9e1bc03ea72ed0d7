"""The integration tests' toolkit: one dmail site and its programs, raw protocol clients,
message builders and mailbox readers. conftest.py builds the fixtures on it; bench/ uses
its port helpers.

    site = Site(assets, {"max_rcpts": 3})   # a temp dir with dmail.conf, users, mailboxes
    site.start()                            # its dsmtp from $DMAIL_BIN, ready when it listens
    pop = site.program("dpop", ports=...)   # any other program of the suite on the same site
    with RawSMTP(site.smtp_port) as c: ...  # line-exact clients; RawPOP the same for POP3
    site.messages("alice")                  # [(raw, message)] of an mbox; read_maildir too
    site.cleanup()                          # stops every program, removes the directory

Contract: every wait is bounded (START_TIMEOUT, socket timeouts); a Program records an exit
the test did not ask for in .deaths and its sanitizer reports in sanitizer_report(), for
the fixtures to fail the test on; pytest is needed only when a wait fails (pytest.fail), so
bench/ imports this module without it. Only the Python standard library is used.
"""

import base64
import ctypes
import ctypes.util
import email
import email.policy
import mailbox
import os
import pwd
import re
import shutil
import signal
import random
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DMAIL_BIN") or os.path.join(REPO, "bin")
HOST = "127.0.0.1"
DOMAIN = "example.test"
ALIAS_DOMAIN = "example.net"
# The remote domain of the outbound tests (conftest.py: the dns and pair fixtures).
REMOTE = "remote.test"
START_TIMEOUT = 10.0
SANITIZER_MARKS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "SUMMARY: UndefinedBehaviorSanitizer")
# An RFC 3463 enhanced status code at the start of a reply line's text.
ENHANCED_RE = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}(\s|$)")
# The From-line date put_mbox writes.
FROM_DATE = "Thu Nov 25 09:00:00 2026"

# Test accounts. bob's password has a space and a colon on purpose (AUTH must not split
# on them); carol has a yescrypt hash; dave exists only in the alias domain.
PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "correct horse:battery",
    "carol": "carol-yes-crypt",
    "dave": "dave-pw-42",
}


def fail(msg):
    """Fail the running test (pytest.fail; AssertionError outside pytest)."""
    try:
        import pytest
    except ImportError:
        raise AssertionError(msg)
    pytest.fail(msg)


# ---------------------------------------------------------------- system


def is_root():
    return os.geteuid() == 0


def run_as_user():
    return "nobody" if is_root() else pwd.getpwuid(os.getuid()).pw_name


def chown_like_dsmtp(path):
    """As root, give path to nobody (the run_as of the tests' servers)."""
    if is_root():
        pw = pwd.getpwnam("nobody")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def hold_dotlock(mbox, text=None):
    """A live dotlock of another node on mbox (as mutt or procmail on another host would
    hold it): MBOX.lock holding "PID other-node.example" (our pid: alive), given to the
    servers' account. Returns its path."""
    lock = mbox + ".lock"
    with open(lock, "w") as f:
        f.write("%d other-node.example\n" % os.getpid() if text is None else text)
    chown_like_dsmtp(lock)
    return lock


def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                         capture_output=True, check=True)
    h = out.stdout.decode().strip()
    assert h.startswith("$6$"), h
    return h


def yescrypt(password):
    """A yescrypt hash via libxcrypt's crypt_gensalt/crypt (ctypes, stdlib only)."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
    assert setting, "crypt_gensalt($y$) failed"
    h = lib.crypt(password.encode(), setting).decode()
    assert h.startswith("$y$"), h
    return h


_PORTS_GIVEN = set()


def _port_range():
    """The ports free_ports may hand out: DMAIL_IT_PORTS "LOW-HIGH" (make check gives the
    normal and the ASan run halves of 10000-32767, below Linux's ephemeral ports, so that
    the two runs side by side never pick the same port and no outgoing connection takes
    one); unset: the kernel's choice (bind to port 0)."""
    r = os.environ.get("DMAIL_IT_PORTS", "")
    if not r:
        return None
    low, high = (int(x) for x in r.split("-"))
    return low, high


def free_ports(n, host=HOST):
    """n distinct free TCP ports on host (bound and released: good enough on loopback),
    none of them given out before by this process: a port chosen for a server not
    started yet is never chosen again for another."""
    socks, ports = [], []
    rng = _port_range()
    try:
        for _ in range(n + 64 if rng is None else 20 * n + 200):
            if len(ports) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, 0 if rng is None else random.randint(*rng)))
            except OSError:
                s.close()
                continue
            socks.append(s)
            port = s.getsockname()[1]
            if port not in _PORTS_GIVEN:
                ports.append(port)
        assert len(ports) == n, "no %d fresh free ports" % n
        _PORTS_GIVEN.update(ports)
        return ports
    finally:
        for s in socks:
            s.close()


def port_open(port, host=HOST, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ipv6_loopback():
    """True if ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.05):
    """Poll pred until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def pid_alive(pid):
    """pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def sanitizer_report(text):
    """The first ASan/UBSan report in text with some context, or None."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 500):i + 3000]
    return None


def _proc_net_addr(hexaddr):
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # four little-endian 32-bit words
        addr = socket.inet_ntop(socket.AF_INET6,
                                b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return addr, int(port, 16)


def listening_sockets(pid):
    """{(address, port)} of the TCP sockets in LISTEN state that process pid holds open
    (its descriptors matched against /proc/net/tcp and tcp6)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                out.add(_proc_net_addr(cols[1]))
    return out


def make_assets(d):
    """Certificate, key and users file text for a site, made in directory d."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
         "/CN=mx.example.test", "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    users = [
        "# dmail test users",
        "alice:" + sha512_crypt(PASSWORDS["alice"]),
        "bob:" + sha512_crypt(PASSWORDS["bob"]),
        "",
        "carol:" + yescrypt(PASSWORDS["carol"]),
        "dave@%s:%s" % (ALIAS_DOMAIN, sha512_crypt(PASSWORDS["dave"])),
    ]
    return {"cert": cert, "key": key, "users": "\n".join(users) + "\n"}


# ---------------------------------------------------------------- messages


def tls_client_context():
    """A client context that accepts the self-signed test certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def new_msgid(tag="t"):
    return "<%s.%s@it.%s>" % (tag, uuid.uuid4().hex, DOMAIN)


def make_message(msgid=None, subject="test", body="Hello.\n", to="alice@" + DOMAIN,
                 sender="sender@remote.example", extra_headers=()):
    """A message in local form (LF line ends). Returns (msgid, text)."""
    msgid = msgid or new_msgid()
    hdr = [
        "From: %s" % sender,
        "To: %s" % to,
        "Subject: %s" % subject,
        "Message-ID: %s" % msgid,
        "Date: Mon, 01 Jan 2024 00:00:00 +0000",
    ]
    hdr.extend(extra_headers)
    return msgid, "\n".join(hdr) + "\n\n" + body


def to_wire(text):
    """Local form (LF) to SMTP DATA form: CRLF line ends and dot-stuffing, without the
    terminating dot."""
    if isinstance(text, str):
        text = text.encode()
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for ln in lines:
        if ln.startswith(b"."):
            ln = b"." + ln
        out.append(ln + b"\r\n")
    return b"".join(out)


def mboxrd_quote(text):
    """One more '>' on every line matching ^>*From (what drop_deliver writes)."""
    out = []
    for ln in text.split(b"\n"):
        stripped = ln.lstrip(b">")
        if stripped.startswith(b"From "):
            ln = b">" + ln
        out.append(ln)
    return b"\n".join(out)


def client_form(text, status=None):
    """What RETR returns for a stored text (LF form): CRLF line ends, a final CRLF, the
    Status line before the empty line ending the header. Not dot-stuffed."""
    if isinstance(text, str):
        text = text.encode()
    lines = text.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    in_header = True
    for ln in lines:
        if ln.endswith(b"\r"):
            ln = ln[:-1]
        if in_header and ln == b"":
            in_header = False
            if status:
                out.append(status.encode())
        out.append(ln + b"\r\n")
    return b"".join(out)


def qfile_bytes(qid, rcpts, text, sender="x@remote.example", arrival=None, flags=0,
                origin="test", attempts=1, next_try=0, error="451 4.2.0 mailbox busy"):
    """A queue file (man/dmail-queue.5) with every recipient pending."""
    body = text if isinstance(text, bytes) else text.encode()
    hdr = ["DMQ 1", "id " + qid, "arrival %d" % int(time.time() if arrival is None else arrival),
           "sender <%s>" % sender, "origin " + origin, "flags %d" % flags, "rcpts %d" % len(rcpts)]
    hdr += ["rcpt pending %d %d <%s> %s" % (attempts, next_try, r, error) for r in rcpts]
    hdr.append("size %d" % len(body))
    return ("\n".join(hdr) + "\n\n").encode() + body + b"end\n"


def sendmail(site, args, data, prefix=(), **kw):
    """bin/sendmail ARGS with data on stdin under site's dmail.conf; must exit 0."""
    env = dict(os.environ, DMAIL_CONF=site.conf_path, LC_ALL="C")
    p = subprocess.run([*prefix, os.path.join(BIN, "sendmail"), *args], input=data,
                       capture_output=True, env=env, timeout=30, **kw)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def smtp_send(site, rcpts, tag="test", sender="sender@remote.example"):
    """One message (Subject: tag) to rcpts through site's smtp port with smtplib; every
    recipient must be accepted. Its Message-ID."""
    msgid, text = make_message(subject=tag, to=", ".join(rcpts))
    with smtplib.SMTP(HOST, site.smtp_port, local_hostname="client.example", timeout=15) as s:
        refused = s.sendmail(sender, rcpts, text)
    assert refused == {}, refused
    return msgid


def rcpt_reply(site, rcpt, sender="sender@remote.example"):
    """(code, text) of RCPT TO:<rcpt> in a fresh transaction on site's smtp port."""
    with smtplib.SMTP(HOST, site.smtp_port, local_hostname="client.example", timeout=15) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt(rcpt)
        return code, text.decode()


def dsn_reports(site, user):
    """The delivery status notifications (multipart/report) in user's mailbox, parsed by
    Python's email package."""
    out = []
    for raw, _ in site.messages(user):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def dsn_fields(report):
    """(per-message fields, [per-recipient fields], parts) of a report, checking its
    RFC 3464 shape: text/plain, then message/delivery-status."""
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2, blocks
    return blocks[0], blocks[1:], parts


def body_of(raw):
    """The body of a raw message (bytes after the first blank line)."""
    i = raw.find(b"\n\n")
    assert i >= 0, "message without header/body separator: %r" % raw[:300]
    return raw[i + 2:]


def headers_of(raw):
    i = raw.find(b"\n\n")
    assert i >= 0, "message without header/body separator: %r" % raw[:300]
    return raw[:i + 1]


# ---------------------------------------------------------------- mailboxes


def read_mbox(path):
    """[(raw bytes without the From line, mboxMessage)] of an mbox file; [] if absent."""
    if not os.path.exists(path):
        return []
    box = mailbox.mbox(path, create=False)
    try:
        box.lock = lambda: None  # read only; never take locks from the test
        out = []
        for key in box.iterkeys():
            out.append((box.get_bytes(key), box.get_message(key)))
        return out
    finally:
        box.close()


def read_maildir(path, sub="new"):
    """[bytes] of the files in a maildir's sub-directory, in name order."""
    d = os.path.join(path, sub)
    out = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out.append(f.read())
    return out


def write_maildir(path, files):
    """Make the maildir at path (new, cur, tmp) holding files, [(name, bytes)]: a name
    with ":2," goes to cur, the others to new."""
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for name, text in files:
        with open(os.path.join(path, "cur" if ":2," in name else "new", name), "wb") as f:
            f.write(text)


def mbox_bytes(texts, uidls=None, sender="sender@remote.example"):
    """Messages (LF form) as drop_deliver writes them: From line, X-UIDL (uidls[i], or
    none when uidls is None or the entry is None), mboxrd quoting, blank line."""
    out = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            t = t.encode()
        out.append(("From %s %s\n" % (sender, FROM_DATE)).encode())
        if uidls is not None and uidls[i] is not None:
            out.append(("X-UIDL: %s\n" % uidls[i]).encode())
        q = mboxrd_quote(t)
        out.append(q)
        if not q.endswith(b"\n"):
            out.append(b"\n")
        out.append(b"\n")
    return b"".join(out)


# ---------------------------------------------------------------- clients


class SMTPReplyError(AssertionError):
    pass


class POPError(AssertionError):
    pass


class LineClient:
    """A line-exact client over a plain socket (optionally TLS): every read is bounded by
    the socket timeout. source binds the client end to another loopback address."""

    RECV = 65536
    MAX_LINE = 100000
    Error = AssertionError

    def __init__(self, port, host=HOST, timeout=10.0, tls=False, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        if tls:
            self.sock = tls_client_context().wrap_socket(self.sock)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(self.RECV)
        if not chunk:
            raise EOFError("server closed the connection (buffered: %r)" % self.buf[:200])
        self.buf += chunk

    def _line(self):
        """The next line without its CRLF, as bytes."""
        while b"\r\n" not in self.buf:
            if len(self.buf) > self.MAX_LINE:
                raise self.Error("line without CRLF: %r" % self.buf[:200])
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _upgrade(self):
        """TLS on the connection after the server's yes to STARTTLS/STLS."""
        if self.buf:
            raise self.Error("server sent bytes after its yes to the TLS upgrade: %r" % self.buf)
        self.sock = tls_client_context().wrap_socket(self.sock)

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (bytes before it are
        kept in buf)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except (ConnectionResetError, ssl.SSLError, OSError):
                    return True
                if not chunk:
                    return True
                self.buf += chunk
            return False
        finally:
            self.sock.settimeout(10.0)

    def pending(self, wait=0.5):
        """Whatever the server sends within wait seconds (for "no extra reply" checks)."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except (socket.timeout, ssl.SSLError, OSError):
            pass
        finally:
            self.sock.settimeout(10.0)
        return self.buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class RawSMTP(LineClient):
    """A line-exact SMTP client. reply() returns (code, [text lines]) for one possibly
    multi-line reply; texts have the "ddd-" / "ddd " prefix removed."""

    Error = SMTPReplyError

    def __init__(self, port, host=HOST, timeout=10.0, tls=False, greeting=True, source=None):
        super().__init__(port, host=host, timeout=timeout, tls=tls, source=source)
        self.raw_lines = []
        self.greeting = self.reply() if greeting else None

    def readline(self):
        line = self._line()
        self.raw_lines.append(line)
        return line

    def reply(self):
        lines = []
        code = None
        while True:
            line = self.readline().decode("utf-8", "replace")
            m = re.match(r"^(\d{3})([ -])(.*)$", line) or re.match(r"^(\d{3})()$", line)
            if not m:
                raise SMTPReplyError("malformed reply line %r" % line)
            c = int(m.group(1))
            if code is not None and c != code:
                raise SMTPReplyError("code changed inside a multi-line reply: %r" % line)
            code = c
            lines.append(m.group(3))
            if m.group(2) != "-":
                return code, lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code, enhanced=None):
        """Send line, assert the reply code (an int or a tuple of ints), and optionally
        that the text starts with the enhanced code. Returns the reply."""
        c, lines = self.cmd(line)
        codes = code if isinstance(code, tuple) else (code,)
        if c not in codes:
            raise SMTPReplyError("%r: expected %s, got %d %s" % (line, codes, c, lines))
        if enhanced is not None and not lines[-1].startswith(enhanced):
            raise SMTPReplyError("%r: expected enhanced code %s, got %d %s"
                                 % (line, enhanced, c, lines))
        return c, lines

    def bdat(self, data, last=False, read=True):
        """BDAT len(data) [LAST] and the octets in one write (RFC 3030); returns the reply
        (read=False: only sends)."""
        if isinstance(data, str):
            data = data.encode()
        self.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
        return self.reply() if read else None

    def ehlo(self, name="client.example"):
        c, lines = self.cmd("EHLO " + name)
        if c != 250:
            raise SMTPReplyError("EHLO: %d %s" % (c, lines))
        return [ln.upper() for ln in lines[1:]]

    def open_tx(self, sender, *rcpts, data=True, name="client.example"):
        """EHLO, MAIL FROM:<sender>, RCPT TO:<r> for each of rcpts (each answered 250) and,
        if data, DATA (354): the message may follow."""
        self.ehlo(name)
        self.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        if data:
            self.expect("DATA", 354)

    def starttls(self):
        c, lines = self.cmd("STARTTLS")
        if c != 220:
            raise SMTPReplyError("STARTTLS: %d %s" % (c, lines))
        self._upgrade()
        return c, lines

    def data(self, text):
        """DATA, then text: a str is sent as a message (to_wire) with the final dot, bytes as
        they are. Returns the reply at the end of the data."""
        self.expect("DATA", 354)
        self.send(to_wire(text) + b".\r\n" if isinstance(text, str) else text)
        return self.reply()

    def secure(self, name="client.example"):
        """EHLO, STARTTLS, and EHLO again over TLS: returns the keywords of the second."""
        self.ehlo(name)
        self.starttls()
        return self.ehlo(name)

    def auth_plain(self, user, password):
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return self.cmd("AUTH PLAIN " + tok)


def noop_session_seconds(port):
    """How long a fresh SMTP session on port takes to connect, EHLO and NOOP: the
    server's loop is not held up elsewhere when this is short."""
    t0 = time.monotonic()
    with RawSMTP(port) as c:
        c.ehlo()
        c.expect("NOOP", 250)
    return time.monotonic() - t0


class RawPOP(LineClient):
    """A line-exact POP3 client: status lines as sent, multi-line bodies as bytes."""

    RECV = 262144
    MAX_LINE = 1000000
    Error = POPError

    def __init__(self, port, tls=False, timeout=10.0, greeting=True, host=HOST, source=None):
        super().__init__(port, host=host, timeout=timeout, tls=tls, source=source)
        self.greeting = self.readline() if greeting else None

    def readline(self):
        return self._line().decode("utf-8", "replace")

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.readline()

    def ok(self, line):
        r = self.cmd(line)
        if not r.startswith("+OK"):
            raise POPError("%r: %r" % (line, r))
        return r

    def err(self, line, code=None):
        r = self.cmd(line)
        if not r.startswith("-ERR"):
            raise POPError("%r: expected -ERR, got %r" % (line, r))
        if code is not None and not r.startswith("-ERR [%s]" % code):
            raise POPError("%r: expected -ERR [%s], got %r" % (line, code, r))
        return r

    def body(self):
        """A multi-line body up to ".", dot-stuffing undone, CRLFs kept."""
        out = []
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line == b".":
                return b"".join(out)
            if line.startswith(b"."):
                line = line[1:]
            out.append(line + b"\r\n")

    def multi(self, line):
        """(status, body) of a multi-line command."""
        st = self.ok(line)
        return st, self.body()

    def stls(self):
        r = self.cmd("STLS")
        if not r.startswith("+OK"):
            raise POPError("STLS: %r" % r)
        self._upgrade()
        return r

    def login(self, user, password=None):
        password = PASSWORDS[user] if password is None else password
        self.ok("USER " + user)
        return self.ok("PASS " + password)

    closed = LineClient.wait_closed


def ctl_request(path, line, timeout=10.0):
    """One request on a control socket: (status "OK"/"ERR", [data lines], text)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    buf, lines = b"", []
    try:
        while True:
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError("closed before the status line: %r" % lines)
                buf += chunk
            ln, buf = buf.split(b"\n", 1)
            ln = ln.decode()
            for word in ("OK", "ERR"):
                if ln == word or ln.startswith(word + " "):
                    return word, lines, ln[len(word) + 1:]
            lines.append(ln[1:] if ln.startswith("\\") else ln)
    finally:
        s.close()


# ---------------------------------------------------------------- programs


class Program:
    """One program of the suite (dsmtp, dpop, dwatch, ...) run from $DMAIL_BIN on a Site's
    dmail.conf, its output in SITE/NAME.stderr. Ready when every port of ports() accepts
    and ready() is true; an exit the test did not cause is recorded in deaths."""

    def __init__(self, site, name, ports=lambda: (), ready=lambda: True, env=None):
        self.site = site
        self.name = name
        self.ports = ports
        self.ready = ready
        self.extra_env = env or {}
        self.flags = ["-f"]  # [] runs without -f: logging goes to log_file (or syslog)
        self.stderr_path = os.path.join(site.dir, name + ".stderr")
        self.proc = None
        self.deaths = []  # (rc) of unexpected exits
        self._err = None
        self.log_mark = 0

    def start(self, wait=True):
        assert self.proc is None
        exe = os.path.join(BIN, self.name)
        if not os.access(exe, os.X_OK):
            fail("no %s binary at %s (set DMAIL_BIN)" % (self.name, exe))
        self.site.chown()
        env = self.site.env()
        env.update(self.extra_env)
        self._err = open(self.stderr_path, "ab")
        self.log_mark = self._err.tell()
        self.proc = subprocess.Popen([exe, *self.flags, "-c", self.site.conf_path],
                                     cwd=self.site.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        ports = [p for p in self.ports() if p]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                fail("%s exited with %d at start-up:\n%s" % (self.name, rc, self.log()[-4000:]))
            if all(port_open(p) for p in ports) and self.ready():
                return
            time.sleep(0.05)
        fail("%s did not accept on %s within %.0f s:\n%s"
             % (self.name, ports, timeout, self.log()[-4000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def listening(self):
        """{(address, port)} of the TCP sockets the running program listens on."""
        return listening_sockets(self.proc.pid)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return -1

    def _reap(self):
        if self._err:
            self._err.close()
            self._err = None
        self.proc = None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout. Records an exit the test did not cause.
        Returns the exit status (None if it was not running)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is not None:
            self.deaths.append(rc)
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        self._reap()
        return rc

    def kill9(self):
        if self.proc is None:
            return
        rc = self.proc.poll()
        if rc is not None:
            self.deaths.append(rc)
        else:
            self.proc.kill()
            self.proc.wait(5)
        self._reap()

    def restart(self, **settings):
        self.stop()
        if settings:
            self.site.write_conf(settings)
        return self.start()

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def sanitizer_report(self):
        return sanitizer_report(self.log())

    def problems(self):
        """What should fail the test once the program is stopped: a sanitizer report, an
        exit on its own."""
        out = []
        rep = self.sanitizer_report()
        if rep:
            out.append("sanitizer report from %s:\n%s" % (self.name, rep))
        if self.deaths:
            out.append("%s exited on its own (rc %s):\n%s"
                       % (self.name, self.deaths, self.log()[-3000:]))
        return out


class Site:
    """One dmail installation in its own temporary directory: dmail.conf (the defaults
    below, updated by settings; None removes a setting, a list is written as repeated
    lines), a users file, drop/spool/work directories, a certificate (tls), and its
    programs. The site's dsmtp (self.dsmtp) is what start/stop/restart/log act on."""

    def __init__(self, assets, settings, tls=True):
        self.dir = tempfile.mkdtemp(prefix="dmail-it-")
        os.chmod(self.dir, 0o755)
        self.conf_path = os.path.join(self.dir, "dmail.conf")
        self.drop = os.path.join(self.dir, "drop")
        self.spool = os.path.join(self.dir, "spool")
        self.work = os.path.join(self.dir, "work")
        self.users_file = os.path.join(self.dir, "users")
        self.passwords = dict(PASSWORDS)
        self.owner = "nobody"  # as root, chown gives the directory to this account
        self.programs = []
        self.stderr_text = ""
        for d in (self.drop, self.spool, self.work):
            os.makedirs(d)
        with open(self.users_file, "w") as f:
            f.write(assets["users"])
        self.tls = tls
        if tls:
            self.cert = os.path.join(self.dir, "cert.pem")
            self.key = os.path.join(self.dir, "key.pem")
            shutil.copy(assets["cert"], self.cert)
            shutil.copy(assets["key"], self.key)
            os.chmod(self.key, 0o600)
        self.smtp_port, self.submission_port, self.smtps_port = free_ports(3)
        self.base = {
            "host_domain": [DOMAIN, ALIAS_DOMAIN],
            "hostname": "mx." + DOMAIN,
            "listen": HOST,
            "smtp_port": self.smtp_port,
            "submission_port": self.submission_port,
            "smtps_port": self.smtps_port if tls else 0,
            "drop_path": self.drop,
            "spool_dir": self.spool,
            "work_path": self.work,
            "users_file": self.users_file,
            "hash_spool": 0,
            "log_level": "debug",
            "run_as": run_as_user(),
            "sysadmin": "bob",
            "auth_fail_delay": 1,
            "error_soft_limit": 50,
            "error_hard_limit": 100,
            "lock_timeout": 5,
            "queue_retry": 2,
            # no resolver answers here: mail for other domains never leaves loopback
            "dns_host": "127.0.0.1:9",
            # so no SPF check either (on by default: test_spf.py turns it back on)
            "spf_check": False,
        }
        if tls:
            self.base["tls_cert"] = self.cert
            self.base["tls_key"] = self.key
        self.settings = {}
        self.write_conf(settings)
        self.dsmtp = self.program("dsmtp", ports=lambda: (self.smtp_port, self.submission_port,
                                                          self.smtps_port),
                                  ready=self._dsmtp_started)
        self.stderr_path = self.dsmtp.stderr_path

    # -- configuration
    def write_conf(self, settings):
        self.settings.update(settings)
        merged = dict(self.base)
        merged.update(self.settings)
        lines = ["# written by tests/it/dmail_site.py"]
        for k, v in merged.items():
            if v is None:
                continue
            if isinstance(v, (list, tuple)):
                lines.extend("%s %s" % (k, x) for x in v)
            else:
                if isinstance(v, bool):
                    v = "true" if v else "false"
                lines.append("%s %s" % (k, v))
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.chown()
        # the ports actually in use, after overrides
        self.smtp_port = int(merged.get("smtp_port") or 0)
        self.submission_port = int(merged.get("submission_port") or 0)
        self.smtps_port = int(merged.get("smtps_port") or 0)

    def setting(self, name):
        """The value of a setting written by write_conf (None if not set)."""
        return self.settings.get(name, self.base.get(name))

    def chown(self):
        if not is_root():
            return
        pw = pwd.getpwnam(self.owner)
        for root, dirs, files in os.walk(self.dir):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for n in dirs + files:
                try:
                    os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
                except FileNotFoundError:
                    pass

    def env(self):
        e = dict(os.environ)
        e["DMAIL_CONF"] = self.conf_path
        return e

    def ctl_path(self, name):
        """The control socket of program name."""
        return os.path.join(self.work, name + ".ctl")

    def tellsmtp(self, *args, timeout=30):
        """tellsmtp -c this site's dmail.conf ARGS once the control socket exists:
        (exit code, stdout, stderr)."""
        wait_for(lambda: os.path.exists(self.ctl_path("dsmtp")) or not self.alive(), 5)
        p = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", self.conf_path] +
                           [str(a) for a in args], capture_output=True, text=True,
                           timeout=timeout, env=self.env())
        return p.returncode, p.stdout, p.stderr

    def add_user(self, name, password, options=None):
        line = "%s:%s%s\n" % (name, sha512_crypt(password), ":" + options if options else "")
        with open(self.users_file, "a") as f:
            f.write(line)
        self.passwords[name] = password

    # -- programs
    def program(self, name, cls=Program, **kw):
        """A program of the suite on this site (not started)."""
        p = cls(self, name, **kw)
        self.programs.append(p)
        return p

    def _dsmtp_started(self):
        # listening starts before the spool directories are made (after the drop of
        # privileges): ready means the "started" line too
        if "-f" not in self.dsmtp.flags:
            return True  # the log goes to log_file or syslog
        with open(self.conf_path) as f:
            if re.search(r"^log_level\s+(error|warn)\s*$", f.read(), re.M):
                return True  # the "started" line is not logged at that level
        with open(self.dsmtp.stderr_path, "rb") as f:
            f.seek(self.dsmtp.log_mark)
            return b" started as " in f.read()

    # the site's dsmtp
    @property
    def proc(self):
        return self.dsmtp.proc

    @property
    def flags(self):
        return self.dsmtp.flags

    @flags.setter
    def flags(self, value):
        self.dsmtp.flags = value

    @property
    def deaths(self):
        return self.dsmtp.deaths

    def start(self, wait=True):
        self.dsmtp.start(wait)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        self.dsmtp.wait_ready(timeout)

    def listening(self):
        return self.dsmtp.listening()

    def alive(self):
        return self.dsmtp.alive()

    def stop(self, timeout=5.0):
        self.dsmtp.stop(timeout)

    def kill9(self):
        self.dsmtp.kill9()

    def _reap(self):  # after a test made dsmtp exit on purpose
        self.dsmtp._reap()

    def restart(self, **settings):
        self.dsmtp.restart(**settings)
        return self

    def log(self):
        return self.dsmtp.log()

    def sanitizer_report(self):
        return self.dsmtp.sanitizer_report()

    # -- files
    def mbox_path(self, user, domain=None):
        name = user.lower() if domain is None else "%s@%s" % (user.lower(), domain.lower())
        return os.path.join(self.drop, name)

    def messages(self, user, domain=None):
        """[(raw bytes, mboxMessage)] in user's mbox."""
        return read_mbox(self.mbox_path(user, domain))

    def msgids(self, user, domain=None):
        return [m.get("Message-ID") for _, m in self.messages(user, domain)]

    def raw_mbox(self, user, domain=None):
        try:
            with open(self.mbox_path(user, domain), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def put_mbox(self, user, texts, uidls=None, sender="sender@remote.example", append=False):
        """Write user's mbox as drop_deliver would (see mbox_bytes); returns its path."""
        path = self.mbox_path(user)
        with open(path, "ab" if append else "wb") as f:
            f.write(mbox_bytes(texts, uidls, sender))
        self.chown()
        return path

    def put_maildir(self, user, files):
        """Make user's maildir holding files (see write_maildir); returns its path."""
        path = self.mbox_path(user)
        write_maildir(path, files)
        self.chown()
        return path

    def put_qfile(self, data):
        """Put queue file bytes (qfile_bytes) into the queue as dsmtp would: written in
        spool/tmp, then renamed in. Returns its path."""
        qid = data.split(b"\n", 2)[1][3:].decode()
        tmp = os.path.join(self.spool, "tmp", qid)
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        self.chown()
        path = os.path.join(self.spool, "queue", qid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.rename(tmp, path)
        return path

    def queue_files(self):
        q = os.path.join(self.spool, "queue")
        out = []
        for root, _, files in os.walk(q):
            out.extend(os.path.join(root, f) for f in files)
        return out

    def stop_all(self):
        """Stop every program, the last started first."""
        for p in reversed(self.programs):
            p.stop()

    def cleanup(self, keep=False):
        self.stop_all()
        self.stderr_text = self.log()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Dpop(Program):
    """The site's dpop: ready when pop_port and pop3s_port accept."""

    def __init__(self, site, name="dpop", **kw):
        super().__init__(site, name, ports=lambda: (self.pop_port, self.pop3s_port), **kw)

    @property
    def srv(self):
        return self.site

    @property
    def dir(self):
        return self.site.dir

    @property
    def pop_port(self):
        return int(self.site.settings.get("pop_port") or 0)

    @property
    def pop3s_port(self):
        return int(self.site.settings.get("pop3s_port") or 0)

    def raw(self, tls=None):
        """A RawPOP: tls None plain, "stls" upgraded, "pop3s" implicit."""
        if tls == "pop3s":
            return RawPOP(self.pop3s_port, tls=True)
        c = RawPOP(self.pop_port)
        if tls == "stls":
            c.stls()
        return c

    def mbox_path(self, user, domain=None):
        return self.site.mbox_path(user, domain)

    def put_mbox(self, user, texts, uidls=None, sender="sender@remote.example", append=False):
        return self.site.put_mbox(user, texts, uidls, sender, append)

    def raw_mbox(self, user):
        return self.site.raw_mbox(user)

    def add_user(self, name, password, options=None):
        self.site.add_user(name, password, options)


class Dwatch(Program):
    """The site's dwatch: ready when its control socket says every server runs."""

    def __init__(self, site, name="dwatch", **kw):
        super().__init__(site, name, **kw)
        self.ctl_path = site.ctl_path("dwatch")
        self.seen_pids = set()

    @property
    def srv(self):
        return self.site

    @property
    def pop_port(self):
        return int(self.site.settings["pop_port"])

    def wait_ready(self, timeout=10):
        self.wait_running(timeout=timeout)

    def status(self):
        """{name: {state, pid, restarts, deaths, ...}} from dwatch's status."""
        st, lines, text = ctl_request(self.ctl_path, "status")
        assert st == "OK", text
        out = {}
        for ln in lines:
            name, rest = ln.split(" ", 1)
            fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
            fields["pid"] = int(fields["pid"]) if fields["pid"] != "-" else None
            if fields["pid"]:
                self.seen_pids.add(fields["pid"])
            out[name] = fields
        return out

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "dwatch exited:\n" + self.log()[-3000:]
            if os.path.exists(self.ctl_path):
                try:
                    last = self.status()
                    if pred(last):
                        return last
                except (OSError, EOFError):
                    pass
            time.sleep(0.05)
        fail("%s not within %.1fs; last status %s\n%s"
             % (what, timeout, last, self.log()[-4000:]))

    def wait_running(self, names=("dsmtp", "dpop"), timeout=10):
        return self.wait_for(lambda s: all(n in s and s[n]["state"] == "running" for n in names),
                             timeout, "%s running" % (names,))

    def stop(self, timeout=15):
        return super().stop(timeout)

    def leftovers(self):
        """Servers it started that are still alive (killed here with SIGKILL)."""
        left = [p for p in self.seen_pids if pid_alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        return left


def start_run_sh(cwd, ports, **extra_env):
    """scripts/run.sh (make run) started in cwd on ports (smtp, submission, smtps, pop,
    pop3s) in a session of its own, its output on a pipe; extra_env (RESET="1") added."""
    env = dict(os.environ)
    env.pop("RESET", None)
    env.update(extra_env)
    env.update(DMAIL_RUN_DIR=os.path.join(cwd, "run"),
               DMAIL_SMTP_PORT=str(ports[0]), DMAIL_SUBMISSION_PORT=str(ports[1]),
               DMAIL_SMTPS_PORT=str(ports[2]), DMAIL_POP_PORT=str(ports[3]),
               DMAIL_POP3S_PORT=str(ports[4]))
    return subprocess.Popen([os.path.join(REPO, "scripts", "run.sh"), BIN], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
