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
