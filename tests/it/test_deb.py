"""The Debian package (make deb): it builds lintian-clean, installs with dpkg, sets up
the dmail user and the spool, and the installed programs work: dwatch starts dsmtp and
dpop, a message sent by an unprivileged user through /usr/sbin/sendmail arrives over
POP3; purge removes the configuration and keeps the mail.

The machine is never changed. Postfix (for make bench) provides mail-transport-agent, so
installing dmail means removing it, as apt would: the test therefore installs into a
throwaway copy of this system, an overlay of / (its changes on a tmpfs) in a private
mount namespace, chrooted; dpkg runs there, Postfix is removed only there, and the
servers run there on free loopback ports (the network is the machine's). A policy-rc.d
in the copy keeps the maintainer scripts from starting the service, as in any chroot or
container. Everything started in that namespace is killed at the end, and the namespace
with its overlay disappears with it.

Needs root, dpkg-buildpackage, debhelper, lintian, unshare and nsenter; skips otherwise.
DMAIL_DEB=path uses a package built before instead of running make deb.
"""

import glob
import os
import poplib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from dmail_site import REPO, free_ports, port_open, wait_for

USER, PASSWORD, DOMAIN = "alice", "deb-Secret-7", "deb.test"


def _missing_tools():
    return [t for t in ("dpkg-buildpackage", "dh", "lintian", "unshare", "nsenter", "chroot",
                        "setpriv") if not shutil.which(t)]


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root: dpkg, a mount namespace and chroot"
    if (os.environ.get("DMAIL_BIN") or "").rstrip("/").endswith("/asan"):
        return "the package is built from source, not from DMAIL_BIN: the normal run tests it"
    missing = _missing_tools()
    if missing and not os.environ.get("DMAIL_DEB"):
        return "missing %s (make deps installs dpkg-dev, debhelper, lintian)" % ", ".join(missing)
    if "overlay" not in open("/proc/filesystems").read():
        return "the kernel has no overlay file system"
    return None


