"""Shared helpers for the dmail integration tests: a raw SMTP client that sees every
reply line as sent, message builders, and mailbox readers.

Only the Python standard library is used (Debian's python3), so the tests run with
/usr/bin/python3 -m pytest on a fresh machine.
"""

import base64
import mailbox
import os
import re
import socket
import ssl
import time
import uuid

HOST = "127.0.0.1"
DOMAIN = "example.test"
ALIAS_DOMAIN = "example.net"

# An RFC 3463 enhanced status code at the start of a reply line's text.
ENHANCED_RE = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}(\s|$)")


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


class SMTPReplyError(AssertionError):
    pass


class RawSMTP:
    """A line-exact SMTP client over a plain socket (optionally TLS).

    reply() returns (code, [text lines]) for one possibly multi-line reply; texts have the
    "ddd-" / "ddd " prefix removed. Every read is bounded by the socket timeout. source
    binds the client end to another loopback address (127.0.0.2, ...).
    """

    def __init__(self, port, host=HOST, timeout=10.0, tls=False, greeting=True, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.raw_lines = []
        if tls:
            self.sock = tls_client_context().wrap_socket(self.sock)
        self.greeting = self.reply() if greeting else None

    # -- low level
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection (buffered: %r)" % self.buf[:200])
        self.buf += chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 100000:
                raise SMTPReplyError("reply line without CRLF: %r" % self.buf[:200])
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
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

    def ehlo(self, name="client.example"):
        c, lines = self.cmd("EHLO " + name)
        if c != 250:
            raise SMTPReplyError("EHLO: %d %s" % (c, lines))
        return [ln.upper() for ln in lines[1:]]

    def starttls(self):
        c, lines = self.cmd("STARTTLS")
        if c != 220:
            raise SMTPReplyError("STARTTLS: %d %s" % (c, lines))
        if self.buf:
            raise SMTPReplyError("server sent bytes after the 220 to STARTTLS: %r" % self.buf)
        self.sock = tls_client_context().wrap_socket(self.sock)
        return c, lines

    def auth_plain(self, user, password):
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return self.cmd("AUTH PLAIN " + tok)

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (after any bytes)."""
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


def body_of(raw):
    """The body of a raw message (bytes after the first blank line)."""
    i = raw.find(b"\n\n")
    assert i >= 0, "message without header/body separator: %r" % raw[:300]
    return raw[i + 2:]


def headers_of(raw):
    i = raw.find(b"\n\n")
    assert i >= 0, "message without header/body separator: %r" % raw[:300]
    return raw[:i + 1]
