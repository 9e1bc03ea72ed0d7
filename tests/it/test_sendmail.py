"""sendmail, mailq and newaliases: the maildrop file they write (man/dmail-queue.5).

These tests need only the programs and a configuration in a temporary directory; pickup
by a running dsmtp is tested elsewhere. DMAIL_BIN names the directory of the programs
(default ./bin).
"""

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("DMAIL_BIN", os.path.join(REPO, "bin")))
SENDMAIL = os.path.join(BIN, "sendmail")
TIMEOUT = 30

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE = 64, 65, 67, 69
EX_CANTCREAT, EX_CONFIG = 73, 78

pytestmark = pytest.mark.skipif(not os.access(SENDMAIL, os.X_OK), reason="no bin/sendmail")


# --- a strict reader of the queue file format -------------------------------------


class QfileError(Exception):
    pass


def unescape_addr(tok):
    """'<...>' with +XX escapes to the address."""
    if not (tok.startswith("<") and tok.endswith(">")):
        raise QfileError("address not in angle brackets: %r" % tok)
    out = bytearray()
    s = tok[1:-1].encode()
    i = 0
    while i < len(s):
        if s[i : i + 1] == b"+":
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
        else:
            out += s[i : i + 1]
            i += 1
    return out.decode()


def parse_qfile(path):
    """The file as a dict; raises QfileError on anything the format does not allow."""
    data = open(path, "rb").read()
    pos = 0

    def line():
        nonlocal pos
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise QfileError("truncated header")
        text = data[pos:nl].decode()
        pos = nl + 1
        return text

    def key(name):
        text = line()
        if not text.startswith(name + " "):
            raise QfileError("expected %s, got %r" % (name, text))
        return text[len(name) + 1 :]

    def optional(name, nfields):
        """An optional "NAME V1 V2..." line (the DSN lines): its values or None."""
        if not data.startswith(name.encode() + b" ", pos):
            return None
        vals = key(name).split(" ")
        if len(vals) != nfields or "" in vals:
            raise QfileError("bad %s line %r" % (name, vals))
        return vals

    if line() != "DMQ 1":
        raise QfileError("bad magic")
    q = {"id": key("id"), "arrival": int(key("arrival"))}
    q["sender"] = unescape_addr(key("sender"))
    q["origin"] = key("origin")
    q["flags"] = int(key("flags"))
    verp = optional("verp", 1)  # the XVERP delimiters
    if verp is not None and len(verp[0]) != 2:
        raise QfileError("bad verp line %r" % verp)
    q["verp"] = verp[0] if verp else None
    q["dsn"] = optional("dsn", 3)  # RET ENVID NOTIFY
    n = int(key("rcpts"))
    q["rcpts"] = []
    for _ in range(n):
        state, attempts, next_try, rest = key("rcpt").split(" ", 3)
        addr, _, error = rest.partition(" ")  # addresses hold no spaces (escaped)
        q["rcpts"].append(
            {
                "state": state,
                "attempts": int(attempts),
                "next_try": int(next_try),
                "addr": unescape_addr(addr),
                "error": error or None,
                "notify": optional("notify", 2),  # NOTIFY ORCPT
                "xheader": (optional("xheader", 1) or [None])[0],  # its own fields (xtext)
            }
        )
    size = int(key("size"))
    if line() != "":
        raise QfileError("no blank line after the header")
    text = data[pos : pos + size]
    if len(text) != size:
        raise QfileError("short text")
    pos += size
    if size and not text.endswith(b"\n"):
        if data[pos : pos + 1] != b"\n":
            raise QfileError("no newline after the text")
        pos += 1
    if data[pos:] != b"end\n":
        raise QfileError("bad trailer %r" % data[pos:])
    q["text"] = text.decode("utf-8", "replace")
    q["raw"] = text
    return q


