"""DMail config compatibility (issue 12): a dmail.conf holding every DMail setting of
REFERENCE 2.3 passes `dsmtp -t` and `dpop -t`, with a warning naming what dmail does
instead for each setting accepted without effect, and then serves mail (SMTP in, POP3 out).
Then one test per DMail setting implemented here: bounce_body, user_ip_address, min_space,
dsmtp_host / dpop_host, allow_dds (true refused with file:line)."""

import os
import poplib
import re
import smtplib
import subprocess

import pytest

from dmail_site import (BIN, DOMAIN, HOST, PASSWORDS, RawPOP, RawSMTP, dsn_reports, make_message,
                        new_msgid, sendmail, tls_client_context, wait_for)


# Every DMail setting of REFERENCE 2.3 that is in common/mail/settings.def, one sample value
# each, in the order of the reference's tables. Append the names added later here (one
# line each); SITE means "this test site's own value" (a path of the temporary site, or the
# value the fixtures need to run). Settings that other parts of issue 12 add (vdomain,
# alias_file, authent_process, manager_ip_address, ...) belong here once they are in the
# table.
def dmail_settings(site):
    d = site.dir
    return [
        # 2.3.1 common
        ("host_domain", None),  # SITE: example.test, example.net
        ("drop_path", None),  # SITE
        ("hash_spool", "0"),
        ("lock_id", "node1"),
        ("work_path", None),  # SITE
        ("dwatch_path", d),
        ("authent_method", "users_file"),  # SITE: the test accounts (unix_user needs root)
        ("authent_cache", "1000"),
        ("log_level", "debug"),
        ("lookup_names", "false"),  # true: reverse DNS of each client (none answers here)
        ("allow_dds", "false"),
        ("apop_enable", "true"),
        # 2.3.2 dsmtp
        ("dsmtp_path", "/usr/local/dmail"),
        ("dsmtp_host", HOST),
        ("sysadmin", None),  # SITE: bob
        ("dns_host", None),  # SITE: 127.0.0.1:9
        ("dns_timeout", "5"),
        ("drop_max", "10000"),
        ("forward", "info@%s alice@%s" % (DOMAIN, DOMAIN)),
        ("add_footer", "/usr/local/dmail/footer.txt %s,%s" % (DOMAIN, "example.net")),
        ("archive_batch", "/usr/local/dmail/archive.sh"),
        ("bounce_body", "true"),
        ("forward_from_ip", "127.0.0.1,10.0.0.*"),
        ("forward_from", "partner.example"),
        ("relay_to", "backup.example"),
        ("forward_user", "true"),
        ("hide_auth", "recentpop"),
        ("allow_ip", "10.0.0.*"),
        ("ban_ip", "192.0.2.*"),
        ("ban_ip_except", "192.0.2.1"),
        ("ban_mailfrom", "*@spam.example"),
        ("ban_rcptto", "nobody@" + DOMAIN),
        ("max_rcpts", "50"),
        ("fromip_max", "1000"),
        ("fromip_nolimit", "127.0.0.1"),
        ("msg_filter", "/usr/local/dmail/msg.flt"),
        ("mail_filter", "/usr/local/dmail/mail.flt"),
        ("filter_file", "/usr/local/dmail/filter.dat"),
        ("bomb_max", "50"),
        ("bomb_dec", "50"),
        ("bomb_entries", "2000"),
        ("bomb_dir", os.path.join(d, "bomb")),
        ("bomb_exception_from", "*@" + DOMAIN),
        ("bomb_exception_ip", "127.0.0.1"),
        ("bomb_exception_to", "postmaster@" + DOMAIN),
        ("rbl_ban", "ban.rbl.example"),
        ("rbl_reject", "reject.rbl.example"),
        ("rbl_vanish", "vanish.rbl.example"),
        ("rbl_except_ip", "reject.rbl.example 10.0.0.1"),
        ("rbl_except_mail", "reject.rbl.example friend@partner.example"),
        ("rbl_except_rcpt", "reject.rbl.example postmaster@" + DOMAIN),
        # 2.3.3 dpop
        ("pop_port", None),  # SITE
        ("dpop_host", HOST),
        ("dpop_path", "/usr/local/dmail"),
        ("bin_path", "/usr/local/dmail/bin"),
        ("hash_bindir", "true"),
        ("bin_pfull", "0.5"),
        ("min_space", "1"),
        ("use_drop", "mbox"),
        ("add_status", "true"),
        ("bulletin_path", os.path.join(d, "bulletins")),
        ("bulletin_from", "Email System Administrator"),
        ("hide_old_bulls", "false"),
        ("stats_path", os.path.join(d, "stats")),
        ("user_ip_address", "127.0.0.*"),
        # 2.3.4 dlist
        ("dlist_path", os.path.join(d, "dlist")),
        ("dlist_domain", DOMAIN),
        ("dlist_loglvl", "debug"),
        ("dlist_rotate", "60000"),
        ("dlist_smtp_host", "127.0.0.1:25"),
        # the DMail names of the other parts of issue 12
        ("alias_file", "/dev/null"),
        ("alias_file_domain", "%s /dev/null" % DOMAIN),
        ("alias_fallthrough", "true"),
        ("alias", "sales*@%s alice@%s" % (DOMAIN, DOMAIN)),
        ("no_dotforward", "true"),
        ("authent_process", "/usr/local/dmail/nwauth -path /usr/local/dmail"),
        ("authent_number", "2"),
        ("authent_timeout", "10"),
        ("authent_domain", "false"),
        ("auth_nocache", "false"),
        ("manager_ip_address", "127.0.0.1,10.0.0.*"),
        ("manager_ip_name", "admin.example"),
        ("manager_password", "$6$salt$" + "x" * 86),
        ("oneline_stats", "true"),
        ("log_data", "true"),
        ("vdomain", "example.org 192.0.2.10 org"),
        ("vdomain_separator", "_"),
        ("drop_prefix", "false"),
        ("alt_drop_path", "example.org %s" % os.path.join(d, "org-drop")),
        ("allowdup", "true"),
    ]


