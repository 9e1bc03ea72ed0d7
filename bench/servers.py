"""The four servers under test, each in its own directory of the run, on 127.0.0.1 only.

    Dsmtp, Dpop       dmail's programs from --bin, started in the foreground (-f)
    Postfix           a private instance: its own main.cf/master.cf, queue and mail
                      spool (postfix -c DIR), never the system's /etc/postfix
    Dovecot           a private instance: its own dovecot.conf (dovecot -c FILE)
    SmtpSink          Postfix's smtp-sink: accepts every message and discards it,
                      counting them (the relay workload's far end)

Every server has start(), stop(), pids() (the whole process tree, for memory), and a
record() for state.json, so a later run can stop what a killed run left behind.
All of them deliver to or read mbox files and fsync: dsmtp always does, Postfix's
cleanup and local fsync each message by default, Dovecot is told mail_fsync = always.
"""

import os
import pwd
import grp
import subprocess
import time

import procs

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_GRACE = 15.0


def mail_user():
    """The account mail is owned by on both sides: nobody (dmail's run_as, Postfix's
    local recipient, Dovecot's virtual users' uid)."""
    pw = pwd.getpwnam("nobody")
    return pw.pw_name, pw.pw_uid, pw.pw_gid


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for n in files:
            os.lchown(os.path.join(root, n), uid, gid)


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class Server:
    """Common parts: a directory, a port, a root pid and its start time."""

    kind = "?"
    label = "?"

    def __init__(self, run_dir, name):
        self.dir = os.path.join(run_dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.pid = None
        self.started = None
        self.port = None
        self.proc = None  # a server run in the foreground by spawn()
        self._out = None  # the file its stdout and stderr go to

    def spawn(self, cmd, out_path, cwd=None, preexec_fn=None, mode="ab"):
        """Run cmd in the foreground of a session of its own (so that stop() reaches its
        whole tree), stdout and stderr to out_path (appended; mode "wb" truncates it
        first); sets proc, pid, started."""
        self._out = open(out_path, mode)
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._out,
                                     start_new_session=True, preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.started = procs.start_time(self.pid)
        return self.proc

    def pids(self):
        return procs.tree(self.pid) if self.pid else []

    def mem(self):
        return procs.mem(self.pids())

    def running(self):
        return self.pid is not None and procs.alive(self.pid, self.started)

    def record(self):
        return {"kind": self.kind, "pid": self.pid, "started": self.started, "dir": self.dir}

    def _wait_port(self, what, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid and not procs.alive(self.pid, self.started):
                raise RuntimeError("%s exited at start-up:\n%s" % (what, self.log_tail()))
            if self.pid and procs.port_open(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("%s did not listen on %s:%d within %d s:\n%s"
                           % (what, HOST, self.port, timeout, self.log_tail()))

    def owns(self, pid):
        """True if pid is this server's master (a pid file may outlive its process)."""
        return False

    def _read_pidfile(self, path, timeout):
        """Wait up to timeout for a daemon's pid file naming a live process; sets
        self.pid/self.started and returns True, else False."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    pid = int(f.read().strip())
                started = procs.start_time(pid)
                if started is not None and self.owns(pid):
                    self.pid, self.started = pid, started
                    return True
            except (OSError, ValueError):
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self):
        """Stop the whole tree (procs.kill_tree); a spawn()ed process is also reaped and
        its output file closed."""
        if self.pid is not None:
            pid, started = self.pid, self.started
            self.pid = self.started = None
            if procs.kill_tree(pid, started, grace=STOP_GRACE):
                print("bench: %s (pid %d) had to be killed with SIGKILL" % (self.label, pid))
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self._out:
            self._out.close()
            self._out = None

    def restart(self):
        self.stop()
        self.start()


# --------------------------------------------------------------------------- dmail

class Dmail(Server):
    """dsmtp or dpop with a dmail.conf of its own."""

    prog = "?"

    def __init__(self, run_dir, name, bindir, settings):
        super().__init__(run_dir, name)
        self.exe = os.path.join(bindir, self.prog)
        self.drop = os.path.join(self.dir, "drop")
        self.users_file = os.path.join(self.dir, "users")
        self.conf = os.path.join(self.dir, "dmail.conf")
        self.log_path = os.path.join(self.dir, self.prog + ".log")
        for d in ("drop", "spool", "work"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.port = procs.free_ports(1)[0]
        self.settings = settings
        self.extra_lines = []  # written after the settings (e.g. 100,000 forward lines)

    def available(self):
        return os.access(self.exe, os.X_OK)

    def base_settings(self):
        user = mail_user()[0] if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        return [
            ("host_domain", "bench.test"),
            ("hostname", "dmail.bench.test"),
            ("listen", HOST),
            ("drop_path", self.drop),
            ("spool_dir", os.path.join(self.dir, "spool")),
            ("work_path", os.path.join(self.dir, "work")),
            ("users_file", self.users_file),
            ("run_as", user),
            ("log_level", "warn"),
        ]

    def write_conf(self):
        lines = ["# written by bench/servers.py"]
        for k, v in self.base_settings() + list(self.settings):
            lines.append("%s %s" % (k, v))
        write(self.conf, "\n".join(lines + self.extra_lines) + "\n")

    def start(self):
        self.write_conf()
        if os.geteuid() == 0:
            _, uid, gid = mail_user()
            chown_tree(self.dir, uid, gid)
        self.spawn([self.exe, "-f", "-c", self.conf], self.log_path, cwd=self.dir,
                   preexec_fn=procs.raise_nofile)
        self._wait_port(self.prog)


class Dsmtp(Dmail):
    kind = "dsmtp"
    prog = "dsmtp"
    label = "dsmtp"

    def base_settings(self):
        return super().base_settings() + [
            ("smtp_port", self.port), ("submission_port", 0), ("smtps_port", 0)]

    def mbox(self, user):
        return os.path.join(self.drop, user)


class Dpop(Dmail):
    kind = "dpop"
    prog = "dpop"
    label = "dpop"

    def base_settings(self):
        return super().base_settings() + [
            ("pop_port", self.port), ("pop3s_port", 0), ("auth_plaintext", "true")]

    def mbox(self, user):
        return os.path.join(self.drop, user)


# --------------------------------------------------------------------------- Postfix

POSTFIX_MASTER = """\
# written by bench/servers.py: a loopback-only instance, no chroot
{addr}:{port} inet n - n - {smtpd_max} smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
"""

POSTFIX_MAIN = """\
# written by bench/servers.py: Postfix {version} as a local-delivery MTA on {addr} only
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = {addr}
inet_protocols = ipv4
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination = bench.test
mynetworks = 127.0.0.0/8
relay_domains =
mail_spool_directory = {dir}/mail
mailbox_size_limit = 0
alias_maps =
alias_database =
biff = no
maillog_file = {dir}/maillog
"""


class Postfix(Server):
    kind = "postfix"
    label = "Postfix"
    QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

    def __init__(self, run_dir, smtpd_max=100, name="postfix", main_extra=()):
        super().__init__(run_dir, name)
        self.main_extra = list(main_extra)  # lines after POSTFIX_MAIN (e.g. relayhost)
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "mail")
        self.log_path = os.path.join(self.dir, "maillog")
        self.port = procs.free_ports(1)[0]
        self.smtpd_max = smtpd_max
        for d in ("etc", "queue", "data", "mail"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        os.chmod(self.spool, 0o1777)
        os.chown(os.path.join(self.dir, "data"), pwd.getpwnam("postfix").pw_uid, -1)
        self.version = self._postconf("mail_version")
        self.master_exe = os.path.join(self._postconf("daemon_directory"), "master")
        self.started_once = False
        self.wrap = []  # a command the master is started under (e.g. unshare ...)

    def _postconf(self, name):
        r = subprocess.run(["postconf", "-d", "-h", name], capture_output=True, text=True,
                           timeout=30)
        return r.stdout.strip()

    def mbox(self, user):
        return os.path.join(self.spool, user)

    def write_conf(self):
        write(os.path.join(self.etc, "main.cf"),
              POSTFIX_MAIN.format(dir=self.dir, addr=HOST, version=self.version)
              + "".join(ln + "\n" for ln in self.main_extra))
        write(os.path.join(self.etc, "master.cf"),
              POSTFIX_MASTER.format(addr=HOST, port=self.port, smtpd_max=self.smtpd_max))

    def _cmd(self, *args, timeout=60):
        return subprocess.run(["postfix", "-c", self.etc] + list(args), capture_output=True,
                              text=True, timeout=timeout)

    def pidfile(self):
        return os.path.join(self.dir, "queue", "pid", "master.pid")

    def owns(self, pid):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            return False
        return ("MAIL_CONFIG=" + self.etc).encode() in env

    def start(self):
        """The first start goes through postfix(1) (it creates and checks the queue
        directories, slowly); restarts run the master directly, as postfix-script does."""
        self.write_conf()
        try:
            if not self.started_once:
                cmd = ["postfix", "-c", self.etc, "start"]
            else:
                cmd = [self.master_exe, "-w"]
            r = subprocess.run(self.wrap + cmd, capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MAIL_CONFIG=self.etc))
            err = "exit %d: %s" % (r.returncode, r.stderr.strip())
        except subprocess.TimeoutExpired:
            err = "postfix start timed out"
        if not self._read_pidfile(self.pidfile(), START_TIMEOUT):
            raise RuntimeError("Postfix did not start (%s)\n%s" % (err, self.log_tail()))
        self.started_once = True
        self._wait_port("Postfix")

    def stop(self):
        """SIGTERM to the master (what postfix stop does), then whatever is left."""
        if self.pid is None and not self._read_pidfile(self.pidfile(), 0):
            return
        pids = self.pids()
        try:
            os.kill(self.pid, 15)
        except OSError:
            pass
        if procs.wait_gone(pids, STOP_GRACE):
            self.pid = self.started = None
            return
        super().stop()
        for p in pids:  # children that the master left behind
            if procs.alive(p):
                procs.kill_tree(p, grace=1)

    def purge_queue(self):
        subprocess.run(["postsuper", "-c", self.etc, "-d", "ALL"], capture_output=True,
                       timeout=60)

    def queue_count(self):
        n = 0
        for q in self.QUEUES:
            for _, _, files in os.walk(os.path.join(self.dir, "queue", q)):
                n += len(files)
        return n


# --------------------------------------------------------------------------- Dovecot

DOVECOT_CONF = """\
# written by bench/servers.py: Dovecot {version}, POP3 only, on {addr} only
instance_name = dmail-bench-{port}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = pop3
listen = {addr}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = mbox:~/mail:INBOX={dir}/mail/%u
mail_fsync = always
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = {limit}
default_process_limit = {procs}
default_client_limit = {clients}
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {addr}
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  # Dovecot's documented high-performance login mode: a few long-lived pop3-login
  # processes instead of one per connection (the default)
  service_count = 0
  process_min_avail = {ncpu}
  client_limit = {clients}
}}
service pop3 {{
  process_limit = {procs}
}}
service anvil {{
  client_limit = {clients}
}}
service auth {{
  client_limit = {clients}
}}
"""


class Dovecot(Server):
    kind = "dovecot"
    label = "Dovecot"

    def __init__(self, run_dir, max_sessions=1000):
        super().__init__(run_dir, "dovecot")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.users_file = os.path.join(self.dir, "users")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.maildir = os.path.join(self.dir, "mail")
        self.port = procs.free_ports(1)[0]
        self.max_sessions = max_sessions
        for d in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        r = subprocess.run(["dovecot", "--version"], capture_output=True, text=True,
                           timeout=30)
        self.version = r.stdout.strip().split(" ")[0]

    def mbox(self, user):
        return os.path.join(self.maildir, user)

    def write_conf(self):
        _, uid, gid = mail_user()
        n = self.max_sessions
        write(self.conf, DOVECOT_CONF.format(
            version=self.version, addr=HOST, port=self.port, dir=self.dir, uid=uid, gid=gid,
            limit=max(10, n), procs=max(100, n + 100), clients=max(1000, 2 * n + 1000),
            ncpu=os.cpu_count() or 1))

    def start(self):
        self.write_conf()
        _, uid, gid = mail_user()
        for d in ("mail", "home"):
            chown_tree(os.path.join(self.dir, d), uid, gid)
        os.chown(self.users_file, 0, grp.getgrnam("dovecot").gr_gid)
        os.chmod(self.users_file, 0o640)
        # the daemon keeps its stdout/stderr: a file, not a pipe this process would wait on
        with open(os.path.join(self.dir, "start.out"), "w") as out:
            try:
                r = subprocess.run(["dovecot", "-c", self.conf], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=out, timeout=60,
                                   preexec_fn=procs.raise_nofile)
                err = "exit %d" % r.returncode
            except subprocess.TimeoutExpired:
                err = "dovecot -c timed out"
        if not self._read_pidfile(self.pidfile(), START_TIMEOUT):
            with open(os.path.join(self.dir, "start.out")) as f:
                raise RuntimeError("Dovecot did not start (%s): %s\n%s"
                                   % (err, f.read().strip(), self.log_tail()))
        self._wait_port("Dovecot")

    def pidfile(self):
        return os.path.join(self.dir, "run", "master.pid")

    def owns(self, pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            return False
        return self.conf.encode() in args

    def stop(self):
        if self.pid is None:
            self._read_pidfile(self.pidfile(), 0)
        super().stop()

    def warnings(self):
        """Dovecot's own warnings about its limits (it logs them at start-up)."""
        skip = ("Shutting down logging", "Killed with signal")
        return [ln for ln in self.log_tail(200000).splitlines()
                if ("Warning" in ln or "Error" in ln or "Fatal" in ln)
                and not any(s in ln for s in skip)]


# --------------------------------------------------------------------------- smtp-sink

SMTP_SINK = "/usr/sbin/smtp-sink"


class SmtpSink(Server):
    """Postfix's smtp-sink on a port of its own: 250 to everything, the text discarded,
    nothing written to disk. -c makes it print its counters ("sess=N quit=N mesg=N")
    after every event; count() reads the last mesg= from what was appended since."""

    kind = "smtp-sink"
    label = "smtp-sink"

    def __init__(self, run_dir, name="sink", backlog=1024):
        super().__init__(run_dir, name)
        self.port = procs.free_ports(1)[0]
        self.backlog = backlog
        self.log_path = os.path.join(self.dir, "counters.out")
        self._offset = 0
        self._rest = b""
        self.mesg = 0

    def start(self):
        self._offset, self._rest, self.mesg = 0, b"", 0
        self.spawn([SMTP_SINK, "-c", "-u", mail_user()[0], "-h", "sink.relay.test",
                    "%s:%d" % (HOST, self.port), str(self.backlog)], self.log_path,
                   preexec_fn=procs.raise_nofile, mode="wb")
        self._wait_port("smtp-sink")

    def count(self):
        """Messages (transactions) smtp-sink has answered 250 since it started."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return self.mesg
        self._offset += len(data)
        data = self._rest + data
        end = data.rfind(b"\r")
        if end < 0:
            self._rest = data[-4096:]
            return self.mesg
        self._rest = data[end + 1:][-4096:]
        i = data.rfind(b"mesg=", 0, end)
        if i >= 0:
            digits = data[i + 5:end].split()[0] if data[i + 5:end].split() else b""
            if digits.isdigit():
                self.mesg = int(digits)
        return self.mesg


# --------------------------------------------------------------------------- leftovers

def reap(record):
    """Stop a server a killed earlier run left behind (same pid and start time only)."""
    pid, started = record.get("pid"), record.get("started")
    if pid and started and procs.alive(pid, started):
        procs.kill_tree(pid, started, grace=STOP_GRACE)
        return True
    return False