def headers(text):
    """The header block as a list of (name, unfolded value)."""
    out = []
    for ln in text.split("\n"):
        if ln == "":
            break
        if ln[0] in " \t" and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + ln.strip())
        else:
            name, _, value = ln.partition(":")
            out.append((name, value.strip()))
    return out


def header(text, name):
    vals = [v for n, v in headers(text) if n.lower() == name.lower()]
    return vals


def body(text):
    return text.split("\n\n", 1)[1] if "\n\n" in text else ""


# --- fixtures ----------------------------------------------------------------------


class Site:
    """A configuration and a spool in a temporary directory."""

    def __init__(self, root, extra=""):
        self.root = root
        self.spool = os.path.join(root, "spool")
        self.maildrop = os.path.join(self.spool, "maildrop")
        self.queue = os.path.join(self.spool, "queue")
        for d in (self.spool, self.maildrop, self.queue, os.path.join(root, "drop")):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.maildrop, 0o3770)
        users = os.path.join(root, "users")
        with open(users, "w") as f:
            f.write("user:$6$salt$0123456789abcdef\n")
        self.conf = os.path.join(root, "dmail.conf")
        with open(self.conf, "w") as f:
            f.write(
                "host_domain example.test\n"
                "spool_dir %s\n"
                "drop_path %s/drop\n"
                "work_path %s\n"
                "users_file %s\n"
                "log_level debug\n%s" % (self.spool, root, root, users, extra)
            )
        self.env = dict(os.environ, DMAIL_CONF=self.conf, LC_ALL="C")

    def run(self, args, data=b"", prog=SENDMAIL, env=None, expect=0, **kw):
        p = subprocess.run(
            [prog] + list(args),
            input=data,
            capture_output=True,
            env=env or self.env,
            timeout=TIMEOUT,
            **kw,
        )
        if expect is not None:
            assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
        return p

    def files(self, where=None):
        d = where or self.maildrop
        return sorted(n for n in os.listdir(d) if not n.startswith("."))

    def dotfiles(self):
        return [n for n in os.listdir(self.maildrop) if n.startswith(".")]

    def only(self):
        names = self.files()
        assert len(names) == 1, names
        assert self.dotfiles() == []
        q = parse_qfile(os.path.join(self.maildrop, names[0]))
        assert q["id"] == names[0]
        return q

    def clear(self):
        for n in os.listdir(self.maildrop):
            os.unlink(os.path.join(self.maildrop, n))


@pytest.fixture
def site(tmp_path):
    return Site(str(tmp_path))


ME = pwd.getpwuid(os.getuid()).pw_name
MSG = b"Subject: hello\n\nbody line\n"


# --- tests -------------------------------------------------------------------------


def test_plain_recipients(site):
    site.run(["alice", "bob@Example.TEST", "Carol <carol@example.org>, dave@example.net"], MSG)
    q = site.only()
    assert [r["addr"] for r in q["rcpts"]] == [
        "alice@example.test",
        "bob@example.test",
        "carol@example.org",
        "dave@example.net",
    ]
    assert all(r["state"] == "pending" and r["attempts"] == 0 for r in q["rcpts"])
    assert q["sender"] == ME + "@example.test"
    assert q["origin"] == "sendmail uid=%d user=%s" % (os.getuid(), ME)
    assert q["flags"] == 0
    assert header(q["text"], "Subject") == ["hello"]
    assert body(q["text"]) == "body line\n"
    # the headers an MTA adds when they are missing
    (frm,) = header(q["text"], "From")
    assert frm.endswith("<%s@example.test>" % ME) or frm == ME + "@example.test"
    (date,) = header(q["text"], "Date")
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", date), date
    (msgid,) = header(q["text"], "Message-ID")
    assert re.fullmatch(r"<%s@[a-z0-9.-]+\.[a-z0-9-]+>" % re.escape(q["id"]), msgid), msgid
    st = os.stat(os.path.join(site.maildrop, q["id"]))
    assert stat.S_IMODE(st.st_mode) == 0o640


