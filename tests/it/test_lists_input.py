"""Bad input in lists.dat (issue 13's list definitions, read by dlist, dsmtp and dpop): a NUL
byte and a 100 KB line. `dlist -t` and `dsmtp -t` name the file and line; a dsmtp reload
refuses the file and keeps the lists it had, which still take mail; a fixed file loads."""

import os
import smtplib

import pytest

from dmail_site import DOMAIN, HOST, make_message, new_msgid
from test_dlist import check, write_lists

LISTS = """# two lists
list talk
 title The list for talkers
list juggle
 title The list for jugglers
"""

BAD = {
    "nul": ("list new\x00one\n", "a NUL byte in the line"),
    "100k": (" title " + "t" * 100000 + "\n", "a line of 100007 bytes: at most 8192"),
}


def rcpt(site, to):
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.ehlo()
        c.mail("carol@remote.example")
        return c.rcpt(to)[0]


def spooled(site, lst):
    d = os.path.join(site.spool, "dlist", lst, "post", "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_lists_dat_named_by_t(dsmtp_factory, kind):
    bad, reason = BAD[kind]
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS + bad)
    site.write_conf({"dlist_path": d})
    where = "%s:6: " % os.path.join(d, "lists.dat")
    for prog in ("dlist", "dsmtp"):
        r = check(site, prog)
        assert r.returncode == 78, (prog, r.stdout, r.stderr)
        line = [ln for ln in r.stderr.splitlines() if ln.startswith(where)]
        assert line, (prog, r.stderr[:3000])
        assert line[0] == where + reason, (prog, line)
        assert len(r.stderr) < 3000, (prog, len(r.stderr))  # the long line is not echoed


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_lists_dat_reload_keeps_the_old_lists(dsmtp_factory, kind):
    bad, _ = BAD[kind]
    site = dsmtp_factory(start=False)
    d = write_lists(site, LISTS)
    site.write_conf({"dlist_path": d})
    site.start()
    write_lists(site, LISTS + "list newlist\n" + bad)
    rc, out, err = site.tellsmtp("reload")
    assert rc != 0 and "lists.dat:7: " in out + err, (rc, out, err)
    assert site.alive()
    # the old lists still take mail; the new one is not there
    assert rcpt(site, "newlist@" + DOMAIN) == 550
    msgid, text = make_message(msgid=new_msgid("li"), to="talk@" + DOMAIN)
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.sendmail("carol@remote.example", ["talk@" + DOMAIN], text)
    assert len(spooled(site, "talk")) == 1
    # fixed: the reload takes it
    write_lists(site, LISTS + "list newlist\n")
    rc, out, err = site.tellsmtp("reload")
    assert rc == 0, (rc, out, err)
    assert rcpt(site, "newlist@" + DOMAIN) == 250
    assert site.sanitizer_report() is None, site.sanitizer_report()
