"""dlist's digests (issue 13): `digest on` by mail to LIST-request makes a member get the
posts as one message now and then (MIME multipart/digest or RFC 1153 text) instead of each
post; the others still get every post; `digest off` turns it back. Real mail through dsmtp
(smtplib), read in the local mailboxes."""

import re

from dmail_site import DOMAIN, wait_for
from test_dlist import dlist_cmd, list_site, post, settle, wait_msgs

EXTRA = """list dig
 access_post anyone
 join_cookie false
 digest_size 1K
 digest_interval 0
list txt
 access_post anyone
 join_cookie false
 digest_size 1K
 digest_interval 0
 digest_format rfc1153
"""

BODY = "A post long enough to fill a digest. " * 14 + "\n"


def command(site, who, lst, text):
    post(site, who, "%s-request@%s" % (lst, DOMAIN), subject="commands", body=text + "\n")


def issues(site, user):
    return [m for _, m in site.messages(user) if "igest" in (m["Subject"] or "")]


def test_digest_on_gets_one_mime_issue_then_off(dsmtp_factory):
    site = list_site(dsmtp_factory, extra=EXTRA)
    for u in ("alice", "bob"):
        assert dlist_cmd(site, "add", "dig", "%s@%s" % (u, DOMAIN))[0] == 0
    command(site, "bob@" + DOMAIN, "dig", "digest on")
    reply = wait_msgs(site, "bob", 1)[0][1]
    assert "bob@%s gets the posts of dig as a digest from now on" % DOMAIN in \
        reply.get_payload(), reply.get_payload()
    subjects = ["first topic", "second topic", "third topic"]
    for s in subjects:
        post(site, "carol@remote.example", "dig@" + DOMAIN, subject=s, body=BODY)
    # alice: each post; bob: none of them, one issue holding them (1K: after the second or
    # the third post)
    assert len(wait_msgs(site, "alice", 3)) == 3
    assert wait_for(lambda: issues(site, "bob"), 20), [m["Subject"] for _, m in
                                                       site.messages("bob")]
    settle(site)
    got = [m["Subject"] for _, m in site.messages("bob")]
    assert not any(s in g for s in subjects for g in got if "igest" not in g), got
    parts = []
    for m in issues(site, "bob"):
        assert m.get_content_type() == "multipart/mixed", m.get_content_type()
        dig = [p for p in m.walk() if p.get_content_type() == "multipart/digest"]
        assert len(dig) == 1
        parts += [p.get_payload(0)["Subject"] for p in dig[0].get_payload()
                  if p.get_content_type() == "message/rfc822"]
    assert parts and all(s in subjects for s in parts), parts
    assert len(set(parts)) == len(parts)  # never a post twice
    # digest off: each post again
    command(site, "bob@" + DOMAIN, "dig", "digest off")
    n = len(site.messages("bob"))
    wait_msgs(site, "bob", n + 1)
    post(site, "carol@remote.example", "dig@" + DOMAIN, subject="after off", body="short\n")
    assert any(m["Subject"] == "after off" for _, m in wait_msgs(site, "bob", n + 2))


def test_digest_rfc1153_and_refusals(dsmtp_factory):
    site = list_site(dsmtp_factory, extra=EXTRA)
    assert dlist_cmd(site, "add", "txt", "bob@" + DOMAIN)[0] == 0
    command(site, "bob@" + DOMAIN, "txt", "digest on\ndigest on\ndigest maybe")
    body = wait_msgs(site, "bob", 1)[0][1].get_payload()
    assert "as a digest from now on" in body and "as a digest already" in body, body
    assert "Use digest on or digest off." in body
    # not a member: refused
    command(site, "carol@" + DOMAIN, "txt", "digest on")
    body = wait_msgs(site, "carol", 1)[0][1].get_payload()
    assert "carol@%s is not a member of txt" % DOMAIN in body, body
    for s in ("one", "two", "three"):
        post(site, "carol@remote.example", "txt@" + DOMAIN, subject="topic " + s, body=BODY)
    assert wait_for(lambda: issues(site, "bob"), 20), [m["Subject"] for _, m in
                                                       site.messages("bob")]
    m = issues(site, "bob")[0]
    assert m.get_content_type() == "text/plain"
    text = m.get_payload()
    # a post with the list's headers is about 1K: an issue holds one or two of them, in the
    # order the scan met them
    got = re.findall(r"^Subject: (topic \w+)$", text, re.M)
    assert "Today's Topics:" in text and len(got) >= 1, text[:2000]
    assert "End of txt Digest V1 #1" in text
    assert set(got) <= {"topic one", "topic two", "topic three"} and len(set(got)) == len(got)


def test_status_report_to_the_moderator(dsmtp_factory):
    """status_interval 1 with a day of 3 seconds (dlist_day, a test aid): the first
    moderator gets a report counting the members, digest members, posts and held posts."""
    extra = """list stat
 access_post members
 join_cookie false
 moderator carol@%s
 status_interval 1
""" % DOMAIN
    site = list_site(dsmtp_factory, extra=extra, dlist_day=3, dlist_scan_interval=1)
    for u in ("alice", "bob"):
        assert dlist_cmd(site, "add", "stat", "%s@%s" % (u, DOMAIN))[0] == 0
    command(site, "bob@" + DOMAIN, "stat", "digest on")
    wait_msgs(site, "bob", 1)
    post(site, "alice@" + DOMAIN, "stat@" + DOMAIN, subject="counted", body="one\n")
    post(site, "outsider@remote.example", "stat@" + DOMAIN, subject="held", body="two\n")
    reports = lambda: [m for _, m in site.messages("carol")  # noqa: E731
                       if m["Subject"] == "Status of the list stat"]
    assert wait_for(reports, 20), [m["Subject"] for _, m in site.messages("carol")]
    text = reports()[0].get_payload()
    assert "members:              2" in text, text
    assert "by digest:            1" in text, text
    assert "posts distributed:    1" in text, text
    assert "held posts waiting:   1" in text, text
    # the next period counts again from zero
    assert wait_for(lambda: len(reports()) >= 2, 20)
    assert "posts distributed:    0" in reports()[1].get_payload()
