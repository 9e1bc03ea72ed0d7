"""A scriptable fake milter (the filter side of the Sendmail milter protocol, version 6)
in plain Python, for the integration tests of dsmtp's milter client; and MilterClient, a
minimal MTA side of the same protocol that tests the fake itself.

    m = FakeMilter()                    # 127.0.0.1:free port (host="::1": inet:[::1]:port);
                                        # FakeMilter(path=...): a Unix socket
    m.on("rcpt", REJECT)                # every RCPT rejected
    m.on("eom", ("addheader", "X-A", "1"), ("replbody", b"new\\r\\n"), CONTINUE)
    m.on("mail", lambda sess, pkt: [TEMPFAIL] if "bad" in pkt.args[0] else [CONTINUE])
    m.start(); conf = {"milters": m.address}  # "inet:127.0.0.1:PORT" or "unix:PATH"
    ...
    s = m.wait_sessions(1)[0]           # one Session per connection the MTA made
    s.cmds()                            # "OCHMRTLLNBE..." the command letters received
    s.first("connect").fields["addr"]   # decoded fields of each packet
    s.macros("mail")["{auth_authen}"]   # the macros the MTA sent for a stage (merged)
    s.body()                            # the body chunks joined
    m.stop()                            # closes the listener and every connection

Protocol: every packet is a 4-byte big-endian length (of what follows), one command
byte, its data. The MTA starts with SMFIC_OPTNEG ('O': version, actions, protocol
flags); the fake answers with version 6, the actions it may take (all by default) and
the protocol flags it wants (none: it sees every stage and answers each one). Before
a stage's command the MTA may send SMFIC_MACRO ('D': the stage's command letter, then
name NUL value NUL pairs).

A stage's script is a list of steps, the last one usually the verdict:

    CONTINUE "c", ACCEPT "a", REJECT "r", TEMPFAIL "t", DISCARD "d"  one-letter verdicts
    ("reply", "550 5.7.0 text")       SMFIR_REPLYCODE (multi-line: "550-5.7.0 a\\r\\n550 5.7.0 b")
    ("addheader", name, value)        SMFIR_ADDHEADER
    ("insheader", index, name, value) SMFIR_INSHEADER
    ("chgheader", index, name, value) SMFIR_CHGHEADER (value "" deletes the index-th name)
    ("replbody", bytes)               SMFIR_REPLBODY (a step per packet: several for a long body)
    ("addrcpt", addr) ("delrcpt", addr) ("chgfrom", addr) ("quarantine", reason)
    ("progress", n, every_seconds)    n SMFIR_PROGRESS packets, every_seconds apart
    ("sleep", seconds)                wait before the next step
    ("raw", cmd_letter, data_bytes)   any packet
    HANG "hang"                       never answer (reads and records until the MTA closes)
    CLOSE "close"                     close the connection
    GARBAGE "garbage"                 bytes that are no milter packet, then keep reading

A script is given per stage name (connect helo mail rcpt data header eoh body eom
unknown) as steps or as a callable (session, packet) -> steps; a stage without a script
answers CONTINUE. FakeMilter(optneg=HANG) (or CLOSE, GARBAGE) breaks the negotiation;
FakeMilter(protocol=SMFIP_...) asks for stages to be left out (SMFIP_NO*) or sent
without an answer (SMFIP_NR_*: the fake then answers nothing there).
Everything runs in threads of the test process; stop() is clean.
"""

import contextlib
import os
import socket
import struct
import threading
import time
import traceback

# command letters the MTA sends, and the stage names the scripts use
STAGES = {b"C": "connect", b"H": "helo", b"M": "mail", b"R": "rcpt", b"T": "data",
          b"L": "header", b"N": "eoh", b"B": "body", b"E": "eom", b"U": "unknown"}
NO_REPLY = {b"A": "abort", b"D": "macro", b"Q": "quit", b"K": "quit_nc", b"O": "optneg"}
STAGE_LETTER = {v: k for k, v in STAGES.items()}

CONTINUE, ACCEPT, REJECT, TEMPFAIL, DISCARD = "c", "a", "r", "t", "d"
HANG, CLOSE, GARBAGE = "hang", "close", "garbage"
VERDICTS = (CONTINUE, ACCEPT, REJECT, TEMPFAIL, DISCARD)

