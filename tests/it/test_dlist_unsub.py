"""dlist's RFC 8058 one-click unsubscribe endpoint (issue 13): dlist_http_port, TLS with
the server's certificate (or plain behind a proxy), HTTP read by Debian's http-parser. A
GET shows a confirmation form and changes nothing; a POST with List-Unsubscribe=One-Click
and a valid token removes the member; bad, foreign and expired tokens are refused with
nothing changed; oversized and slow requests are cut. The client is curl. Tokens are
made here from the key file as token.h specifies (HMAC-SHA256, base32)."""

import base64
import hashlib
import hmac
import html.parser
import os
import socket
import ssl
import subprocess
import time

from dmail_site import BIN, DOMAIN, HOST, chown_like_dsmtp, free_ports, tls_client_context

LISTS = "list talk\n title Talk & more\nlist other\n"


class Form(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.tags = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def token(site, lst, addr, expires, action="unsubscribe"):
    with open(os.path.join(site.dir, "dlist", "token.key"), "rb") as f:
        key = f.read()
    exp = int(expires).to_bytes(8, "big")
    msg = b"\0".join([lst.lower().encode(), addr.lower().encode(), action.encode(), exp])
    mac = hmac.new(key, msg, hashlib.sha256).digest()[:16]
    return base64.b32encode(exp[3:] + mac).decode().rstrip("=").lower()


def start(site, members=("bob@example.net", "carol@example.net"), **conf):
    d = os.path.join(site.dir, "dlist")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "lists.dat"), "w") as f:
        f.write(LISTS)
    chown_like_dsmtp(d)
    mdir = os.path.join(site.work, "dlist", "talk")
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(mdir, "members"), "w") as f:
        f.write("".join(m + "\n" for m in members))
    for p in (os.path.join(site.work, "dlist"), mdir, os.path.join(mdir, "members")):
        chown_like_dsmtp(p)
    port = free_ports(1)[0]
    settings = {"dlist_path": d, "dlist_http_port": port,
                "dlist_http_url": "https://lists.%s:%d/" % (DOMAIN, port)}
    settings.update(conf)
    site.write_conf(settings)
    dl = site.program("dlist", ports=lambda: (port,),
                      ready=lambda: os.path.exists(site.ctl_path("dlist")))
    dl.start()
    return port, os.path.join(mdir, "members")


def curl(site, port, query, data=None, tls=True, extra=()):
    scheme = "https" if tls else "http"
    url = "%s://mx.example.test:%d/unsubscribe%s" % (scheme, port, query)
    args = ["curl", "-sS", "--max-time", "20", "--resolve", "mx.example.test:%d:%s" % (port, HOST),
            "--cacert", site.cert, "-w", "\n%{http_code}", url] + list(extra)
    if data is not None:
        args += ["--data-raw", data]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def q(lst, addr, tok):
    from urllib.parse import urlencode
    return "?" + urlencode({"list": lst, "addr": addr, "t": tok})


def read(path):
    with open(path) as f:
        return f.read()


def test_one_click_over_tls(dsmtp_factory):
    site = dsmtp_factory(start=False)
    port, members = start(site)
    tok = token(site, "talk", "Bob@Example.NET", time.time() + 3600)
    # GET: a form posting List-Unsubscribe=One-Click back; nothing changes
    code, page = curl(site, port, q("talk", "Bob@Example.NET", tok))
    assert code == 200, page
    f = Form(page)
    forms = [a for t, a in f.tags if t == "form"]
    assert len(forms) == 1 and forms[0]["method"] == "post", f.tags
    assert forms[0]["action"] == "/unsubscribe" + q("talk", "Bob@Example.NET", tok)
    assert ("input", {"type": "hidden", "name": "List-Unsubscribe", "value": "One-Click"}) \
        in f.tags
    assert "Talk &amp; more" in page and "<script" not in page
    assert read(members) == "bob@example.net\ncarol@example.net\n"
    # POST as a mailbox provider does (RFC 8058): removed
    code, page = curl(site, port, q("talk", "Bob@Example.NET", tok),
                      data="List-Unsubscribe=One-Click")
    assert code == 200 and "has been removed from the list talk" in page, page
    assert read(members) == "carol@example.net\n"
    # a second click: still 200, nothing else touched
    code, page = curl(site, port, q("talk", "Bob@Example.NET", tok),
                      data="List-Unsubscribe=One-Click")
    assert code == 200 and "no longer" in page, page
    assert read(members) == "carol@example.net\n"
    # a multipart/form-data POST (curl -F) works too
    tok_c = token(site, "talk", "carol@example.net", time.time() + 3600)
    code, page = curl(site, port, q("talk", "carol@example.net", tok_c),
                      extra=["-F", "List-Unsubscribe=One-Click"])
    assert code == 200 and "has been removed" in page, page
    assert read(members) == ""
    log = read(os.path.join(site.dir, "dlist.stderr"))
    assert "one-click removed" in log and "tls version=TLS" in log, log


