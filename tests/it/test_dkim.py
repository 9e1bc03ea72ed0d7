"""DKIM signing (dkim_sign, dsmtp/dkim_sign.c): mail of authenticated users,
forward_from_ip clients and sendmail whose From: domain has a key leaves with one
DKIM-Signature per key (rsa-sha256 and ed25519-sha256 side by side), verified here by
two independent implementations: python3-dkim (with the public keys given as DNS TXT
records through its dnsfunc) and OpenDKIM's own library (opendkim -t in verify mode,
keys from a TestPublicKeys file). Tricky messages: folded headers, trailing blanks,
empty body, 8-bit text, a body of empty lines, a message large enough to spill, BDAT.
Mail from outside is never signed, whatever its From:. Key files: a bad or world-readable
one is refused at -t with file:line."""

import base64
import os
import poplib
import re
import shutil
import subprocess

import pytest

from dmail_site import (BIN, DOMAIN, HOST, Dpop, RawSMTP, free_ports, new_msgid, sendmail,
                        wait_for)
from test_limits import stat_value

dkim = pytest.importorskip("dkim")

RSA_SEL = "rsa2026"
ED_SEL = "ed2026"


def make_key(d, name, kind):
    """A private key made by openssl(1) in d/name (mode 0600): (path, TXT record)."""
    path = os.path.join(d, name)
    algo = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa" \
        else ["-algorithm", "ED25519"]
    subprocess.run(["openssl", "genpkey", *algo, "-out", path], check=True,
                   capture_output=True, timeout=60)
    os.chmod(path, 0o600)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout
    if kind == "ed25519":
        der = der[-32:]  # RFC 8463: the raw public key
    return path, "v=DKIM1; k=%s; p=%s" % (kind, base64.b64encode(der).decode())


@pytest.fixture
def signer(dsmtp_factory, tmp_path):
    """A site signing DOMAIN with an RSA and an Ed25519 key; .records maps the
    selector._domainkey names to their TXT records."""
    keys = {}
    srv = dsmtp_factory(start=False, auth_plaintext=True, forward_from_ip="127.0.0.9")
    rsa, rsa_txt = make_key(srv.dir, "rsa.pem", "rsa")
    ed, ed_txt = make_key(srv.dir, "ed.pem", "ed25519")
    keys["%s._domainkey.%s." % (RSA_SEL, DOMAIN)] = rsa_txt
    keys["%s._domainkey.%s." % (ED_SEL, DOMAIN)] = ed_txt
    srv.write_conf({"dkim_sign": ["%s %s %s" % (DOMAIN, RSA_SEL, rsa),
                                  "%s %s ed.pem" % (DOMAIN.upper(), ED_SEL)]})
    srv.start()
    srv.records = keys
    return srv


