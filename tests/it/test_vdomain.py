"""Virtual domains (vdomain) end to end: two domains with the same user name get separate
mail, a user of one domain is unknown at another, host_domain aliases still share the main
users, the dropfile layouts (vdomain_separator, drop_prefix, hash_spool, alt_drop_path),
allowdup, POP3 and SMTP AUTH logins as user@domain, user%domain and bare user by the
address connected to (127.0.0.2 is loopback too), tellpop adduser user@vdomain, and
DMail's use_drop values under -t."""

import os
import poplib
import smtplib
import subprocess

import pytest

from dmail_site import (
    ALIAS_DOMAIN,
    BIN,
    DOMAIN,
    HOST,
    make_message,
    mbox_bytes,
    read_mbox,
    wait_for,
)

SENDER = "sender@remote.example"
V1, V2 = "v1.test", "v2.test"
VSET = {"vdomain": ["%s 127.0.0.2 dom1" % V1, "%s dom2" % V2],
        "listen": "127.0.0.1,127.0.0.2"}
PW1, PW2 = "bob-of-v1 pw", "bob-of-v2 pw"


def vsite(factory, **settings):
    conf = dict(VSET)
    conf.update(settings)
    srv = factory(start=False, **conf)
    srv.add_user("bob@" + V1, PW1)
    srv.add_user("bob@" + V2, PW2)
    srv.add_user("ann@" + V1, "ann pw")
    return srv


def send(port, rcpts, text, host=HOST):
    with smtplib.SMTP(host, port, local_hostname="client.example", timeout=15) as s:
        return s.sendmail(SENDER, rcpts, text)


def ids(path):
    return [m.get("Message-ID") for _, m in read_mbox(path)] if os.path.exists(path) else []


def test_same_user_name_in_two_domains_gets_separate_mail(dsmtp_factory):
    srv = vsite(dsmtp_factory)
    srv.start()
    sent = {}
    for dom in (V1, V2, DOMAIN):
        msgid, text = make_message(to="bob@" + dom)
        assert send(srv.smtp_port, ["bob@" + dom], text) == {}
        sent[dom] = msgid
    assert ids(os.path.join(srv.drop, "dom1_bob")) == [sent[V1]]
    assert ids(os.path.join(srv.drop, "dom2_bob")) == [sent[V2]]
    assert ids(os.path.join(srv.drop, "bob")) == [sent[DOMAIN]]


def test_user_of_one_domain_unknown_at_another(dsmtp_factory):
    srv = vsite(dsmtp_factory)
    srv.start()
    with smtplib.SMTP(HOST, srv.smtp_port, local_hostname="client.example", timeout=15) as s:
        s.ehlo()
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt("ann@" + V2)[0] == 550      # ann is v1's only
        assert s.rcpt("ann@" + DOMAIN)[0] == 550  # not the main domain's either
        assert s.rcpt("alice@" + V1)[0] == 550    # a bare user is the main domain's only
        assert s.rcpt("ann@" + V1)[0] == 250
        # host_domain aliases still share the main users
        assert s.rcpt("alice@" + ALIAS_DOMAIN)[0] == 250
        msgid, text = make_message()
        s.data(text)
    assert ids(os.path.join(srv.drop, "dom1_ann")) == [msgid]
    assert ids(os.path.join(srv.drop, "alice")) == [msgid]


@pytest.mark.parametrize("settings,path", [
    ({"vdomain_separator": "."}, "dom1.bob"),
    ({"drop_prefix": True}, "dom1/bob"),
    ({"hash_spool": 2}, "d/do/dom1_bob"),
    ({"hash_spool": 1, "drop_prefix": True}, "dom1/b/bob"),
])
def test_dropfile_layouts(dsmtp_factory, settings, path):
    srv = vsite(dsmtp_factory, **settings)
    srv.start()
    msgid, text = make_message(to="bob@" + V1)
    assert send(srv.smtp_port, ["bob@" + V1], text) == {}
    assert ids(os.path.join(srv.drop, path)) == [msgid]


def test_alt_drop_path(dsmtp_factory):
    srv = vsite(dsmtp_factory)
    alt = os.path.join(srv.dir, "alt-v2")
    os.makedirs(alt)
    srv.write_conf({"alt_drop_path": "%s %s" % (V2, alt)})
    srv.start()
    m1, t1 = make_message(to="bob@" + V2)
    m2, t2 = make_message(to="bob@" + V1)
    assert send(srv.smtp_port, ["bob@" + V2, "bob@" + V1], t1) == {}
    assert ids(os.path.join(alt, "bob")) == [m1]
    assert ids(os.path.join(srv.drop, "dom1_bob")) == [m1]
    assert not os.path.exists(os.path.join(srv.drop, "dom2_bob"))
    del m2, t2


