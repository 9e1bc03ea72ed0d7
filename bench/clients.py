"""Load generators and test data, the same for dmail and the peer.

    smtp-source (from the postfix package) for SMTP deliveries;
    asyncio clients in this process for idle connections and POP3 sessions.

Every network wait has a timeout and every loop a count and a time bound.
"""

import asyncio
import ctypes
import ctypes.util
import os
import socket
import subprocess
import threading
import time

HOST = "127.0.0.1"
IO_TIMEOUT = 30.0

_libcrypt = None


def _crypt_lib():
    global _libcrypt
    if _libcrypt is None:
        lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
        lib.crypt_gensalt.restype = ctypes.c_char_p
        lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                      ctypes.c_int]
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        _libcrypt = lib
    return _libcrypt


def yescrypt(password, cost=0):
    """A yescrypt crypt(3) hash from libxcrypt (cost 0 = libxcrypt's default, 5)."""
    lib = _crypt_lib()
    setting = lib.crypt_gensalt(b"$y$", cost, None, 0)
    if not setting:
        raise RuntimeError("crypt_gensalt($y$) failed")
    h = lib.crypt(password.encode(), setting)
    if not h or not h.startswith(b"$y$"):
        raise RuntimeError("yescrypt hashing failed")
    return h.decode()


# --------------------------------------------------------------------------- mailboxes

BODY_LINE = "x" * 74 + "\n"


def mbox_text(user, n, size=2048):
    """An mbox of n messages of about size octets each, as dsmtp would have written it
    (From line, X-UIDL, Return-Path, Received, header, body of 75-octet lines)."""
    out = []
    body_lines = max(1, size // len(BODY_LINE))
    body = BODY_LINE * body_lines
    for i in range(1, n + 1):
        out.append(
            "From sender@bench.test Wed Nov 25 10:00:00 2026\n"
            "X-UIDL: bench.%s.%d\n"
            "Return-Path: <sender@bench.test>\n"
            "Received: from client.bench.test ([127.0.0.1])\n"
            "\tby bench.test with SMTP id bench%d; Wed, 25 Nov 2026 10:00:00 +0000\n"
            "From: Sender <sender@bench.test>\n"
            "To: %s@bench.test\n"
            "Subject: bench message %d\n"
            "Date: Wed, 25 Nov 2026 10:00:00 +0000\n"
            "Message-ID: <%s.%d@bench.test>\n"
            "\n%s\n" % (user, i, i, user, i, user, i, body))
    return "".join(out)


def write_mbox(path, text, uid, gid):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, 0o600)


class MboxCounter:
    """Counts the messages of a growing mbox by reading only what was appended."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.count = 0
        self.last = b"\n"

    def reset(self, uid, gid):
        """Empty the mailbox (or create it empty, owned by uid:gid, mode 0600)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, 0)
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        self.offset, self.count, self.last = 0, 0, b"\n"

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        if data:
            self.count += (self.last + data).count(b"\nFrom ")
            self.offset += len(data)
            self.last = data[-1:]
        return self.count


# --------------------------------------------------------------------------- SMTP

def smtp_source(port, n, conc, size, rcpt, helo="client.bench.test"):
    """Start smtp-source (one message per connection, as Postfix's own tests use it)."""
    cmd = ["/usr/sbin/smtp-source", "-s", str(conc), "-m", str(n), "-l", str(size),
           "-M", helo, "-f", "sender@bench.test", "-t", rcpt, "%s:%d" % (HOST, port)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


async def _close_all(writers, quit_line):
    for w in writers:
        try:
            w.write(quit_line)
            w.close()
        except (OSError, RuntimeError):
            pass
    await asyncio.sleep(0.2)


def hold_connections(port, k, greet_prefix, quit_line, hold, measure, concurrency=200,
                     timeout=IO_TIMEOUT, after_greeting=None, open_secs=600.0):
    """Open k connections (each greeted, and after_greeting(i, reader, writer) -> bool
    done), at most concurrency at a time and for at most open_secs; wait hold seconds,
    call measure() while every connection that got that far is still open, close them
    all. Returns (counts, measure's result, seconds spent opening)."""
    st = {"held": 0, "connect_fail": 0, "bad_greeting": 0, "timeout": 0,
          "refused_login": 0, "not_started": 0}

    async def run():
        sem = asyncio.Semaphore(concurrency)
        held, all_w = [], []

        async def one(i):
            async with sem:
                try:
                    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port),
                                                  timeout)
                except (OSError, asyncio.TimeoutError):
                    st["connect_fail"] += 1
                    return
                all_w.append(w)
                try:
                    line = await asyncio.wait_for(r.readline(), timeout)
                    if not line.startswith(greet_prefix):
                        st["bad_greeting"] += 1
                    elif after_greeting is None or await after_greeting(i, r, w):
                        st["held"] += 1
                        held.append(w)
                    else:
                        st["refused_login"] += 1
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    st["timeout"] += 1

        t0 = time.monotonic()
        tasks = [asyncio.ensure_future(one(i)) for i in range(k)]
        try:
            _, pending = await asyncio.wait(tasks, timeout=open_secs)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            st["not_started"] = len(pending)
            t_open = time.monotonic() - t0
            # connections that are not held (failed, cut short) must not be measured
            keep = set(map(id, held))
            for w in all_w:
                if id(w) not in keep:
                    w.close()
            await asyncio.sleep(hold)
            result = measure()
        finally:
            await _close_all(all_w, quit_line)
        return result, t_open

    result, t_open = asyncio.run(run())
    return st, result, t_open


