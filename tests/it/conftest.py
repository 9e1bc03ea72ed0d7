"""Fixtures for the dmail integration tests.

Every test gets its own temporary directory with a dmail.conf, a users file, mailboxes,
spool and work directories, and a dsmtp started from $DMAIL_BIN (default ./bin) in the
foreground on random free ports of 127.0.0.1. Teardown stops it, fails the test if the
server died on its own or printed an ASan/UBSan report, and removes the directory.

    def test_x(dsmtp):                  # default server
        dsmtp.smtp_port, dsmtp.messages("alice"), dsmtp.mbox_path("alice")
    def test_y(dsmtp_factory):          # server with extra settings
        srv = dsmtp_factory(max_rcpts=3, tls=False)
        srv.restart(max_rcpts=5)        # stop, rewrite dmail.conf, start again

Settings given as keyword arguments override the defaults; None removes a setting; a
list is written as repeated lines. Passing DMAIL_IT_KEEP=1 in the environment keeps the
directories of failed tests.
"""

import ctypes
import ctypes.util
import os
import re
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dmail_it import (  # noqa: E402
    ALIAS_DOMAIN,
    DOMAIN,
    HOST,
    read_mbox,
)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DMAIL_BIN") or os.path.join(REPO, "bin")
START_TIMEOUT = 10.0
SANITIZER_MARKS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "SUMMARY: UndefinedBehaviorSanitizer")

# Test accounts. bob's password has a space and a colon on purpose (AUTH must not split
# on them); carol has a yescrypt hash; dave exists only in the alias domain.
PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "correct horse:battery",
    "carol": "carol-yes-crypt",
    "dave": "dave-pw-42",
}


def is_root():
    return os.geteuid() == 0


def run_as_user():
    return "nobody" if is_root() else pwd.getpwuid(os.getuid()).pw_name


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


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


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


@pytest.fixture(scope="session")
def it_assets():
    """Certificate, key and password hashes, made once per session."""
    d = tempfile.mkdtemp(prefix="dmail-it-assets-")
    try:
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
        yield {"cert": cert, "key": key, "users": "\n".join(users) + "\n"}
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Dsmtp:
    """One dsmtp in its own directory."""

    def __init__(self, assets, settings, tls=True, name="dsmtp"):
        self.dir = tempfile.mkdtemp(prefix="dmail-it-")
        os.chmod(self.dir, 0o755)
        self.conf_path = os.path.join(self.dir, "dmail.conf")
        self.drop = os.path.join(self.dir, "drop")
        self.spool = os.path.join(self.dir, "spool")
        self.work = os.path.join(self.dir, "work")
        self.users_file = os.path.join(self.dir, "users")
        self.stderr_path = os.path.join(self.dir, "dsmtp.stderr")
        self.passwords = dict(PASSWORDS)
        self.proc = None
        self.flags = ["-f"]  # [] runs without -f: logging goes to log_file (or syslog)
        self.deaths = []  # (rc) of unexpected exits
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
        }
        if tls:
            self.base["tls_cert"] = self.cert
            self.base["tls_key"] = self.key
        self.settings = {}
        self.write_conf(settings)

    # -- configuration
    def write_conf(self, settings):
        self.settings.update(settings)
        merged = dict(self.base)
        merged.update(self.settings)
        lines = ["# written by tests/it/conftest.py"]
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

    def chown(self):
        if not is_root():
            return
        pw = pwd.getpwnam("nobody")
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

    # -- process
    def start(self, wait=True):
        assert self.proc is None
        exe = os.path.join(BIN, "dsmtp")
        if not os.access(exe, os.X_OK):
            pytest.fail("no dsmtp binary at %s (set DMAIL_BIN)" % exe)
        self.chown()
        self._err = open(self.stderr_path, "ab")
        self._log_mark = self._err.tell()
        self.proc = subprocess.Popen([exe, *self.flags, "-c", self.conf_path], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, env=self.env())
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        ports = [p for p in (self.smtp_port, self.submission_port, self.smtps_port) if p]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail("dsmtp exited with %d at start-up:\n%s" % (rc, self.log()[-4000:]))
            # listening starts before the spool directories are made (after the drop of
            # privileges): ready means the "started" line too
            if all(port_open(p) for p in ports) and self._started():
                return
            time.sleep(0.05)
        pytest.fail("dsmtp did not accept on %s within %.0f s:\n%s"
                    % (ports, timeout, self.log()[-4000:]))

    def _started(self):
        if "-f" not in self.flags:
            return True  # the log goes to log_file or syslog
        with open(self.conf_path) as f:
            if re.search(r"^log_level\s+(error|warn)\s*$", f.read(), re.M):
                return True  # the "started" line is not logged at that level
        with open(self.stderr_path, "rb") as f:
            f.seek(getattr(self, "_log_mark", 0))
            return b" started as " in f.read()

    def listening(self):
        """{(address, port)} of the TCP sockets the running dsmtp listens on."""
        return listening_sockets(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _reap(self):
        if self._err:
            self._err.close()
            self._err = None
        self.proc = None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout. Records an exit the test did not cause."""
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
            self.write_conf(settings)
        return self.start()

    # -- files
    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

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

    def queue_files(self):
        q = os.path.join(self.spool, "queue")
        out = []
        for root, _, files in os.walk(q):
            out.extend(os.path.join(root, f) for f in files)
        return out

    def sanitizer_report(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 500):i + 3000]
        return None

    def cleanup(self, keep=False):
        self.stop()
        self.stderr_text = self.log()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and rep.when in ("call", "setup"):
        for srv in getattr(item, "_dsmtp_servers", []):
            rep.sections.append(("dsmtp stderr (%s), last 6000 chars" % srv.dir,
                                 srv.log()[-6000:]))


@pytest.fixture
def dsmtp_factory(request, it_assets):
    servers = []
    request.node._dsmtp_servers = servers

    def make(tls=True, start=True, **settings):
        srv = Dsmtp(it_assets, settings, tls=tls)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make

    problems = []
    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    keep = failed and bool(os.environ.get("DMAIL_IT_KEEP"))
    for srv in servers:
        srv.stop()
        rep = srv.sanitizer_report()
        if rep:
            problems.append("sanitizer report from dsmtp:\n" + rep)
        if srv.deaths:
            problems.append("dsmtp exited on its own (rc %s):\n%s"
                            % (srv.deaths, srv.log()[-3000:]))
        srv.cleanup(keep=keep)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def dsmtp(dsmtp_factory):
    return dsmtp_factory()
