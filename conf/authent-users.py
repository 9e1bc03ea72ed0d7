#!/usr/bin/python3
"""authent-users.py - an example authent_process helper for dmail (authent_method external).

It speaks DMail's external-authentication protocol on stdin/stdout (see dmail.conf(5),
EXTERNAL AUTHENTICATION) and answers from a flat users file, one user a line:

    user[@domain]:crypt-hash[:drop-file[:forwards]]

    alice:$y$j9T$...                     dropfile DROP_ROOT/alice
    bob@example.net:$6$...:/var/mail/bob  its own dropfile
    carol:$y$...::carol@elsewhere.example,$user   forwarded, a copy kept

Usage: authent-users.py USERS_FILE [DROP_ROOT]   (DROP_ROOT default /var/spool/dmail/drop)

Requests:  check <user> <password> [<client-ip>]  ->  +OK <user> <drop> 0 [fwd="..."]
           lookup <user>                          ->  the same, without a password
           exit                                   ->  the helper ends
Answers -ERR for an unknown user or a wrong password. The file is read again when it
changes. User names are case-insensitive. Old DES crypt hashes (13 characters) are refused
with a message on stderr: rehash them (tellpop passwd USER).

To front LDAP or SQL, keep this loop and replace find() with a query; answer -DEAD when the
database cannot be reached (dmail then answers a temporary failure, never "no such user").
Never print the password.
"""

import ctypes
import ctypes.util
import hmac
import os
import sys

_lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
_lib.crypt.restype = ctypes.c_char_p
_lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]


def log(msg):
    sys.stderr.write("authent-users: %s\n" % msg)
    sys.stderr.flush()


class Users:
    def __init__(self, path, root):
        self.path, self.root, self.mtime, self.users = path, root.rstrip("/"), None, {}

    def load(self):
        try:
            st = os.stat(self.path)
        except OSError as e:
            log("cannot read %s: %s" % (self.path, e.strerror))
            return False
        if st.st_mtime_ns == self.mtime:
            return True
        users = {}
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                parts = line.split(":", 3)
                if len(parts) < 2 or not parts[0] or not parts[1]:
                    log("%s:%d: not user:hash[:drop[:forwards]]" % (self.path, n))
                    continue
                name, h = parts[0].lower(), parts[1]
                if len(h) == 13 and not h.startswith("$"):
                    log("%s:%d: %s has an old DES crypt hash, refused: rehash it with "
                        "`tellpop passwd %s`" % (self.path, n, name, name))
                    continue
                drop = parts[2] if len(parts) > 2 and parts[2] else "%s/%s" % (self.root, name)
                fwd = parts[3] if len(parts) > 3 else ""
                users.setdefault(name, (h, drop, fwd))
        self.users, self.mtime = users, st.st_mtime_ns
        return True

    def find(self, user):
        return self.users.get(user.lower())


def answer(name, u):
    _, drop, fwd = u
    line = "+OK %s %s 0" % (name.lower(), drop)
    if fwd:
        line += ' fwd="%s"' % fwd.replace('"', "")
    return line


def main():
    if len(sys.argv) < 2:
        log("usage: authent-users.py USERS_FILE [DROP_ROOT]")
        return 64
    users = Users(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/var/spool/dmail/drop")
    for raw in sys.stdin.buffer:
        words = raw.decode("utf-8", "replace").split()
        if not words:
            print("-ERR empty request", flush=True)
            continue
        cmd = words[0].lower()
        if cmd in ("exit", "quit"):
            return 0
        if not users.load():
            print("-DEAD users file unreadable", flush=True)
            continue
        if cmd == "lookup" and len(words) == 2:
            u = users.find(words[1])
            print(answer(words[1], u) if u else "-ERR no such user", flush=True)
        elif cmd == "check" and len(words) in (3, 4):
            u = users.find(words[1])
            ok = False
            if u:
                got = _lib.crypt(words[2].encode(), u[0].encode())
                ok = got is not None and hmac.compare_digest(got, u[0].encode())
            print(answer(words[1], u) if ok else "-ERR bad user or password", flush=True)
        else:
            print("-ERR unknown request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