def test_bad_tokens_change_nothing(dsmtp_factory):
    site = dsmtp_factory(start=False)
    port, members = start(site)
    before = read(members)
    good = token(site, "talk", "bob@example.net", time.time() + 3600)
    forged = good[:-1] + ("a" if good[-1] != "a" else "b")
    cases = [
        (q("talk", "bob@example.net", forged), 403, "not valid"),
        (q("talk", "carol@example.net", good), 403, "not valid"),  # bob's token, carol
        (q("other", "bob@example.net", good), 403, "not valid"),  # another list
        (q("talk", "bob@example.net", token(site, "talk", "bob@example.net", time.time() - 5)),
         403, "expired"),
        (q("talk", "bob@example.net", token(site, "talk", "bob@example.net", time.time() + 99,
                                            action="join")), 403, "not valid"),
        (q("nolist", "bob@example.net", good), 400, "no such list"),
        ("?list=talk&addr=bob%40example.net", 400, "incomplete"),
        ("?list=talk&list=talk&addr=bob%40example.net&t=" + good, 400, "incomplete"),
        ("?list=talk&addr=bob%0a%40example.net&t=" + good, 400, "incomplete"),
    ]
    for query, want, text in cases:
        for data in (None, "List-Unsubscribe=One-Click"):
            code, page = curl(site, port, query, data=data)
            assert code == want and text in page, (query, data, code, page)
    # a good token without the One-Click body
    code, page = curl(site, port, q("talk", "bob@example.net", good), data="x=1")
    assert code == 400 and "List-Unsubscribe=One-Click" in page, page
    code, page = curl(site, port, q("talk", "bob@example.net", good), data="")
    assert code == 400, page
    assert read(members) == before


def raw(port, data, tls=True, wait=10):
    s = socket.create_connection((HOST, port), timeout=wait)
    if tls:
        s = tls_client_context().wrap_socket(s, server_hostname="mx.example.test")
    try:
        if data:
            s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            out += chunk
        return out.decode("utf-8", "replace")
    finally:
        s.close()


