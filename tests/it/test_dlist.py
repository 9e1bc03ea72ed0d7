"""dlist (issue 13), first milestone: lists.dat read through dlist_path by every program,
`dlist -t`, a broken lists.dat refused at -t and on reload (the old lists kept), dsmtp's
list spool, and the dlist daemon (supervised by dwatch) with its lists/who/add/remove
commands."""

import os
import shutil
import signal
import smtplib
import subprocess
import time

from dmail_site import (BIN, DOMAIN, HOST, free_ports, make_message, new_msgid, read_mbox,
                        sha512_crypt, wait_for)


def write_lists(site, text):
    d = os.path.join(site.dir, "dlist")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "lists.dat"), "w") as f:
        f.write(text)
    return d


def check(site, prog="dlist"):
    return subprocess.run([os.path.join(BIN, prog), "-t", "-c", site.conf_path],
                          capture_output=True, text=True, timeout=30, env=site.env())


LISTS = """# two lists, in DMail's style
list talk
 title The list for talkers
 subject_prefix [talk]
 access_post members
 moderator talk.master@%s
 max_size 40k
list Juggle
 title The list for jugglers
""" % DOMAIN


def test_dlist_t_names_the_lists(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d})
    r = check(site)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "dlist: 2 lists at %s: talk juggle" % DOMAIN, r.stdout
    assert r.stderr == "", r.stderr
    site.write_conf({"dlist_path": d, "dlist_domain": "Lists." + DOMAIN.upper(),
                     "dlist_smtp_host": "127.0.0.1:2525"})
    r = check(site)
    assert r.returncode == 0 and "at lists.%s:" % DOMAIN in r.stdout, (r.stdout, r.stderr)
    # the DMail settings are no longer "accepted without effect"
    assert "no effect" not in r.stderr, r.stderr
    for prog in ("dsmtp", "dpop"):
        r = check(site, prog)
        assert r.returncode == 0 and "dlist" not in r.stderr, (prog, r.stderr)


def test_dlist_t_without_lists(dsmtp_factory):
    site = dsmtp_factory(start=False)
    r = check(site)
    assert r.returncode == 0 and "dlist_path is not set" in r.stdout, (r.stdout, r.stderr)
    d = os.path.join(site.dir, "dlist")
    os.makedirs(d)
    site.write_conf({"dlist_path": d})
    r = check(site)
    assert r.returncode == 0 and "no lists.dat" in r.stdout, (r.stdout, r.stderr)


def test_dlist_t_errors_with_file_line(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS + " access_post friends\nlist talk\nlist x-request\n")
    site.write_conf({"dlist_path": d})
    path = os.path.join(d, "lists.dat")
    want = ["%s:10: access_post friends: anyone, members, moderator or an address pattern "
            "such as *@example.com" % path,
            "%s:11: list talk is already defined at %s:2" % (path, path),
            "%s:12: list x-request: a list name does not end in -request, -owner or "
            "-bounces (the list's own addresses)" % path]
    for prog in ("dlist", "dsmtp"):
        r = check(site, prog)
        assert r.returncode == 78, (prog, r.stdout, r.stderr)
        for line in want:
            assert line in r.stderr.splitlines(), (prog, r.stderr)
        assert "3 errors" in r.stderr, r.stderr
    site.write_conf({"dlist_path": d, "dlist_smtp_host": "localhost:smtp"})
    write_lists(site, LISTS)
    r = check(site)
    assert r.returncode == 78 and "dlist_smtp_host localhost:smtp: HOST or HOST:PORT" in r.stderr


def test_broken_lists_dat_refused_on_reload(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d})
    site.start()
    write_lists(site, LISTS + " colour blue\n")
    rc, out, err = site.tellsmtp("reload")
    assert rc != 0 and "lists.dat:10: unknown list setting colour" in out + err, (rc, out, err)
    assert site.alive()
    write_lists(site, LISTS)
    rc, out, err = site.tellsmtp("reload")
    assert rc == 0, (rc, out, err)


# ------------------------------------------------------------ dsmtp: the list spool

def spool_files(site, lst, role):
    d = os.path.join(site.spool, "dlist", lst, role, "new")
    if not os.path.isdir(d):
        return []
    return [open(os.path.join(d, f), "rb").read().decode() for f in sorted(os.listdir(d))]


def test_dsmtp_diverts_list_mail_into_the_spool(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d})
    site.start()
    rcpts = {"talk@" + DOMAIN: ("talk", "post"),
             "Talk-Request@" + DOMAIN: ("talk", "request"),
             "juggle-owner@" + DOMAIN: ("juggle", "owner"),
             "talk-bounces+bob=example.net@" + DOMAIN: ("talk", "bounces")}
    for rcpt, (lst, role) in rcpts.items():
        msgid, text = make_message(msgid=new_msgid("dl"), to=rcpt)
        with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
            c.sendmail("carol@remote.example", [rcpt], text)
        files = spool_files(site, lst, role)  # there at the 250: nothing to wait for
        assert len(files) == 1, (rcpt, files)
        assert files[0].startswith("Return-Path: <carol@remote.example>\n"), files[0]
        assert msgid in files[0]
        shutil.rmtree(os.path.join(site.spool, "dlist", lst, role, "new"))
        os.makedirs(os.path.join(site.spool, "dlist", lst, role, "new"))
    # not a list, not a user: still refused; no mailbox appeared for list names
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.ehlo()
        c.mail("carol@remote.example")
        assert c.rcpt("talker@" + DOMAIN)[0] == 550
        assert c.rcpt("other-request@" + DOMAIN)[0] == 550
    assert not os.path.exists(os.path.join(site.drop, "talk"))


def test_lists_at_their_own_domain(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d, "dlist_domain": "lists.example.org"})
    site.start()
    _, text = make_message(to="talk@lists.example.org")
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.sendmail("carol@remote.example", ["talk@lists.example.org"], text)  # not a relay
        c.mail("carol@remote.example")
        assert c.rcpt("talk@" + DOMAIN)[0] == 550  # the lists are at dlist_domain only
        c.rset()
    assert len(spool_files(site, "talk", "post")) == 1
    # a reload that removes the list stops the diversion
    write_lists(site, "list other\n")
    rc, out, err = site.tellsmtp("reload")
    assert rc == 0, (rc, out, err)
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.ehlo()
        c.mail("carol@remote.example")
        assert c.rcpt("talk@lists.example.org")[0] in (550, 554)