# SMFIF_* actions and SMFIP_* protocol flags (libmilter's mfdef.h)
SMFIF_ADDHDRS, SMFIF_CHGBODY, SMFIF_ADDRCPT, SMFIF_DELRCPT = 0x01, 0x02, 0x04, 0x08
SMFIF_CHGHDRS, SMFIF_QUARANTINE, SMFIF_CHGFROM, SMFIF_ADDRCPT_PAR = 0x10, 0x20, 0x40, 0x80
SMFIF_SETSYMLIST = 0x100
ALL_ACTIONS = 0x1FF
SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NORCPT = 0x1, 0x2, 0x4, 0x8
SMFIP_NOBODY, SMFIP_NOHDRS, SMFIP_NOEOH, SMFIP_NR_HDR = 0x10, 0x20, 0x40, 0x80
SMFIP_NODATA, SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL = 0x200, 0x1000, 0x2000, 0x4000
SMFIP_NR_RCPT, SMFIP_NR_DATA, SMFIP_NR_EOH, SMFIP_NR_BODY = 0x8000, 0x10000, 0x40000, 0x80000
# the stages a milter may ask to get without answering (SMFIP_NR_*)
SMFIP_SKIP, SMFIP_HDR_LEADSPC = 0x400, 0x100000
NO_REPLY_FLAG = {"connect": SMFIP_NR_CONN, "helo": SMFIP_NR_HELO, "mail": SMFIP_NR_MAIL,
                 "rcpt": SMFIP_NR_RCPT, "data": SMFIP_NR_DATA, "header": SMFIP_NR_HDR,
                 "eoh": SMFIP_NR_EOH, "body": SMFIP_NR_BODY}
MAX_PACKET = 1 << 24
GARBAGE_BYTES = b"\xff\xff\xff\xf0this is not a milter packet\r\n"


class ProtocolError(Exception):
    pass


def pack(cmd, data=b""):
    if isinstance(cmd, str):
        cmd = cmd.encode()
    return struct.pack(">I", len(data) + 1) + cmd + data


def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def split_nul(data):
    """NUL-terminated strings of data, decoded (a missing last NUL is tolerated)."""
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_packet(sock):
    """(cmd bytes, data bytes) of the next packet on sock."""
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n < 1 or n > MAX_PACKET:
        raise ProtocolError("bad packet length %d" % n)
    body = recv_exact(sock, n)
    return body[:1], body[1:]


class Packet:
    """One packet the MTA sent: cmd (a letter), stage (its name), data (raw bytes),
    fields (decoded: see decode()), macros (those sent for it just before), t (monotonic
    time it arrived)."""

    def __init__(self, cmd, data, macros):
        self.cmd = cmd.decode("latin-1")
        self.stage = STAGES.get(cmd) or NO_REPLY.get(cmd) or "?"
        self.data = data
        self.macros = macros
        self.t = time.monotonic()
        self.fields = self.decode()

    @property
    def args(self):
        return self.fields.get("args", [])

    def decode(self):
        c, d = self.cmd, self.data
        try:
            if c == "O":
                v, a, p = struct.unpack(">III", d[:12])
                return {"version": v, "actions": a, "protocol": p}
            if c == "C":
                host, rest = d.split(b"\0", 1)
                fam = rest[:1].decode()
                out = {"host": host.decode(), "family": fam}
                if fam in ("4", "6"):
                    out["port"] = struct.unpack(">H", rest[1:3])[0]
                    out["addr"] = split_nul(rest[3:])[0]
                elif fam == "L":
                    out["port"] = struct.unpack(">H", rest[1:3])[0]
                    out["addr"] = split_nul(rest[3:])[0] if rest[3:] else ""
                return out
            if c == "H":
                return {"helo": split_nul(d)[0]}
            if c in ("M", "R", "U"):
                return {"args": split_nul(d)}
            if c == "L":
                name, value = split_nul(d)[:2] + [""] * (2 - len(split_nul(d)[:2]))
                return {"name": name, "value": value}
            if c in ("B", "E"):
                return {"chunk": d}
            if c == "D":
                parts = split_nul(d[1:])
                return {"for": d[:1].decode(), "macros": dict(zip(parts[0::2], parts[1::2]))}
        except (ValueError, struct.error, IndexError) as e:
            return {"error": "undecodable %s packet: %s (%r)" % (c, e, d[:100])}
        return {}

    def __repr__(self):
        return "<%s %s %r>" % (self.cmd, self.stage, self.fields)


