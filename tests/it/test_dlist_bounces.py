"""dlist's bounce processing (issue 13): a subscriber whose server refuses the list's posts
is scored from dsmtp's own DSNs sent to its VERP address, disabled (no more posts, the
member and the moderator told), warned and removed; delayed reports do not count, a plain
bounce is read for a member's address, and mail that names no member reaches the
moderators. Real mail only: the posts go through dsmtp to an aiosmtpd that refuses one
subscriber with 550."""

import smtplib
import time

import pytest

from dmail_site import DOMAIN, HOST, free_ports, wait_for
from test_dlist import dlist_cmd, list_site, post

EXTRA = """list bl
 access_post anyone
 join_cookie false
 moderator carol@%s
 bounce_score_threshold 2
 bounce_stale_days 30
 bounce_warn_interval 2
 bounce_warnings 1
""" % DOMAIN


class Refuser:
    """aiosmtpd handler: RCPT gone@... refused with 550 5.1.1, the rest kept."""

    def __init__(self):
        self.rcpts = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gone@"):
            return "550 5.1.1 <%s>: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.rcpts += envelope.rcpt_tos
        return "250 OK"


@pytest.fixture
def bounce_site(dsmtp_factory):
    controller = pytest.importorskip("aiosmtpd.controller")
    h = Refuser()
    port = free_ports(1)[0]
    c = controller.Controller(h, hostname="127.0.0.1", port=port)
    c.start()
    try:
        site = list_site(dsmtp_factory, extra=EXTRA, smarthost="[127.0.0.1]:%d" % port,
                         dlist_day=2, dlist_scan_interval=1, queue_retry=1)
        for a in ("alice@" + DOMAIN, "gone@far.example", "ok@far.example"):
            assert dlist_cmd(site, "add", "bl", a)[0] == 0
        yield site, h
    finally:
        c.stop()


def dlog(site):
    return open(site.dir + "/dlist.stderr").read()


def moderator_mail(site, subject):
    return [m for _, m in site.messages("carol") if m["Subject"] == subject]


def test_refused_subscriber_disabled_warned_removed(bounce_site):
    site, h = bounce_site
    post(site, "alice@" + DOMAIN, "bl@" + DOMAIN, subject="p1")
    assert wait_for(lambda: "bounce of gone@far.example (hard), score 1.0 of 2" in dlog(site),
                    30), dlog(site)[-3000:]
    time.sleep(2.2)  # the next "day" (dlist_day 2): one count a day at most
    post(site, "alice@" + DOMAIN, "bl@" + DOMAIN, subject="p2")
    assert wait_for(lambda: "gone@far.example disabled (bounces)" in dlog(site), 30), \
        dlog(site)[-3000:]
    assert wait_for(lambda: moderator_mail(site, "A member of your list is disabled (bounces)"),
                    20)
    # disabled: the next post does not go to it
    n = len(h.rcpts)
    post(site, "alice@" + DOMAIN, "bl@" + DOMAIN, subject="p3")
    assert wait_for(lambda: len(h.rcpts) > n and "ok@far.example" in h.rcpts[n:], 20)
    time.sleep(1)
    assert "gone@far.example" not in h.rcpts[n:]
    assert any(m["Subject"] == "p3" for _, m in site.messages("alice"))
    # a warning after bounce_warn_interval, then removed after bounce_warnings (1)
    assert wait_for(lambda: moderator_mail(site, "A member of your list is removed (bounces)"),
                    30), dlog(site)[-3000:]
    who = dlist_cmd(site, "who", "bl")[1]
    assert "gone@far.example" not in who and "ok@far.example" in who, who


def send_to_bounces(site, text, to=None):
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.sendmail("", [to or "bl-bounces@" + DOMAIN], text)


DSN = """From: MAILER-DAEMON@far.example
To: bl-bounces@{d}
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Still trying.
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; far.example

Final-Recipient: rfc822; ok@far.example
Action: {action}
Status: {status}

--b--
"""


def test_reports_plain_bounces_and_strangers(bounce_site):
    site, _ = bounce_site
    send_to_bounces(site, DSN.format(d=DOMAIN, action="delayed", status="4.4.1"))
    assert wait_for(lambda: "delivery report for ok@far.example without a failure: not counted"
                    in dlog(site), 20), dlog(site)[-3000:]
    send_to_bounces(site, DSN.format(d=DOMAIN, action="failed", status="4.2.2"))
    assert wait_for(lambda: "bounce of ok@far.example (soft), score 0.5 of 2" in dlog(site), 20)
    # an old-style text bounce naming a member
    send_to_bounces(site, "From: postmaster@old.example\nSubject: failure notice\n\n"
                          "I'm afraid I wasn't able to deliver to <alice@%s>.\n" % DOMAIN)
    assert wait_for(lambda: "bounce of alice@%s (hard), score 1.0 of 2" % DOMAIN in dlog(site),
                    20), dlog(site)[-3000:]
    # naming nobody: to the moderators, from <>
    send_to_bounces(site, "From: someone@else.example\nSubject: hello there\n\nNot a bounce.\n")
    assert wait_for(lambda: any(m["Subject"] == "hello there" for _, m in site.messages("carol")),
                    20)
    m = [m for _, m in site.messages("carol") if m["Subject"] == "hello there"][0]
    assert m["Return-Path"] == "<>"


def test_enable_after_disabled(bounce_site):
    site, _ = bounce_site
    for st in ("5.1.1", "5.1.1"):
        send_to_bounces(site, DSN.format(d=DOMAIN, action="failed", status=st))
        time.sleep(2.2)
    assert wait_for(lambda: "ok@far.example disabled (bounces)" in dlog(site), 20), \
        dlog(site)[-3000:]
    # alice asks for herself only: she was not disabled
    post(site, "alice@" + DOMAIN, "bl-request@" + DOMAIN, subject="x", body="enable\n")
    assert wait_for(lambda: any("was not disabled" in str(m.get_payload())
                                for _, m in site.messages("alice")), 20)
