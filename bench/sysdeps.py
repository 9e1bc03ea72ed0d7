"""The Debian packages the benchmark needs, installed with apt-get when missing.

postfix       the SMTP peer; its package also brings smtp-source, the load generator
              used against both sides, and smtp-sink, the relay workload's far end.
              Preseeded "No configuration": the harness writes its own loopback-only
              instances and never touches /etc/postfix/main.cf.
dovecot-core, dovecot-pop3d
              the POP3 peer, run from the harness's own dovecot.conf.
gnuplot-nox   draws bench/results/LATEST.png.
dnsmasq-base  the filters workload's DNSBL zones (a private dnsmasq on a loopback address).
rspamd        the filters workload's milter (run from the harness's own configuration).
opendkim      Postfix's DKIM signer in the relay-dkim workload (a milter, own configuration).
python3-dkim  verifies a sample of each side's signed mail there.
mlmmj         the list manager of the list-fanout workload's peer (with Postfix).

Package scripts must not start the system's Postfix, Dovecot, rspamd or OpenDKIM (they would listen on
every address): while installing, a policy-rc.d that forbids starting services is put
in place unless one already exists, and removed again afterwards.
"""

import os
import shutil
import subprocess
import sys
import time

PACKAGES = ["postfix", "dovecot-core", "dovecot-pop3d", "gnuplot-nox", "dnsmasq-base",
            "rspamd", "opendkim", "python3-dkim", "mlmmj"]
# what each package must provide for the harness to run
PROVIDES = {
    "postfix": ["/usr/sbin/postfix", "/usr/sbin/smtp-source", "/usr/sbin/smtp-sink"],
    "dovecot-core": ["/usr/sbin/dovecot", "/usr/bin/doveconf"],
    "dovecot-pop3d": ["/usr/lib/dovecot/pop3"],
    "gnuplot-nox": ["/usr/bin/gnuplot"],
    "dnsmasq-base": ["/usr/sbin/dnsmasq"],
    "rspamd": ["/usr/bin/rspamd"],
    "opendkim": ["/usr/sbin/opendkim"],
    "python3-dkim": ["/usr/lib/python3/dist-packages/dkim/__init__.py"],
    "mlmmj": ["/usr/bin/mlmmj-make-ml", "/usr/bin/mlmmj-receive", "/usr/bin/mlmmj-send"],
}
POLICY = "/usr/sbin/policy-rc.d"
APT_TIMEOUT = 900


def installed(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                         capture_output=True, text=True)
    return "ok installed" in out.stdout and all(os.path.exists(p) for p in PROVIDES[pkg])


def missing():
    return [p for p in PACKAGES if not installed(p)]


def _apt(args, env):
    r = subprocess.run(["apt-get"] + args, env=env, capture_output=True, text=True,
                       timeout=APT_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError("apt-get %s failed:\n%s" % (" ".join(args), r.stderr[-2000:]))


def ensure(log=print):
    """Install what is missing. Returns seconds spent installing (0 when nothing was).
    Raises SystemExit with the list of packages when not root and some are missing."""
    need = missing()
    if not need:
        return 0.0
    if os.geteuid() != 0:
        sys.exit("bench: missing Debian packages: %s\n"
                 "bench: run 'make bench' as root to install them with apt-get"
                 % " ".join(need))
    t0 = time.monotonic()
    log("bench: installing %s with apt-get (first run only)" % " ".join(need))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if "postfix" in need:
        subprocess.run(["debconf-set-selections"], check=True, text=True,
                       input="postfix postfix/main_mailer_type select No configuration\n")
    made_policy = False
    if not os.path.exists(POLICY):
        with open(POLICY, "w") as f:
            f.write("#!/bin/sh\n# written by dmail's bench/sysdeps.py while installing\n"
                    "exit 101\n")
        os.chmod(POLICY, 0o755)
        made_policy = True
    try:
        _apt(["update", "-qq"], env)
        _apt(["install", "-y", "-q", "--no-install-recommends"] + need, env)
    finally:
        if made_policy:
            os.unlink(POLICY)
    still = missing()
    if still:
        raise RuntimeError("still missing after apt-get install: %s" % " ".join(still))
    return time.monotonic() - t0


def have_gnuplot():
    return shutil.which("gnuplot") is not None
