"""authent_method external: dpop and dsmtp asking authent_process helpers (DMail's
external-authentication protocol) -- the example conf/authent-users.py and
extauth_fake.py, a helper that answers -DEAD, hangs, crashes or talks nonsense."""

import os
import re
import shutil
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, HOST, REPO, RawPOP, chown_like_dsmtp, sha512_crypt,
                        wait_for)

MSG = "From: a@remote.example\r\nSubject: hi\r\n\r\nHello.\r\n"


def _helper(site, name):
    """Copy a helper script into the site (run_as must be able to run it)."""
    src = os.path.join(REPO, "conf", name) if name == "authent-users.py" else \
        os.path.join(REPO, "tests", "it", name)
    dst = os.path.join(site.dir, name)
    shutil.copy(src, dst)
    os.chmod(dst, 0o755)
    return dst


def _users(site, lines):
    path = os.path.join(site.dir, "ext-users")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    site.chown()
    return path


@pytest.fixture
def ext_pop(dpop_factory):
    """make(lines, **settings): a dpop using conf/authent-users.py over the users lines."""

    def make(lines, **settings):
        pop = dpop_factory(tls=False, start=False, auth_plaintext=True, **settings)
        site = pop.site
        helper = _helper(site, "authent-users.py")
        path = _users(site, lines)
        site.write_conf({"authent_method": "external",
                         "authent_process": "%s %s %s" % (helper, path, site.drop)})
        pop.start()
        return pop

    return make


@pytest.fixture
def fake_pop(dpop_factory):
    """make(**settings): a dpop using extauth_fake.py; (pop, request log path)."""

    def make(**settings):
        conf = {"authent_timeout": 2}
        conf.update(settings)
        pop = dpop_factory(tls=False, start=False, auth_plaintext=True, **conf)
        site = pop.site
        helper = _helper(site, "extauth_fake.py")
        log = os.path.join(site.dir, "requests.log")
        open(log, "w").close()
        site.chown()
        site.write_conf({"authent_method": "external",
                         "authent_process": "%s %s %s" % (helper, log, site.drop)})
        pop.start()
        return pop, log

    return make


def _requests(log):
    with open(log) as f:
        return [ln.split() for ln in f if ln.strip()]


def test_pop_login_ok_and_bad_password(ext_pop):
    pop = ext_pop(["alice:" + sha512_crypt("alice-pw"), "# a comment"])
    pop.put_mbox("alice", [MSG])
    c = pop.raw()
    assert "1 messages" in c.login("alice", "alice-pw")
    c.ok("QUIT")
    c = pop.raw()
    c.ok("USER alice")
    c.err("PASS wrong", "AUTH")
    c.ok("USER nobody-here")
    c.err("PASS alice-pw", "AUTH")
    assert "alice-pw" not in pop.log()


def test_pop_changed_password_in_helper_database_honoured(ext_pop):
    """No login answer of an external helper is cached (the login cache, keyed by an HMAC
    of user, password and stored hash, serves users_file and unix_user only): a password
    changed in the helper's database counts from the next login, with authent_cache_ttl
    far off."""
    pop = ext_pop(["alice:" + sha512_crypt("old-pw")], authent_cache_ttl=3600)
    pop.put_mbox("alice", [MSG])
    for _ in range(2):
        c = pop.raw()
        assert "1 messages" in c.login("alice", "old-pw")
        c.ok("QUIT")
    path = os.path.join(pop.site.dir, "ext-users")
    with open(path, "w") as f:
        f.write("alice:%s\n" % sha512_crypt("new-pw"))
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a new mtime
    c = pop.raw()
    c.ok("USER alice")
    c.err("PASS old-pw", "AUTH")
    c = pop.raw()
    assert "1 messages" in c.login("alice", "new-pw")
    c.ok("QUIT")
    log = pop.log()
    assert "old-pw" not in log and "new-pw" not in log


def test_pop_drop_path_outside_roots_refused(ext_pop):
    pop = ext_pop(["eve:%s:/etc/passwd" % sha512_crypt("eve-pw"),
                   "mal:%s:%s/../x" % (sha512_crypt("mal-pw"), "/var/spool/dmail/drop")])
    c = pop.raw()
    c.ok("USER eve")
    c.err("PASS eve-pw", "SYS/PERM")
    c.ok("USER mal")
    c.err("PASS mal-pw", "SYS/PERM")
    assert "outside drop_path" in pop.log()