def test_existing_headers_kept(site):
    msg = (
        b"From: Someone <someone@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Message-ID: <abc@example.org>\nTo: x@example.test\n\nhi\n"
    )
    site.run(["x@example.test"], msg)
    q = site.only()
    assert q["text"] == msg.decode()


def test_dmail_conf_and_dash_C(site, tmp_path):
    env = dict(os.environ, LC_ALL="C")
    env.pop("DMAIL_CONF", None)
    site.run(["-C", site.conf, "alice"], MSG, env=env)
    site.run(["-C" + site.conf, "bob"], MSG, env=env)
    assert len(site.files()) == 2
    bad = tmp_path / "bad.conf"
    bad.write_text("max_rcpts lots\n")
    p = site.run(["-C", str(bad), "alice"], MSG, env=env, expect=EX_CONFIG)
    assert b"max_rcpts" in p.stderr


def test_t_with_to_cc_bcc(site):
    msg = (
        b"From: me@example.test\n"
        b"To: Alice <alice@example.test>,\n"
        b'  "Bob, Jr." <bob@example.test> (the boss)\n'
        b"Cc: team: carol@example.test, dave;\n"
        b"Bcc: secret@example.org\n"
        b"bcc: Other Secret <other@example.org>, undisclosed-recipients:;\n"
        b"Subject: -t test\n"
        b"\n"
        b"Bcc: this line is in the body and stays\n"
    )
    site.run(["-t", "-i", "extra@example.net"], msg)
    q = site.only()
    assert sorted(r["addr"] for r in q["rcpts"]) == sorted(
        [
            "extra@example.net",
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
            "dave@example.test",
            "secret@example.org",
            "other@example.org",
        ]
    )
    assert header(q["text"], "Bcc") == []
    assert "secret@example.org" not in q["text"].split("\n\n")[0]
    assert len(header(q["text"], "To")) == 1
    assert header(q["text"], "Cc") == ["team: carol@example.test, dave@example.test;"]
    assert body(q["text"]) == "Bcc: this line is in the body and stays\n"


def test_t_duplicates_and_no_recipients(site):
    site.run(["-t"], b"To: a@example.test, A <a@example.test>\nCc: a@example.test\n\nx\n")
    assert [r["addr"] for r in site.only()["rcpts"]] == ["a@example.test"]
    site.clear()
    p = site.run(["-t"], b"Subject: nobody\n\nx\n", expect=EX_DATAERR)
    assert b"no recipient" in p.stderr
    assert site.files() == []


def test_f_and_F(site):
    site.run(["-f", "other@example.org", "-F", "Jane Q. Public", "alice"], MSG)
    q = site.only()
    assert q["sender"] == "other@example.org"
    assert header(q["text"], "From") == ['"Jane Q. Public" <other@example.org>']
    # the origin still names the real user
    assert q["origin"] == "sendmail uid=%d user=%s" % (os.getuid(), ME)
    site.clear()
    site.run(["-fnoreply", "-FRobot", "alice"], MSG)
    q = site.only()
    assert q["sender"] == "noreply@example.test"
    assert header(q["text"], "From") == ["Robot <noreply@example.test>"]
    site.clear()
    site.run(["-f", "<>", "alice"], MSG)
    q = site.only()
    assert q["sender"] == ""
    site.clear()
    site.run(["-r", "<bounce@example.org>", "alice"], MSG)
    assert site.only()["sender"] == "bounce@example.org"


def test_F_cannot_inject_headers(site):
    site.run(["-F", "Eve\nBcc: victim@example.org", "alice"], MSG)
    q = site.only()
    assert header(q["text"], "Bcc") == []
    assert [r["addr"] for r in q["rcpts"]] == ["alice@example.test"]
    (frm,) = header(q["text"], "From")
    assert "Eve" in frm and "\n" not in frm


