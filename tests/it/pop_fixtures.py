"""dpop on top of the integration harness in conftest.py.

A dpop test gets the harness's directory, dmail.conf and users file (the Dsmtp object of
dsmtp_factory, not started unless the test wants mail delivered by dsmtp), with free
ports for pop_port and pop3s_port added, and a dpop started from $DMAIL_BIN in the
foreground. Teardown stops it and fails the test if it died on its own or printed a
sanitizer report.

    from pop_fixtures import dpop_factory, RawPOP   # noqa: F401 (fixtures by import)

    def test_x(dpop_factory):
        pop = dpop_factory(auth_plaintext=True)
        pop.put_mbox("alice", [b"Subject: a\\n\\nbody\\n"])
        c = pop.raw(); c.login("alice")
"""

import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

try:
    from conftest import (  # noqa: F401
        BIN,
        PASSWORDS,
        SANITIZER_MARKS,
        START_TIMEOUT,
        free_ports,
        is_root,
        port_open,
        sha512_crypt,
    )
except ImportError:  # the harness is not there yet
    pytest.skip("tests/it/conftest.py (the integration harness) is missing",
                allow_module_level=True)

from dmail_it import HOST, tls_client_context  # noqa: E402

FROM_DATE = "Thu Nov 25 09:00:00 2026"


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


class POPError(AssertionError):
    pass


class RawPOP:
    """A line-exact POP3 client: status lines as sent, multi-line bodies as bytes."""

    def __init__(self, port, tls=False, timeout=10.0, greeting=True):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        if tls:
            self.sock = tls_client_context().wrap_socket(self.sock)
        self.greeting = self.readline() if greeting else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("server closed the connection (buffered: %r)" % self.buf[:200])
        self.buf += chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1000000:
                raise POPError("line without CRLF: %r" % self.buf[:200])
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

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
        if self.buf:
            raise POPError("bytes after +OK to STLS: %r" % self.buf)
        self.sock = tls_client_context().wrap_socket(self.sock)
        return r

    def login(self, user, password=None):
        password = PASSWORDS[user] if password is None else password
        self.ok("USER " + user)
        return self.ok("PASS " + password)

    def closed(self, timeout=5.0):
        """True if the server closes within timeout (bytes before are kept in buf)."""
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

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Dpop:
    """A dpop sharing the directory and dmail.conf of a harness Dsmtp object."""

    def __init__(self, srv):
        self.srv = srv
        self.dir = srv.dir
        self.proc = None
        self.deaths = []
        self._err = None
        self.stderr_path = os.path.join(srv.dir, "dpop.stderr")

    @property
    def pop_port(self):
        return int(self.srv.settings.get("pop_port") or 0)

    @property
    def pop3s_port(self):
        return int(self.srv.settings.get("pop3s_port") or 0)

    # -- process
    def start(self, wait=True):
        assert self.proc is None
        exe = os.path.join(BIN, "dpop")
        if not os.access(exe, os.X_OK):
            pytest.fail("no dpop binary at %s (set DMAIL_BIN)" % exe)
        self.srv.chown()
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([exe, "-f", "-c", self.srv.conf_path], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, env=self.srv.env())
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        ports = [p for p in (self.pop_port, self.pop3s_port) if p]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail("dpop exited with %d at start-up:\n%s" % (rc, self.log()[-4000:]))
            if all(port_open(p) for p in ports):
                return
            time.sleep(0.05)
        pytest.fail("dpop did not accept on %s:\n%s" % (ports, self.log()[-4000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _reap(self):
        if self._err:
            self._err.close()
            self._err = None
        self.proc = None

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
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
        self._reap()

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            self.deaths.append(self.proc.returncode)
        else:
            self.proc.kill()
            self.proc.wait(5)
        self._reap()

    def restart(self, **settings):
        self.stop()
        if settings:
            self.srv.write_conf(settings)
        return self.start()

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return -1

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def sanitizer_report(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 500):i + 3000]
        return None

    # -- clients
    def raw(self, tls=None):
        """A RawPOP: tls None plain, "stls" upgraded, "pop3s" implicit."""
        if tls == "pop3s":
            return RawPOP(self.pop3s_port, tls=True)
        c = RawPOP(self.pop_port)
        if tls == "stls":
            c.stls()
        return c

    # -- mailboxes
    def mbox_path(self, user, domain=None):
        return self.srv.mbox_path(user, domain)

    def put_mbox(self, user, texts, uidls=None, sender="sender@remote.example", append=False):
        """Write messages (LF form) as drop_deliver would: From line, X-UIDL (uidls[i],
        or none when uidls is None or the entry is None), mboxrd quoting, blank line."""
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
        path = self.mbox_path(user)
        with open(path, "ab" if append else "wb") as f:
            f.write(b"".join(out))
        self.srv.chown()
        return path

    def raw_mbox(self, user):
        return self.srv.raw_mbox(user)

    def add_user(self, name, password, options=None):
        line = "%s:%s%s\n" % (name, sha512_crypt(password), ":" + options if options else "")
        with open(self.srv.users_file, "a") as f:
            f.write(line)
        self.srv.passwords[name] = password


@pytest.fixture
def dpop_factory(request, dsmtp_factory):
    pops = []

    def make(tls=True, start=True, **settings):
        conf = {"auth_fail_delay": 0}
        conf.update(settings)
        srv = dsmtp_factory(tls=tls, start=False, **conf)
        p1, p2 = free_ports(2)
        srv.write_conf({"pop_port": p1, "pop3s_port": p2 if tls else 0})
        pop = Dpop(srv)
        pops.append(pop)
        if start:
            pop.start()
        return pop

    yield make

    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    problems = []
    for pop in pops:
        pop.stop()
        if failed:
            print("---- dpop stderr (%s), last 6000 chars ----\n%s" % (pop.dir, pop.log()[-6000:]))
        rep = pop.sanitizer_report()
        if rep:
            problems.append("sanitizer report from dpop:\n" + rep)
        if pop.deaths:
            problems.append("dpop exited on its own (rc %s):\n%s"
                            % (pop.deaths, pop.log()[-3000:]))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
