#!/usr/bin/python3
"""smtp_peer SCENARIO LOG [CERTDIR] - a real SMTP server on 127.0.0.1 for test_smtpc.

Listens on a free port, prints it on one line of stdout, then serves until killed (or its
stdin closes). Every byte a client sends (after TLS: the plaintext) is appended to LOG as
it arrives, and LOG.chunks gets one line per read: the first word of each line read, so
a test sees which commands came in one write (PIPELINING) and which one by one.

Most scenarios are aiosmtpd (python3-aiosmtpd) with the EHLO keywords adjusted:
  pipe        PIPELINING, SIZE 33554432, 8BITMIME
  plain       aiosmtpd as it is: SIZE, 8BITMIME, no PIPELINING
  pipe-dsn    pipe + DSN (its parameters are taken, not checked)
  dsn-rcpt2   pipe-dsn taking at most 2 recipients a transaction (452 4.5.3 beyond)
  small       SIZE 1000
  no8bit      pipe without 8BITMIME
  utf8        pipe + SMTPUTF8
  noehlo      EHLO refused with 502: HELO only
  tls         pipe + STARTTLS (CERTDIR/cert.pem, key.pem)
  tls-auth    tls + AUTH PLAIN LOGIN after STARTTLS (user "u", password "p")
  tls-login   tls + AUTH LOGIN only
  auth-notls  pipe + AUTH PLAIN LOGIN without TLS
Whatever the scenario, a recipient whose local part starts with "bad" gets 550 5.1.1 and
"busy" 450 4.2.1; a sender starting with "rej5" gets 554 5.7.1 at the end of DATA and
"rej4" 451 4.3.0; otherwise 250 2.0.0 "queued as 1234".

Others are plain asyncio, for what aiosmtpd cannot do:
  drop        greets, takes MAIL/RCPT/DATA, then drops the connection after 1000 octets of
              the message
  nodot       the same, but takes the whole message and never answers the final dot
  silent      accepts and never says a word
  badtls      offers STARTTLS, says 220 to it, then answers the handshake with plain text
  notls       offers STARTTLS, refuses it with 454
"""
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult

SCEN = sys.argv[1]
LOG = sys.argv[2]
CERTDIR = sys.argv[3] if len(sys.argv) > 3 else None
DSN_PARAMS = ("RET", "ENVID", "NOTIFY", "ORCPT")

EHLO = {  # scenario: (keywords added, keywords removed)
    "pipe": (["PIPELINING"], []),
    "plain": ([], []),
    "pipe-dsn": (["PIPELINING", "DSN"], []),
    "dsn-rcpt2": (["PIPELINING", "DSN"], []),
    "small": (["PIPELINING"], []),
    "no8bit": (["PIPELINING"], ["8BITMIME"]),
    "utf8": (["PIPELINING"], []),
    "noehlo": ([], []),
    "tls": (["PIPELINING"], []),
    "tls-auth": (["PIPELINING"], []),
    "tls-login": (["PIPELINING"], []),
    "auth-notls": (["PIPELINING"], []),
}


def record(data):
    with open(LOG, "ab") as f:
        f.write(data)
    words = [ln.split(b" ")[0].split(b":")[0] for ln in data.split(b"\r\n") if ln]
    with open(LOG + ".chunks", "ab") as f:
        f.write(b" ".join(words)[:200] + b"\n")


class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        add, remove = EHLO[SCEN]
        session.host_name = hostname  # this form of the hook must set it
        out = [r for r in responses[:-1] if r[4:].split(" ")[0] not in remove]
        out += ["250-" + k for k in add]
        return out + [responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("bad"):
            return "550 5.1.1 <%s>: no such user" % address
        if local.startswith("busy"):
            return "450 4.2.1 <%s>: mailbox busy" % address
        if SCEN == "dsn-rcpt2" and len(envelope.rcpt_tos) >= 2:
            return "452 4.5.3 Error: too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.mail_from.startswith("rej5"):
            return "554 5.7.1 content rejected"
        if envelope.mail_from.startswith("rej4"):
            return "451 4.3.0 try again later"
        return "250 2.0.0 queued as 1234"


class Peer(SMTP):
    def data_received(self, data):
        record(data)
        super().data_received(data)

    def _getparams(self, params):
        got = super()._getparams(params)
        if got is not None and SCEN in ("pipe-dsn", "dsn-rcpt2"):
            for k in DSN_PARAMS:
                got.pop(k, None)
        return got

    async def smtp_EHLO(self, arg):
        if SCEN == "noehlo":
            await self.push("502 5.5.1 EHLO not implemented")
            return
        await super().smtp_EHLO(arg)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"u" and auth_data.password == b"p"
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd sends the 535


def aiosmtpd_factory(loop):
    kw = {"hostname": "peer.test", "loop": loop}
    if SCEN == "small":
        kw["data_size_limit"] = 1000
    if SCEN == "utf8":
        kw["enable_SMTPUTF8"] = True
    if SCEN.startswith("tls"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(CERTDIR, "cert.pem"), os.path.join(CERTDIR, "key.pem"))
        kw["tls_context"] = ctx
    if SCEN in ("tls-auth", "tls-login", "auth-notls"):
        kw["authenticator"] = authenticator
        kw["auth_require_tls"] = SCEN != "auth-notls"
    if SCEN == "tls-login":
        kw["auth_exclude_mechanism"] = ["PLAIN"]
    return lambda: Peer(Handler(), **kw)


async def raw_session(reader, writer):
    """drop, nodot, silent: the plain asyncio peers."""
    if SCEN == "silent":
        while await reader.read(4096):
            pass
        return
    writer.write(b"220 raw.test ESMTP\r\n")
    while True:
        line = await reader.readline()
        if not line:
            return
        record(line)
        cmd = line[:4].upper()
        if cmd == b"EHLO":
            tls = b"250-STARTTLS\r\n" if SCEN in ("badtls", "notls") else b""
            writer.write(b"250-raw.test\r\n" + tls + b"250-PIPELINING\r\n250 8BITMIME\r\n")
        elif cmd == b"STAR" and SCEN == "badtls":
            writer.write(b"220 go ahead\r\n")
            await writer.drain()
            await reader.read(1)  # the ClientHello's first bytes
            writer.write(b"this is not TLS\r\n")
            await writer.drain()
            while await reader.read(4096):
                pass
            return
        elif cmd == b"STAR":
            writer.write(b"454 4.7.0 TLS not available now\r\n")
        elif cmd == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            writer.close()
            return
        elif cmd == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            n = 0
            while True:
                body = await reader.readline()
                if not body:
                    return
                n += len(body)
                if SCEN == "drop" and n > 1000:
                    record(b"(dropped)\r\n")
                    writer.transport.abort()
                    return
                if body == b".\r\n":
                    break
            record(b"(message of %d octets)\r\n" % n)
            while SCEN == "nodot" and await reader.read(4096):
                pass
            if SCEN == "nodot":
                return
            writer.write(b"250 ok\r\n")
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()


async def main():
    loop = asyncio.get_running_loop()
    if SCEN in ("drop", "nodot", "silent", "badtls", "notls"):
        server = await asyncio.start_server(raw_session, "127.0.0.1", 0, limit=1 << 20)
    elif SCEN in EHLO:
        server = await loop.create_server(aiosmtpd_factory(loop), "127.0.0.1", 0)
    else:
        sys.exit("smtp_peer: unknown scenario " + SCEN)
    print(server.sockets[0].getsockname()[1], flush=True)
    # serve until killed or until the test's end of the stdin pipe goes
    await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