@pytest.mark.parametrize("allowdup,copies", [(None, 1), (True, 2), (False, 1)])
def test_allowdup(dsmtp_factory, allowdup, copies):
    srv = vsite(dsmtp_factory, allowdup=allowdup,
                forward=["a1@%s bob@%s" % (V1, V1), "a2@%s bob@%s" % (V1, V1)])
    srv.start()
    msgid, text = make_message(to="a1@" + V1)
    # two aliases of one user, and one of them given twice
    assert send(srv.smtp_port, ["a1@" + V1, "a2@" + V1, "a1@" + V1], text) == {}
    assert ids(os.path.join(srv.drop, "dom1_bob")) == [msgid] * copies


def test_tellpop_adduser_in_a_vdomain(dsmtp_factory):
    srv = vsite(dsmtp_factory)
    srv.start()
    p = subprocess.run([os.path.join(BIN, "tellpop"), "-c", srv.conf_path, "adduser",
                        "erin@" + V2, "-"], input=b"erin pw\n", capture_output=True,
                       timeout=30, env=srv.env())
    assert p.returncode == 0, p.stderr
    msgid, text = make_message(to="erin@" + V2)
    assert wait_for(lambda: send_ok(srv, "erin@" + V2, text), 10)
    assert ids(os.path.join(srv.drop, "dom2_erin")) == [msgid]
    assert not os.path.exists(os.path.join(srv.drop, "erin"))


def send_ok(srv, rcpt, text):
    try:
        return send(srv.smtp_port, [rcpt], text) == {}
    except smtplib.SMTPRecipientsRefused:
        return False


def put(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(mbox_bytes([text]))


def pop_subject(port, user, password, host=HOST):
    c = poplib.POP3(host, port, timeout=15)
    try:
        c.user(user)
        c.pass_(password)
        _, lines, _ = c.retr(1)
        return [ln for ln in lines if ln.startswith(b"Subject:")][0].decode()
    finally:
        c.quit()


def test_pop_login_forms(dpop_factory):
    pop = dpop_factory(start=False, auth_plaintext=True, **VSET)
    site = pop.site
    site.add_user("bob@" + V1, PW1)
    site.add_user("bob@" + V2, PW2)
    put(os.path.join(site.drop, "dom1_bob"), "Subject: v1\n\nbody\n")
    put(os.path.join(site.drop, "dom2_bob"), "Subject: v2\n\nbody\n")
    put(os.path.join(site.drop, "bob"), "Subject: main\n\nbody\n")
    site.chown()
    pop.start()
    bob = site.passwords["bob"]
    assert pop_subject(pop.pop_port, "bob@" + V1, PW1) == "Subject: v1"
    assert pop_subject(pop.pop_port, "bob%" + V2, PW2) == "Subject: v2"
    assert pop_subject(pop.pop_port, "bob", bob) == "Subject: main"
    # a bare name on the vdomain's address is that domain's user
    assert pop_subject(pop.pop_port, "bob", PW1, host="127.0.0.2") == "Subject: v1"
    # and the main domain's password does not open it
    with pytest.raises(poplib.error_proto):
        pop_subject(pop.pop_port, "bob", bob, host="127.0.0.2")
    with pytest.raises(poplib.error_proto):
        pop_subject(pop.pop_port, "bob@" + V1, PW2)
    log = pop.log()
    for form in ("address", "percent", "plain", "ip"):
        assert "login name_form=%s" % form in log, form


def test_smtp_auth_bare_name_by_address(dsmtp_factory):
    srv = vsite(dsmtp_factory, auth_plaintext=True)
    srv.start()
    for host, user, pw, code in (("127.0.0.2", "bob", PW1, 235),
                                 ("127.0.0.1", "bob", PW1, 535),
                                 ("127.0.0.1", "bob%" + V1, PW1, 235),
                                 ("127.0.0.1", "bob@" + V2, PW2, 235)):
        with smtplib.SMTP(host, srv.submission_port, local_hostname="c.example",
                          timeout=15) as s:
            s.ehlo()
            try:
                s.login(user, pw)
                got = 235
            except smtplib.SMTPAuthenticationError as e:
                got = e.smtp_code
            assert got == code, (host, user)
    assert "auth name_form=ip user=bob@v1.test" in srv.log()


@pytest.mark.parametrize("value,rc,says", [
    ("true", 0, None),
    ("false", 0, "use_drop false: DMail moved mail into its bins; dmail has none"),
    ("maildir", 0, None),
    ("sometimes", 78, "use_drop: 'sometimes' is not true, false, mbox or maildir"),
])
def test_use_drop_values(dsmtp_factory, value, rc, says):
    srv = dsmtp_factory(start=False, use_drop=value)
    p = subprocess.run([os.path.join(BIN, "dsmtp"), "-t", "-c", srv.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == rc, p.stderr
    if says:
        assert says in p.stdout + p.stderr