def test_pop_dead_is_temporary(fake_pop):
    pop, log = fake_pop()
    c = pop.raw()
    c.ok("USER dead1")
    c.err("PASS pw", "SYS/TEMP")
    c.ok("USER alice")
    c.err("PASS nope", "AUTH")
    c = pop.raw()
    assert "Logged in" in c.login("alice", "pw")


def test_pop_hung_helper_times_out_others_go_on(fake_pop):
    pop, log = fake_pop(authent_timeout=2, authent_number=2)
    slow = pop.raw()
    slow.send("USER hang1\r\nPASS pw\r\n")
    assert slow.readline().startswith("+OK")
    time.sleep(0.3)
    t0 = time.monotonic()
    fast = pop.raw()
    fast.login("alice", "pw")  # the other helper answers meanwhile
    assert time.monotonic() - t0 < 1.5
    r = slow.readline()
    assert r.startswith("-ERR [SYS/TEMP]"), r
    assert time.monotonic() - t0 < 4
    assert "no answer within authent_timeout" in pop.log()
    # the killed helper is replaced: both helpers answer again
    wait_for(lambda: "restarts" in pop.log(), 5)
    for _ in range(3):
        c = pop.raw()
        c.login("bob", "pw")
        c.ok("QUIT")


def test_pop_crashed_helper_restarted(fake_pop):
    pop, log = fake_pop(authent_number=1)
    c = pop.raw()
    c.ok("USER crash1")
    c.err("PASS pw", "SYS/TEMP")
    pids = {r[0] for r in _requests(log)}
    time.sleep(0.5)
    c = pop.raw()
    c.login("alice", "pw")
    pids2 = {r[0] for r in _requests(log)}
    assert len(pids2 - pids) == 1  # a new helper answered
    c = pop.raw()
    c.ok("USER garbage")
    c.err("PASS pw", "SYS/TEMP")
    time.sleep(0.5)
    c = pop.raw()
    c.login("carol", "pw")
    assert "not the authentication protocol" in pop.log()


@pytest.mark.parametrize("user,says", [("huge1", "answer line too long: killed"),
                                       ("nul1", "not the authentication protocol")])
def test_pop_helper_100k_line_or_nul_bytes(fake_pop, user, says):
    """A helper answering a 100 KB line or NUL bytes: that session gets a temporary
    failure, the helper is killed and restarted, the other sessions are served."""
    pop, log = fake_pop(authent_number=1)
    other = pop.raw()
    other.ok("USER alice")
    c = pop.raw()
    c.ok("USER " + user)
    c.err("PASS pw", "SYS/TEMP")
    pids = {r[0] for r in _requests(log)}
    assert says in pop.log(), pop.log()[-2000:]
    other.ok("PASS pw")  # waited for the restarted helper
    pids2 = {r[0] for r in _requests(log)}
    assert len(pids2 - pids) == 1  # a new helper answered
    for u in ("bob", "carol"):
        c = pop.raw()
        assert "Logged in" in c.login(u, "pw")
        c.ok("QUIT")
    assert "x" * 1000 not in pop.log()
    assert pop.sanitizer_report() is None, pop.sanitizer_report()


def test_authent_domain_sends_user_at_domain(fake_pop):
    pop, log = fake_pop(authent_domain=True)
    c = pop.raw()
    c.login("alice", "pw")
    reqs = _requests(log)
    assert reqs[-1][1:] == ["check", "alice@" + DOMAIN, "4"]  # check user pw ip
    pop2, log2 = fake_pop()
    c = pop2.raw()
    c.login("alice", "pw")
    assert _requests(log2)[-1][1:3] == ["check", "alice"]


def test_config_needs_authent_process(dsmtp_factory):
    srv = dsmtp_factory(start=False, authent_method="external")
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78, r
    assert "authent_method external needs authent_process" in r.stderr
    srv.write_conf({"authent_process": "relative/helper -x"})
    r = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78, r
    assert "authent_process: relative/helper is not an executable absolute path" in r.stderr


# ---- dsmtp: RCPT lookup, fwd="...", SMTP AUTH ----

from dmail_site import RawSMTP, make_message, to_wire, tls_client_context  # noqa: E402


@pytest.fixture
def ext_smtp(dsmtp_factory):
    """make(lines, helper="authent-users.py", **settings): a dsmtp asking a helper."""

    def make(lines=(), helper="authent-users.py", **settings):
        site = dsmtp_factory(start=False, **settings)
        h = _helper(site, helper)
        if helper == "authent-users.py":
            arg = _users(site, list(lines))
        else:
            arg = os.path.join(site.dir, "requests.log")
            open(arg, "w").close()
        site.write_conf({"authent_method": "external", "authent_timeout": 2,
                         "authent_process": "%s %s %s" % (h, arg, site.drop)})
        site.start()
        site.helper_arg = arg
        return site

    return make