def test_lone_dot_ends_input_without_i(site):
    site.run(["alice"], b"Subject: dot\n\nline one\n.\nafter the dot\n")
    assert body(site.only()["text"]) == "line one\n"
    site.clear()
    site.run(["alice"], b"Subject: dot\r\n\r\nline one\r\n.\r\nafter\r\n")
    assert body(site.only()["text"]) == "line one\n"
    site.clear()
    # ".." is not unstuffed outside SMTP, and a dot that starts a longer line stays
    site.run(["alice"], b"Subject: dot\n\n..\n.x\n")
    assert body(site.only()["text"]) == "..\n.x\n"
    for flag in ("-i", "-oi"):
        site.clear()
        site.run([flag, "alice"], b"Subject: dot\n\nline one\n.\nafter the dot\n")
        assert body(site.only()["text"]) == "line one\n.\nafter the dot\n"


def test_line_ends_and_missing_final_newline(site):
    site.run(["alice"], b"Subject: crlf\r\n\r\na\r\nb\rc\r\nlast")
    q = site.only()
    assert q["raw"].endswith(b"\n\na\nb\rc\nlast\n")
    assert b"\r\n" not in q["raw"]


def test_no_header_block(site):
    site.run(["alice"], b"just a body line\nand another\n")
    q = site.only()
    hdr, bdy = q["text"].split("\n\n", 1)
    assert bdy == "just a body line\nand another\n"
    assert [n for n, _ in headers(q["text"])] == ["From", "Date", "Message-ID"]


def test_mbox_from_line_dropped(site):
    site.run(["alice"], b"From someone@example.org Mon Jan  1 00:00:00 2024\nSubject: x\n\ny\n")
    q = site.only()
    assert not q["text"].startswith("From ")
    assert header(q["text"], "Subject") == ["x"]


def test_dsn_flags_into_the_maildrop_file(site):
    """-N, -R and -V (RFC 3461, as Postfix's sendmail) go into the maildrop file: the
    message's RET and ENVID (in xtext) on the dsn line, NOTIFY after each recipient."""
    site.run(["-N", "success,FAILURE", "-R", "full", "-V", "id 1+x", "alice", "bob"], MSG)
    q = site.only()
    assert q["dsn"] == ["full", "id+201+2Bx", "-"]
    assert [r["notify"] for r in q["rcpts"]] == [["success,failure", "-"]] * 2
    site.clear()
    site.run(["-N", "never", "alice"], MSG)
    q = site.only()
    assert q["dsn"] is None and q["rcpts"][0]["notify"] == ["never", "-"]


def test_historic_flags_accepted(site):
    args = [
        "-oem", "-om", "-oee", "-oep", "-oeq", "-oew", "-odb", "-odi", "-odq", "-U",
        "-h", "5", "-n", "-B", "8BITMIME",
        "-X", "/dev/null", "-L", "label", "-O", "DeliveryMode=b", "-oQ/tmp", "-G",
        "-d0.1", "-Am", "-v", "--", "alice",
    ]  # fmt: skip
    p = site.run(args, MSG)
    q = site.only()
    assert [r["addr"] for r in q["rcpts"]] == ["alice@example.test"]
    assert q["id"].encode() in p.stderr  # -v says what it queued
    assert q["dsn"] is None and q["rcpts"][0]["notify"] is None
    # options after the recipients (GNU order) and clustered flags
    site.clear()
    site.run(["bob", "-ti", "-oi"], b"To: carol\n\n.\nx\n")
    assert sorted(r["addr"] for r in site.only()["rcpts"]) == [
        "bob@example.test",
        "carol@example.test",
    ]


def test_usage_errors(site):
    for args in (["-x", "alice"], ["-bd"], ["-bt"], ["--bogus"], ["-f"], []):
        p = site.run(args, MSG, expect=EX_USAGE)
        assert p.stderr, args
    assert site.files() == []
    p = site.run(["-bd"], expect=EX_USAGE)
    assert b"dsmtp" in p.stderr
    assert site.run(["--help"]).stdout.startswith(b"usage:")
    assert b"dmail" in site.run(["--version"]).stdout