# The settings accepted without effect: -t names each with what dmail does instead.
NO_EFFECT = ("add_footer", "dwatch_path", "dsmtp_path", "archive_batch", "allow_ip", "msg_filter",
             "mail_filter", "filter_file", "dpop_path", "bin_path", "hash_bindir", "bin_pfull",
             "stats_path", "dlist_loglvl", "dlist_rotate", "log_data")


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN_CONF = os.path.join(REPO, "man", "dmail.conf.5")


def reference_names(text):
    """The DMail setting names of REFERENCE.md's section 2.3 (its tables 2.3.1 to 2.3.4:
    the first cell's `name`s, "`bomb_exception_from` / `_ip`" giving bomb_exception_ip)."""
    sec = text[text.index("### 2.3 Settings tables"):text.index("#### 2.3.5")]
    names = []
    for line in sec.splitlines():
        if not line.startswith("| `"):
            continue
        prev = None
        for tok in re.findall(r"`([^`]+)`", line.split("|")[1]):
            tok = tok.split()[0]
            if tok.startswith("_") and prev:
                tok = prev.rsplit("_", 1)[0] + tok
            prev = tok
            if tok not in names:
                names.append(tok)
    return names


def man_entry(man, name):
    """dmail.conf(5)'s entry for setting name (.It Cm name up to the next one), or None."""
    m = re.search(r"^\.It Cm %s\b.*?(?=^\.It Cm |^\.El|\Z)" % re.escape(name), man, re.M | re.S)
    return m.group(0) if m else None


def man_dmail_names(man):
    """The DMail names dmail.conf(5) marks ("DMail name: .Cm X", or "DMail name." in the
    entry of a setting that kept its name)."""
    names = []
    for m in re.finditer(r"^\.It Cm (\w+)\b.*?(?=^\.It Cm |^\.El|\Z)", man, re.M | re.S):
        mark = re.search(r"DMail names?(:\s*\n\.Cm (\w+)|[.,])", m.group(0))
        if mark:
            names.append(mark.group(2) or m.group(1))
    return names