needs_deb = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def build_deb():
    """The package: $DMAIL_DEB, else make deb (which fails on a lintian error)."""
    if os.environ.get("DMAIL_DEB"):
        return os.environ["DMAIL_DEB"]
    r = subprocess.run(["make", "--no-print-directory", "deb"], cwd=REPO, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "make deb failed:\n%s\n%s" % (r.stdout[-4000:], r.stderr[-4000:])
    errors = [line for line in r.stdout.splitlines() if line.startswith("E: ")]
    assert not errors, "lintian errors:\n" + "\n".join(errors)
    debs = glob.glob(os.path.join(REPO, "build", "deb", "dmail_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


class Overlay:
    """A copy-on-write view of / in a private mount namespace, chrooted into by run()."""

    SETUP = r"""
set -e
mount -t tmpfs -o mode=0755 tmpfs "$1"
mkdir "$1/upper" "$1/work" "$1/root"
mount -t overlay -o lowerdir=/,upperdir="$1/upper",workdir="$1/work" overlay "$1/root"
for d in proc sys dev; do mount --rbind "/$d" "$1/root/$d"; done
mount -t tmpfs tmpfs "$1/root/run"
mount -t tmpfs tmpfs "$1/root/tmp"
echo ready
read x || true
"""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dmail-deb-")
        self.root = os.path.join(self.dir, "root")
        # the holder keeps the namespace until its stdin closes (also if pytest dies)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", self.SETUP, "sh",
             self.dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.close()
            pytest.fail("could not set up the overlay of / (exit %s)" % self.holder.wait())
        self.ns = os.readlink("/proc/%d/ns/mnt" % self.holder.pid)

    def argv(self, *argv):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", "chroot", self.root] + list(argv)

    def run(self, script, input=None, timeout=60, check=True):
        r = subprocess.run(self.argv("sh", "-c", script), input=input, capture_output=True,
                           text=isinstance(input, str) or input is None, timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail("in the overlay: %s\nexit %d\n%s\n%s" % (script, r.returncode,
                                                                 r.stdout, r.stderr))
        return r

    def pids(self):
        """Every process in the namespace but the holder."""
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) == self.holder.pid:
                continue
            try:
                if os.readlink("/proc/%s/ns/mnt" % p) == self.ns:
                    out.append(int(p))
            except OSError:
                pass
        return out

    def close(self):
        if self.holder.poll() is None and getattr(self, "ns", None):
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            wait_for(lambda: not self.pids(), 10)
        try:
            self.holder.stdin.close()
            self.holder.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def uid_of(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def comm_of(pid):
    try:
        return open("/proc/%d/comm" % pid).read().strip()
    except OSError:
        return ""


def test_make_install_destdir(tmp_path):
    """make install DESTDIR=... PREFIX=/usr: Debian's layout, the service files pointing
    at the installed programs, nothing run (no dmail-setup into the real system)."""
    dest = str(tmp_path / "dest")
    r = subprocess.run(["make", "--no-print-directory", "install", "DESTDIR=" + dest,
                        "PREFIX=/usr"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "now run (as root) /usr/sbin/dmail-setup" in r.stdout
    for prog in ("dsmtp", "dpop", "dwatch", "tellsmtp", "tellpop", "sendmail", "dmail-setup"):
        assert os.access(dest + "/usr/sbin/" + prog, os.X_OK), prog
    for link in ("/usr/bin/mailq", "/usr/bin/newaliases", "/usr/lib/sendmail"):
        assert os.readlink(dest + link) == "../sbin/sendmail", link
    for page in ("man8/dsmtp.8", "man8/dmail-setup.8", "man8/mailq.8", "man5/dmail.conf.5"):
        assert os.path.exists(dest + "/usr/share/man/" + page), page
    conf = dest + "/etc/dmail/dmail.conf"
    assert os.stat(conf).st_mode & 0o777 == 0o640
    assert open(conf).read() == open(os.path.join(REPO, "conf", "dmail.conf.sample")).read()
    unit = open(dest + "/lib/systemd/system/dmail.service").read()
    assert "ExecStart=/usr/sbin/dwatch -f -c /etc/dmail/dmail.conf" in unit
    init = dest + "/etc/init.d/dmail"
    assert os.access(init, os.X_OK) and "DWATCH=/usr/sbin/dwatch" in open(init).read()

    # again, under /usr/local: an edited dmail.conf stays; the unit names /usr/local/sbin
    with open(conf, "a") as f:
        f.write("host_domain mine.example\n")
    r = subprocess.run(["make", "--no-print-directory", "install", "DESTDIR=" + dest],
                       cwd=REPO, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(conf).read().endswith("host_domain mine.example\n")
    assert os.readlink(dest + "/usr/local/bin/mailq") == "../sbin/sendmail"
    unit = open(dest + "/etc/systemd/system/dmail.service").read()
    assert "ExecStart=/usr/local/sbin/dwatch -f" in unit
    assert not os.path.exists(dest + "/usr/local/lib/sendmail")


def test_dmail_setup_dry_run(tmp_path):
    """dmail-setup -n shows the directories and modes a configuration asks for."""
    conf = tmp_path / "dmail.conf"
    conf.write_text("spool_dir %s/spool\nwork_dir %s/work\ndrop_path %s/drop\n"
                    "run_as nobody\n" % (tmp_path, tmp_path, tmp_path))
    r = subprocess.run(["sh", os.path.join(REPO, "scripts", "dmail-setup.sh"), "-n", "-c",
                        str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for want in ("chmod 3770 %s/spool/maildrop" % tmp_path, "chmod 2750 %s/spool/queue" % tmp_path,
                 "chmod 0750 %s/drop" % tmp_path, "chmod 0750 %s/work" % tmp_path):
        assert want in r.stdout, r.stdout
    assert not os.path.exists(tmp_path / "spool")
    conf.write_text("run_as root\n")
    r = subprocess.run(["sh", os.path.join(REPO, "scripts", "dmail-setup.sh"), "-n", "-c",
                        str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 78 and "never run as root" in r.stderr


@needs_deb
def test_deb_installs_delivers_and_purges():
    deb = build_deb()
    smtp_port, pop_port = free_ports(2)
    log = tempfile.TemporaryFile(mode="w+")
    ov = Overlay()
    dwatch = None
    try:
        ov.run("cat > /tmp/dmail.deb", input=open(deb, "rb").read())
        # a chroot: no service starts; no man-db index rebuild (slow, and thrown away)
        ov.run("printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d;"
               "chmod 755 /usr/sbin/policy-rc.d; rm -f /var/lib/man-db/auto-update")
        # the installed MTA (Postfix here) goes first, as apt would remove it
        mtas = ov.run("dpkg-query -W -f '${Package} ${db:Status-Abbrev} ${Provides}\\n'"
                      " | awk '/mail-transport-agent/ && $2 ~ /^.i/ && $1 != \"dmail\""
                      " {print $1}'").stdout.split()
        if mtas:
            ov.run("dpkg --remove --force-depends %s" % " ".join(mtas), timeout=120)
        ov.run("dpkg -i /tmp/dmail.deb", timeout=120)

        # what the package and its postinst made
        r = ov.run("id -u dmail; stat -c '%a %U %G' /usr/sbin/sendmail /var/spool/dmail/maildrop"
                   " /var/spool/dmail/queue /etc/dmail/dmail.conf /etc/dmail/users;"
                   " readlink /usr/bin/mailq /usr/bin/newaliases /usr/lib/sendmail;"
                   " dpkg-query -W -f '${Provides}' dmail")
        lines = r.stdout.splitlines()
        dmail_uid = int(lines[0])
        assert lines[1:6] == ["2755 root dmail", "3770 dmail dmail", "2750 dmail dmail",
                              "640 root dmail", "640 root dmail"], r.stdout
        assert lines[6:9] == ["../sbin/sendmail"] * 3, r.stdout
        assert "mail-transport-agent" in lines[9], r.stdout

        # a mail server on free loopback ports, with one user
        ov.run("cat >> /etc/dmail/dmail.conf", input=(
            "host_domain %s\nlisten 127.0.0.1\nsmtp_port %d\nsubmission_port 0\n"
            "smtps_port 0\npop_port %d\npop3s_port 0\nauth_plaintext true\n"
            % (DOMAIN, smtp_port, pop_port)))
        ov.run("dwatch -t -c /etc/dmail/dmail.conf")
        ov.run("tellpop adduser %s" % USER, input=PASSWORD + "\n", check=False)
        assert USER + ":" in ov.run("cat /etc/dmail/users").stdout
        # installing again (an upgrade's maintainer scripts) keeps all that
        ov.run("dpkg -i /tmp/dmail.deb", timeout=120)
        r = ov.run("grep -c '^host_domain %s' /etc/dmail/dmail.conf; grep -c '^%s:' "
                   "/etc/dmail/users; dpkg-statoverride --list | grep -c sendmail"
                   % (DOMAIN, USER))
        assert r.stdout.split() == ["1", "1", "1"], r.stdout

        dwatch = subprocess.Popen(ov.argv("/usr/sbin/dwatch", "-f", "-c", "/etc/dmail/dmail.conf"),
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_for(lambda: port_open(smtp_port) and port_open(pop_port), 20), \
            "dwatch did not start dsmtp and dpop"
        servers = [p for p in ov.pids() if comm_of(p) in ("dsmtp", "dpop")]
        assert len(servers) == 2 and all(uid_of(p) == dmail_uid for p in servers), \
            [(p, comm_of(p), uid_of(p)) for p in servers]

        # an unprivileged user's message through the set-group-ID sendmail
        msg = "Subject: from the package\n\nHello through /usr/sbin/sendmail.\n"
        r = ov.run("setpriv --reuid=nobody --regid=nogroup --clear-groups "
                   "/usr/sbin/sendmail %s@%s" % (USER, DOMAIN), input=msg, check=False)
        assert r.returncode == 0, r.stderr
        r = ov.run("setpriv --reuid=nobody --regid=nogroup --clear-groups mailq", check=False)
        assert r.returncode == 0, r.stderr

        def fetched():
            p = poplib.POP3("127.0.0.1", pop_port, timeout=10)
            try:
                p.user(USER)
                p.pass_(PASSWORD)
                if p.stat()[0] == 0:
                    return None
                return b"\n".join(p.retr(1)[1]).decode()
            finally:
                p.quit()

        text = None
        deadline = time.monotonic() + 20
        while text is None and time.monotonic() < deadline:
            text = fetched()
            if text is None:
                time.sleep(0.2)
        assert text is not None, "the message did not arrive over POP3"
        assert "Subject: from the package" in text and "Hello through /usr/sbin/sendmail." in text

        # SIGTERM: dwatch stops the servers and exits
        dwatch.send_signal(signal.SIGTERM)
        assert dwatch.wait(timeout=30) == 0
        assert wait_for(lambda: not ov.pids(), 10), "servers left after dwatch stopped"

        # purge: the configuration and the work files go, the mail stays (as Postfix)
        # --force-depends: a package of this host that needs some MTA (the bench's mlmmj)
        # would otherwise keep dmail, the only MTA in the overlay, from being purged
        ov.run("dpkg --purge --force-depends dmail", timeout=120)
        r = ov.run("for f in /etc/dmail /var/lib/dmail /usr/sbin/sendmail /usr/bin/mailq "
                   "/var/spool/dmail/drop; do [ -e $f ] && echo $f; done;"
                   " dpkg-statoverride --list /usr/sbin/sendmail || true", check=False)
        assert r.stdout.split() == ["/var/spool/dmail/drop"], r.stdout + r.stderr
    except BaseException:
        log.seek(0)
        print("dwatch output:\n" + log.read()[-6000:])
        raise
    finally:
        if dwatch is not None and dwatch.poll() is None:
            dwatch.kill()
            dwatch.wait()
        ov.close()
        log.close()