def test_bad_addresses(site):
    for bad in ("bad address@example.test", "a@@example.test", "a@-bad-.example", "<a@b"):
        p = site.run([bad], MSG, expect=EX_NOUSER)
        assert b"bad address" in p.stderr or b"recipient" in p.stderr, p.stderr
    site.run(["-f", "bad sender@x", "alice"], MSG, expect=EX_NOUSER)
    site.run(["-t"], b"To: ok@example.test, not valid@@x\n\nx\n", expect=EX_NOUSER)
    site.run(["-t"], b'To: "unterminated <a@example.test>\n\nx\n', expect=EX_NOUSER)
    assert site.files() == []


def test_too_large(tmp_path):
    s = Site(str(tmp_path), "max_msg_size 2K\n")
    p = s.run(["alice"], b"Subject: big\n\n" + b"x" * 100 + b"\n" * 3000, expect=EX_UNAVAILABLE)
    assert b"too large" in p.stderr
    assert s.files() == [] and s.dotfiles() == []
    s.run(["alice"], b"Subject: small\n\n" + b"x" * 1000 + b"\n")


def test_missing_maildrop_is_cantcreat(site):
    os.rmdir(site.maildrop)
    os.chmod(site.spool, 0o755)
    if os.getuid() != 0:
        # the owner of spool_dir (not root) gets the directory made for it
        site.run(["alice"], MSG)
        assert len(site.files()) == 1
        assert stat.S_IMODE(os.stat(site.maildrop).st_mode) == 0o3770
    else:
        p = site.run(["alice"], MSG, expect=EX_CANTCREAT)
        assert b"maildrop" in p.stderr


def write_queue_file(site, name, text):
    with open(os.path.join(site.queue, name), "w") as f:
        f.write(text)


def test_mailq(site):
    mailq = os.path.join(BIN, "mailq")
    for argv in ([SENDMAIL, "-bp"], [mailq]):
        p = site.run(argv[1:], prog=argv[0])
        assert p.stdout == b"Mail queue is empty\n"
    site.run(["-f", "bob@example.test", "alice", "carol@example.org"], MSG)
    site.run(["-f", "<>", "dave"], b"x" * 3000 + b"\n")
    write_queue_file(
        site,
        "1700000000.1_1_ab.host",
        "DMQ 1\nid 1700000000.1_1_ab.host\narrival 1700000000\nsender <q@example.test>\n"
        "origin smtp 192.0.2.1\nflags 1\nrcpts 2\nrcpt done 1 0 <gone@example.org>\n"
        "rcpt pending 2 1700000600 <later@example.org> 451 4.7.1 greylisted\n"
        "size 3\n\nhi\nend\n",
    )
    write_queue_file(site, "torn", "DMQ 1\nid torn\narrival 1\n")
    write_queue_file(site, ".tmpfile", "ignored")
    outs = [site.run(argv[1:], prog=argv[0]).stdout.decode() for argv in ([SENDMAIL, "-bp"], [mailq])]
    assert outs[0] == outs[1]
    out = outs[0]
    lines = out.splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert re.fullmatch(r"-- [45] Kbytes in 4 Requests\.", lines[-1]), lines[-1]
    ids = site.files()
    for i in ids:
        assert i in out
    # oldest first; held one marked with "!", delivered recipients left out
    assert lines[1].startswith("1700000000.1_1_ab.host!")
    assert "q@example.test" in lines[1]
    assert "(451 4.7.1 greylisted)" in out and "later@example.org" in out
    assert "gone@example.org" not in out
    assert "MAILER-DAEMON" in out
    assert "alice@example.test" in out and "carol@example.org" in out
    assert "(waiting for pickup by dsmtp)" in out
    assert re.search(r"torn +\(unreadable: .*\)", out)
    assert ".tmpfile" not in out