def dmail_reference():
    """REFERENCE.md's text ($DMAIL_REFERENCE, or the project's shared copy), or None."""
    for path in (os.environ.get("DMAIL_REFERENCE"), "/work/shared/REFERENCE.md"):
        if path and os.path.exists(path):
            with open(path) as f:
                return f.read()
    return None


def test_every_reference_setting_is_in_the_test_config_and_the_man_page(tmp_path):
    """The list of DMail names is generated from REFERENCE.md section 2.3 (where the
    reference is at hand; else from the names dmail.conf(5) marks): each must be in
    dmail_settings() below -- so a name left out fails here -- and marked as a DMail name
    in its dmail.conf(5) entry."""
    with open(MAN_CONF) as f:
        man = f.read()
    ref = dmail_reference()
    names = reference_names(ref) if ref is not None else man_dmail_names(man)
    assert len(names) >= 85, names  # the reference has 90
    class FakeSite:
        dir = str(tmp_path)
    have = [k for k, _ in dmail_settings(FakeSite())]
    missing = [n for n in names if n not in have]
    assert not missing, "DMail settings missing from dmail_settings(): %s" % missing
    unmarked = [n for n in names if n not in man_dmail_names(man)]
    assert not unmarked, "not marked as DMail names in dmail.conf(5): %s" % unmarked
    for n in names:
        assert man_entry(man, n) is not None, n


def _dmail_site(dpop_factory, **extra):
    """A dpop (not started) on a site whose dmail.conf has every DMail setting; the site's
    dsmtp is not started either."""
    pop = dpop_factory(start=False, **extra)
    site = pop.site
    os.makedirs(os.path.join(site.dir, "bulletins"), exist_ok=True)
    settings = {k: v for k, v in dmail_settings(site) if v is not None}
    settings.update(extra)
    site.write_conf(settings)
    return site, pop


def _check(site, prog):
    return subprocess.run([os.path.join(BIN, prog), "-t", "-c", site.conf_path],
                          capture_output=True, text=True, timeout=30, env=site.env())


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_every_dmail_setting_passes_t(dpop_factory, prog):
    site, _ = _dmail_site(dpop_factory)
    conf = open(site.conf_path).read()
    for name, _ in dmail_settings(site):
        assert re.search(r"^%s " % name, conf, re.M), name
    r = _check(site, prog)
    assert r.returncode == 0, r.stderr
    assert "unknown setting" not in r.stderr, r.stderr
    assert " error" not in r.stderr.replace("0 errors", ""), r.stderr
    for name in NO_EFFECT:
        m = re.search(r"dmail\.conf:\d+: warning: %s is accepted but has no effect: \S.*" % name,
                      r.stderr)
        assert m, "%s: no warning naming it:\n%s" % (name, r.stderr)
    assert "dlist logs at log_level" in r.stderr
    assert "milters" in r.stderr  # what replaces msg_filter & co


def test_every_dmail_setting_serves_mail(dpop_factory):
    site, pop = _dmail_site(dpop_factory)
    site.start()
    pop.start()
    msgid, text = make_message(msgid=new_msgid("compat"), to="info@" + DOMAIN)
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.sendmail("carol@remote.example", ["info@" + DOMAIN], text)
    assert wait_for(lambda: site.messages("alice"), 10), site.log()
    p = poplib.POP3(HOST, pop.pop_port, timeout=10)
    try:
        assert b"<" in p.getwelcome()  # apop_enable true: the APOP timestamp
        p.stls(tls_client_context())
        p.user("alice")
        p.pass_(PASSWORDS["alice"])
        count, _ = p.stat()
        assert count == 1
        text = b"\n".join(p.retr(1)[1])
        assert msgid.encode() in text
        assert b"\nStatus: " in text  # add_status true
    finally:
        p.quit()