def dnsfunc(records):
    def f(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return records.get(name if name.endswith(".") else name + ".", "").encode()
    return f


def crlf(raw):
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def signatures(raw):
    """The DKIM-Signature fields of raw, unfolded: [{tag: value}]."""
    hdr = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    out = []
    for m in re.finditer(r"(?im)^DKIM-Signature:(.*(?:\n[ \t].*)*)", hdr):
        v = re.sub(r"\s+", "", m.group(1))
        out.append(dict(t.split("=", 1) for t in v.split(";") if "=" in t))
    return out


def verify_python(raw, records):
    """python3-dkim verifies every signature of raw: their algorithms."""
    msg = crlf(raw)
    d = dkim.DKIM(msg)
    sigs = signatures(raw)
    assert sigs, raw[:1500]
    for i in range(len(sigs)):
        assert d.verify(idx=i, dnsfunc=dnsfunc(records)), (i, sigs[i], raw[:3000])
    return sorted(s["a"] for s in sigs)


def verify_opendkim(raw, records, tmp_path):
    """OpenDKIM's library verifies raw (opendkim -t: test mode, keys from a file)."""
    if not shutil.which("opendkim"):
        pytest.skip("opendkim not installed")
    d = tmp_path / ("odk-%d" % len(list(tmp_path.iterdir())))
    d.mkdir()
    (d / "keys").write_text("".join("%s %s\n" % (k.rstrip("."), v) for k, v in records.items()))
    (d / "conf").write_text("Mode v\nSyslog no\nTestPublicKeys %s\n" % (d / "keys"))
    (d / "msg").write_bytes(crlf(raw))
    r = subprocess.run(["opendkim", "-x", str(d / "conf"), "-vvv", "-t", str(d / "msg")],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    n = len(signatures(raw))
    assert out.count("verification") >= 1 and "fail" not in out.lower(), out
    assert re.search(r"verification \(s=\S+ d=%s, \d+-bit key\) succeeded" % re.escape(DOMAIN),
                     out), out
    return n


def delivered(srv, msgid, user="bob"):
    def find():
        for raw, msg in srv.messages(user):
            if msg["Message-ID"] == msgid:
                return raw
        return None
    assert wait_for(lambda: find() is not None, 10), srv.log()[-3000:]
    return find()


def submit(srv, text, auth=True, source=None, bdat=None, sender=None):
    """text (LF line ends) to bob@DOMAIN, from alice (AUTH) unless auth is False; with
    bdat=N as BDAT chunks of N octets. Returns the final reply code."""
    wire = text.replace("\n", "\r\n").encode() if isinstance(text, str) else text
    with RawSMTP(srv.smtp_port, source=source) as c:
        c.ehlo()
        if auth:
            assert c.auth_plain("alice", srv.passwords["alice"])[0] == 235
        c.expect("MAIL FROM:<%s>" % (sender or "alice@" + DOMAIN), 250)
        c.expect("RCPT TO:<bob@%s>" % DOMAIN, 250)
        if bdat:
            code = 0
            for i in range(0, len(wire), bdat):
                part = wire[i:i + bdat]
                code, _ = c.bdat(part, last=i + bdat >= len(wire))
            if not wire:
                code, _ = c.bdat(b"", last=True)
        else:
            stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln)
                               for ln in wire.splitlines(keepends=True))
            if stuffed and not stuffed.endswith(b"\r\n"):
                stuffed += b"\r\n"
            code, _ = c.data(stuffed + b".\r\n")
        c.cmd("QUIT")
        return code


def message(msgid, body, extra=""):
    return ("From: Alice Example <alice@%s>\n"
            "To: Bob <bob@%s>\n"
            "Subject: a test\n\tfolded over two lines  \n"
            "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
            "Message-ID: %s\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n%s"
            "\n%s" % (DOMAIN, DOMAIN, msgid, extra, body))


BODIES = {
    "plain": "Hello Bob,\nsee you.\n",
    "trailing-blanks": "line with blanks   \t\n  indented\tand\t\ttabs \n\n\n\n",
    "empty": "",
    "eight-bit": "Grüße aus Köln — ça va? 日本語\n",
    "empty-lines-only": "\n\n\n\n",
    "dots": ".leading dot\n..two dots\n.\nend\n",
    "no-final-newline": "last line without its end",
    "spill": "".join("line %05d of a large message that spills to disk %s\n" % (i, "x" * 40)
                     for i in range(1200)),
}


@pytest.mark.parametrize("bdat", [None, 1000], ids=["data", "bdat"])
@pytest.mark.parametrize("name", sorted(BODIES))
def test_dkim_signed_mail_verifies(signer, tmp_path, name, bdat):
    msgid = new_msgid("dk")
    text = message(msgid, BODIES[name], extra="Cc: Carol <carol@%s>,\n  dave@%s\n" % (DOMAIN,
                                                                                       DOMAIN))
    assert submit(signer, text, bdat=bdat) == 250
    raw = delivered(signer, msgid)
    assert raw.find(b"\nDKIM-Signature:") < raw.find(b"\nReceived:"), raw[:3000]  # on top
    sigs = signatures(raw)
    assert len(sigs) == 2, raw[:3000]
    assert verify_python(raw, signer.records) == ["ed25519-sha256", "rsa-sha256"]
    for s in sigs:
        assert s["c"] == "relaxed/relaxed" and "l" not in s, s
        assert s["d"] == DOMAIN and s["s"] in (RSA_SEL, ED_SEL), s
        h = s["h"].lower().split(":")
        assert h.count("from") == 2 and "subject" in h and "cc" in h and "received" not in h, h
    verify_opendkim(raw, signer.records, tmp_path)
    if name == "spill":
        assert len(raw) > 49152
        assert re.search(r"dkim id=\S+ domain=%s result=signed" % re.escape(DOMAIN),
                         signer.log()), signer.log()[-2000:]