def test_newaliases(site):
    for argv in ([SENDMAIL, "-bi"], [SENDMAIL, "-I"], [os.path.join(BIN, "newaliases")]):
        # dmail.conf names no alias file and no dsmtp runs: checked, nothing to reload
        # (test_aliases.py has the alias files, the errors and the reload)
        p = site.run(argv[1:], prog=argv[0])
        assert b": 0 aliases\n" in p.stdout, p.stdout
        assert b"dsmtp is not running" in p.stdout, p.stdout


def test_bare_header_addresses_qualified(site):
    # as sendmail: a bare name in an address header gets the local (main) domain
    msg = (
        b"From: Demo User <demo>\n"
        b"Sender: demo\n"
        b"Reply-To: demo (the demo)\n"
        b"To: demo, \"Doe, John\" <jd>,\n  ext@example.org\n"
        b"Cc: team: a, B <b>;, undisclosed-recipients:;\n"
        b"Bcc: hidden\n"
        b"X-Other: demo\n"
        b"Subject: demo\n"
        b"\n"
        b"To: demo stays in the body\n"
    )
    site.run(["-t", "-i"], msg)
    q = site.only()
    h = q["text"].split("\n\n")[0]
    assert header(q["text"], "From") == ["Demo User <demo@example.test>"]
    assert header(q["text"], "Sender") == ["demo@example.test"]
    assert header(q["text"], "Reply-To") == ["demo@example.test (the demo)"]
    assert "To: demo@example.test, \"Doe, John\" <jd@example.test>,\n  ext@example.org\n" in h
    assert header(q["text"], "Cc") == ["team: a@example.test, B <b@example.test>;, "
                                       "undisclosed-recipients:;"]
    assert header(q["text"], "Bcc") == []
    assert header(q["text"], "X-Other") == ["demo"]
    assert header(q["text"], "Subject") == ["demo"]
    assert body(q["text"]) == "To: demo stays in the body\n"
    assert sorted(r["addr"] for r in q["rcpts"]) == sorted(
        ["demo@example.test", "jd@example.test", "ext@example.org", "a@example.test",
         "b@example.test", "hidden@example.test"])
    # without -t too; qualified addresses are left as they were
    site.clear()
    site.run(["alice"], b"To: alice, Bob <bob@example.org>\nSubject: x\n\nhi\n")
    q = site.only()
    assert header(q["text"], "To") == ["alice@example.test, Bob <bob@example.org>"]


def test_mailq_newaliases_own_usage(site):
    mailq, newaliases = os.path.join(BIN, "mailq"), os.path.join(BIN, "newaliases")
    out = site.run(["--help"], prog=mailq).stdout.decode()
    assert out.startswith("usage: mailq ") and "-bs" not in out and "RCPT" not in out, out
    out = site.run(["--help"], prog=newaliases).stdout.decode()
    assert out.startswith("usage: newaliases") and "-bs" not in out and "RCPT" not in out, out
    out = site.run(["--help"]).stdout.decode()
    assert out.startswith("usage: sendmail ") and "RCPT" in out
    err = site.run(["-x"], prog=mailq, expect=EX_USAGE).stderr.decode()
    assert "usage: mailq " in err


def test_q(site):
    for args in (["-q"], ["-q30m"]):
        p = site.run(args)
        assert b"dsmtp" in p.stdout
    assert site.files() == []


def smtp_dialogue(site, lines):
    data = "".join(line + "\r\n" for line in lines).encode()
    p = site.run(["-bs"], data)
    return p.stdout.decode().split("\r\n")[:-1]