def test_bounce_body_returns_the_whole_message(dsmtp_factory):
    body = "the body the sender wants back\n"
    for on in (False, True):
        site = dsmtp_factory(bounce_body=on)
        sendmail(site, ["-i", "-f", "alice@" + DOMAIN, "nosuchuser"],
                 b"Subject: lost\n\n" + body.encode())
        assert wait_for(lambda: dsn_reports(site, "alice"), 15), site.log()
        raw = site.messages("alice")[-1][0]
        if on:
            assert b"message/rfc822" in raw and body.encode() in raw, raw
        else:
            assert b"text/rfc822-headers" in raw and body.encode() not in raw, raw


def test_user_ip_address_limits_pop_clients(dpop_factory):
    pop = dpop_factory(user_ip_address="10.9.8.*,192.0.2.1")
    with RawPOP(pop.pop_port, greeting=False) as c:
        line = c.readline()
        assert line.startswith("-ERR ") and "address" in line, line
        c.wait_closed()
    assert "reason=user_ip_address" in pop.log()
    pop.site.write_conf({"user_ip_address": "10.9.8.*,127.0.0.*"})
    pop.stop()
    pop.start()
    with pop.raw("stls") as c:
        c.login("alice")


def test_min_space_refuses_smtp_and_pop(dpop_factory):
    # a threshold above the free space of any disk: 10^9 MB
    pop = dpop_factory(min_space=1000000000)
    site = pop.site
    site.start()
    assert "below min_space" in site.log()
    with RawSMTP(site.smtp_port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@remote.example>", 452, "4.3.1")
    with RawPOP(pop.pop_port, greeting=False) as c:
        line = c.readline()
        assert line.startswith("-ERR [SYS/TEMP] "), line
        c.wait_closed()
    # a reload with a threshold that fits lets mail in within the next check
    site.write_conf({"min_space": 1})
    rc, out, err = site.tellsmtp("reload")
    assert rc == 0, out + err

    def accepted():
        with RawSMTP(site.smtp_port) as c:
            c.ehlo()
            return c.cmd("MAIL FROM:<carol@remote.example>")[0] == 250

    assert wait_for(accepted, 15), site.log()
    assert "free space is back" in site.log()


def test_min_space_bad_value_refused(dsmtp_factory):
    site = dsmtp_factory(start=False, min_space="lots")
    r = _check(site, "dsmtp")
    assert r.returncode == 78
    assert re.search(r"dmail\.conf:\d+: min_space: ", r.stderr), r.stderr


def test_dsmtp_host_and_dpop_host_replace_listen(dpop_factory):
    # listen names an address nothing here has: only the host settings can make them run
    pop = dpop_factory(listen="192.0.2.77", dsmtp_host=HOST, dpop_host=HOST)
    site = pop.site
    site.start()
    with RawSMTP(site.smtp_port) as c:
        c.ehlo()
    with pop.raw("stls") as c:
        c.login("alice")
    assert "listening on %s" % HOST in site.log()


def test_host_setting_with_a_name_warns_and_uses_listen(dsmtp_factory):
    site = dsmtp_factory(start=False, dsmtp_host="mail.example.test")
    r = _check(site, "dsmtp")
    assert r.returncode == 0, r.stderr
    assert re.search(r"dmail\.conf:\d+: warning: dsmtp_host mail\.example\.test is not an IP "
                     r"address; dsmtp listens on the listen addresses", r.stderr), r.stderr
    site.start()
    with RawSMTP(site.smtp_port) as c:
        c.ehlo()


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_allow_dds_true_refused_with_file_line(dsmtp_factory, prog):
    site = dsmtp_factory(start=False, allow_dds=True)
    r = _check(site, prog)
    assert r.returncode == 78, r.stderr
    line = open(site.conf_path).read().splitlines().index("allow_dds true") + 1
    assert "%s:%d: allow_dds true is refused" % (site.conf_path, line) in r.stderr, r.stderr
    assert "path traversal" in r.stderr
