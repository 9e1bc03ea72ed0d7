"""dlist's archive (issue 13): `archive true` keeps every post in a month mbox under
dlist_path/archive/LIST/YYYY-MM (what `index` and `get FILE` serve) and a static HTML
archive beside it (by date, by thread, one page per message), updated one message at a
time and never carrying HTML, scripts or links from the mail. Messages go in with
`dlist archive LIST FILE...` (the path the post path also takes: archive_store)."""

import html.parser
import os
import re
import shutil
import subprocess
import time

import pytest

from dmail_site import (BIN, DOMAIN, chown_like_dsmtp, make_message, new_msgid,
                        read_mbox)

LISTS = """list talk
 title The <b>list</b> for talkers
 archive true
list quiet
 title no archive here
"""


def setup_lists(site):
    d = os.path.join(site.dir, "dlist")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "lists.dat"), "w") as f:
        f.write(LISTS)
    chown_like_dsmtp(d)
    site.write_conf({"dlist_path": d})
    return d


def archive(site, lst, *texts):
    files = []
    for i, t in enumerate(texts):
        p = os.path.join(site.dir, "in%d-%s.eml" % (i, new_msgid("f")[1:9]))
        with open(p, "wb") as f:
            f.write(t.encode() if isinstance(t, str) else t)
        files.append(p)
    return subprocess.run([os.path.join(BIN, "dlist"), "-c", site.conf_path, "archive", lst]
                          + files, capture_output=True, text=True, timeout=60, env=site.env())


class Page(html.parser.HTMLParser):
    """Every start tag with its attributes, the text, and whether the parse was clean."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.data = [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.data.append(data)

    def text(self):
        return "".join(self.data)

    def links(self):
        return [a["href"] for t, a in self.tags if t == "a"]


SAFE_TAGS = {"html", "head", "meta", "title", "body", "h1", "p", "a", "ul", "li", "span",
             "table", "tr", "th", "td", "pre", "hr"}
SAFE_HREF = re.compile(r"^(\d+\.html|date\.html|thread\.html|\.\./index\.html|"
                       r"\d{4}-\d\d/(date|thread)\.html)$")


def check_safe(path):
    """The page parses, holds only the archive's own tags, attributes and links."""
    with open(path, encoding="utf-8") as f:  # strict UTF-8: raises on a bad byte
        raw = f.read()
    p = Page(raw)
    for tag, attrs in p.tags:
        assert tag in SAFE_TAGS, (path, tag, attrs)
        for k, v in attrs.items():
            assert not k.startswith("on"), (path, tag, attrs)
            if k == "href":
                assert SAFE_HREF.match(v), (path, v)
            if k == "style":
                assert re.fullmatch(r"margin-left:\d+em", v), (path, v)
    csp = [a for t, a in p.tags if t == "meta" and a.get("http-equiv") ==
           "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"], path
    return p


def month_now():
    return time.strftime("%Y-%m", time.gmtime())