# ------------------------------------------------------ the daemon and its commands

def start_dlist(site):
    dl = site.program("dlist", ready=lambda: os.path.exists(site.ctl_path("dlist")))
    dl.start()
    return dl


def dlist_cmd(site, *args):
    p = subprocess.run([os.path.join(BIN, "dlist"), "-c", site.conf_path] + list(args),
                       capture_output=True, text=True, timeout=30, env=site.env())
    return p.returncode, p.stdout, p.stderr


def test_dlist_admin_commands(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d})
    rc, out, err = dlist_cmd(site, "lists")
    assert rc == 3, (rc, out, err)  # not running: unreachable, as tellsmtp says
    start_dlist(site)
    rc, out, err = dlist_cmd(site, "lists")
    assert rc == 0, (rc, out, err)
    assert out.splitlines() == ["talk 0 The list for talkers", "juggle 0 The list for jugglers",
                                "2 lists"], out
    assert dlist_cmd(site, "add", "talk", "Bob@Example.NET")[:2] == (0, "added Bob@Example.NET\n")
    assert dlist_cmd(site, "add", "talk", "carol@example.net")[0] == 0
    rc, out, _ = dlist_cmd(site, "add", "TALK", "bob@example.net")
    assert rc == 0 and "is a member already" in out, out
    rc, out, err = dlist_cmd(site, "who", "talk")
    assert rc == 0 and out.splitlines() == ["Bob@example.net", "carol@example.net",
                                            "2 members"], out
    members = os.path.join(site.work, "dlist", "talk", "members")
    assert open(members).read() == "Bob@example.net\ncarol@example.net\n"
    assert dlist_cmd(site, "remove", "talk", "BOB@example.net")[:2] == \
        (0, "removed BOB@example.net\n")
    rc, out, err = dlist_cmd(site, "remove", "talk", "bob@example.net")
    assert rc == 1 and "is not a member" in err, (rc, out, err)
    rc, out, err = dlist_cmd(site, "add", "nolist", "x@example.net")
    assert rc == 1 and "no list nolist" in err, (rc, out, err)
    rc, out, err = dlist_cmd(site, "add", "talk", "not-an-address")
    assert rc == 1 and "missing @domain" in err, (rc, out, err)
    rc, out, err = dlist_cmd(site, "add", "talk")
    assert rc == 2 and "usage" in err, (rc, out, err)
    rc, out, err = dlist_cmd(site, "lists")
    assert out.splitlines()[0] == "talk 1 The list for talkers", out
    assert open(members).read() == "carol@example.net\n"
    # a reload brings new lists in
    write_lists(site, LISTS + "list new\n")
    rc, out, err = dlist_cmd(site, "add", "new", "x@example.net")
    assert rc == 1 and "no list new" in err  # not before the reload
    rc, out, err = dlist_cmd(site, "reload")
    assert rc == 0, (rc, out, err)
    assert dlist_cmd(site, "add", "new", "x@example.net")[0] == 0
    # a broken lists.dat: the reload is refused, the lists in force stay
    write_lists(site, LISTS + " colour blue\n")
    rc, out, err = dlist_cmd(site, "reload")
    assert rc == 1 and "lists.dat:10: unknown list setting colour" in out + err, (rc, out, err)
    assert dlist_cmd(site, "who", "new")[1].splitlines() == ["x@example.net", "1 member"]
    # no listener, no TLS: nothing to warn about
    log = open(os.path.join(site.dir, "dlist.stderr")).read()
    assert "warn" not in log, log


def test_dwatch_supervises_dlist(dwatch_factory):
    dw = dwatch_factory(start=False, dwatch_servers="dsmtp,dpop,dlist")
    site = dw.site
    site.write_conf({"dlist_path": write_lists(site, LISTS)})
    dw.start(wait=False)
    st = dw.wait_running(names=("dsmtp", "dpop", "dlist"))
    old = st["dlist"]["pid"]
    os.kill(old, signal.SIGKILL)
    dw.wait_for(lambda s: s["dlist"]["state"] == "running" and s["dlist"]["pid"] != old, 10,
                "dlist restarted")
    assert dlist_cmd(site, "add", "talk", "bob@example.net")[0] == 0
    # stopped by dwatch with the others: a clean exit (teardown checks it)


# ------------------------------------------- issue 13: dlist processes its spool

POSTLISTS = """list talk
 title The list for talkers
 subject_prefix [talk]
 access_post members
 moderator carol@%(d)s
 password %(hash)s
 footer %(footer)s
list open
 title Open to anyone
 access_post anyone
 reply_to_user true
 join_cookie false
 access_leave anyone
 welcome_file welcome.txt
 leave_file %(leave)s
"""

MODPASS = "mod-secret-1"


def list_site(dsmtp_factory, extra="", **conf):
    """A site with dsmtp and dlist running, lists talk and open; the footer file."""
    site = dsmtp_factory(start=False)
    d = os.path.join(site.dir, "dlist")
    os.makedirs(d, exist_ok=True)
    footer = os.path.join(d, "footer.txt")
    with open(footer, "w") as f:
        f.write("-- \nThe talk list: mail talk-request@%s with help\n" % DOMAIN)
    with open(os.path.join(d, "welcome.txt"), "w") as f:
        f.write("Hello from %%list-name%%: post to %%list%%, commands to %%list-request%%.\n")
    leave = os.path.join(d, "leave.txt")
    with open(leave, "w") as f:
        f.write("Goodbye from %%list-name%%.\n")
    write_lists(site, POSTLISTS % {"d": DOMAIN, "hash": sha512_crypt(MODPASS),
                                   "footer": footer, "leave": leave} + extra)
    settings = {"dlist_path": d}
    settings.update(conf)
    site.write_conf(settings)
    site.start()
    site.dl = start_dlist(site)
    return site


def post(site, sender, rcpt, subject="hello", body="Hello list.\n", headers=None,
         env_sender=None):
    msgid = new_msgid("dl")
    lines = ["From: %s" % sender, "To: %s" % rcpt, "Subject: %s" % subject,
             "Message-ID: %s" % msgid]
    lines += headers or []
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.sendmail(env_sender if env_sender is not None else sender, [rcpt], text)
    return msgid