class Session:
    """One connection from the MTA: packets received in order; ended is set when it
    closes (end says why: "quit", "eof", "closed by script", "stopped", an error)."""

    def __init__(self, conn):
        self.conn = conn
        self.packets = []
        self.ended = threading.Event()
        self.end = None
        self.sent = []  # (letter, data) of every packet the fake sent
        self.closed_at = None  # when the MTA closed a hung session (monotonic)
        self.protocol = 0  # the SMFIP_* flags negotiated
        self.lock = threading.Lock()

    def cmds(self):
        """The command letters received, macros left out: "OCHMRTLLNBE"."""
        return "".join(p.cmd for p in list(self.packets) if p.cmd != "D")

    def all(self, stage):
        return [p for p in list(self.packets) if p.stage == stage]

    def first(self, stage):
        got = self.all(stage)
        assert got, "no %s packet in session: %s" % (stage, self.cmds())
        return got[0]

    def macros(self, stage):
        """Every macro the MTA sent for stage (its command letter), merged, later wins."""
        letter = STAGE_LETTER.get(stage, stage).decode() if stage in STAGE_LETTER else stage
        out = {}
        for p in list(self.packets):
            if p.cmd == "D" and p.fields.get("for") == letter:
                out.update(p.fields["macros"])
        return out

    def all_macros(self):
        out = {}
        for p in list(self.packets):
            if p.cmd == "D":
                out.update(p.fields["macros"])
        return out

    def headers(self):
        """[(name, value)] of the header packets."""
        return [(p.fields["name"], p.fields["value"]) for p in self.all("header")]

    def body(self):
        """The body chunks (and any data of end of message) joined."""
        return b"".join(p.fields.get("chunk", b"") for p in list(self.packets)
                        if p.cmd in ("B", "E"))

    def rcpts(self):
        return [p.args[0] for p in self.all("rcpt")]

    def wait_cmd(self, letter, timeout=10.0):
        """Wait until a packet with command letter arrived (or the session ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if letter in self.cmds() or self.ended.is_set():
                break
            time.sleep(0.02)
        return letter in self.cmds()


class FakeMilter:
    """The fake milter server; see the module docstring."""

    def __init__(self, path=None, host="127.0.0.1", port=0, actions=ALL_ACTIONS, protocol=0,
                 version=6, symlists=None, optneg=None):
        self.path = path
        self.optneg = optneg  # steps instead of the OPTNEG answer (HANG, CLOSE, GARBAGE)
        self.actions = actions
        self.protocol = protocol  # SMFIP_* flags asked for (stages not wanted, ...)
        self.version = version
        self.symlists = symlists or {}  # {stage index: "macro names"} in the OPTNEG reply
        self.scripts = {}
        self.sessions = []
        self.errors = []
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        if path:
            if os.path.exists(path):
                os.unlink(path)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            os.chmod(path, 0o777)  # dsmtp runs as nobody
            self.address = "unix:" + path
        else:
            v6 = ":" in host
            self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                                      socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.port = self.sock.getsockname()[1]
            self.address = ("inet:[%s]:%d" if v6 else "inet:%s:%d") % (host, self.port)
        self.sock.listen(64)

    # -- scripting
    def on(self, stage, *steps):
        """The script of stage: steps (or one list of them), or one callable (session,
        packet) -> steps."""
        assert stage in STAGE_LETTER, stage
        if len(steps) == 1 and callable(steps[0]):
            self.scripts[stage] = steps[0]
        elif len(steps) == 1 and isinstance(steps[0], list):
            self.scripts[stage] = list(steps[0])
        else:
            self.scripts[stage] = list(steps)
        return self

    def steps_for(self, sess, pkt):
        s = self.scripts.get(pkt.stage)
        if s is None:
            return [CONTINUE]
        return _steps(s(sess, pkt) if callable(s) else s)

    # -- lifetime
    def start(self):
        t = threading.Thread(target=self._accept_loop, name="fake-milter", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for s in list(self.sessions):
            try:
                s.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def wait_sessions(self, n, timeout=10.0, ended=False):
        """The first n sessions once they exist (and have ended, if ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = list(self.sessions)
            if len(got) >= n and (not ended or all(s.ended.is_set() for s in got[:n])):
                return got[:n]
            time.sleep(0.02)
        raise AssertionError("fake milter: %d session(s) (%s) within %.1fs, wanted %d%s"
                             % (len(self.sessions), [s.cmds() for s in self.sessions],
                                timeout, n, " ended" if ended else ""))

    def forget_sessions(self, quiet=0.3, timeout=5.0):
        """Wait until every session so far has ended and none came for quiet seconds,
        then forget them: the connections a server's start-up checks made (a port probe
        is an SMTP session, and so a milter session, to the MTA)."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = list(self.sessions)
            if len(got) != seen:
                seen, since = len(got), time.monotonic()
            elif time.monotonic() - since >= quiet and all(x.ended.is_set() for x in got):
                break
            time.sleep(0.02)
        with self._lock:
            del self.sessions[:seen]

    def wait_session_with(self, letter, timeout=10.0):
        """The first session that received a packet with command letter."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in list(self.sessions):
                if letter in s.cmds():
                    return s
            time.sleep(0.02)
        raise AssertionError("fake milter: no session got %r within %.1fs: %s"
                             % (letter, timeout, [(s.cmds(), s.end) for s in self.sessions]))

    # -- the server
    def _accept_loop(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sess = Session(conn)
            with self._lock:
                self.sessions.append(sess)
            t = threading.Thread(target=self._serve, args=(sess,), daemon=True,
                                 name="fake-milter-session")
            t.start()
            self._threads.append(t)

    def _send(self, sess, cmd, data=b""):
        sess.sent.append((cmd, data))
        sess.conn.sendall(pack(cmd, data))

    def _serve(self, sess):
        conn = sess.conn
        conn.settimeout(0.2)
        pending_macros = {}
        try:
            while not self._stop.is_set():
                try:
                    cmd, data = self._read(sess)
                except socket.timeout:
                    continue
                pkt = Packet(cmd, data, {})
                if pkt.cmd == "D":
                    pending_macros.update({pkt.fields.get("for"): pkt.fields.get("macros", {})})
                elif cmd in STAGES:
                    pkt.macros = pending_macros.pop(pkt.cmd, {})
                sess.packets.append(pkt)
                if cmd == b"O" and self.optneg is not None:
                    if not self._play(sess, _steps(self.optneg)):
                        return
                elif cmd == b"O":
                    self._optneg(sess, pkt)
                elif cmd in (b"Q",):
                    sess.end = "quit"
                    return
                elif cmd in STAGES:
                    if not self._run(sess, pkt):
                        return
                # A, D, K: no reply
        except EOFError:
            sess.end = sess.end or ("stopped" if self._stop.is_set() else "eof")
        except (OSError, ProtocolError) as e:
            sess.end = sess.end or "error: %s" % e
            if not self._stop.is_set() and not isinstance(e, OSError):
                self.errors.append(str(e))
        except Exception:  # a script's own bug: shown by the test's teardown
            sess.end = "script error"
            self.errors.append(traceback.format_exc())
        finally:
            if self._stop.is_set():
                sess.end = sess.end or "stopped"
            try:
                conn.close()
            except OSError:
                pass
            sess.ended.set()

    def _read(self, sess):
        """The next packet; a timeout before its first byte is passed on (so stop() is
        seen), once a packet started it is read whole."""
        head = sess.conn.recv(4)
        if not head:
            raise EOFError("MTA closed")
        sess.conn.settimeout(10.0)
        try:
            head += recv_exact(sess.conn, 4 - len(head))
            (n,) = struct.unpack(">I", head)
            if n < 1 or n > MAX_PACKET:
                raise ProtocolError("bad packet length %d" % n)
            body = recv_exact(sess.conn, n)
        finally:
            sess.conn.settimeout(0.2)
        return body[:1], body[1:]

    def _optneg(self, sess, pkt):
        f = pkt.fields
        if "error" in f:
            raise ProtocolError(f["error"])
        sess.protocol = self.protocol & f["protocol"]
        data = struct.pack(">III", self.version, self.actions & f["actions"], sess.protocol)
        for idx, names in sorted(self.symlists.items()):
            data += struct.pack(">I", idx) + cstr(names)
        self._send(sess, "O", data)

    def _run(self, sess, pkt):
        if sess.protocol & NO_REPLY_FLAG.get(pkt.stage, 0):
            return True  # negotiated: this stage gets no answer
        return self._play(sess, self.steps_for(sess, pkt))

    def _play(self, sess, steps):
        """Play steps. False when the session is over (closed by script, hung)."""
        for step in steps:
            if isinstance(step, str):
                if step in VERDICTS:
                    self._send(sess, step)
                elif step == HANG:
                    self._hang(sess)
                    return False
                elif step == CLOSE:
                    sess.end = "closed by script"
                    sess.conn.close()
                    return False
                elif step == GARBAGE:
                    sess.sent.append(("garbage", GARBAGE_BYTES))
                    sess.conn.sendall(GARBAGE_BYTES)
                else:
                    raise ValueError("unknown step %r" % step)
                continue
            kind, args = step[0], step[1:]
            if kind == "reply":
                self._send(sess, "y", cstr(args[0]))
            elif kind == "addheader":
                self._send(sess, "h", cstr(args[0]) + cstr(args[1]))
            elif kind in ("insheader", "chgheader"):
                self._send(sess, "i" if kind == "insheader" else "m",
                           struct.pack(">I", args[0]) + cstr(args[1]) + cstr(args[2]))
            elif kind == "replbody":
                body = args[0].encode() if isinstance(args[0], str) else args[0]
                self._send(sess, "b", body)
            elif kind == "addrcpt":
                self._send(sess, "+", cstr(args[0]))
            elif kind == "delrcpt":
                self._send(sess, "-", cstr(args[0]))
            elif kind == "chgfrom":
                self._send(sess, "e", cstr(args[0]))
            elif kind == "quarantine":
                self._send(sess, "q", cstr(args[0]))
            elif kind == "progress":
                for _ in range(args[0]):
                    self._send(sess, "p")
                    if self._stop.wait(args[1]):
                        return False
            elif kind == "sleep":
                if self._stop.wait(args[0]):
                    return False
            elif kind == "raw":
                self._send(sess, args[0], args[1])
            else:
                raise ValueError("unknown step %r" % (step,))
        return True

    def _hang(self, sess):
        """Never answer: read (and record raw) until the MTA closes or stop()."""
        sess.end = "hung"
        while not self._stop.is_set():
            try:
                chunk = sess.conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                sess.end = "hung, then closed by the MTA"
                sess.closed_at = time.monotonic()
                break


def _steps(s):
    """A script's steps as a list: one step (a letter, a tuple) or a sequence of them."""
    if isinstance(s, str) or (isinstance(s, tuple) and s and s[0] in _TUPLE_STEPS):
        return [s]
    return list(s)


_TUPLE_STEPS = ("reply", "addheader", "insheader", "chgheader", "replbody", "addrcpt",
                "delrcpt", "chgfrom", "quarantine", "progress", "sleep", "raw")


# ----------------------------------------------------------------- the MTA side


class MilterClient:
    """A minimal MTA side (what Postfix's smtpd does, in the simplest form) to test the
    fake: each stage method sends the macros and the command and returns the replies up
    to the verdict, [(letter, data)]."""

    def __init__(self, address, timeout=5.0):
        if address.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address[5:])
        else:
            host, port = address[5:].rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)

    def send(self, cmd, data=b""):
        self.sock.sendall(pack(cmd, data))

    def replies(self):
        """Packets up to a verdict (c a r t d y) or an OPTNEG reply."""
        out = []
        while True:
            cmd, data = read_packet(self.sock)
            out.append((cmd.decode("latin-1"), data))
            if cmd in (b"c", b"a", b"r", b"t", b"d", b"y", b"O"):
                return out

    def optneg(self, actions=ALL_ACTIONS, protocol=0x1FFFFF):
        self.send("O", struct.pack(">III", 6, actions, protocol))
        (cmd, data), = self.replies()
        assert cmd == "O", cmd
        return struct.unpack(">III", data[:12])

    def macro(self, letter, macros):
        self.send("D", letter.encode() + b"".join(cstr(k) + cstr(v) for k, v in macros.items()))

    def stage(self, letter, data=b"", macros=None):
        if macros:
            self.macro(letter, macros)
        self.send(letter, data)
        return self.replies()

    def connect(self, host, addr, port, macros=None):
        return self.stage("C", cstr(host) + b"4" + struct.pack(">H", port) + cstr(addr), macros)

    def close(self):
        try:
            self.send("Q")
        except OSError:
            pass
        self.sock.close()


# ----------------------------------------------------------------- a real MTA to compare


@contextlib.contextmanager
def private_postfix(milters, *extra):
    """A private Postfix instance (bench/servers.py's: 127.0.0.1 only, local delivery to
    the mbox mail/USER of its directory for USER@bench.test) with smtpd_milters = milters,
    milter_default_action tempfail and extra main.cf lines; root only. Its directory is
    under /var/tmp: Postfix's maillog_file must match maillog_file_prefixes (/var, ...)."""
    import shutil
    import sys
    import tempfile
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "bench"))
    import servers
    d = tempfile.mkdtemp(prefix="dmail-it-postfix-", dir="/var/tmp")
    os.chmod(d, 0o755)
    pf = servers.Postfix(d, smtpd_max=5, main_extra=[
        "smtpd_milters = " + ", ".join(milters), "milter_default_action = tempfail",
        "milter_command_timeout = 10s", *extra])
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        shutil.rmtree(d, ignore_errors=True)