def test_dkim_a_changed_body_fails(signer):
    msgid = new_msgid("dk")
    assert submit(signer, message(msgid, "Pay 10 EUR.\n")) == 250
    raw = delivered(signer, msgid)
    forged = raw.replace(b"Pay 10 EUR.", b"Pay 99 EUR.")
    assert not verifies(forged, signer.records)
    # and an added From: breaks it too (From is oversigned)
    assert not verifies(b"From: mallory@evil.example\n" + raw, signer.records)
    assert verifies(raw, signer.records)


def verifies(raw, records):
    try:
        return dkim.DKIM(crlf(raw)).verify(idx=0, dnsfunc=dnsfunc(records))
    except dkim.ValidationError:
        return False


def test_dkim_forward_from_ip_signed(signer):
    """Signed, and counted in stats with the CPU time of its signatures."""
    before = (stat_value(signer, "dkim_signed_total"),
              stat_value(signer, "dkim_sign_cpu_microseconds_total"))
    msgid = new_msgid("dk")
    assert submit(signer, message(msgid, "Sent from the trusted network.\n"), auth=False,
                  source="127.0.0.9") == 250
    raw = delivered(signer, msgid)
    assert verify_python(raw, signer.records) == ["ed25519-sha256", "rsa-sha256"]
    assert stat_value(signer, "dkim_signed_total") == before[0] + 1
    assert stat_value(signer, "dkim_sign_cpu_microseconds_total") > before[1]  # an RSA-2048 signature


def test_dkim_pop_before_smtp_signed(signer):
    """A client that logged in to dpop (forward_user: POP-before-SMTP) is one of ours: its
    mail is signed; before the login the same client's mail is not."""
    p1, p2 = free_ports(2)
    signer.restart(forward_user=True, pop_port=p1, pop3s_port=0, auth_plaintext=True,
                   auth_fail_delay=0)
    pop = signer.program("dpop", cls=Dpop)
    pop.start()
    before = new_msgid("dk")
    assert submit(signer, message(before, "Before the login.\n"), auth=False) == 250
    assert signatures(delivered(signer, before)) == []
    p = poplib.POP3(HOST, pop.pop_port, timeout=10)
    try:
        p.user("alice")
        p.pass_(signer.passwords["alice"])
        p.stat()
    finally:
        p.quit()
    assert wait_for(lambda: os.path.exists(os.path.join(signer.work, "popauth")), 5)
    msgid = new_msgid("dk")
    assert submit(signer, message(msgid, "After the login.\n"), auth=False) == 250
    raw = delivered(signer, msgid)
    assert verify_python(raw, signer.records) == ["ed25519-sha256", "rsa-sha256"]


def test_dkim_mail_from_outside_never_signed(signer):
    """An unauthenticated client from an untrusted address writing a From: of the signing
    domain to a local user gets no signature."""
    msgid = new_msgid("dk")
    assert submit(signer, message(msgid, "Spoofed.\n"), auth=False,
                  sender="someone@remote.example") == 250
    raw = delivered(signer, msgid)
    assert signatures(raw) == [], raw[:2000]


def test_dkim_other_from_domain_not_signed(signer):
    msgid = new_msgid("dk")
    text = message(msgid, "Not ours.\n").replace("alice@%s>" % DOMAIN, "alice@other.example>", 1)
    assert submit(signer, text) == 250
    raw = delivered(signer, msgid)
    assert signatures(raw) == [], raw[:2000]


def test_dkim_sendmail_pickup_signed(signer):
    msgid = new_msgid("dk")
    sendmail(signer, ["-i", "bob@" + DOMAIN], message(msgid, "Sent by cron.\n").encode())
    raw = delivered(signer, msgid)
    assert verify_python(raw, signer.records) == ["ed25519-sha256", "rsa-sha256"]


def dsmtp_t(srv):
    return subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                          capture_output=True, text=True, timeout=30, env=srv.env())


def test_dkim_bad_key_files_refused(dsmtp_factory):
    srv = dsmtp_factory(start=False)
    key, _ = make_key(srv.dir, "k.pem", "ed25519")
    os.chmod(key, 0o644)
    srv.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, key)]})
    os.chmod(key, 0o644)  # write_conf may chown, not chmod
    r = dsmtp_t(srv)
    assert r.returncode != 0
    assert re.search(r"dmail\.conf:\d+: dkim_sign: key file \S+k\.pem: readable or writable "
                     r"by others \(mode 644\)", r.stderr), r.stderr
    with open(os.path.join(srv.dir, "junk.pem"), "w") as f:
        f.write("not a key\n")
    os.chmod(os.path.join(srv.dir, "junk.pem"), 0o600)
    os.chmod(key, 0o600)
    srv.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, key), "%s s2 junk.pem" % DOMAIN,
                                  "%s s3" % DOMAIN, "%s S1 %s" % (DOMAIN, key)]})
    r = dsmtp_t(srv)
    assert r.returncode != 0
    assert re.search(r"dmail\.conf:\d+: dkim_sign: key file \S+junk\.pem: not a PEM private key",
                     r.stderr), r.stderr
    assert "dkim_sign: expected DOMAIN SELECTOR KEYFILE" in r.stderr, r.stderr
    assert "dkim_sign: selector S1 of %s is given twice" % DOMAIN in r.stderr, r.stderr
    srv.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, key)]})
    r = dsmtp_t(srv)
    assert r.returncode == 0, r.stderr