def test_bs_smtp(site):
    replies = smtp_dialogue(
        site,
        [
            "EHLO client.example",
            "RCPT TO:<alice@example.test>",
            "MAIL FROM:<bob@example.test> SIZE=100 BODY=8BITMIME",
            "RCPT TO:<alice@example.test>",
            "RCPT TO:<carol>",
            "RCPT TO:<bad address>",
            "DATA",
            "Subject: via -bs",
            "",
            "..stuffed",
            ".",
            "MAIL FROM:<>",
            "DATA",
            "RSET",
            "NOOP",
            "FOO",
            "QUIT",
        ],
    )
    codes = [r[:4] for r in replies]
    assert codes[0] == "220 "
    assert "250-8BITMIME" in replies and "250-PIPELINING" in replies
    ehlo_end = codes.index("250 ")
    rest = codes[ehlo_end + 1 :]
    assert rest == [
        "503 ",  # RCPT before MAIL
        "250 ",  # MAIL
        "250 ",
        "250 ",
        "553 ",  # bad address
        "354 ",
        "250 ",  # queued
        "250 ",  # MAIL <>
        "554 ",  # DATA without recipients
        "250 ",
        "250 ",
        "500 ",
        "221 ",
    ], replies
    queued = [r for r in replies if "queued as" in r][0]
    q = site.only()
    assert q["id"] in queued
    assert q["sender"] == "bob@example.test"
    assert [r["addr"] for r in q["rcpts"]] == ["alice@example.test", "carol@example.test"]
    assert body(q["text"]) == ".stuffed\n"
    assert header(q["text"], "Subject") == ["via -bs"]


