"""PIPELINING (RFC 2920): any number of pipelined commands, replies strictly in order,
none lost -- also when the client does not read while it writes."""

import threading

from dmail_site import DOMAIN, RawSMTP, make_message, to_wire


def test_pipelined_transaction(dsmtp):
    msgid, text = make_message(to="alice, bob")
    with RawSMTP(dsmtp.smtp_port) as c:
        assert "PIPELINING" in c.ehlo()
        c.send("MAIL FROM:<s@remote.example>\r\n"
               "RCPT TO:<alice@%s>\r\n"
               "RCPT TO:<nobody@%s>\r\n"
               "RCPT TO:<bob@%s>\r\n"
               "RCPT TO:<x@relay.example>\r\n"
               "DATA\r\n" % (DOMAIN, DOMAIN, DOMAIN))
        got = [c.reply() for _ in range(6)]
        codes = [g[0] for g in got]
        assert codes == [250, 250, 550, 250, 554, 354], got
        assert got[2][1][-1].startswith("5.1.1")
        c.send(to_wire(text) + b".\r\nNOOP\r\nQUIT\r\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 221]
        assert c.wait_closed(3)
    assert dsmtp.msgids("alice") == [msgid]
    assert dsmtp.msgids("bob") == [msgid]


def test_pipelined_failed_mail_then_rcpt_data(dsmtp):
    """MAIL refused -> the pipelined RCPT and DATA get 503, and no data is taken."""
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.send("MAIL FROM:<s@remote.example> SIZE=999999999999\r\n"
               "RCPT TO:<alice@%s>\r\nDATA\r\nNOOP\r\n" % DOMAIN)
        codes = [c.reply()[0] for _ in range(4)]
        assert codes == [552, 503, 503, 250], codes
    assert dsmtp.messages("alice") == []


def test_pipelined_data_without_valid_rcpt(dsmtp):
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<nobody@%s>\r\nDATA\r\n"
               "Subject: should not be data\r\n\r\n.\r\nNOOP\r\n" % DOMAIN)
        got = [c.reply() for _ in range(3)]
        assert [g[0] for g in got][:2] == [250, 550], got
        assert got[2][0] in (503, 554), got
        # the message lines that followed are commands now: "Subject:..." unknown (500),
        # the empty line and "." are errors too; the NOOP must still be answered
        rest = []
        while True:
            code, lines = c.reply()
            rest.append(code)
            if code == 250:
                break
            assert code >= 500 and len(rest) < 5, rest
    assert dsmtp.messages("alice") == []


def test_many_pipelined_commands_in_order(dsmtp_factory):
    n = 5000
    dsmtp = dsmtp_factory(junk_command_limit=0)  # 5,000 NOOP/HELP: junk by default
    with RawSMTP(dsmtp.smtp_port, timeout=30) as c:
        c.ehlo()
        cmds = []
        for i in range(n):
            cmds.append(("NOOP %d\r\n" % i, 250) if i % 3 else ("HELP\r\n", 214))
        blob = "".join(x for x, _ in cmds).encode()
        # write everything without reading (another thread), so the server must cope
        # with a client that reads late: back-pressure, nothing lost or reordered
        err = []

        def writer():
            try:
                c.sock.sendall(blob + b"QUIT\r\n")
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        for i, (_, want) in enumerate(cmds):
            code, lines = c.reply()
            assert code == want, "reply %d: %d %s" % (i, code, lines)
        assert c.reply()[0] == 221
        t.join(30)
        assert not err, err


def test_pipelined_after_end_of_data(dsmtp):
    """Message content and the next transaction's commands in one write (RFC 2920
    allows the content as the first "command" of a group): after the final dot
    everything is commands again."""
    ids = []
    group = "MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@%s>\r\nDATA\r\n" % DOMAIN
    with RawSMTP(dsmtp.smtp_port) as c:
        c.ehlo()
        c.send(group)
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        for i in range(3):
            msgid, text = make_message()
            ids.append(msgid)
            last = i == 2
            c.send(to_wire(text) + b".\r\n" + (b"RSET\r\n" if last else group.encode()))
            want = [250, 250] if last else [250, 250, 250, 354]
            assert [c.reply()[0] for _ in want] == want
    assert dsmtp.msgids("alice") == ids