def test_dkim_missing_and_symlinked_key_files_refused(dsmtp_factory):
    """dsmtp -t names a key file that is missing, or a symbolic link (to a good key),
    with file:line; the key itself passes."""
    srv = dsmtp_factory(start=False)
    key, _ = make_key(srv.dir, "k.pem", "ed25519")
    os.chmod(key, 0o600)
    missing = os.path.join(srv.dir, "nonexistent.pem")
    srv.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, missing)]})
    r = dsmtp_t(srv)
    assert r.returncode == 78, r.stderr
    assert re.search(r"dmail\.conf:\d+: dkim_sign: key file %s: No such file or directory"
                     % re.escape(missing), r.stderr), r.stderr
    link = os.path.join(srv.dir, "link.pem")
    os.symlink(key, link)
    srv.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, link)]})
    os.chmod(key, 0o600)
    r = dsmtp_t(srv)
    assert r.returncode == 78, r.stderr
    assert re.search(r"dmail\.conf:\d+: dkim_sign: key file %s: " % re.escape(link),
                     r.stderr), r.stderr
    assert "key file %s: a symbolic link; name the key file itself" % link in r.stderr, r.stderr
    srv.write_conf({"dkim_sign": ["%s s1 %s" % (DOMAIN, key)]})
    os.chmod(key, 0o600)
    r = dsmtp_t(srv)
    assert r.returncode == 0, r.stderr


def keygen(srv, *args):
    p = subprocess.run([os.path.join(BIN, "tellsmtp"), "-c", srv.conf_path, "dkim-keygen",
                        *args], capture_output=True, text=True, timeout=60, cwd=srv.dir,
                       env=srv.env())
    return p.returncode, p.stdout, p.stderr