def test_bs_size_and_eof(site):
    s = Site(site.root + "/small", "max_msg_size 2K\n")
    replies = smtp_dialogue(
        s,
        ["HELO x", "MAIL FROM:<a@example.test> SIZE=999999", "MAIL FROM:<a@example.test>",
         "RCPT TO:<b@example.test>", "DATA"] + ["y" * 100] * 40 + [".", "QUIT"],
    )  # fmt: skip
    assert [r[:3] for r in replies] == ["220", "250", "552", "250", "250", "354", "552", "221"]
    assert s.files() == []
    # end of input in the middle of DATA queues nothing
    p = s.run(["-bs"], b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n")
    assert p.returncode == 0
    assert s.files() == [] and s.dotfiles() == []


def test_s_nail(site, tmp_path):
    if shutil.which("s-nail") is None:
        pytest.skip("s-nail not installed")
    env = dict(site.env, HOME=str(tmp_path), MAILRC="/dev/null")
    p = subprocess.run(
        ["s-nail", "-n", "-#", "-S", "mta=" + SENDMAIL, "-S", "sendwait", "-s", "subj from mail",
         "user@example.test"],
        input=b"Hello through s-nail.\n.\nstill here\n",
        capture_output=True, env=env, timeout=TIMEOUT,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    q = site.only()
    assert [r["addr"] for r in q["rcpts"]] == ["user@example.test"]
    assert header(q["text"], "Subject") == ["subj from mail"]
    # s-nail passes -i: the lone dot stays in the message
    assert "Hello through s-nail.\n.\nstill here\n" in body(q["text"])
    assert q["sender"] == ME + "@example.test"


def test_cron_style_pipe(site):
    p = subprocess.run(
        ["sh", "-c", 'echo "job output" | "$0" -FCronDaemon -odi -oem -oi user', SENDMAIL],
        capture_output=True, env=site.env, timeout=TIMEOUT,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    q = site.only()
    assert [r["addr"] for r in q["rcpts"]] == ["user@example.test"]
    assert body(q["text"]) == "job output\n"
    assert header(q["text"], "From") == ["CronDaemon <%s@example.test>" % ME]


# --- the set-group-ID model, run as an unprivileged user ---------------------------


def unprivileged_site():
    """A world-searchable site with a set-group-ID copy of sendmail; skips when the test
    cannot set one up."""
    if os.getuid() != 0:
        pytest.skip("needs root to make a set-group-ID binary and switch users")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    try:
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrnam("mail")
    except KeyError:
        pytest.skip("no nobody user or mail group")
    root = tempfile.mkdtemp(prefix="dmail-sgid-")
    os.chmod(root, 0o755)
    if os.statvfs(root).f_flag & os.ST_NOSUID:
        shutil.rmtree(root)
        pytest.skip("temporary directory is mounted nosuid")
    s = Site(root)
    os.chmod(s.spool, 0o755)
    os.chown(s.maildrop, 0, group.gr_gid)
    os.chmod(s.maildrop, 0o3770)
    os.chmod(s.queue, 0o700)
    os.chmod(s.conf, 0o644)
    binary = os.path.join(root, "sendmail")
    shutil.copy(SENDMAIL, binary)
    os.chown(binary, 0, group.gr_gid)
    os.chmod(binary, 0o2755)
    os.symlink("sendmail", os.path.join(root, "mailq"))
    return s, binary, nobody, group


def as_nobody(s, argv, data=b"", env=None):
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv,
        input=data, capture_output=True, env=env or s.env, timeout=TIMEOUT,
    )  # fmt: skip


def test_unprivileged_user_setgid():
    s, binary, nobody, group = unprivileged_site()
    try:
        # the maildrop is closed to nobody without the binary's group
        assert as_nobody(s, ["sh", "-c", "ls " + s.maildrop]).returncode != 0
        p = as_nobody(s, [binary, "-C", s.conf, "user"], b"Subject: from nobody\n\nhi\n")
        assert p.returncode == 0, p.stderr
        q = s.only()
        assert q["origin"] == "sendmail uid=%d user=nobody" % nobody.pw_uid
        assert q["sender"] == "nobody@example.test"
        st = os.stat(os.path.join(s.maildrop, q["id"]))
        assert st.st_uid == nobody.pw_uid and st.st_gid == group.gr_gid
        assert stat.S_IMODE(st.st_mode) == 0o640
        # mailq as nobody lists it through the group; a queue closed to the group (0700
        # root) is refused
        p = as_nobody(s, [os.path.join(s.root, "mailq"), "-C", s.conf])
        assert q["id"].encode() in p.stdout, p
        assert b"cannot read" in p.stderr and p.returncode == 77
        # as dsmtp keeps it (queue/ 2750 in maildrop's group, files 0640), it is listed
        queued = os.path.join(s.queue, "Q" + q["id"][1:])
        shutil.copy(os.path.join(s.maildrop, q["id"]), queued)
        os.chown(s.queue, 0, group.gr_gid)
        os.chmod(s.queue, 0o2750)
        os.chown(queued, 0, group.gr_gid)
        os.chmod(queued, 0o640)
        p = as_nobody(s, [os.path.join(s.root, "mailq"), "-C", s.conf])
        assert p.returncode == 0 and p.stderr == b"", p
        assert p.stdout.count(b"from nobody") == 0 and p.stdout.count(b"nobody@") == 2, p
        os.unlink(queued)
        # a configuration nobody owns does not get the group: the write is refused
        own = os.path.join(s.root, "own.conf")
        shutil.copy(s.conf, own)
        os.chown(own, nobody.pw_uid, -1)
        p = as_nobody(s, [binary, "-C", own, "user"], b"x\n")
        assert p.returncode == EX_CANTCREAT, p
        # without the set-group-ID bit nobody cannot write either
        os.chmod(binary, 0o755)
        p = as_nobody(s, [binary, "-C", s.conf, "user"], b"x\n")
        assert p.returncode == EX_CANTCREAT, p
        assert len(s.files()) == 1
    finally:
        shutil.rmtree(s.root)


def test_unprivileged_chosen_config_not_read_with_group():
    """A configuration named by DMAIL_CONF or -C is never read with the group, even when
    it is root's: a user may not read a protected file through sendmail."""
    s, binary, nobody, group = unprivileged_site()
    try:
        os.chown(s.conf, 0, group.gr_gid)
        os.chmod(s.conf, 0o640)
        for args in ([binary, "user"], [binary, "-C", s.conf, "user"]):
            p = as_nobody(s, args, b"x\n")
            assert p.returncode == EX_CONFIG, p
        assert s.files() == []
    finally:
        shutil.rmtree(s.root)