def wait_msgs(site, user, n, timeout=15):
    wait_for(lambda: len(site.messages(user)) >= n, timeout)
    return site.messages(user)


def settle(site, seconds=1.5):
    """Give dlist time to (not) act, then check the outbox is empty."""
    time.sleep(seconds)
    out = os.path.join(site.spool, "dlist", "out")
    wait_for(lambda: not os.path.isdir(out) or not os.listdir(out), 10)


def test_post_goes_to_every_member_with_list_headers(dsmtp_factory):
    site = list_site(dsmtp_factory)
    for u in ("alice", "bob", "carol"):
        assert dlist_cmd(site, "add", "talk", "%s@%s" % (u, DOMAIN))[0] == 0
    msgid = post(site, "Alice <alice@%s>" % DOMAIN, "talk@" + DOMAIN, subject="first post")
    for u in ("alice", "bob", "carol"):
        msgs = wait_msgs(site, u, 1)
        assert len(msgs) == 1, (u, msgs)
        raw, m = msgs[0]
        assert m["Message-ID"] == msgid
        assert m["Subject"] == "[talk] first post"
        assert m["List-Id"] == "The list for talkers <talk.%s>" % DOMAIN
        assert m["List-Post"] == "<mailto:talk@%s>" % DOMAIN
        assert m["List-Unsubscribe"] == "<mailto:talk-request@%s?subject=unsubscribe>" % DOMAIN
        assert m["List-Help"] == "<mailto:talk-request@%s?subject=help>" % DOMAIN
        assert m["List-Subscribe"] == "<mailto:talk-request@%s?subject=subscribe>" % DOMAIN
        assert m["List-Owner"] == "<mailto:talk-owner@%s>" % DOMAIN
        assert m["List-Archive"] is None  # archive false
        assert m["Precedence"] == "list"
        assert m["X-Loop"] == "talk@" + DOMAIN
        assert m["Reply-To"] == "<talk@%s>" % DOMAIN
        # the envelope: the list's bounce address (VERP'd by dsmtp when it has XVERP)
        assert m["Return-Path"].startswith("<talk-bounces"), m["Return-Path"]
        body = m.get_payload()
        assert body.startswith("Hello list.\n"), body
        assert body.endswith("-- \nThe talk list: mail talk-request@%s with help\n" % DOMAIN)
    # a reply keeps one prefix; a reply_to_user list points Reply-To at the poster
    post(site, "bob@" + DOMAIN, "talk@" + DOMAIN, subject="Re: [talk] first post")
    assert wait_msgs(site, "alice", 2)[1][1]["Subject"] == "Re: [talk] first post"
    assert dlist_cmd(site, "add", "open", "alice@" + DOMAIN)[0] == 0
    post(site, "dave@remote.example", "open@" + DOMAIN, subject="from outside")
    m = wait_msgs(site, "alice", 3)[2][1]
    assert m["Reply-To"] == "dave@remote.example" and m["Subject"] == "from outside"
    assert m["List-Id"] == "Open to anyone <open.%s>" % DOMAIN
    settle(site)
    assert [len(site.messages(u)) for u in ("alice", "bob", "carol")] == [3, 2, 2]


def members_of(site, lst):
    rc, out, err = dlist_cmd(site, "who", lst)
    assert rc == 0, (rc, out, err)
    return out.splitlines()[:-1]


def test_request_commands_and_double_opt_in(dsmtp_factory):
    site = list_site(dsmtp_factory)
    req = "talk-request@" + DOMAIN
    bob = "bob@" + DOMAIN
    # join by subject: a confirmation with a token goes to bob, nothing else happens yet
    post(site, bob, req, subject="subscribe", body="")
    msgs = wait_msgs(site, "bob", 2)
    subjects = sorted(m["Subject"] for _, m in msgs)
    confirm = [m for _, m in msgs if m["Subject"].startswith("confirm ")][0]
    reply = [m for _, m in msgs if m["Subject"] == "Re: subscribe"][0]
    assert "A confirmation request was sent to %s" % bob in reply.get_payload(), subjects
    assert reply["From"] == "talk <%s>" % req and reply["Auto-Submitted"] == "auto-replied"
    token = confirm["Subject"].split()[1]
    assert len(token) == 34 and ("confirm " + token) in confirm.get_payload()
    assert members_of(site, "talk") == []
    # someone else cannot use bob's token, nor subscribe bob
    post(site, "alice@" + DOMAIN, req, subject="x", body="confirm %s\njoin %s\n" % (token, bob))
    r = wait_msgs(site, "alice", 1)[0][1].get_payload()
    assert "not a valid confirmation for alice@%s" % DOMAIN in r, r
    assert "Only a moderator may subscribe another address" in r, r
    # a tampered token is refused
    bad = token[:-3] + ("aaa" if token[-3:] != "aaa" else "bbb")
    post(site, bob, req, subject="Re: confirm " + bad, body="")
    r = wait_msgs(site, "bob", 3)[2][1].get_payload()
    assert "not a valid confirmation for " + bob in r, r
    assert members_of(site, "talk") == []
    # bob replies to the confirmation (Re:, quoted text): subscribed, welcomed
    post(site, "Bob <%s>" % bob, req, subject="Re: confirm " + token,
         body="> Someone (perhaps you) asked\n> confirm %s\n" % token)
    msgs = wait_msgs(site, "bob", 5)[3:]
    by_subject = {m["Subject"]: m for _, m in msgs}
    assert "is now subscribed" in by_subject["Re: Re: confirm " + token].get_payload()
    welcome = by_subject["DLIST: Welcome to the talk list"].get_payload()
    assert "To post, mail talk@%s" % DOMAIN in welcome, welcome
    assert members_of(site, "talk") == [bob]
    # who, info, lists, help; unknown lines after commands and the signature end it
    post(site, bob, req, subject="commands",
         body="who\ninfo\nlists\nhelp\nthanks a lot\nleave\n-- \nBob\n")
    r = wait_msgs(site, "bob", 6)[5][1].get_payload()
    assert "1 member:\n    %s" % bob in r, r
    assert "Members: 1" in r and "talk@%s  The list for talkers" % DOMAIN in r, r
    assert "open@%s  Open to anyone" % DOMAIN in r and "join [ADDRESS]" in r, r
    assert "(the rest was not read)" in r, r
    assert members_of(site, "talk") == [bob]  # the leave after "thanks a lot" was not read
    # a moderator subscribes alice without a confirmation; a wrong password stops it all
    carol = "carol@" + DOMAIN
    post(site, carol, req, subject="x", body="approve wrong\njoin alice@%s\n" % DOMAIN)
    r = wait_msgs(site, "carol", 1)[0][1].get_payload()
    assert "Wrong password" in r and MODPASS not in r and "wrong" not in r.split("Wrong")[0]
    post(site, carol, req, subject="x", body="approve %s\njoin alice@%s\n" % (MODPASS, DOMAIN))
    r = wait_msgs(site, "carol", 2)[1][1].get_payload()
    assert "alice@%s is now subscribed" % DOMAIN in r and MODPASS not in r, r
    assert members_of(site, "talk") == ["alice@" + DOMAIN, bob]
    # leave: only oneself (access_leave member by default)
    post(site, "alice@" + DOMAIN, req, subject="x", body="leave %s\n" % bob)
    msgs = wait_msgs(site, "alice", 3)  # the welcome, then the reply
    assert "You may not unsubscribe %s" % bob in msgs[2][1].get_payload()
    post(site, bob, req, subject="unsubscribe", body="")
    r = wait_msgs(site, "bob", 7)[6][1].get_payload()
    assert "%s is no longer subscribed" % bob in r, r
    assert members_of(site, "talk") == ["alice@" + DOMAIN]
    settle(site)
    assert len(site.messages("bob")) == 7