def _send(site, rcpts, msgid):
    """One message to rcpts: the RCPT replies, and the DATA reply if any was taken."""
    with RawSMTP(site.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@remote.example>", 250)
        codes = [c.cmd("RCPT TO:<%s>" % r)[0] for r in rcpts]
        data = None
        if 250 in codes:
            c.expect("DATA", 354)
            c.send(to_wire(make_message(msgid=msgid, to=rcpts[0])[1]) + b".\r\n")
            data = c.reply()[0]
        c.cmd("QUIT")
    return codes, data


def _ids(site, user):
    try:
        return site.msgids(user)
    except FileNotFoundError:
        return []


def test_rcpt_lookup_ok_unknown_and_drop(ext_smtp):
    site = ext_smtp(["alice:" + sha512_crypt("x"),
                     "bob:%s:%s/bobbox" % (sha512_crypt("x"), "DROP"),
                     "eve:%s:/etc/eve" % sha512_crypt("x")])
    # bob's own drop file, under drop_path
    lines = open(site.helper_arg).read().replace("DROP", site.drop)
    with open(site.helper_arg, "w") as f:
        f.write(lines)
    codes, data = _send(site, ["alice@" + DOMAIN, "Bob@" + DOMAIN, "nobody@" + DOMAIN,
                               "eve@" + DOMAIN], "<r1@t>")
    assert codes == [250, 250, 550, 451], codes
    assert data == 250
    assert _ids(site, "alice") == ["<r1@t>"]
    assert "<r1@t>" in open(os.path.join(site.drop, "bobbox")).read()
    assert "outside drop_path" in site.log()
    assert not os.path.exists("/etc/eve")


def test_rcpt_lookup_dead_and_hang_tempfail(ext_smtp):
    site = ext_smtp(helper="extauth_fake.py")
    codes, _ = _send(site, ["dead1@" + DOMAIN], "<d1@t>")
    assert codes == [451]
    t0 = time.monotonic()
    codes, _ = _send(site, ["hang1@" + DOMAIN], "<d2@t>")
    assert codes == [451] and time.monotonic() - t0 < 5
    codes, data = _send(site, ["alice@" + DOMAIN], "<d3@t>")
    assert codes == [250] and data == 250
    assert _ids(site, "alice") == ["<d3@t>"]
    reqs = _requests(site.helper_arg)
    assert ["lookup", "alice", "2"] in [r[1:] for r in reqs]


def test_fwd_with_and_without_user(ext_smtp):
    h = sha512_crypt("x")
    site = ext_smtp(["alice:" + h, "bob:" + h,
                     "carol:%s::alice@%s" % (h, DOMAIN),
                     "dan:%s::bob,$user" % h,
                     "erin:%s::ghost@%s" % (h, DOMAIN)])
    codes, data = _send(site, ["carol@" + DOMAIN], "<f1@t>")
    assert codes == [250] and data == 250
    codes, data = _send(site, ["dan@" + DOMAIN], "<f2@t>")
    assert codes == [250] and data == 250
    assert _ids(site, "alice") == ["<f1@t>"]
    assert _ids(site, "carol") == []  # forwarded without $user: no copy
    assert _ids(site, "bob") == ["<f2@t>"]
    assert _ids(site, "dan") == ["<f2@t>"]  # $user keeps a copy
    codes, _ = _send(site, ["erin@" + DOMAIN], "<f3@t>")
    assert codes == [550]  # forwards to a user the helper does not know


def test_smtp_auth_over_tls_through_check(ext_smtp):
    site = ext_smtp(["alice:" + sha512_crypt("alice-pw")])
    with RawSMTP(site.submission_port) as c:
        c.secure()
        assert c.auth_plain("alice", "wrong")[0] == 535
    with RawSMTP(site.submission_port) as c:
        c.secure()
        assert c.auth_plain("alice", "alice-pw")[0] == 235
        c.expect("MAIL FROM:<alice@%s>" % DOMAIN, 250)
        c.expect("RCPT TO:<someone@remote.example>", 250)  # authenticated: may relay
    assert "alice-pw" not in site.log()


def test_smtp_auth_dead_is_454(ext_smtp):
    site = ext_smtp(helper="extauth_fake.py")
    with RawSMTP(site.submission_port) as c:
        c.secure()
        assert c.auth_plain("dead1", "pw")[0] == 454
        assert c.auth_plain("alice", "pw")[0] == 235


def test_des_hash_in_users_file_named_with_fix(dpop_factory):
    """An old DES crypt hash (13 characters) in the users file: refused with the fix named,
    at -t and in the log when that user tries to log in."""
    pop = dpop_factory(tls=False, start=False, auth_plaintext=True)
    with open(pop.site.users_file, "a") as f:
        f.write("olddes:abJnggxhB/yWI\n")
    r = subprocess.run([os.path.join(BIN, "dpop"), "-t", "-c", pop.site.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert "olddes has an old DES crypt hash" in r.stdout + r.stderr, r
    assert "tellpop passwd olddes" in r.stdout + r.stderr
    pop.start()
    c = pop.raw()
    c.ok("USER olddes")
    c.err("PASS whatever", "AUTH")
    wait_for(lambda: "login user=olddes: its users file line has an old DES" in pop.log(), 5)


def test_pickup_resolves_through_a_helper_off_the_loop(ext_smtp):
    """sendmail's maildrop is resolved on the thread pool: the helpers' pool answers for a
    user no RCPT looked up (extauth_lookup_off_loop)."""
    from dmail_site import sendmail
    h = sha512_crypt("x")
    site = ext_smtp(["alice:" + h, "dan:%s::alice,$user" % h])
    sendmail(site, ["-i", "dan@" + DOMAIN],
             b"Subject: picked up\nMessage-ID: <p1@t>\n\nx\n")
    wait_for(lambda: _ids(site, "dan") == ["<p1@t>"], 10)
    wait_for(lambda: _ids(site, "alice") == ["<p1@t>"], 10)


def test_reload_to_external_needs_restart(dsmtp_factory):
    site = dsmtp_factory()
    h = _helper(site, "authent-users.py")
    site.write_conf({"authent_method": "external",
                     "authent_process": "%s %s" % (h, site.users_file)})
    rc, out, err = site.tellsmtp("reload")
    assert rc != 0
    assert "a change to or from external needs a restart" in out + err
    with RawSMTP(site.smtp_port) as c:  # the users file still answers
        c.ehlo()
        c.expect("MAIL FROM:<a@remote.example>", 250)
        c.expect("RCPT TO:<alice@%s>" % DOMAIN, 250)


def test_pickup_without_an_answer_is_queued_not_bounced(ext_smtp):
    """Off the loop (sendmail pickup, queue runner) a helper that answers -DEAD leaves the
    recipient in the queue to be tried again, as the 451 of an SMTP RCPT does; it is
    neither unknown nor bounced."""
    from dmail_site import sendmail
    site = ext_smtp(helper="extauth_fake.py")
    sendmail(site, ["-i", "deadbob@" + DOMAIN], b"Subject: later\nMessage-ID: <d1@t>\n\nx\n")
    assert wait_for(lambda: "authent_process gave no answer" in site.log(), 10), site.log()
    assert wait_for(lambda: site.queue_files(), 10), site.log()[-2000:]
    assert any(b"deadbob@" in open(q, "rb").read() for q in site.queue_files())
    log = site.log()
    assert "result=unknown" not in log and "bounce" not in log.lower(), log[-2000:]
    # the question went to the pool's helpers (started with dsmtp), no helper of its own
    pool = set(re.findall(r"authent_process helper \d+ started \(pid (\d+)\)", log))
    asked = {r[0] for r in _requests(os.path.join(site.dir, "requests.log"))
             if r[2].startswith("deadbob")}
    assert pool and asked and asked <= pool, (pool, asked)


def test_pickup_answered_by_the_pool(ext_smtp):
    """A user picked up from sendmail's maildrop is asked of the pool's helpers (their
    pids in the helper's request log) and delivered to the drop file it names."""
    from dmail_site import sendmail
    site = ext_smtp(helper="extauth_fake.py")
    sendmail(site, ["-i", "carol@" + DOMAIN], b"Subject: now\nMessage-ID: <c1@t>\n\nx\n")
    assert wait_for(lambda: _ids(site, "carol") == ["<c1@t>"], 10), site.log()[-2000:]
    log = site.log()
    pool = set(re.findall(r"authent_process helper \d+ started \(pid (\d+)\)", log))
    asked = {r[0] for r in _requests(os.path.join(site.dir, "requests.log"))
             if r[2].startswith("carol")}
    assert pool and asked and asked <= pool, (pool, asked)
    assert site.sanitizer_report() is None, site.sanitizer_report()