def test_dkim_keygen_keys_sign_and_verify(dsmtp_factory):
    """tellsmtp dkim-keygen makes the keys (0600) and prints the dkim_sign line and the TXT
    record; mail signed with them verifies against those records."""
    srv = dsmtp_factory(start=False, auth_plaintext=True)
    records, lines = {}, []
    for sel, alg in (("kr", []), ("ke", ["ed25519"])):
        rc, out, err = keygen(srv, DOMAIN, sel, *alg)
        assert rc == 0, (out, err)
        path = os.path.join(srv.dir, "%s.%s.pem" % (DOMAIN, sel))
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert "dkim_sign %s %s %s\n" % (DOMAIN, sel, path) in out, out
        m = re.search(r"(?m)^(%s\._domainkey\.%s\.) IN TXT \((.*)\)$" % (sel, re.escape(DOMAIN)),
                      out)
        assert m, out
        records[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
        assert records[m.group(1)].startswith("v=DKIM1; k=%s; p=" % (alg or ["rsa"])[0])
        lines.append("%s %s %s" % (DOMAIN, sel, path))
    # an existing file is never replaced; a bad algorithm is a usage error
    rc, out, err = keygen(srv, DOMAIN, "kr")
    assert rc == 1 and "File exists" in err, (rc, out, err)
    rc, out, err = keygen(srv, DOMAIN, "kx", "dsa")
    assert rc == 2 and "rsa or ed25519" in err, (rc, out, err)
    rc, out, err = keygen(srv, "bad domain!", "kx")
    assert rc == 2, (rc, out, err)
    srv.write_conf({"dkim_sign": lines})
    srv.start()
    msgid = new_msgid("dk")
    assert submit(srv, message(msgid, "Keys made by tellsmtp.\n")) == 250
    raw = delivered(srv, msgid)
    assert verify_python(raw, records) == ["ed25519-sha256", "rsa-sha256"]


def test_dkim_reload_with_a_bad_key_keeps_the_old_keys(signer):
    """A reload naming a key file others can read is refused (file:line); the old keys go
    on signing. A good reload adds a key: tellsmtp config dkim_sign shows it."""
    conf = signer.settings["dkim_sign"]
    rc, out, err = signer.tellsmtp("config", "dkim_sign")
    assert rc == 0 and "%s/%s/rsa %s/%s/ed25519" % (DOMAIN, RSA_SEL, DOMAIN, ED_SEL) in out, out
    open_key, _ = make_key(signer.dir, "open.pem", "ed25519")
    signer.write_conf({"dkim_sign": conf + ["%s open %s" % (DOMAIN, open_key)]})
    os.chmod(open_key, 0o604)
    rc, out, err = signer.tellsmtp("reload")
    assert rc == 1, (rc, out, err)
    assert re.search(r"dmail\.conf:\d+: dkim_sign: key file \S+open\.pem: readable or writable "
                     r"by others", out + err), out + err
    msgid = new_msgid("dk")
    assert submit(signer, message(msgid, "Still signed after a bad reload.\n")) == 250
    assert verify_python(delivered(signer, msgid), signer.records) == ["ed25519-sha256",
                                                                        "rsa-sha256"]
    os.chmod(open_key, 0o600)
    rc, out, err = signer.tellsmtp("reload")
    assert rc == 0, (rc, out, err)
    rc, out, err = signer.tellsmtp("config", "dkim_sign")
    assert "%s/open/ed25519" % DOMAIN in out, out


def test_dkim_signs_what_a_content_filter_left(dsmtp_factory):
    """A milter replaces the body and adds a field: the signature covers the final
    message (the body hash is taken again), and verifies."""
    import milter_fake as mf
    m = mf.FakeMilter().start()
    try:
        m.on("eom", ("addheader", "X-Filtered", "yes"),
             ("replbody", b"Rewritten by the filter.\r\n\r\n"), mf.CONTINUE)
        srv = dsmtp_factory(start=False, auth_plaintext=True, milters=m.address)
        rsa, rsa_txt = make_key(srv.dir, "rsa.pem", "rsa")
        srv.write_conf({"dkim_sign": ["%s %s %s" % (DOMAIN, RSA_SEL, rsa)]})
        srv.start()
        msgid = new_msgid("dk")
        assert submit(srv, message(msgid, "The original body.\n")) == 250
        raw = delivered(srv, msgid)
        assert b"Rewritten by the filter." in raw and b"original" not in raw, raw[-500:]
        records = {"%s._domainkey.%s." % (RSA_SEL, DOMAIN): rsa_txt}
        assert verify_python(raw, records) == ["rsa-sha256"]
    finally:
        m.stop()


@pytest.mark.parametrize("hold", ["bomb", "restart"])
def test_dkim_held_bomb_released_signed(signer, hold):
    """A message of a signing user held as a suspected bomb leaves signed when tellsmtp
    releases it -- also after a restart between hold and release (the signature is in
    the held file)."""
    signer.restart(bomb_max=1)
    first, second = new_msgid("dk"), new_msgid("dk")
    assert submit(signer, message(first, "One.\n")) == 250
    assert verify_python(delivered(signer, first), signer.records)
    assert submit(signer, message(second, "Two, held.\n")) == 250
    bombs = os.path.join(signer.spool, "bomb")
    assert wait_for(lambda: os.path.isdir(bombs) and os.listdir(bombs), 10), signer.log()[-2000:]
    qid = os.listdir(bombs)[0]
    assert second not in [m["Message-ID"] for _, m in signer.messages("bob")]
    if hold == "restart":
        signer.restart()
    rc, out, err = signer.tellsmtp("bomb-release", qid)
    assert rc == 0 and "released" in out, (rc, out, err)
    raw = delivered(signer, second)
    assert verify_python(raw, signer.records) == ["ed25519-sha256", "rsa-sha256"]
    assert len(signatures(raw)) == 2, raw[:3000]


def test_dkim_from_domain_in_any_case_signed(signer):
    msgid = new_msgid("dk")
    text = message(msgid, "Upper case.\n").replace("alice@%s>" % DOMAIN,
                                                     "Alice@%s>" % DOMAIN.upper(), 1)
    assert submit(signer, text) == 250
    raw = delivered(signer, msgid)
    assert verify_python(raw, signer.records) == ["ed25519-sha256", "rsa-sha256"]
    assert all(s["d"] == DOMAIN for s in signatures(raw))