def test_requests_robots_never_answered(dsmtp_factory):
    site = list_site(dsmtp_factory)
    req = "talk-request@" + DOMAIN
    bob = "bob@" + DOMAIN
    post(site, bob, req, subject="help", headers=["Precedence: bulk"])
    post(site, bob, req, subject="help", headers=["Auto-Submitted: auto-replied"])
    post(site, bob, req, subject="help", headers=["X-Loop: talk@" + DOMAIN])
    post(site, bob, req, subject="help", env_sender="")
    post(site, bob, req, subject="help", env_sender="MAILER-DAEMON@remote.example")
    # the last one is answered: the five before it were read (in order) and skipped
    post(site, bob, req, subject="help", headers=["Auto-Submitted: no"])
    msgs = wait_msgs(site, "bob", 1)
    settle(site)
    assert len(site.messages("bob")) == 1
    log = site.dl.log()
    assert log.count("not answered") == 5, log


def test_moderation_hold_approve_reject(dsmtp_factory):
    site = list_site(dsmtp_factory, extra="list small\n max_size 2k\n access_post anyone\n")
    for u in ("alice", "bob"):
        assert dlist_cmd(site, "add", "talk", "%s@%s" % (u, DOMAIN))[0] == 0
    assert dlist_cmd(site, "add", "small", "bob@" + DOMAIN)[0] == 0
    # a non-member's post is held; the first moderator (carol) is told how to approve
    m1 = post(site, "eve@remote.example", "talk@" + DOMAIN, subject="from eve")
    notice = wait_msgs(site, "carol", 1)[0][1]
    text = notice.get_payload()
    hid = notice["Subject"].split("(")[-1].rstrip(")")
    assert len(hid) == 12 and "approve PASSWORD %s" % hid in text, text
    assert "eve@remote.example may not post (access_post members)" in text, text
    rc, out, err = dlist_cmd(site, "held", "talk")
    assert rc == 0 and out.splitlines()[0].startswith(hid + " eve@remote.example from eve"), out
    assert out.splitlines()[-1] == "1 held post"
    # approved by mail: it goes to the members
    post(site, "carol@" + DOMAIN, "talk-request@" + DOMAIN, subject="Re: held",
         body="approve %s %s\napprove %s %s\n" % (MODPASS, hid, MODPASS, hid))
    assert wait_msgs(site, "alice", 1)[0][1]["Message-ID"] == m1
    assert wait_msgs(site, "bob", 1)[0][1]["Subject"] == "[talk] from eve"
    r = wait_msgs(site, "carol", 2)[1][1].get_payload()
    assert "Held post %s approved and sent" % hid in r, r
    assert "held post %s is decided already" % hid in r, r  # once, however often asked
    assert dlist_cmd(site, "held", "talk")[1].splitlines() == ["0 held posts"]
    # the password in a subject does not come back in the reply's subject
    post(site, "carol@" + DOMAIN, "talk-request@" + DOMAIN,
         subject="approve %s 000000000000" % MODPASS, body="")
    m = wait_msgs(site, "carol", 3)[2][1]
    assert m["Subject"] == "Re: your commands" and MODPASS not in m.as_string(), m.as_string()
    assert "no held post 000000000000" in m.get_payload()
    # approved twice: no such post
    rc, out, err = dlist_cmd(site, "approve", "talk", hid)
    assert rc == 1 and "no held post " + hid in err, (rc, out, err)
    # held, then rejected / approved on the command line
    post(site, "eve@remote.example", "talk@" + DOMAIN, subject="spam")
    m3 = post(site, "mallory@remote.example", "talk@" + DOMAIN, subject="good one")
    wait_msgs(site, "carol", 5)
    held = dlist_cmd(site, "held", "talk")[1].splitlines()[:-1]
    ids = {line.split()[2]: line.split()[0] for line in held}
    assert dlist_cmd(site, "reject", "talk", ids["spam"])[:2] == \
        (0, "rejected %s\n" % ids["spam"])
    assert dlist_cmd(site, "approve", "talk", ids["good"])[0] == 0
    assert wait_msgs(site, "alice", 2)[1][1]["Message-ID"] == m3
    # over max_size: held even where anyone may post
    post(site, "bob@" + DOMAIN, "small@" + DOMAIN, subject="big", body="x" * 3000 + "\n")
    rc, out, err = dlist_cmd(site, "held", "small")
    wait_for(lambda: dlist_cmd(site, "held", "small")[1].endswith("1 held post\n"), 10)
    assert "larger than max_size" in dlist_cmd(site, "held", "small")[1]
    rc, out, err = dlist_cmd(site, "approve", "nolist", "0123456789ab")
    assert rc == 1 and "no list nolist" in err
    settle(site)
    assert [len(site.messages(u)) for u in ("alice", "bob")] == [2, 2]


