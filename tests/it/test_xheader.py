"""XHEADER (dmail's, next to XVERP): RCPT TO:<addr> XHEADER=xtext in an XVERP transaction
gives that recipient header fields of its own -- dlist's one-click List-Unsubscribe URL,
one per subscriber, in a post that is one transaction. dsmtp puts them at the top of that
recipient's copy only (local: below Return-Path; remote: above the message's header),
keeps them in the queue file across kill -9, and signs a remote copy again with DKIM so
that the fields are covered (RFC 8058 4), checked by python3-dkim."""

import re
import smtplib

from dmail_site import DOMAIN, HOST, RawSMTP, free_ports, wait_for
from test_dkim import make_key, signatures, verify_python
from test_limits import stat_value
from test_sendmail import parse_qfile

LIST = "list-bounces@" + DOMAIN


def xtext(s):
    return "".join(c if 0x21 <= ord(c) <= 0x7E and c not in "+=" else "+%02X" % ord(c)
                   for c in s)


def unsub(addr):
    """The fields dlist gives addr: its URL names it."""
    return ("List-Unsubscribe: <https://lists.example/unsubscribe?addr=%s&t=tok-%s>,\r\n"
            " <mailto:list-request@%s?subject=unsubscribe>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click" % (addr, addr.split("@")[0],
                                                                   DOMAIN))


def post(site, rcpts, text=None):
    """One XVERP transaction; rcpts maps each address to its fields (None: none)."""
    text = text or "From: list@%s\r\nSubject: post\r\n\r\nbody\r\n" % DOMAIN
    with smtplib.SMTP(HOST, site.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        assert c.has_extn("xheader"), c.esmtp_features
        assert c.mail(LIST, ["XVERP"])[0] == 250
        for addr, fields in rcpts.items():
            opts = ["XHEADER=" + xtext(fields)] if fields else []
            code, msg = c.rcpt(addr, opts)
            assert code == 250, (addr, code, msg)
        code, msg = c.data(text.encode())
        assert code == 250, (code, msg)


def own_fields(raw):
    """The List-Unsubscribe value of a copy, unfolded, and the count of such fields."""
    hdr = raw.split(b"\n\n", 1)[0].decode().replace("\r\n", "\n")
    found = re.findall(r"(?im)^List-Unsubscribe:(.*(?:\n[ \t].*)*)", hdr)
    return [re.sub(r"\s+", " ", v).strip() for v in found]


def test_xheader_advertised_and_checked(dsmtp_factory):
    site = dsmtp_factory()
    with RawSMTP(site.smtp_port, timeout=30) as c:
        lines = c.ehlo()
        assert any("XHEADER" in ln for ln in lines), lines
        c.expect("MAIL FROM:<%s>" % LIST, 250)
        # a copy per recipient only under XVERP
        c.expect("RCPT TO:<alice@%s> XHEADER=X-A:+20b" % DOMAIN, 501, "5.5.4")
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<%s> XVERP" % LIST, 250)
        for bad in ("X-A+20b",                      # no colon
                    "Received:+20from+20x",         # the server's own fields
                    "Return-Path:+20<x@y>",
                    "X-A:+20b+0D+0A+0D+0AX-B:+20c",  # an empty line: a body
                    "X-A:+20b+0DX-B:+20c",          # a bare CR
                    "X-A:+20+C3+A9",                # 8-bit
                    "+20X-A:+20b",                  # a continuation without its field
                    "X-A:+20b=",                    # not xtext
                    "X-A:+2",                       # a cut escape
                    "X-A:" + "b" * 1500):           # too long
            code, lines = c.cmd("RCPT TO:<alice@%s> XHEADER=%s" % (DOMAIN, bad))
            assert code == 501 and lines[-1].startswith("5.5.4"), (bad, code, lines)
        code, lines = c.cmd("RCPT TO:<alice@%s> XHEADER=X-A:+20b XHEADER=X-B:+20c" % DOMAIN)
        assert code == 501 and "Duplicate" in lines[-1], (code, lines)
        c.expect("RCPT TO:<alice@%s> XHEADER=X-A:+20b+0D+0A+09folded" % DOMAIN, 250)
    # not offered to a client that may not use XVERP
    site.restart(verp_clients="192.0.2.0/24")
    with smtplib.SMTP(HOST, site.smtp_port, timeout=30) as c:
        c.ehlo("client.example")
        assert not c.has_extn("xheader") and not c.has_extn("xverp"), c.esmtp_features


def test_xheader_fields_on_each_copy_only(dsmtp_factory, sink):
    port, handler = sink
    site = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, forward_from_ip="127.0.0.0/8")
    rcpts = {"u1@far.example": unsub("u1@far.example"), "u2@far.example": unsub("u2@far.example"),
             "u3@far.example": None, "alice@" + DOMAIN: unsub("alice@" + DOMAIN)}
    post(site, rcpts)
    assert wait_for(lambda: len(handler.envelopes) == 3, 30), site.log()[-3000:]
    for e in handler.envelopes:
        (rcpt,) = e.rcpt_tos
        got = own_fields(e.content)
        if rcpts[rcpt] is None:
            assert got == [], (rcpt, got)
            continue
        local = rcpt.split("@")[0]
        assert len(got) == 1 and "addr=%s&t=tok-%s>" % (rcpt, local) in got[0], (rcpt, got)
        # at the top of the copy, folded as given, with its One-Click field
        top = e.content.replace(b"\r\n", b"\n").split(b"\n")
        assert top[0].startswith(b"List-Unsubscribe: <https://"), top[:4]
        assert top[1] == b" <mailto:list-request@%s?subject=unsubscribe>" % DOMAIN.encode()
        assert top[2] == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", top[:4]
        assert e.content.count(b"List-Unsubscribe-Post") == 1
    assert wait_for(lambda: site.messages("alice"), 10)
    raw, msg = site.messages("alice")[0]
    assert msg["Return-Path"] == "<list-bounces+alice=%s@%s>" % (DOMAIN, DOMAIN)
    got = own_fields(raw)
    assert len(got) == 1 and "t=tok-alice>" in got[0], got
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert wait_for(lambda: not site.queue_files(), 10), site.queue_files()


