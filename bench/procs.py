"""Processes: memory of a server's process tree, bounded waits, killing, clean-up.

Everything here reads /proc directly (no ps, no fork), so sampling memory during a
run costs the machine as little as possible.
"""

import os
import resource
import shutil
import signal
import sys
import time

# the port helpers are the integration tests' (tests/it/dmail_site.py, no pytest needed)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "it"))
from dmail_site import free_ports, port_open  # noqa: E402,F401 (procs.free_ports, procs.port_open)

# Descriptors the harness and the servers it starts may hold (10,000 idle sessions
# need one each on both sides, plus Dovecot's pipes).
NOFILE = 65536


def raise_nofile(n=NOFILE):
    """Raise RLIMIT_NOFILE of this process to n (root may also raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want_hard = max(hard, n) if os.geteuid() == 0 else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, want_hard), want_hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _stat(pid):
    """(ppid, starttime) of pid from /proc/PID/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may contain anything: split after the last ')'
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[1]), int(rest[19])


def start_time(pid):
    """The kernel start time of pid (clock ticks since boot), or None: with the pid it
    identifies one process even after the pid is reused."""
    st = _stat(pid)
    return st[1] if st else None


def alive(pid, started=None):
    """True if pid exists (and, when started is given, is still the same process)."""
    st = _stat(pid)
    if st is None:
        return False
    if started is not None and st[1] != started:
        return False
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def tree(root):
    """The pids of root and all of its descendants (root first); [] if root is gone."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
    if _stat(root) is None:
        return []
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def mem(pids):
    """(processes, rss_kb, pss_kb) summed over pids from /proc/PID/smaps_rollup."""
    n = rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
                data = f.read()
        except OSError:
            continue
        got = False
        for line in data.split(b"\n"):
            if line.startswith(b"Rss:"):
                rss += int(line.split()[1])
                got = True
            elif line.startswith(b"Pss:"):
                pss += int(line.split()[1])
        if got:
            n += 1
    return n, rss, pss


def kill_tree(root, started=None, grace=10.0, sig=signal.SIGTERM):
    """Stop root's whole tree: sig to root alone first (a master stops its children in
    order), then after half the grace to everything left, then SIGKILL. Returns the
    number of processes that had to be killed with SIGKILL."""
    if not alive(root, started):
        return 0
    pids = tree(root)
    for targets, wait in (([root], grace / 2), (pids, grace / 2)):
        for p in targets:
            if alive(p):
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
        if wait_gone(pids, wait):
            return 0
    left = [p for p in pids if alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    wait_gone(left, 10.0)
    return len(left)


def wait_gone(pids, timeout):
    """Wait until none of pids is alive; True if they all went within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


class Deadline:
    """The whole run's time budget: every wait in the harness is also bounded by it."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self):
        return self.end - time.monotonic()

    def cap(self, timeout):
        """timeout, but never past the end of the run."""
        return max(0.0, min(timeout, self.left()))

    def check(self, what):
        if self.left() <= 0:
            raise TimeoutError("the run's time budget (%d s) ran out during %s"
                               % (self.seconds, what))


class Cleanup:
    """A stack of clean-up actions run in reverse order, once, whatever happens."""

    def __init__(self):
        self.actions = []

    def push(self, name, fn):
        self.actions.append((name, fn))
        return fn

    def remove(self, fn):
        self.actions = [(n, f) for (n, f) in self.actions if f is not fn]

    def run(self):
        errors = []
        while self.actions:
            name, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up the rest
                errors.append("%s: %r" % (name, e))
        return errors


def remove_tree(path, tries=3):
    """rm -rf path; servers that just exited may still be dropping files: retry."""
    for _ in range(tries):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return True
        time.sleep(1.0)
    return False


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C so every finally runs."""


def install_signal_handlers():
    def handler(signum, frame):
        raise Interrupted("signal %d" % signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    # also when started in the background of a shell that ignores SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu(pids):
    """CPU seconds (user + system) of pids and of their children they have reaped, from
    /proc/PID/stat: the difference of two readings is what a process tree spent between
    them, the processes that ended in between included (their parent reaped them)."""
    ticks = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        ticks += sum(int(x) for x in rest[11:15])  # utime stime cutime cstime
    return ticks / CLK_TCK


def wait_usage(p):
    """Popen p's exit, if it has exited, reaped with wait4: (returncode, CPU seconds of
    user + system), else None. p.returncode is set, so p.poll() and p.wait() agree."""
    if p.returncode is not None:
        return None
    try:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if pid == 0:
        return None
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_utime + ru.ru_stime