def test_held_posts_expire(dsmtp_factory):
    site = list_site(dsmtp_factory, dlist_held_expire="60", dlist_scan_interval="1")
    post(site, "eve@remote.example", "talk@" + DOMAIN, subject="old")
    wait_msgs(site, "carol", 1)
    d = os.path.join(site.spool, "dlist", "talk", "held")
    (name,) = os.listdir(d)
    old = time.time() - 120
    os.utime(os.path.join(d, name), (old, old))
    wait_for(lambda: not os.listdir(d), 10)
    wait_for(lambda: "expired (dlist_held_expire)" in site.dl.log(), 10)
    assert "held post %s expired" % name in site.dl.log()


def test_loops_and_bounces_are_not_posted(dsmtp_factory):
    site = list_site(dsmtp_factory)
    assert dlist_cmd(site, "add", "open", "alice@" + DOMAIN)[0] == 0
    post(site, "bob@" + DOMAIN, "open@" + DOMAIN, headers=["X-Loop: open@" + DOMAIN])
    post(site, "bob@" + DOMAIN, "open@" + DOMAIN,
         headers=["List-Id: Open to anyone <open.%s>" % DOMAIN])
    post(site, "bob@" + DOMAIN, "open@" + DOMAIN, env_sender="")
    post(site, "bob@" + DOMAIN, "open@" + DOMAIN, subject="real")
    m = wait_msgs(site, "alice", 1)[0][1]
    assert m["Subject"] == "real"
    settle(site)
    assert len(site.messages("alice")) == 1
    assert site.dl.log().count("refused: it") == 3


def test_owner_mail_goes_to_the_moderators(dsmtp_factory):
    site = list_site(dsmtp_factory)
    msgid = post(site, "eve@remote.example", "talk-owner@" + DOMAIN, subject="hi owner")
    m = wait_msgs(site, "carol", 1)[0][1]
    assert m["Message-ID"] == msgid and m["Subject"] == "hi owner"


def test_kill9_during_posts_delivers_each_exactly_once(dsmtp_factory):
    """dlist killed at random moments of posts to 60 subscribers (claim, outbox, SMTP,
    between the final dot and the 250): after each restart every subscriber has each
    post exactly once (the outbox is resent; dsmtp knows a resend by its ENVID)."""
    import random
    site = dsmtp_factory(start=False)
    users = ["sub%02d" % i for i in range(60)]
    for u in users:
        site.add_user(u, "pw-" + u)
    d = write_lists(site, "list many\n access_post anyone\n")
    site.write_conf({"dlist_path": d})
    mdir = os.path.join(site.work, "dlist", "many")
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(mdir, "members"), "w") as f:
        f.write("".join("%s@%s\n" % (u, DOMAIN) for u in users))
    site.start()
    dl = start_dlist(site)
    rnd = random.Random(13)
    msgids = []
    for k in range(12):
        msgids.append(post(site, "poster@remote.example", "many@" + DOMAIN,
                           subject="post %d" % k, body="post %d\n" % k * 50))
        time.sleep(rnd.uniform(0, 0.06))
        dl.kill9()
        dl.start()
        wait_for(lambda: all(len(site.messages(u)) >= k + 1 for u in users), 30)
    settle(site, 2)
    for u in users:
        assert sorted(site.msgids(u)) == sorted(msgids), (u, site.msgids(u))
    # kill -9 left nothing behind in the spool's cur directories
    cur = os.path.join(site.spool, "dlist", "many", "post", "cur")
    assert os.listdir(cur) == []


def test_dwatch_runs_dlist_when_lists_are_configured(dwatch_factory):
    dw = dwatch_factory(start=False)  # dwatch_servers left at its default: dsmtp,dpop
    site = dw.site
    site.write_conf({"dlist_path": write_lists(site, LISTS)})
    dw.start(wait=False)
    st = dw.wait_running(names=("dsmtp", "dpop", "dlist"))
    assert set(st) >= {"dsmtp", "dpop", "dlist"}, st
    # a post goes through the supervised dlist
    assert dlist_cmd(site, "add", "talk", "alice@" + DOMAIN)[0] == 0
    post(site, "alice@" + DOMAIN, "talk@" + DOMAIN, subject="supervised")
    wait_for(lambda: any(m["Subject"] == "[talk] supervised"
                         for _, m in read_mbox(os.path.join(site.drop, "alice"))), 15)


def test_dwatch_without_lists_runs_no_dlist(dwatch_factory):
    dw = dwatch_factory(start=False)
    dw.start(wait=False)
    st = dw.wait_running(names=("dsmtp", "dpop"))
    assert "dlist" not in st, st


def test_welcome_and_leave_templates(dsmtp_factory):
    site = list_site(dsmtp_factory)
    req = "open-request@" + DOMAIN
    post(site, "alice@" + DOMAIN, req, subject="join", body="")  # join_cookie false
    msgs = {m["Subject"]: m for _, m in wait_msgs(site, "alice", 2)}
    assert msgs["DLIST: Welcome to the open list"].get_payload() == \
        "Hello from open: post to open@%s, commands to %s.\n" % (DOMAIN, req)
    assert "alice@%s is now subscribed" % DOMAIN in msgs["Re: join"].get_payload()
    assert members_of(site, "open") == ["alice@" + DOMAIN]
    # access_leave anyone: bob may remove alice; she is told with leave_file
    post(site, "bob@" + DOMAIN, req, subject="x", body="signoff alice@%s\n" % DOMAIN)
    msgs = wait_msgs(site, "alice", 3)
    assert msgs[2][1]["Subject"] == "DLIST: You have left the open list"
    assert msgs[2][1].get_payload() == "Goodbye from open.\n"
    assert members_of(site, "open") == []


