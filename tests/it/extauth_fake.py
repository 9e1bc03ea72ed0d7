#!/usr/bin/python3
"""A misbehaving authent_process helper for tests/it/test_extauth.py.

extauth_fake.py LOG ANSWER_OK_DROP_ROOT: every request's user name (never the password)
is appended to LOG; users decide the behaviour:
  dead*   -> -DEAD database down
  hang*   -> never answers (the request line is read, nothing written)
  crash*  -> the helper exits at once
  garbage -> a line that is not the protocol
  huge*   -> a 100 KB "+OK" line (no newline for 100 KB)
  nul*    -> "+OK" with NUL bytes in it
  other   -> +OK <user> <root>/<local part> 0  for check with password "pw" and lookup
"""
import os
import sys
import time

log, root = sys.argv[1], sys.argv[2]
for raw in sys.stdin:
    w = raw.split()
    if not w:
        continue
    if w[0] == "exit":
        break
    user = w[1] if len(w) > 1 else ""
    with open(log, "a") as f:
        f.write("%d %s %s %d\n" % (os.getpid(), w[0], user, len(w)))
    if user.startswith("dead"):
        print("-DEAD database down", flush=True)
    elif user.startswith("hang"):
        time.sleep(3600)
    elif user.startswith("crash"):
        sys.exit(3)
    elif user.startswith("garbage"):
        print("hello there", flush=True)
    elif user.startswith("huge"):
        print("+OK %s %s/%s 0 %s" % (user, root, user, "x" * 100000), flush=True)
    elif user.startswith("nul"):
        sys.stdout.write("+OK %s %s/%s\0\0 0\n" % (user, root, user))
        sys.stdout.flush()
    elif w[0] == "lookup" or (w[0] == "check" and w[2] == "pw"):
        print("+DATA something", flush=True)
        print("+OK %s %s/%s 0" % (user, root, user.split("@")[0]), flush=True)
    else:
        print("-ERR bad password", flush=True)