def test_xheader_kept_in_the_queue_file_across_kill9(dsmtp_factory, sink_factory):
    port = free_ports(1)[0]  # nobody listens yet: the copies wait in the queue
    site = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, queue_retry=1,
                         forward_from_ip="127.0.0.0/8")
    rcpts = {"u1@far.example": unsub("u1@far.example"), "u2@far.example": None}
    post(site, rcpts)
    assert wait_for(lambda: site.queue_files(), 10)
    q = parse_qfile(site.queue_files()[0])
    got = {r["addr"]: r["xheader"] for r in q["rcpts"]}
    assert got == {"u1@far.example": xtext(unsub("u1@far.example")), "u2@far.example": None}, got
    site.kill9()
    _, handler = sink_factory(port=port)
    site.start()
    assert wait_for(lambda: len(handler.envelopes) == 2, 30), site.log()[-3000:]
    by = {e.rcpt_tos[0]: e.content for e in handler.envelopes}
    assert len(own_fields(by["u1@far.example"])) == 1
    assert "t=tok-u1>" in own_fields(by["u1@far.example"])[0]
    assert own_fields(by["u2@far.example"]) == []


def test_xheader_copies_signed_with_their_fields(dsmtp_factory, sink):
    """The From: domain has keys: each copy gets signatures of its own covering
    List-Unsubscribe and List-Unsubscribe-Post, and every signature verifies."""
    port, handler = sink
    site = dsmtp_factory(start=False, smarthost="[127.0.0.1]:%d" % port,
                         forward_from_ip="127.0.0.0/8")
    rsa, rsa_txt = make_key(site.dir, "rsa.pem", "rsa")
    ed, ed_txt = make_key(site.dir, "ed.pem", "ed25519")
    records = {"s1._domainkey.%s." % DOMAIN: rsa_txt, "s2._domainkey.%s." % DOMAIN: ed_txt}
    site.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, rsa), "%s s2 %s" % (DOMAIN, ed)]})
    site.start()
    rcpts = {"u1@far.example": unsub("u1@far.example"), "u2@far.example": unsub("u2@far.example"),
             "u3@far.example": None}
    post(site, rcpts)
    assert wait_for(lambda: len(handler.envelopes) == 3, 30), site.log()[-3000:]
    seen_b = set()
    for e in handler.envelopes:
        raw = e.content.replace(b"\r\n", b"\n")
        sigs = signatures(raw)
        algos = verify_python(raw, records)
        covering = [s for s in sigs if "list-unsubscribe" in s["h"].lower().split(":")]
        if rcpts[e.rcpt_tos[0]] is None:
            # signed once, at receipt (a forward_from_ip client), with no fields to cover
            assert algos == ["ed25519-sha256", "rsa-sha256"] and covering == [], sigs
            continue
        # at receipt, and again for the copy: the copy's cover its own fields
        assert len(sigs) == 4 and len(covering) == 2, sigs
        for s in covering:
            assert "list-unsubscribe-post" in s["h"].lower().split(":"), s
            seen_b.add(s["b"])
    assert len(seen_b) == 4, "each copy signed on its own"
    assert stat_value(site, "dkim_signed_total") >= 3
