"""A small SMTP sink in asyncio that timestamps what it accepts, for the relay
workload's latency and many-recipient figures (the volume runs use Postfix's smtp-sink,
which is faster but records nothing per message).

It answers EHLO (PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SIZE; no STARTTLS), 250 to
every MAIL and RCPT, 354/250 to DATA, and keeps one Txn per transaction: the monotonic
time it wrote its 250 to the final dot, the recipients, the connection number, and the
message's Subject. waiter(subject) lets a client wait for a given message.
Every read has a timeout, lines and messages a size bound.
"""

import asyncio
import time

HOST = "127.0.0.1"
IO_TIMEOUT = 30.0
MAX_LINE = 4096
MAX_RCPTS = 100000
MAX_DATA = 50 << 20


class Txn:
    __slots__ = ("t", "rcpts", "conn", "subject", "data")

    def __init__(self, t, rcpts, conn, subject, data=None):
        self.t, self.rcpts, self.conn, self.subject = t, rcpts, conn, subject
        self.data = data  # the text (dot-unstuffed, CRLF), when the sink keeps it


class Sink:
    def __init__(self, port, keep=False):
        self.port = port
        self.keep = keep
        self.txns = []
        self.conns = 0
        self.errors = []
        self._waiters = {}  # subject -> asyncio.Future of the Txn
        self._server = None
        self._writers = set()

    async def start(self):
        self._server = await asyncio.start_server(self._session, HOST, self.port,
                                                  limit=MAX_LINE * 2, backlog=256)

    async def stop(self):
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):  # connections an MTA keeps for reuse
                w.close()
            await self._server.wait_closed()
            self._server = None

    def waiter(self, subject):
        """A future that gets the Txn whose Subject is subject (make it before sending)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters[subject] = fut
        return fut

    async def _session(self, r, w):
        self.conns += 1
        conn = self.conns
        self._writers.add(w)
        try:
            await self._dialogue(r, w, conn)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError) as e:
            self.errors.append("connection %d: %r" % (conn, e))
        finally:
            self._writers.discard(w)
            w.close()

    async def _dialogue(self, r, w, conn):
        w.write(b"220 sink.relay.test ESMTP bench sink\r\n")
        rcpts, in_mail = [], False
        while True:
            line = await asyncio.wait_for(r.readline(), IO_TIMEOUT)
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                w.write(b"250-sink.relay.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                        b"250-ENHANCEDSTATUSCODES\r\n250 SIZE 104857600\r\n")
            elif verb == b"HELO":
                w.write(b"250 sink.relay.test\r\n")
            elif verb == b"MAIL":
                rcpts, in_mail = [], True
                w.write(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                if not in_mail or len(rcpts) >= MAX_RCPTS:
                    w.write(b"452 4.5.3 Too many recipients\r\n" if in_mail
                            else b"503 5.5.1 MAIL first\r\n")
                    continue
                a, b = line.find(b"<"), line.find(b">")
                rcpts.append(line[a + 1:b].decode("utf-8", "replace").lower()
                             if 0 <= a < b else "")
                w.write(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                if not rcpts:
                    w.write(b"503 5.5.1 RCPT first\r\n")
                    continue
                w.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                subject, data = await self._data(r)
                t = time.monotonic()
                w.write(b"250 2.0.0 Ok: queued\r\n")
                txn = Txn(t, rcpts, conn, subject, data)
                self.txns.append(txn)
                fut = self._waiters.pop(subject, None)
                if fut is not None and not fut.done():
                    fut.set_result(txn)
                rcpts, in_mail = [], False
            elif verb == b"RSET":
                rcpts, in_mail = [], False
                w.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"NOOP":
                w.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                w.write(b"221 2.0.0 Bye\r\n")
                await w.drain()
                return
            else:
                w.write(b"502 5.5.2 Not implemented\r\n")
            await w.drain()

    async def _data(self, r):
        """Read the text up to the final dot; returns its Subject ("" if none) and the
        text itself if the sink keeps it (else None)."""
        subject, in_header, size = "", True, 0
        kept = [] if self.keep else None
        while True:
            line = await asyncio.wait_for(r.readline(), IO_TIMEOUT)
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if line == b".\r\n":
                return subject, (b"".join(kept) if kept is not None else None)
            if kept is not None:
                kept.append(line[1:] if line.startswith(b"..") else line)
            size += len(line)
            if size > MAX_DATA:
                raise ValueError("message larger than %d octets" % MAX_DATA)
            if in_header:
                if line in (b"\r\n", b"\n"):
                    in_header = False
                elif line[:8].lower() == b"subject:":
                    subject = line[8:].strip().decode("utf-8", "replace")