class SmtpStream:
    """conc clients delivering one message per connection (like smtp-source) in a
    thread of their own until stop(); done holds the monotonic time of every 250 to
    the end of DATA, errors the failures."""

    def __init__(self, port, rcpt, conc, size):
        self.port, self.rcpt, self.conc = port, rcpt, conc
        body = ("x" * 74 + "\r\n") * max(1, size // 76)
        self.data = ("From: <sender@bench.test>\r\nTo: <%s>\r\nSubject: reload\r\n\r\n%s.\r\n"
                     % (rcpt, body)).encode()
        self.done, self.errors = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _one(self):
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), IO_TIMEOUT)
        try:
            async def reply(expect):
                while True:
                    ln = await asyncio.wait_for(r.readline(), IO_TIMEOUT)
                    if not ln:
                        raise EOFError("server closed the connection")
                    if ln[3:4] != b"-":
                        break
                if not ln.startswith(expect):
                    raise RuntimeError("expected %s, got %r" % (expect, ln[:80]))

            await reply(b"220")
            for cmd, code in ((b"HELO client.bench.test", b"250"),
                              (b"MAIL FROM:<sender@bench.test>", b"250"),
                              (b"RCPT TO:<" + self.rcpt.encode() + b">", b"250"),
                              (b"DATA", b"354")):
                w.write(cmd + b"\r\n")
                await reply(code)
            w.write(self.data)
            await reply(b"250")
            self.done.append(time.monotonic())
            w.write(b"QUIT\r\n")
        finally:
            w.close()

    async def _client(self):
        while not self._stop.is_set():
            try:
                await self._one()
            except (OSError, EOFError, RuntimeError, asyncio.TimeoutError) as e:
                self.errors.append(repr(e))
                await asyncio.sleep(0.05)

    async def _run(self):
        await asyncio.gather(*(self._client() for _ in range(self.conc)))

    def start(self):
        self._thread.start()

    def stop(self, timeout=IO_TIMEOUT + 5):
        self._stop.set()
        self._thread.join(timeout)


# --------------------------------------------------------------------------- POP3

class Pop3Error(Exception):
    pass


class Pop3:
    """A minimal asyncio POP3 client: one command, one reply, in order."""

    def __init__(self, r, w, timeout=IO_TIMEOUT):
        self.r, self.w, self.timeout = r, w, timeout

    @classmethod
    async def connect(cls, port, timeout=IO_TIMEOUT):
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port, limit=1 << 20),
                                      timeout)
        c = cls(r, w, timeout)
        line = await c.line()
        if not line.startswith(b"+OK"):
            c.close()
            raise Pop3Error("greeting: %r" % line[:100])
        return c

    async def line(self):
        ln = await asyncio.wait_for(self.r.readline(), self.timeout)
        if not ln:
            raise Pop3Error("server closed the connection")
        return ln

    async def cmd(self, text):
        self.w.write(text.encode() + b"\r\n")
        ln = await self.line()
        if not ln.startswith(b"+OK"):
            raise Pop3Error("%s: %r" % (text.split()[0], ln[:100]))
        return ln

    async def multi(self, text):
        """A command with a multi-line answer; returns the octets up to the final dot."""
        await self.cmd(text)
        data = await asyncio.wait_for(self.r.readuntil(b"\r\n.\r\n"), self.timeout)
        return len(data) - 3

    async def login(self, user, password):
        await self.cmd("USER " + user)
        await self.cmd("PASS " + password)

    async def stat(self):
        ln = await self.cmd("STAT")
        parts = ln.split()
        return int(parts[1]), int(parts[2])

    async def quit(self):
        try:
            await self.cmd("QUIT")
        finally:
            self.close()

    def close(self):
        try:
            self.w.close()
        except (OSError, RuntimeError):
            pass