def test_limits_and_routes(dsmtp_factory):
    site = dsmtp_factory(start=False)
    port, members = start(site, dlist_http_timeout=2)
    r = raw(port, b"GET /unsubscribe?x HTTP/1.1\r\nHost: a\r\n" +
            b"X-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert r.startswith("HTTP/1.1 431 "), r[:100]
    r = raw(port, b"POST /unsubscribe?x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
    assert r.startswith("HTTP/1.1 413 "), r[:100]
    r = raw(port, b"POST /unsubscribe?x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"1001\r\n" + b"a" * 4097 + b"\r\n0\r\n\r\n")
    assert r.startswith("HTTP/1.1 413 "), r[:100]
    r = raw(port, b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.startswith("HTTP/1.1 414 "), r[:100]
    r = raw(port, b"GARBAGE\x00\r\n\r\n")
    assert r.startswith("HTTP/1.1 400 "), r[:100]
    r = raw(port, b"PUT /unsubscribe HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert r.startswith("HTTP/1.1 405 ") and "Allow: GET, POST" in r, r[:200]
    r = raw(port, b"GET /etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.startswith("HTTP/1.1 404 "), r[:100]
    # half a request, then silence: 408 after dlist_http_timeout
    t0 = time.time()
    r = raw(port, b"GET /unsubscribe?list=talk HTTP/1.1\r\nHost:", wait=10)
    assert r.startswith("HTTP/1.1 408 ") and 1.5 < time.time() - t0 < 8, (r[:100],
                                                                          time.time() - t0)
    # a plain-text client on the TLS port gets nothing but a closed connection
    r = raw(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", tls=False, wait=5)
    assert "HTTP/1.1 200" not in r
    # still serving
    code, _ = curl(site, port, q("talk", "bob@example.net",
                                 token(site, "talk", "bob@example.net", time.time() + 60)))
    assert code == 200


def test_plain_behind_a_proxy(dsmtp_factory):
    site = dsmtp_factory(start=False)
    port, members = start(site, dlist_http_tls=False)
    tok = token(site, "talk", "bob@example.net", time.time() + 3600)
    code, page = curl(site, port, q("talk", "bob@example.net", tok),
                      data="List-Unsubscribe=One-Click", tls=False)
    assert code == 200 and "has been removed" in page, page
    assert read(members) == "carol@example.net\n"


def test_settings_checked(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = os.path.join(site.dir, "dlist")
    os.makedirs(d)
    with open(os.path.join(d, "lists.dat"), "w") as f:
        f.write(LISTS)
    for bad, why in (("ftp://x.example", "is not an http:// or https:// URL"),
                     ("https://", "names no host"),
                     ("https://x.example/a?b=c", "without blanks, quotes, <>, ? or #")):
        site.write_conf({"dlist_path": d, "dlist_http_url": bad})
        r = subprocess.run([os.path.join(BIN, "dlist"), "-t", "-c", site.conf_path],
                           capture_output=True, text=True, timeout=30, env=site.env())
        assert r.returncode == 78 and "dlist_http_url" in r.stderr and why in r.stderr, r.stderr
        assert "%s:" % site.conf_path in r.stderr, r.stderr
    # TLS wanted without a certificate: dlist does not start
    site = dsmtp_factory(start=False, tls=False)
    os.makedirs(os.path.join(site.dir, "dlist"))
    port = free_ports(1)[0]
    site.write_conf({"dlist_path": os.path.join(site.dir, "dlist"), "dlist_http_port": port})
    r = subprocess.run([os.path.join(BIN, "dlist"), "-f", "-c", site.conf_path],
                       capture_output=True, text=True, timeout=30, env=site.env())
    assert r.returncode != 0 and "needs tls_cert and tls_key" in r.stderr, r.stderr


# ------------------------------------------- the fields in posts (per recipient, XHEADER)

def post_to_talk(site, subject):
    import smtplib
    from dmail_site import new_msgid
    msgid = new_msgid("oc")
    text = ("From: alice@%s\r\nTo: talk@%s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\nHello.\r\n"
            % (DOMAIN, DOMAIN, subject, msgid))
    with smtplib.SMTP(HOST, site.smtp_port, timeout=10) as c:
        c.sendmail("alice@" + DOMAIN, ["talk@" + DOMAIN], text)
    return msgid


def unsub_fields(raw):
    """(List-Unsubscribe values, List-Unsubscribe-Post values) of a copy's header."""
    from email import message_from_bytes
    from email.policy import compat32
    m = message_from_bytes(raw, policy=compat32)
    return m.get_all("List-Unsubscribe") or [], m.get_all("List-Unsubscribe-Post") or []


def test_posts_carry_each_members_one_click_url(dsmtp_factory, sink_factory):
    """A post to two remote members (through the smarthost) and a local one: each copy has
    its own List-Unsubscribe (the https URL naming that member, its own token, and the
    mailto) and List-Unsubscribe-Post, written per recipient by dsmtp (XHEADER); a POST of
    a URL taken from a copy removes exactly that member. Needs dsmtp's XHEADER."""
    from urllib.parse import parse_qs, urlsplit
    from dmail_site import wait_for
    sport, h = sink_factory()
    site = dsmtp_factory(start=False)
    remote = ["r1@one.example", "r2@two.example"]
    alice = "alice@" + DOMAIN
    port, members = start(site, members=remote + [alice],
                          smarthost="[127.0.0.1]:%d" % sport)
    site.start()
    msgid = post_to_talk(site, "one click")
    assert wait_for(lambda: site.messages("alice"), 20), site.log()[-3000:]
    assert wait_for(lambda: sum(len(e.rcpt_tos) for e in h.envelopes) >= 2, 20)
    mailto = "<mailto:talk-request@%s?subject=unsubscribe>" % DOMAIN
    copies = [(alice, site.messages("alice")[0][0])]
    for e in h.envelopes:
        for r in e.rcpt_tos:
            copies.append((r, e.content))
    assert sorted(r for r, _ in copies) == sorted(remote + [alice]), copies
    urls, tokens = {}, set()
    for rcpt, raw in copies:
        assert msgid.encode() in raw, raw[:500]
        lu, lup = unsub_fields(raw)
        assert len(lu) == 1 and lup == ["List-Unsubscribe=One-Click"], (rcpt, lu, lup)
        url, _, rest = lu[0].partition(">, ")
        assert url.startswith("<https://lists.%s:%d/unsubscribe?" % (DOMAIN, port)), lu
        assert rest == mailto, lu
        qs = parse_qs(urlsplit(url[1:]).query)
        assert qs["list"] == ["talk"] and qs["addr"] == [rcpt], (rcpt, url)
        tokens.add(qs["t"][0])
        urls[rcpt] = url[1:]
    assert len(tokens) == 3, tokens
    # the URL from r1's copy, POSTed as a mailbox provider does: r1 alone removed
    for gone, left in (("r1@one.example", ["r2@two.example", alice]),
                       (alice, ["r2@two.example"])):
        r = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "--resolve",
                            "lists.%s:%d:%s" % (DOMAIN, port, HOST), "-X", "POST",
                            "-d", "List-Unsubscribe=One-Click", urls[gone]],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "has been removed" in r.stdout, (r.stdout, r.stderr)
        assert sorted(read(members).split()) == sorted(left)


def test_posts_without_xheader_carry_the_shared_mailto(dsmtp_factory, sink_factory):
    """dlist_smtp_host an SMTP server without XHEADER (here aiosmtpd; Postfix alike): every
    copy still has one List-Unsubscribe, the mailto alone, and no List-Unsubscribe-Post;
    the one transaction keeps every member."""
    from dmail_site import wait_for
    sport, h = sink_factory()
    site = dsmtp_factory(start=False)
    subs = ["r1@one.example", "r2@two.example", "alice@" + DOMAIN]
    start(site, members=subs, dlist_smtp_host="127.0.0.1:%d" % sport)
    site.start()
    msgid = post_to_talk(site, "no xheader")
    wait_for(lambda: h.envelopes, 20)
    (env,) = h.envelopes
    assert sorted(env.rcpt_tos) == sorted(subs)
    assert msgid.encode() in env.content
    lu, lup = unsub_fields(env.content)
    assert lu == ["<mailto:talk-request@%s?subject=unsubscribe>" % DOMAIN] and lup == [], \
        (lu, lup)


def xheader_sink():
    """An aiosmtpd server announcing XVERP and XHEADER as dsmtp does (to dlist): (controller,
    handler); handler.xheader maps each RCPT's address to its XHEADER= value decoded (None
    without one)."""
    import re
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP
    from conftest import SinkHandler
    from dmail_site import free_ports

    class Handler(SinkHandler):
        def __init__(self):
            super().__init__()
            self.xheader = {}

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            return responses[:1] + ["250-XVERP", "250-XHEADER"] + responses[1:]

    class XSMTP(SMTP):
        async def smtp_MAIL(self, arg):
            await super().smtp_MAIL(arg[:-6] if arg and arg.upper().endswith(" XVERP") else arg)

        async def smtp_RCPT(self, arg):
            m = re.match(r"(.*?) XHEADER=(\S+)$", arg or "")
            x = None
            if m:
                arg, x = m.group(1), re.sub(r"\+([0-9A-F]{2})",
                                            lambda h: chr(int(h.group(1), 16)), m.group(2))
            self.event_handler.xheader[re.search(r"<(.*)>", arg).group(1)] = x
            await super().smtp_RCPT(arg)

    class XController(Controller):
        def factory(self):
            return XSMTP(self.handler)

    h = Handler()
    c = XController(h, hostname="127.0.0.1", port=free_ports(1)[0])
    c.start()
    return c, h


def test_xheader_per_member_from_dlist(dsmtp_factory):
    """dlist's half alone (dlist_smtp_host a server announcing XHEADER): one transaction,
    every RCPT with XHEADER= of that member's two fields, the post's text without
    List-Unsubscribe; a URL from them removes exactly that member."""
    from urllib.parse import parse_qs, urlsplit
    from dmail_site import wait_for
    c, h = xheader_sink()
    try:
        site = dsmtp_factory(start=False)
        subs = ["r1@one.example", "r2@two.example", "alice@" + DOMAIN]
        port, members = start(site, members=subs, dlist_smtp_host="127.0.0.1:%d" % c.port)
        site.start()
        msgid = post_to_talk(site, "xheader")
        wait_for(lambda: h.envelopes, 20)
        (env,) = h.envelopes
        assert sorted(env.rcpt_tos) == sorted(subs) and msgid.encode() in env.content
        assert unsub_fields(env.content) == ([], [])
        urls = {}
        for rcpt in subs:
            lu, _, post = h.xheader[rcpt].partition("\r\n")
            assert post == "List-Unsubscribe-Post: List-Unsubscribe=One-Click", h.xheader
            url, _, mailto = lu.partition(">, ")
            assert mailto == "<mailto:talk-request@%s?subject=unsubscribe>" % DOMAIN, lu
            assert url.startswith("List-Unsubscribe: <https://lists.%s:%d/unsubscribe?"
                                  % (DOMAIN, port)), lu
            urls[rcpt] = url[len("List-Unsubscribe: <"):]
            assert parse_qs(urlsplit(urls[rcpt]).query)["addr"] == [rcpt]
        assert len(set(urls.values())) == 3
        r = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "--resolve",
                            "lists.%s:%d:%s" % (DOMAIN, port, HOST), "-X", "POST",
                            "-d", "List-Unsubscribe=One-Click", urls["r2@two.example"]],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "has been removed" in r.stdout, (r.stdout, r.stderr)
        assert sorted(read(members).split()) == sorted(["r1@one.example", "alice@" + DOMAIN])
    finally:
        c.stop()