def xverp_sink():
    """An aiosmtpd server that announces Postfix's XVERP and records who asked for it:
    (controller, handler); handler.xverp lists the MAIL FROM lines' XVERP (True/False)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP
    from conftest import SinkHandler
    from dmail_site import free_ports

    class Handler(SinkHandler):
        xverp = []

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            return responses[:1] + ["250-XVERP"] + responses[1:]

    class XverpSMTP(SMTP):
        async def smtp_MAIL(self, arg):
            has = arg is not None and arg.upper().endswith(" XVERP")
            self.event_handler.xverp.append(has)
            await super().smtp_MAIL(arg[:-6] if has else arg)

    class XverpController(Controller):
        def factory(self):
            return XverpSMTP(self.handler)

    h = Handler()
    c = XverpController(h, hostname="127.0.0.1", port=free_ports(1)[0])
    c.start()
    return c, h


def test_one_transaction_with_xverp_when_announced(dsmtp_factory, sink_factory):
    c, h = xverp_sink()
    try:
        site = list_site(dsmtp_factory, dlist_smtp_host="127.0.0.1:%d" % c.port)
        subs = ["a@one.example", "b@two.example", "c@one.example"]
        for a in subs:
            assert dlist_cmd(site, "add", "talk", a)[0] == 0
        msgid = post(site, "a@one.example", "talk@" + DOMAIN, subject="via xverp")
        wait_for(lambda: h.envelopes, 15)
        (env,) = h.envelopes
        assert h.xverp == [True]
        assert env.mail_from == "talk-bounces@" + DOMAIN
        assert sorted(env.rcpt_tos) == sorted(subs)  # one transaction, every subscriber
        assert msgid.encode() in env.content and b"List-Id: The list for talkers" in env.content
        # a server without XVERP: plain MAIL FROM (aiosmtpd refuses unknown parameters)
        port, plain = sink_factory()
        site.write_conf({"dlist_path": os.path.join(site.dir, "dlist"),
                         "dlist_smtp_host": "127.0.0.1:%d" % port})
        assert dlist_cmd(site, "reload")[0] == 0
        post(site, "b@two.example", "talk@" + DOMAIN, subject="plain")
        wait_for(lambda: plain.envelopes, 15)
        assert sorted(plain.envelopes[0].rcpt_tos) == sorted(subs)
        assert plain.envelopes[0].mail_from == "talk-bounces@" + DOMAIN
        assert h.xverp == [True]
    finally:
        c.stop()


def test_mail_waits_while_the_smtp_server_is_down(dsmtp_factory, sink_factory):
    from dmail_site import free_ports
    port = free_ports(1)[0]
    site = list_site(dsmtp_factory, dlist_smtp_host="127.0.0.1:%d" % port,
                     dlist_scan_interval="1")
    assert dlist_cmd(site, "add", "talk", "x@one.example")[0] == 0
    post(site, "x@one.example", "talk@" + DOMAIN, subject="later")
    out = os.path.join(site.spool, "dlist", "out")
    wait_for(lambda: "trying again later" in site.dl.log(), 15)
    assert len(os.listdir(out)) == 1  # kept, complete
    _, h = sink_factory(port=port)
    wait_for(lambda: h.envelopes, 15)
    assert h.envelopes[0].rcpt_tos == ["x@one.example"]
    wait_for(lambda: not os.listdir(out), 10)


def test_recovery_of_what_a_crash_left(dsmtp_factory):
    """What kill -9 leaves, set up by hand: a message claimed (in cur) whose mail was
    partly made (a stale outbox file), and an outbox file made and never sent. At start
    the claimed message is handled again (its stale mail dropped), the outbox file sent
    once."""
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d})
    mdir = os.path.join(site.work, "dlist", "talk")
    os.makedirs(mdir)
    with open(os.path.join(mdir, "members"), "w") as f:
        f.write("alice@%s\nbob@%s\n" % (DOMAIN, DOMAIN))
    spool = os.path.join(site.spool, "dlist")
    cur = os.path.join(spool, "talk", "post", "cur")
    out = os.path.join(spool, "out")
    os.makedirs(cur)
    os.makedirs(out)
    msgid = new_msgid("crash")
    with open(os.path.join(cur, "1.crash.test"), "w") as f:
        f.write("Return-Path: <alice@%s>\nFrom: alice@%s\nSubject: claimed\nMessage-ID: %s\n\n"
                "body\n" % (DOMAIN, DOMAIN, msgid))
    with open(os.path.join(out, "talk.post.1.crash.test.0"), "w") as f:
        f.write("S <talk-bounces@%s>\nE <dlist-000000000000000000000001>\nR <alice@%s>\n\n"
                "Subject: stale\n\nnever sent\n" % (DOMAIN, DOMAIN))
    left = new_msgid("left")
    with open(os.path.join(out, "talk.request.2.crash.test.0"), "w") as f:
        f.write("S <talk-bounces@%s>\nE <dlist-000000000000000000000002>\nR <bob@%s>\n\n"
                "Subject: leftover\nMessage-ID: %s\n\nmade, not sent\n" % (DOMAIN, DOMAIN, left))
    site.start()
    dl = start_dlist(site)
    wait_for(lambda: len(site.messages("bob")) >= 2, 15)
    settle(site)
    assert sorted(site.msgids("bob")) == sorted([msgid, left])
    assert site.msgids("alice") == [msgid]
    assert [m["Subject"] for _, m in site.messages("alice")] == ["[talk] claimed"]
    assert os.listdir(cur) == [] and os.listdir(out) == []
    assert "handled again after a restart" in dl.log()


def test_moderated_list_only_moderators_post(dsmtp_factory):
    site = list_site(dsmtp_factory, extra="list ann\n access_post moderator\n"
                                          " moderator carol@%s\n" % DOMAIN)
    for u in ("alice", "bob"):
        assert dlist_cmd(site, "add", "ann", "%s@%s" % (u, DOMAIN))[0] == 0
    m1 = post(site, "carol@" + DOMAIN, "ann@" + DOMAIN, subject="news")  # not a member
    assert wait_msgs(site, "alice", 1)[0][1]["Message-ID"] == m1
    post(site, "bob@" + DOMAIN, "ann@" + DOMAIN, subject="me too")  # a member, no moderator
    notice = wait_msgs(site, "carol", 1)[0][1]
    assert "bob@%s may not post (access_post moderator)" % DOMAIN in notice.get_payload()
    settle(site)
    assert len(site.messages("alice")) == 1 and len(site.messages("bob")) == 1


def test_outbox_gives_up_after_queue_lifetime(dsmtp_factory, sink_factory):
    port, h = sink_factory()
    h.reply = lambda env: "451 4.3.0 not now"
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d, "dlist_smtp_host": "127.0.0.1:%d" % port,
                     "dlist_scan_interval": "1", "queue_lifetime": "1h"})
    out = os.path.join(site.spool, "dlist", "out")
    os.makedirs(out)
    for name, made in (("talk.post.old.0", int(time.time()) - 7200),
                       ("talk.post.new.0", int(time.time()))):
        with open(os.path.join(out, name), "w") as f:
            f.write("S <talk-bounces@%s>\nT <%d>\nE <dlist-%s>\nR <x@one.example>\n\n"
                    "Subject: %s\n\nbody\n" % (DOMAIN, made, name.replace(".", "-"), name))
    site.start()
    dl = start_dlist(site)
    wait_for(lambda: os.listdir(out) == ["talk.post.new.0"], 15)
    assert "talk.post.old.0: <x@one.example> given up" in dl.log()
    time.sleep(1.5)
    assert os.listdir(out) == ["talk.post.new.0"]  # still tried, kept


def test_approval_interrupted_by_a_crash_is_not_lost(dsmtp_factory):
    """kill -9 after the approval's mail was made but before the approving message was
    done: the held post is still there, so handling the message again sends it, once."""
    site = dsmtp_factory(start=False)
    d = write_lists(site, "list talk\n moderator carol@%s\n password %s\n"
                    % (DOMAIN, sha512_crypt(MODPASS)))
    site.write_conf({"dlist_path": d})
    mdir = os.path.join(site.work, "dlist", "talk")
    os.makedirs(mdir)
    with open(os.path.join(mdir, "members"), "w") as f:
        f.write("alice@%s\n" % DOMAIN)
    spool = os.path.join(site.spool, "dlist")
    held = os.path.join(spool, "talk", "held")
    cur = os.path.join(spool, "talk", "request", "cur")
    out = os.path.join(spool, "out")
    for p in (held, cur, out):
        os.makedirs(p)
    msgid = new_msgid("held")
    with open(os.path.join(held, "00000000abcd"), "w") as f:
        f.write("X-Dlist-Held: eve@remote.example may not post\n"
                "Return-Path: <eve@remote.example>\nFrom: eve@remote.example\n"
                "Subject: held one\nMessage-ID: %s\n\nplease\n" % msgid)
    with open(os.path.join(cur, "9.crash.test"), "w") as f:
        f.write("Return-Path: <carol@%s>\nFrom: carol@%s\nSubject: ok\n\napprove %s "
                "00000000abcd\n" % (DOMAIN, DOMAIN, MODPASS))
    with open(os.path.join(out, "talk.request.9.crash.test.0"), "w") as f:  # made, unsent
        f.write("S <talk-bounces@%s>\nE <dlist-000000000000000000000009>\nR <alice@%s>\n\n"
                "Subject: held one\nMessage-ID: %s\n\nplease\n" % (DOMAIN, DOMAIN, msgid))
    site.start()
    start_dlist(site)
    wait_for(lambda: site.messages("alice") and site.messages("carol"), 15)
    settle(site)
    assert site.msgids("alice") == [msgid]
    assert "approved and sent" in site.messages("carol")[0][1].get_payload()
    assert os.listdir(held) == [] and os.listdir(cur) == []


def test_remote_subscribers_through_dsmtp(dsmtp_factory, sink_factory):
    """dsmtp relays dlist's posts to remote subscribers (a loopback client sending as one
    of the list's own addresses) without relay_allow; anyone else from loopback still
    may not relay."""
    port, h = sink_factory()
    site = list_site(dsmtp_factory, smarthost="[127.0.0.1]:%d" % port)
    subs = ["r1@one.example", "r2@two.example"]
    for a in subs + ["alice@" + DOMAIN]:
        assert dlist_cmd(site, "add", "talk", a)[0] == 0
    msgid = post(site, "alice@" + DOMAIN, "talk@" + DOMAIN, subject="far away")
    assert wait_msgs(site, "alice", 1)[0][1]["Message-ID"] == msgid
    wait_for(lambda: sum(len(e.rcpt_tos) for e in h.envelopes) >= 2, 20)
    assert sorted(r for e in h.envelopes for r in e.rcpt_tos) == sorted(subs)
    assert all(e.mail_from.startswith("talk-bounces") for e in h.envelopes)
    # not an open relay: another sender from loopback is refused
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.ehlo()
        c.mail("alice@" + DOMAIN)
        assert c.rcpt("x@one.example")[0] in (550, 554)
        c.rset()
        c.mail("talk@" + DOMAIN)  # the posting address is not one dlist sends from
        assert c.rcpt("x@one.example")[0] in (550, 554)


def test_posts_of_an_archived_list_are_archived(dsmtp_factory):
    """archive true: each distributed post lands in the month mbox and the HTML pages;
    a list without it keeps no archive."""
    site = list_site(dsmtp_factory, extra="list kept\n title Kept for later\n"
                     " access_post anyone\n archive true\n")
    assert dlist_cmd(site, "add", "kept", "alice@" + DOMAIN)[0] == 0
    assert dlist_cmd(site, "add", "talk", "alice@" + DOMAIN)[0] == 0
    msgid = post(site, "dave@remote.example", "kept@" + DOMAIN, subject="keep <this>",
                 body="First line.\n<script>x</script>\n")
    m = wait_msgs(site, "alice", 1)[0][1]
    assert m["List-Archive"] == "<mailto:kept-request@%s?subject=index>" % DOMAIN
    post(site, "alice@" + DOMAIN, "talk@" + DOMAIN, subject="not kept")
    wait_msgs(site, "alice", 2)
    settle(site)
    month = time.strftime("%Y-%m", time.gmtime())
    adir = os.path.join(site.dir, "dlist", "archive")
    box = os.path.join(adir, "kept", month)
    wait_for(lambda: os.path.exists(box), 10)
    with open(box, "rb") as f:
        text = f.read().decode()
    assert text.count("\nMessage-ID: %s\n" % msgid) == 1, text
    assert "Subject: [kept] keep <this>" in text or "Subject: keep <this>" in text, text
    page = os.path.join(adir, "kept", "html", month, "1.html")
    wait_for(lambda: os.path.exists(page), 10)
    with open(page) as f:
        html = f.read()
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html, html
    assert not os.path.exists(os.path.join(adir, "talk"))
    # the -request commands index and get answer from it; names outside it are refused
    post(site, "alice@" + DOMAIN, "kept-request@" + DOMAIN, subject="x",
         body="index\nget %s\nget ../../users\n" % month)
    r = wait_msgs(site, "alice", 3)[2][1].get_payload()
    assert "> index\n" in r and "    %s " % month in r, r
    assert "%s follows" % month in r and "Message-ID: %s" % msgid in r, r
    assert "> get ../../users\n" in r and "root:" not in r, r
    post(site, "alice@" + DOMAIN, "talk-request@" + DOMAIN, subject="x", body="index\n")
    r = wait_msgs(site, "alice", 4)[3][1].get_payload()
    assert "> index\n" in r and "follows" not in r, r


def test_list_larger_than_max_rcpts_goes_out_in_one_transaction(dsmtp_factory):
    """A post to 250 members with max_rcpts 100: dsmtp takes every RCPT from dlist (no 452
    and error_delay for the 150 beyond max_rcpts), each member gets the post at once;
    another loopback client still gets 452 after max_rcpts."""
    site = dsmtp_factory(start=False)
    users = ["m%03d" % i for i in range(250)]
    for u in users:
        site.add_user(u, "pw-" + u)
    d = write_lists(site, "list big\n access_post anyone\n")
    site.write_conf({"dlist_path": d, "max_rcpts": 100})
    mdir = os.path.join(site.work, "dlist", "big")
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(mdir, "members"), "w") as f:
        f.write("".join("%s@%s\n" % (u, DOMAIN) for u in users))
    site.start()
    start_dlist(site)
    msgid = post(site, "poster@remote.example", "big@" + DOMAIN)
    wait_for(lambda: all(site.messages(u) for u in users), 20)
    settle(site)
    for u in users:
        assert site.msgids(u) == [msgid], u
    # max_rcpts still holds for everybody else (smtplib: a client on 127.0.0.1)
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.ehlo()
        c.mail("poster@remote.example")
        codes = [c.rcpt("%s@%s" % (u, DOMAIN))[0] for u in users[:101]]
    assert codes[:100] == [250] * 100 and codes[100] == 452, codes[95:]


def post_transactions(log, subject):
    """(ENVID, [recipients taken]) of each transaction in a smtp_peer dsn-rcpt2 log whose
    text holds subject: the first 2 RCPTs after each MAIL (it answers 452 to the rest)."""
    out = []
    if not os.path.exists(log):
        return out
    for tx in open(log, "rb").read().split(b"MAIL FROM:")[1:]:
        if b"Subject: " + subject.encode() not in tx:
            continue
        mail = tx.split(b"\r\n", 1)[0].decode()
        envid = next((x[6:] for x in mail.split() if x.upper().startswith("ENVID=")), None)
        rcpts = [ln[9:].strip(b"<>").decode() for ln in tx.split(b"\r\n")
                 if ln.upper().startswith(b"RCPT TO:")]
        out.append((envid, rcpts[:2]))
    return out


def test_rcpt_452_rest_sent_at_once_in_new_transactions(dsmtp_factory, peer_factory):
    """The server takes 2 RCPTs a transaction and answers 452 to the rest: dlist sends
    the rest in the next transaction at once (not at the next scan, dlist_scan_interval
    60 s), each with an ENVID of its own (the first one is delivered for dsmtp: a resend
    under it would be dropped as a duplicate); every member gets the post once."""
    port, log = peer_factory("dsn-rcpt2")
    site = list_site(dsmtp_factory, dlist_smtp_host="127.0.0.1:%d" % port,
                     dlist_scan_interval=60)
    members = ["m%d@far%d.example" % (i, i) for i in range(5)]
    for a in members:
        assert dlist_cmd(site, "add", "open", a)[0] == 0
    post(site, "poster@" + DOMAIN, "open@" + DOMAIN, subject="fan-452")
    assert wait_for(lambda: sum(len(r) for _, r in post_transactions(log, "fan-452")) >= 5,
                    20), open(site.dir + "/dlist.stderr").read()[-3000:]
    time.sleep(0.5)
    txns = post_transactions(log, "fan-452")
    got = [a for _, r in txns for a in r]
    assert sorted(got) == sorted(members), txns
    assert [len(r) for _, r in txns] == [2, 2, 1], txns
    envids = [e for e, _ in txns]
    assert all(envids) and len(set(envids)) == 3, envids


def test_resend_with_recipients_refused_before_goes_to_them_alone(dsmtp):
    """dlist killed after dsmtp's 250 but before it rewrote its outbox file without the
    recipients that dsmtp accepted sends the whole file again under the same ENVID: the
    recipients that had the message do not get it twice, and those refused for now the
    first time are not dropped as a duplicate."""
    envid = "dlist-%s" % new_msgid().strip("<>").split("@")[0].replace(".", "-")
    text = "From: talk@%s\r\nSubject: rest\r\n\r\npost\r\n" % DOMAIN

    def send(rcpts):
        with smtplib.SMTP(HOST, dsmtp.smtp_port, timeout=30) as c:
            c.ehlo("dlist.example")
            return c.sendmail("talk-bounces@" + DOMAIN, rcpts, text,
                              mail_options=["ENVID=" + envid])

    assert send(["alice@" + DOMAIN, "bob@" + DOMAIN]) == {}
    assert wait_for(lambda: dsmtp.messages("alice") and dsmtp.messages("bob"), 10)
    assert send(["alice@" + DOMAIN, "bob@" + DOMAIN, "carol@" + DOMAIN]) == {}
    assert wait_for(lambda: dsmtp.messages("carol"), 10), dsmtp.log()[-2000:]
    assert "delivered to the 1 of 3 recipients it did not have" in dsmtp.log()
    # the whole again: nobody new, nothing delivered
    assert send(["alice@" + DOMAIN, "bob@" + DOMAIN, "carol@" + DOMAIN]) == {}
    assert "result=duplicate envid=%s (not delivered again)" % envid in dsmtp.log()
    time.sleep(0.5)
    assert [len(dsmtp.messages(u)) for u in ("alice", "bob", "carol")] == [1, 1, 1]