def test_archive_month_mbox_and_html_by_date_and_thread(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = setup_lists(site)
    id1, m1 = make_message(subject="first topic", body="Hello list.\n")
    id2, m2 = make_message(subject="Re: first topic", body="A reply.\n",
                           extra_headers=["In-Reply-To: %s" % id1])
    id3, m3 = make_message(subject="second topic", body="From the start\nof a line.\n")
    id4, m4 = make_message(subject="Re: Re: first topic", body="Deeper.\n",
                           extra_headers=["References: <unknown@x> %s %s" % (id1, id2)])
    r = archive(site, "talk", m1, m2)
    assert r.returncode == 0, r.stderr
    month = month_now()
    hdir = os.path.join(d, "archive", "talk", "html")
    first_index = os.stat(os.path.join(hdir, "index.html")).st_mtime_ns
    first_page = os.stat(os.path.join(hdir, month, "1.html")).st_mtime_ns
    time.sleep(0.05)
    r = archive(site, "talk", m3, m4)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("archived ") == 2, r.stdout
    # the month mbox: four whole messages in order, mboxrd-quoted and read back
    box = read_mbox(os.path.join(d, "archive", "talk", month))
    got = [m["Message-ID"] for _, m in box]
    assert got == [id1, id2, id3, id4], got
    assert box[2][1].get_payload() == ">From the start\nof a line.\n"  # mboxrd-quoted
    # pages readable by a web server, the mbox by dlist only
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(os.path.join(d, "archive", "talk")) == 0o755
    assert mode(os.path.join(hdir, month)) == 0o755
    assert mode(os.path.join(hdir, month, "1.html")) == 0o644
    assert mode(os.path.join(d, "archive", "talk", month)) == 0o600
    # incremental: the old page and index.html were not written again
    assert os.stat(os.path.join(hdir, "index.html")).st_mtime_ns == first_index
    assert os.stat(os.path.join(hdir, month, "1.html")).st_mtime_ns == first_page
    top = check_safe(os.path.join(hdir, "index.html"))
    assert "%s/date.html" % month in top.links() and "%s/thread.html" % month in top.links()
    assert "The <b>list</b> for talkers" in top.text()  # the title as text
    by_date = check_safe(os.path.join(hdir, month, "date.html"))
    assert [h for h in by_date.links() if h[0].isdigit()] == ["1.html", "2.html", "3.html",
                                                               "4.html"]
    thread = check_safe(os.path.join(hdir, month, "thread.html"))
    hrefs = [h for h in thread.links() if h[0].isdigit()]
    assert hrefs == ["1.html", "2.html", "4.html", "3.html"], hrefs
    styles = [a.get("style") for t, a in thread.tags if t == "li"]
    assert styles == [None, "margin-left:2em", "margin-left:4em", None], styles
    page = check_safe(os.path.join(hdir, month, "2.html"))
    assert "A reply." in page.text() and "In reply to" in page.text()
    assert "1.html" in page.links()
    assert "Re: first topic" in page.text() and "sender@remote.example" in page.text()


def test_archive_html_never_carries_html_from_mail(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = setup_lists(site)
    boundary = "b1"
    hostile = (
        "From: =?utf-8?q?Eve_=3Cscript=3Ealert(1)=3C/script=3E?= <eve@remote.example>\n"
        "To: talk@%s\n"
        "Subject: =?iso-8859-1?q?caf=E9?= <img src=x onerror=alert(2)> "
        "=?utf-8?b?PHNjcmlwdD5hbGVydCgzKTwvc2NyaXB0Pg==?=\n"
        "Message-ID: %s\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"%s\"\n\n"
        "preamble\n"
        "--%s\n"
        "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"
        "<script>alert(4)</script> <a href=\"javascript:alert(5)\">click</a> na=EFve=\n"
        " soft\x01\x1b[31m\n"
        "--%s\n"
        "Content-Type: text/html\n\n"
        "<html><body><script>alert(6)</script><iframe src=\"http://evil.example/\">"
        "</iframe></body></html>\n"
        "--%s\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: base64\n\n"
        "PGltZyBzcmM9eCBvbmVycm9yPWFsZXJ0KDcpPiDigJggYmFzZTY0IHRleHQ=\n"
        "--%s\n"
        "Content-Type: application/octet-stream; name=\"<evil>.exe\"\n"
        "Content-Transfer-Encoding: base64\n\n"
        "AAECAw==\n"
        "--%s\n"
        "Content-Type: multipart/alternative; boundary=\"never-closed\"\n\n"
        "--never-closed\n"
        "Content-Type: text/plain; charset=x-no-such-charset\n\n"
        "broken \xff\xfe bytes and \xe2\x80\xae override\n"
        % (DOMAIN, new_msgid("evil"), boundary, boundary, boundary, boundary, boundary,
           boundary)).encode("latin-1")
    r = archive(site, "talk", hostile, b"no header at all, no blank line <script>")
    assert r.returncode == 0, r.stderr
    mdir = os.path.join(d, "archive", "talk", "html", month_now())
    for name in os.listdir(mdir):
        if name.endswith(".html"):
            check_safe(os.path.join(mdir, name))
    p = check_safe(os.path.join(mdir, "1.html"))
    text = p.text()
    assert "<script>alert(4)</script>" in text  # shown, as text
    assert 'href="javascript:alert(5)"' in text
    assert "naïve soft" in text  # quoted-printable and Latin-1 decoded
    assert "\x01" not in text and "\x1b" not in text and "\u202e" not in text
    assert "<img src=x onerror=alert(7)> \u2018 base64 text" in text
    assert "café" in text and "<script>alert(3)</script>" in text  # RFC 2047 decoded
    assert "Eve <script>alert(1)</script>" in text
    assert "alert(6)" not in text  # the HTML part is listed, not shown
    assert "not shown: text/html" in text
    assert 'not shown: application/octet-stream "<evil>.exe", 4 bytes' in text
    assert "broken" in text and "override" in text  # the unclosed part still shown
    with open(os.path.join(mdir, "1.html"), encoding="utf-8") as f:
        raw = f.read()
    assert "<script" not in raw and "<iframe" not in raw and "javascript:" not in raw.replace(
        "href=&quot;javascript:", "")
    p2 = check_safe(os.path.join(mdir, "2.html"))
    assert "(no subject)" in p2.text()


def test_archive_refused_without_archive_true(dsmtp_factory):
    site = dsmtp_factory(start=False)
    d = setup_lists(site)
    _, m = make_message()
    r = archive(site, "quiet", m)
    assert r.returncode != 0 and "keeps no archive" in r.stderr, (r.returncode, r.stderr)
    r = archive(site, "nosuch", m)
    assert r.returncode != 0 and "no such list" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(d, "archive"))


def chromium_dom(path, tmp):
    """The DOM Debian's chromium builds from path, after running whatever the page would
    run (--dump-dom prints document.documentElement once the page has loaded). As root in
    a container chromium needs --no-sandbox; its profile goes in tmp."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium not installed (scripts/deps.sh installs it)")
    r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--user-data-dir=" + tmp, "--dump-dom",
                        "file://" + path],
                       capture_output=True, text=True, timeout=90,
                       env={"PATH": "/usr/bin:/bin", "HOME": tmp})
    assert r.returncode == 0 and "<html" in r.stdout, (r.returncode, r.stderr[-2000:])
    return r.stdout


def test_archive_in_a_real_browser(dsmtp_factory, tmp_path):
    """The HTML archive as chromium sees it: the index leads to the month's date and thread
    pages and they to every message; a post whose subject and body try to run a script
    (which would mark the DOM: data-pwned="1") shows it as text and runs nothing."""
    site = dsmtp_factory(start=False)
    d = setup_lists(site)
    evil = "<script>document.documentElement.setAttribute('data-pwned','1')</script>"
    id1, m1 = make_message(subject="browse me", body="First post.\n")
    id2, m2 = make_message(subject="Re: browse me " + evil, body=evil + "\n<b>bold?</b>\n",
                           extra_headers=["In-Reply-To: %s" % id1])
    assert archive(site, "talk", m1, m2).returncode == 0
    hdir = os.path.join(d, "archive", "talk", "html")
    month = month_now()
    prof = str(tmp_path)
    top = Page(chromium_dom(os.path.join(hdir, "index.html"), prof))
    assert "The <b>list</b> for talkers" in top.text()
    seen = set()
    for sub in ("date.html", "thread.html"):
        assert "%s/%s" % (month, sub) in top.links(), top.links()
        dom = chromium_dom(os.path.join(hdir, month, sub), prof)
        assert 'data-pwned="1"' not in dom
        page = Page(dom)
        assert not [t for t, _ in page.tags if t in ("script", "b", "iframe", "img")], page.tags
        msgs = [h for h in page.links() if h[0].isdigit()]
        assert msgs == ["1.html", "2.html"], msgs
        assert evil in page.text()  # the subject, as text
        seen.update(msgs)
    for name in sorted(seen):
        dom = chromium_dom(os.path.join(hdir, month, name), prof)
        assert 'data-pwned="1"' not in dom, name
        page = Page(dom)
        assert not [t for t, _ in page.tags if t in ("script", "b", "iframe", "img")], name
        assert "../index.html" in page.links() or "date.html" in page.links(), page.links()
        if name == "2.html":
            assert evil in page.text() and "<b>bold?</b>" in page.text()
            assert "1.html" in page.links()  # in reply to
        else:
            assert "First post." in page.text()
