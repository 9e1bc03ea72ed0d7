"""DMail's alias files end to end: alias_file (global) and alias_file_domain in the
/etc/aliases format delivered with smtplib and swaks into the right mboxes, the lookup order
(forward, the domain's file, the global one, wildcard alias, user, catch-all),
alias_fallthrough on and off, the catch-all written *@dom and '*:', a remote destination
relayed to a second dsmtp, :include: of a root-owned file, |program destinations run by
dsmtp's delivery agent (exit 75 retried once, allow_mail_to_commands, refused from a file not
root's), a broken file refused by dsmtp -t and by a reload (the old aliases stay),
tellsmtp clear_cache_all and newaliases (output and exit status)."""

import os
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

from dmail_site import (ALIAS_DOMAIN, BIN, DOMAIN, HOST, REMOTE, chown_like_dsmtp, rcpt_reply,
                        read_mbox, smtp_send, wait_for)

SENDER = "sender@remote.example"
NEWALIASES = os.path.join(BIN, "newaliases")
needs_dns = pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed")


@pytest.fixture
def etc():
    """A directory of root's (a Site's own is given to its run_as user at every start)."""
    d = tempfile.mkdtemp(prefix="dmail-it-aliases-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def put(etc, name, text, uid=0):
    """An alias file in etc, readable by all, owned by uid; its path."""
    path = os.path.join(etc, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    if os.geteuid() == 0:
        os.chown(path, uid, 0)
    return path


def send(srv, rcpts, tag="alias"):
    """One message to rcpts (all must be accepted); returns its Message-ID."""
    return smtp_send(srv, rcpts, tag, SENDER)


def check(srv):
    """dsmtp -t: (exit status, output)."""
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def newaliases(srv, *args):
    r = subprocess.run([NEWALIASES, *args], capture_output=True, text=True, timeout=30,
                       env=srv.env())
    return r.returncode, r.stdout, r.stderr


GLOBAL = """# the global file: bare names are users of the recipient's domain
staff: alice,
  carol
help: bob
"Team Lead": carol
news: :include:%(inc)s
*: carol
"""

DOMAIN_FILE = """# example.test's own file
help: alice
info: alice
prog: "|/usr/bin/vacation bob", /var/mail/archive
"""


def site(dsmtp_factory, etc, **extra):
    srv = dsmtp_factory(start=False)
    inc = put(etc, "news.list", "# readers\nalice\nbob@%s, carol\n" % DOMAIN)
    g = put(etc, "aliases", GLOBAL % {"inc": inc})
    d = put(etc, "aliases.test", DOMAIN_FILE)
    settings = {"alias_file": g,
                "alias_file_domain": ["%s %s" % (d, DOMAIN)],  # the file first works too
                "alias": ["sales-*@%s dave@%s" % (DOMAIN, ALIAS_DOMAIN)],
                "forward": ["info@%s bob@%s" % (DOMAIN, DOMAIN)]}
    settings.update(extra)
    srv.write_conf(settings)
    srv.start()
    return srv, g, d


def test_order_of_the_lookups(dsmtp_factory, etc):
    srv, _, _ = site(dsmtp_factory, etc)
    m1 = send(srv, ["info@" + DOMAIN])            # forward before the domain's file
    assert srv.msgids("bob") == [m1] and srv.msgids("alice") == []
    m2 = send(srv, ["Help@" + DOMAIN])            # the domain's file before the global
    assert srv.msgids("alice") == [m2]
    m3 = send(srv, ["help@" + ALIAS_DOMAIN])      # no own file: the global one
    assert srv.msgids("bob") == [m1, m3]
    m4 = send(srv, ["staff@" + DOMAIN])           # fallthrough, continuation line
    assert srv.msgids("alice") == [m2, m4] and srv.msgids("carol") == [m4]
    m5 = send(srv, ['"team lead"@' + DOMAIN])     # quoted name, any case
    assert srv.msgids("carol") == [m4, m5]
    m6 = send(srv, ["Sales-EU@" + DOMAIN])        # wildcard alias
    assert srv.msgids("dave", ALIAS_DOMAIN) == [m6]
    m7 = send(srv, ["bob@" + DOMAIN])             # a user before the catch-all
    assert srv.msgids("bob") == [m1, m3, m7]
    m8 = send(srv, ["nobody@" + DOMAIN])          # the global '*'
    assert srv.msgids("carol") == [m4, m5, m8]
    m9 = send(srv, ["news@" + DOMAIN])            # :include: of a root-owned file
    assert m9 in srv.msgids("alice") and m9 in srv.msgids("bob") and m9 in srv.msgids("carol")
    assert re.search(r"rcpt to=<staff@example\.test> forward=<alice@example\.test>,"
                     r"<carol@example\.test> result=ok", srv.log()), srv.log()[-2000:]


def test_fallthrough_off(dsmtp_factory, etc):
    srv, _, _ = site(dsmtp_factory, etc, alias_fallthrough=False)
    code, text = rcpt_reply(srv, "staff@" + DOMAIN)    # only in the global file
    assert code == 550 and "User unknown" in text, (code, text)
    m1 = send(srv, ["staff@" + ALIAS_DOMAIN])          # a domain without its own file
    assert srv.msgids("alice") == [m1]


def test_swaks_to_an_alias(dsmtp_factory, etc):
    if not shutil.which("swaks"):
        pytest.skip("swaks not installed")
    srv, _, _ = site(dsmtp_factory, etc)
    r = subprocess.run(["swaks", "--server", HOST, "--port", str(srv.smtp_port),
                        "--from", SENDER, "--to", "staff@" + ALIAS_DOMAIN,
                        "--header", "Subject: swaks-alias"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(srv.messages("alice")) == 1 and len(srv.messages("carol")) == 1


def test_program_destination_accepted(dsmtp_factory, etc):
    """prog's destinations (a program and a file) are the delivery agent's: the RCPT is
    accepted and logged with them (their delivery: test_alias_program_* below)."""
    srv, _, _ = site(dsmtp_factory, etc)
    code, text = rcpt_reply(srv, "prog@" + DOMAIN)
    assert code == 250, (code, text)
    assert re.search(r"rcpt to=<prog@example\.test> forward=<\|/usr/bin/vacation bob>,"
                     r"</var/mail/archive> result=ok", srv.log()), srv.log()[-2000:]


def alias_program_site(dsmtp_factory, etc, prog_body, **extra):
    """A site whose global alias file sends prog@ to a /bin/sh script (body prog_body) and a
    copy to bob; returns (site, script path, output directory)."""
    srv = dsmtp_factory(start=False, **extra)
    out = os.path.join(srv.dir, "out")
    os.makedirs(out)
    chown_like_dsmtp(out)
    script = os.path.join(etc, "prog.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n" + prog_body % {"out": out})
    os.chmod(script, 0o755)
    g = put(etc, "aliases", "prog: bob, \"|%s arg\"\n" % script)
    srv.write_conf({"alias_file": g})
    srv.start()
    return srv, script, out


def test_alias_program_runs_and_tempfail_retries(dsmtp_factory, etc):
    srv, script, out = alias_program_site(
        dsmtp_factory, etc, 'id -un > "%(out)s/who"; echo busy; exit 75\n', queue_retry=3600)
    msgid = send(srv, ["prog@" + DOMAIN])
    assert srv.msgids("bob") == [msgid]
    # the program runs after the 250, from a queue file of its own (ldaq)
    assert wait_for(lambda: "command exited with status 75: busy" in srv.log(), 15)
    assert open(os.path.join(out, "who")).read().strip() == srv.setting("run_as")
    assert len(srv.queue_files()) == 1
    with open(script, "w") as f:
        f.write('#!/bin/sh\ntest "$1" = arg && cat >> "%s/msg"\n' % out)
    ctl = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", srv.conf_path, "flush"],
                         capture_output=True, text=True, timeout=30)
    assert ctl.returncode == 0, ctl.stderr
    assert wait_for(lambda: not srv.queue_files(), 15), srv.log()[-3000:]
    got = open(os.path.join(out, "msg"), "rb").read()
    assert got.count(msgid.encode()) == 1 and b"Delivered-To: prog@example.test\n" in got
    assert srv.msgids("bob") == [msgid]  # the retry did not copy bob again


def test_alias_program_and_file_run_as_default_privs(dsmtp_factory, etc):
    """As root: an alias file's program runs as default_privs and its file is written as
    default_privs (an account other than run_as here), never as dsmtp's own account; the
    file of an address that also has a program is written once (with the program, after
    the 250), not at receipt and again with the program."""
    if os.geteuid() != 0:
        pytest.skip("needs root: without it both run as run_as")
    srv = dsmtp_factory(start=False, default_privs="daemon")
    out = os.path.join(srv.dir, "out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    box = os.path.join(out, "archive.mbox")
    script = os.path.join(etc, "who.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\nid -un > "%s/who"\n' % out)
    os.chmod(script, 0o755)
    g = put(etc, "aliases", "prog: \"|%s\", %s\n" % (script, box))
    srv.write_conf({"alias_file": g})
    srv.start()
    assert srv.setting("run_as") != "daemon"
    msgid = send(srv, ["prog@" + DOMAIN])
    who = os.path.join(out, "who")
    assert wait_for(lambda: os.path.exists(who) and os.path.getsize(who) > 0, 15), \
        srv.log()[-3000:]
    assert open(who).read().strip() == "daemon"
    assert wait_for(lambda: os.path.exists(box) and os.path.getsize(box) > 0, 15), \
        srv.log()[-3000:]
    assert os.stat(box).st_uid == pwd.getpwnam("daemon").pw_uid
    assert [m.get("Message-ID") for _, m in read_mbox(box)] == [msgid]


def test_alias_program_refused_without_alias_in_allow(dsmtp_factory, etc):
    srv, _, out = alias_program_site(dsmtp_factory, etc, 'touch "%(out)s/ran"\n',
                                     allow_mail_to_commands="forward")
    msgid = send(srv, ["prog@" + DOMAIN])
    assert srv.msgids("bob") == [msgid]
    assert wait_for(lambda: re.search(
        r"command=.*prog\.sh arg\"? result=failed error=\"mail to command is "
        r"restricted: allow_mail_to_commands lacks alias", srv.log()), 15), srv.log()[-2000:]
    assert wait_for(lambda: re.search(r"queue id=\S+\.lda result=done", srv.log()), 15)
    assert srv.msgids("bob") == [msgid]  # the alias's copy was not made twice
    assert not os.path.exists(os.path.join(out, "ran"))


def test_alias_program_in_a_file_not_roots_refused(dsmtp_factory, etc):
    if os.geteuid() != 0:
        pytest.skip("needs root to own files")
    srv = dsmtp_factory(start=False)
    g = put(etc, "aliases", "ok: bob\nprog: \"|/bin/cat\"\n", uid=65534)
    srv.write_conf({"alias_file": g})
    rc, out = check(srv)
    assert rc == 78 and "%s:2: |/bin/cat: refused: programs and files only in alias files " \
        "owned by root" % g in out, out


def test_catch_all_star_at_domain(dsmtp_factory):
    srv = dsmtp_factory(forward=["*@%s carol@%s" % (ALIAS_DOMAIN, DOMAIN)])
    m1 = send(srv, ["whoever@" + ALIAS_DOMAIN])
    assert srv.msgids("carol") == [m1]
    m2 = send(srv, ["dave@" + ALIAS_DOMAIN])  # a user is not caught
    assert srv.msgids("dave", ALIAS_DOMAIN) == [m2]


def test_broken_files_refused_and_reload_keeps_the_old(dsmtp_factory, etc):
    srv, g, d = site(dsmtp_factory, etc)
    assert check(srv)[0] == 0
    code, text = rcpt_reply(srv, "new@" + DOMAIN)
    assert code == 250  # the global '*'
    # a broken domain file: dsmtp -t and a reload refuse it with file:line
    with open(d, "a") as f:
        f.write("new: alice\nno colon here\n")
    rc, out = check(srv)
    assert rc == 78 and "%s:6: write NAME: DESTINATION" % d in out, out
    rc, out, err = srv.tellsmtp("reload")
    assert rc == 1 and "%s:6: write NAME: DESTINATION" % d in out + err, out + err
    assert send(srv, ["new@" + DOMAIN]) in srv.msgids("carol")  # the old aliases
    # fixed: clear_cache_all (DMail's) re-reads the files
    with open(d, "w") as f:
        f.write(DOMAIN_FILE + "new: alice\n")
    rc, out, err = srv.tellsmtp("clear_cache_all")
    assert rc == 0, out + err
    assert send(srv, ["new@" + DOMAIN]) in srv.msgids("alice")


@pytest.mark.parametrize("bad,reason", [
    (b"new: alice\x00bob\n", "line holds a NUL byte"),
    (b"new: " + b"a" * 100000 + b"\n", "destination '" + "a" * 64 + "...' is not an address"),
])
def test_nul_byte_and_100k_line_refused_reload_keeps_the_old(dsmtp_factory, etc, bad, reason):
    """An alias file with a NUL byte or a 100 KB line: dsmtp -t and a reload say file:line
    (the 5th line here), the old aliases stay and the server goes on serving."""
    srv, g, d = site(dsmtp_factory, etc)
    with open(d, "ab") as f:
        f.write(bad)
    rc, out = check(srv)
    assert rc == 78 and "%s:5: %s" % (d, reason) in out, out
    assert len(out) < 2000, out  # the long line is not echoed whole
    rc, out, err = srv.tellsmtp("reload")
    assert rc == 1 and "%s:5: %s" % (d, reason) in out + err, out + err
    assert srv.dsmtp.alive()
    assert send(srv, ["new@" + DOMAIN]) in srv.msgids("carol")  # the old '*' still
    assert send(srv, ["alice@" + DOMAIN]) in srv.msgids("alice")
    assert srv.dsmtp.sanitizer_report() is None, srv.dsmtp.sanitizer_report()


def test_include_of_a_file_not_roots_refused(dsmtp_factory, etc):
    if os.geteuid() != 0:
        pytest.skip("needs root to own files")
    srv, g, _ = site(dsmtp_factory, etc)
    inc = os.path.join(etc, "news.list")
    os.chmod(inc, 0o666)
    rc, out = check(srv)
    assert rc == 78 and "%s:6: :include:%s: refused" % (g, inc) in out, out


def test_newaliases(dsmtp_factory, etc):
    srv, g, d = site(dsmtp_factory, etc)
    rc, out, err = newaliases(srv)
    assert rc == 0, out + err
    assert "newaliases: %s: 9 aliases" % srv.conf_path in out, out
    assert "dsmtp reloaded" in out, out
    with open(g, "a") as f:
        f.write("bad name: bob\nx: bob smith\n")
    rc, out, err = newaliases(srv)
    assert rc == 78, (rc, out, err)
    assert "newaliases: %s:8: 'bad name' is not a local part" % g in err, err
    assert "newaliases: %s:9: destination 'bob smith' is not an address" % g in err, err
    assert "reloaded" not in out
    srv.stop()
    with open(g, "w") as f:
        f.write("a: bob\n")
    rc, out, err = newaliases(srv)
    assert rc == 0 and "dsmtp is not running" in out, (rc, out, err)


@needs_dns
def test_remote_destination_relayed(pair, etc):
    ours, theirs = pair
    g = put(etc, "aliases.remote",
            "ext: alice, bob@%s\n" % REMOTE)
    ours.restart(alias_file=g)
    msgid = send(ours, ["ext@" + DOMAIN])
    assert ours.msgids("alice") == [msgid]
    assert wait_for(lambda: theirs.msgids("bob") == [msgid], 20), ours.log()[-3000:]
    assert re.search(r"rcpt to=<ext@example\.test> forward=<alice@example\.test>,"
                     r"<bob@remote\.test> result=ok-relay", ours.log()), ours.log()[-2000:]
