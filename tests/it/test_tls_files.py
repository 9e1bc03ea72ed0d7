"""tls_cert and tls_key that cannot be read: `dsmtp -t` and `dpop -t` name the setting's
line and the OS reason and exit 78, as for any other config error; a server started with
such a file stops at once and its last words give the OS reason too."""

import os
import subprocess

import pytest

from dmail_site import BIN, is_root


def setting_line(conf_path, name):
    """The 1-based line of conf_path that sets name."""
    with open(conf_path) as f:
        for i, ln in enumerate(f, 1):
            if ln.split(None, 1)[:1] == [name]:
                return i
    raise AssertionError("%s not set in %s" % (name, conf_path))


def run(prog, *args):
    return subprocess.run([os.path.join(BIN, prog)] + list(args), capture_output=True,
                          text=True, timeout=20)


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_config_test_missing_cert(dsmtp_factory, prog):
    srv = dsmtp_factory(start=False)
    missing = os.path.join(srv.dir, "nonexistent-cert.pem")
    srv.write_conf({"tls_cert": missing})
    r = run(prog, "-t", "-c", srv.conf_path)
    assert r.returncode == 78, (r.returncode, r.stderr)
    line = setting_line(srv.conf_path, "tls_cert")
    assert ("%s:%d: tls_cert %s: No such file or directory"
            % (srv.conf_path, line, missing)) in r.stderr, r.stderr


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_config_test_unreadable_key(dsmtp_factory, prog):
    srv = dsmtp_factory(start=False)
    if is_root():
        # root reads any mode: a directory is a key no one can read
        os.unlink(srv.key)
        os.mkdir(srv.key)
        reason = "Is a directory"
    else:
        os.chmod(srv.key, 0)
        reason = "Permission denied"
    r = run(prog, "-t", "-c", srv.conf_path)
    assert r.returncode == 78, (r.returncode, r.stderr)
    line = setting_line(srv.conf_path, "tls_key")
    assert "%s:%d: tls_key %s: %s" % (srv.conf_path, line, srv.key, reason) in r.stderr, r.stderr


def test_config_test_good_files_pass(dsmtp_factory):
    srv = dsmtp_factory(start=False)
    for prog in ("dsmtp", "dpop"):
        r = run(prog, "-t", "-c", srv.conf_path)
        assert r.returncode == 0, (prog, r.returncode, r.stderr)


@pytest.mark.parametrize("prog", ["dsmtp", "dpop"])
def test_start_up_gives_the_os_reason(dsmtp_factory, prog):
    srv = dsmtp_factory(start=False)
    missing = os.path.join(srv.dir, "gone-key.pem")
    srv.write_conf({"tls_key": missing})
    r = run(prog, "-f", "-c", srv.conf_path)
    assert r.returncode != 0, r.stderr
    assert "tls_key %s: No such file or directory" % missing in r.stderr, r.stderr
