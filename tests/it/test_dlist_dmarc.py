"""dlist's DMARC mitigation (issue 13): a post from a domain whose DMARC record says
p=reject or p=quarantine goes out From the list ("Name via LIST" <list@dom>), the poster in
X-Original-From and Reply-To (or Cc when the list keeps Reply-To for itself), as Mailman 3
does; the policy is looked up through c-ares against a real dnsmasq serving the TXT
records, with RFC 7489's organizational-domain fallback (libpsl) and sp=."""

import email.header
import email.utils
import os

import pytest

from dmail_site import DOMAIN
from localdns import LocalDNS
from test_dlist import check, dlist_cmd, list_site, post, settle, wait_msgs, write_lists

RECORDS = [
    "--txt-record=_dmarc.reject.test,v=DMARC1; p=reject; rua=mailto:agg@reject.test",
    "--txt-record=_dmarc.quar.test,v=DMARC1;p=quarantine",
    "--txt-record=_dmarc.none.test,v=DMARC1; p=none",
    "--txt-record=_dmarc.corp.test,v=DMARC1; p=reject; sp=none",
    "--txt-record=_dmarc.strict.test,v=DMARC1; p=quarantine",
    "--txt-record=_dmarc.double.test,v=DMARC1; p=reject",
    "--txt-record=_dmarc.double.test,v=DMARC1; p=none",
    "--txt-record=_dmarc.notdmarc.test,v=spf1 -all",
    "--txt-record=_dmarc.badp.test,v=DMARC1; p=maybe",
]

EXTRA = """list nev
 access_post anyone
 dmarc_rewrite never
list alw
 access_post anyone
 reply_to_user true
 dmarc_rewrite always
"""


@pytest.fixture
def dmarc_site(dsmtp_factory):
    dns = LocalDNS(RECORDS)
    try:
        site = list_site(dsmtp_factory, extra=EXTRA, dns_host=dns.server)
        for lst in ("open", "nev", "alw", "talk"):
            assert dlist_cmd(site, "add", lst, "alice@" + DOMAIN)[0] == 0
        yield site
    finally:
        dns.stop()


def rewritten(m, lst, name):
    """m goes out From the list with name, the poster kept in X-Original-From."""
    disp, addr = email.utils.parseaddr(m["From"])
    return addr == "%s@%s" % (lst, DOMAIN) and disp == "%s via %s" % (name, lst)


def test_reject_and_quarantine_rewrite_from(dmarc_site):
    site = dmarc_site
    post(site, "Dave Reject <dave@reject.test>", "open@" + DOMAIN, subject="r")
    post(site, '"Q. \\"Quoted\\" Poster" <q@quar.test>', "open@" + DOMAIN, subject="q")
    msgs = wait_msgs(site, "alice", 2)
    by = {m["Subject"]: m for _, m in msgs}
    m = by["r"]
    assert rewritten(m, "open", "Dave Reject"), m["From"]
    assert m["X-Original-From"] == "Dave Reject <dave@reject.test>"
    assert m["Reply-To"] == "dave@reject.test"  # open: reply_to_user true
    assert m["Cc"] is None
    m = by["q"]
    assert rewritten(m, "open", 'Q. "Quoted" Poster'), m["From"]
    assert "q@quar.test" in m["X-Original-From"]
    log = open(os.path.join(site.dir, "dlist.stderr")).read()
    assert "DMARC policy of reject.test: reject" in log, log
    assert "DMARC policy of quar.test: quarantine" in log, log


def test_no_policy_keeps_from(dmarc_site):
    site = dmarc_site
    senders = ["n@none.test", "x@absent.test", "d@double.test", "s@notdmarc.test",
               "b@badp.test", "Sub Domain <u@mail.corp.test>"]
    for i, s in enumerate(senders):
        post(site, s, "open@" + DOMAIN, subject="k%d" % i)
    msgs = wait_msgs(site, "alice", len(senders))
    got = {m["Subject"]: m for _, m in msgs}
    for i, s in enumerate(senders):
        m = got["k%d" % i]
        assert m["From"] == s, (s, m["From"])
        assert m["X-Original-From"] is None
    # corp.test says p=reject but sp=none: its subdomain's posts keep From
    log = open(os.path.join(site.dir, "dlist.stderr")).read()
    assert "DMARC policy of mail.corp.test: none" in log, log


def test_organizational_domain_policy_applies_to_subdomains(dmarc_site):
    site = dmarc_site
    post(site, "Eve <eve@deep.sub.strict.test>", "open@" + DOMAIN, subject="org")
    m = wait_msgs(site, "alice", 1)[0][1]
    assert rewritten(m, "open", "Eve"), m["From"]
    log = open(os.path.join(site.dir, "dlist.stderr")).read()
    assert "DMARC policy of deep.sub.strict.test: quarantine" in log, log


def test_reply_to_list_puts_the_poster_in_cc(dmarc_site):
    site = dmarc_site
    assert dlist_cmd(site, "add", "talk", "frank@reject.test")[0] == 0
    post(site, "Frank <frank@reject.test>", "talk@" + DOMAIN, subject="members only",
         headers=["Cc: Someone <someone@example.net>"])
    m = wait_msgs(site, "alice", 1)[0][1]
    assert rewritten(m, "talk", "Frank"), m["From"]
    assert m["Reply-To"] == "<talk@%s>" % DOMAIN
    cc = [a for _, a in email.utils.getaddresses(m.get_all("Cc"))]
    assert len(m.get_all("Cc")) == 1 and cc == ["someone@example.net", "frank@reject.test"], cc


def test_never_and_always(dmarc_site):
    site = dmarc_site
    post(site, "Dave <dave@reject.test>", "nev@" + DOMAIN, subject="never")
    post(site, "=?utf-8?q?J=C3=BCrgen?= <j@none.test>", "alw@" + DOMAIN, subject="always")
    msgs = {m["Subject"]: m for _, m in wait_msgs(site, "alice", 2)}
    assert msgs["never"]["From"] == "Dave <dave@reject.test>"
    m = msgs["always"]
    # the encoded name stays an encoded word, decoded by a mail reader
    decoded = str(email.header.make_header(email.header.decode_header(m["From"])))
    assert decoded.startswith("J\u00fcrgen") and "via alw" in decoded, decoded
    assert email.utils.parseaddr(m["From"])[1] == "alw@" + DOMAIN
    assert m["Reply-To"] == "j@none.test"
    settle(site)


def test_dns_failure_keeps_from_and_says_so(dsmtp_factory):
    # dns_host 127.0.0.1:9 (the site's default): nobody answers; the post is not held up
    site = list_site(dsmtp_factory)
    assert dlist_cmd(site, "add", "open", "alice@" + DOMAIN)[0] == 0
    post(site, "Dave <dave@reject.test>", "open@" + DOMAIN, subject="nodns")
    m = wait_msgs(site, "alice", 1)[0][1]
    assert m["From"] == "Dave <dave@reject.test>"
    log = open(os.path.join(site.dir, "dlist.stderr")).read()
    assert "DMARC policy of reject.test unknown (DNS failure): From kept" in log, log


def test_bad_dmarc_rewrite_value_named(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = write_lists(site, "list talk\n dmarc_rewrite sometimes\n")
    site.write_conf({"dlist_path": d})
    r = check(site)
    assert r.returncode == 78
    assert "%s:2: dmarc_rewrite sometimes: auto, always or never" % os.path.join(
        d, "lists.dat") in r.stderr, r.stderr