def pop_login_loop(port, users, password, secs, max_sessions=200000, rounds=None):
    """len(users) clients, each looping connect/USER/PASS/STAT/QUIT on its own user for
    secs seconds (or exactly rounds times, then secs only bounds it). Returns
    (latencies in seconds, errors, first error, wall seconds)."""

    async def client(user, end, lat, errs):
        done = 0
        while time.monotonic() < end and len(lat) + len(errs) < max_sessions:
            if rounds is not None:
                if done >= rounds:
                    break
                done += 1
            t0 = time.monotonic()
            c = None
            try:
                c = await Pop3.connect(port)
                await c.login(user, password)
                await c.stat()
                await c.quit()
                lat.append(time.monotonic() - t0)
            except (OSError, asyncio.TimeoutError, Pop3Error,
                    asyncio.IncompleteReadError) as e:
                errs.append(repr(e))
                if c:
                    c.close()
                await asyncio.sleep(0.05)

    async def run():
        lat, errs = [], []
        t0 = time.monotonic()
        end = t0 + secs
        await asyncio.wait_for(asyncio.gather(*(client(u, end, lat, errs) for u in users)),
                               secs + 2 * IO_TIMEOUT)
        return lat, errs, time.monotonic() - t0

    lat, errs, wall = asyncio.run(run())
    return lat, len(errs), (errs[0] if errs else ""), wall


class _SyncPop3:
    """A blocking POP3 client for one session at a time: the RETR workload measures the
    server, so the client does as little as possible per command (no event loop, one
    recv buffer, the end marker looked for only in what just arrived)."""

    def __init__(self, port, timeout=IO_TIMEOUT):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.reply(b"greeting")

    def _fill(self):
        chunk = self.s.recv(1 << 18)
        if not chunk:
            raise Pop3Error("server closed the connection")
        self.buf += chunk

    def reply(self, what):
        """One status line; raises unless it is +OK."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                break
            if len(self.buf) > 1 << 16:
                raise Pop3Error("%s: status line too long" % what)
            self._fill()
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        if not line.startswith(b"+OK"):
            raise Pop3Error("%s: %r" % (what, line[:100]))
        return line

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply(text.split()[0])

    def multi(self, text):
        """A command with a multi-line answer; returns the octets up to the final dot."""
        self.cmd(text)
        return self.rest()

    def rest(self):
        """The rest of a multi-line answer whose status line was read: its octets."""
        seen = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", max(0, seen - 4))
            if i >= 0:
                del self.buf[:i + 5]
                return i + 2
            if self.buf.startswith(b".\r\n"):
                del self.buf[:3]
                return 0
            seen = len(self.buf)
            self._fill()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def _pop_login(port, user, password):
    """A _SyncPop3 session logged in with USER/PASS (closed if the login fails)."""
    c = _SyncPop3(port)
    try:
        c.cmd("USER " + user)
        c.cmd("PASS " + password)
    except BaseException:
        c.close()
        raise
    return c


def pop_retr_all(port, user, password, deadline=300.0):
    """One session: login, then STAT and RETR of every message, QUIT. Returns
    (seconds from STAT to the QUIT answer, seconds to log in, messages, octets).
    Every wait is bounded by IO_TIMEOUT, the whole session by deadline."""
    t0 = time.monotonic()
    c = _pop_login(port, user, password)
    try:
        t1 = time.monotonic()
        n = int(c.cmd("STAT").split()[1])
        octets = 0
        for i in range(1, n + 1):
            octets += c.multi("RETR %d" % i)
            if time.monotonic() - t0 > deadline:
                raise Pop3Error("RETR run longer than %g s" % deadline)
        c.cmd("QUIT")
    finally:
        c.close()
    return time.monotonic() - t1, t1 - t0, n, octets


def pop_retr_pipelined(port, user, password, deadline=300.0):
    """pop_retr_all with the RETR commands pipelined (RFC 2449 PIPELINING, which dpop
    and Dovecot both announce): every RETR is written at once and the answers read in
    order, so the figure is the server's streaming rate rather than 1,000 round trips
    of a Python client. Returns (seconds from STAT to the QUIT answer, messages, octets)."""
    t0 = time.monotonic()
    c = _pop_login(port, user, password)
    try:
        t1 = time.monotonic()
        n = int(c.cmd("STAT").split()[1])
        c.s.sendall("".join("RETR %d\r\n" % i for i in range(1, n + 1)).encode())
        octets = 0
        for i in range(1, n + 1):
            c.reply("RETR %d" % i)
            octets += c.rest()
            if time.monotonic() - t0 > deadline:
                raise Pop3Error("pipelined RETR run longer than %g s" % deadline)
        c.cmd("QUIT")
    finally:
        c.close()
    return time.monotonic() - t1, n, octets


def pop_login_hold(users, password):
    """An after_greeting for hold_connections: USER/PASS as users[i]."""

    async def login(i, r, w):
        c = Pop3(r, w)
        try:
            await c.login(users[i], password)
            return True
        except Pop3Error:
            return False

    return login
