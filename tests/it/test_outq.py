"""The outbound scheduler's own bounds: queue_active_max messages in delivery at once,
the rest taken as room frees up (not at the next queue_retry)."""

import smtplib

from dmail_site import DOMAIN, HOST, dsn_fields, dsn_reports, free_ports, sendmail, wait_for


def test_queue_active_max_takes_the_rest_when_room_frees(dsmtp_factory, sink):
    port, handler = sink
    handler.delay = 0.1
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, queue_active_max=2,
                         queue_retry=3600)
    for i in range(10):
        sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "r%d@far.example" % i],
                 b"Subject: m%d\n\nx\n" % i)
    assert wait_for(lambda: len(handler.envelopes) == 10, 30), (len(handler.envelopes),
                                                                 ours.log()[-3000:])
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == sorted(
        "r%d@far.example" % i for i in range(10))
    assert wait_for(lambda: not ours.queue_files(), 10), ours.queue_files()


def stat_value(site, name):
    rc, out, err = site.tellsmtp("stats", "-p")
    assert rc == 0, err
    for line in out.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("%s not in %s" % (name, out))


def test_suspend_holds_outbound_and_resume_sends(dsmtp_factory, sink):
    port, handler = sink
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port)
    rc, out, err = ours.tellsmtp("suspend")
    assert rc == 0 and "suspended" in out, (out, err)
    assert "outbound suspended" in ours.tellsmtp("status")[1]
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "x@far.example"], b"Subject: s\n\nx\n")
    # local mail still goes while outbound waits
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "bob@" + DOMAIN], b"Subject: l\n\nx\n")
    assert wait_for(lambda: ours.messages("bob"), 10)
    assert not wait_for(lambda: handler.envelopes, 2)
    assert len(ours.queue_files()) == 1
    assert ours.tellsmtp("flush")[0] == 0
    assert wait_for(lambda: stat_value(ours, "dsmtp_queue_messages") == 1, 10)
    assert not wait_for(lambda: handler.envelopes, 1)
    rc, out, err = ours.tellsmtp("resume")
    assert rc == 0 and "resumed" in out, (out, err)
    assert "outbound running" in ours.tellsmtp("status")[1]
    assert wait_for(lambda: len(handler.envelopes) == 1, 20), ours.log()[-2000:]
    assert wait_for(lambda: not ours.queue_files(), 10)
    assert "outbound delivery suspended by the control socket" in ours.log()


def test_resume_forgets_dead_destinations(dsmtp_factory, sink_factory):
    port = free_ports(1)[0]
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, queue_retry=3600)
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "x@far.example"], b"Subject: d\n\nx\n")
    assert wait_for(lambda: "status=deferred" in ours.log(), 20), ours.log()
    # logged, then written back: the flush must find the file free again
    assert wait_for(lambda: b"4.4.1" in open(ours.queue_files()[0], "rb").read(), 10)
    _, handler = sink_factory(port=port)
    # still dead: a flush defers it again without a connection
    assert ours.tellsmtp("flush")[0] == 0
    assert wait_for(lambda: ours.log().count("status=deferred") == 2, 20), ours.log()
    assert handler.envelopes == []
    assert ours.tellsmtp("resume")[0] == 0
    assert ours.tellsmtp("flush")[0] == 0
    assert wait_for(lambda: len(handler.envelopes) == 1, 20), ours.log()[-2000:]


def test_utf8_address_needs_smtputf8_from_the_next_hop(dsmtp_factory, sink_factory):
    for utf8 in (True, False):
        port, handler = sink_factory(enable_SMTPUTF8=utf8)
        ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, forward_from_ip="127.0.0.0/8")
        with smtplib.SMTP(HOST, ours.smtp_port, timeout=20) as s:
            s.ehlo()
            refused = s.sendmail("alice@" + DOMAIN, ["j\u00fcrgen@far.example"],
                                 b"Subject: u\r\n\r\nx\r\n", mail_options=["SMTPUTF8"])
            assert refused == {}
        if utf8:
            assert wait_for(lambda: len(handler.envelopes) == 1, 20), ours.log()[-2000:]
            assert handler.envelopes[0].rcpt_tos == ["j\u00fcrgen@far.example"]
            assert "SMTPUTF8" in handler.envelopes[0].mail_options
        else:
            assert wait_for(lambda: dsn_reports(ours, "alice"), 20), ours.log()[-2000:]
            st = dsn_fields(dsn_reports(ours, "alice")[0])[1]
            assert st[0]["Status"] == "5.6.7", st
            assert handler.envelopes == []


def test_showsend_and_reuse_counters(dsmtp_factory, sink):
    port, handler = sink
    handler.delay = 1.5
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, smtp_out_per_domain=1)
    rc, out, _ = ours.tellsmtp("showsend")
    assert rc == 0 and "0 deliveries in progress" in out, out
    for i in range(3):
        sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "r%d@far.example" % i],
                 b"Subject: m\n\n" + b"y" * 1000 + b"\n")

    seen = []

    def sending():
        seen.append(ours.tellsmtp("showsend")[1])
        return "state=sending" in seen[-1]

    assert wait_for(sending, 10), ours.log()[-2000:]
    out = seen[-1]
    line = [ln for ln in out.splitlines() if ln.startswith("[127.0.0.1]:%d " % port)][0]
    assert "relay=127.0.0.1[127.0.0.1]:%d" % port in line, line
    assert " tls=" in line and " age=" in line and "bytes=" in line, line
    assert int(line.split("bytes=")[1].split()[0]) >= 1000, line
    assert "1 deliveries in progress" in out, out
    assert wait_for(lambda: len(handler.envelopes) == 3, 30), ours.log()[-2000:]
    assert wait_for(lambda: "0 deliveries" in ours.tellsmtp("showsend")[1], 10)
    sessions = stat_value(ours, "dsmtp_outbound_sessions_total")
    reused = stat_value(ours, "dsmtp_outbound_reused_total")
    assert sessions + reused == 3 and reused >= 1, (sessions, reused)
    ours.tellsmtp("flush")
    assert wait_for(lambda: stat_value(ours, "dsmtp_queue_messages") == 0, 10)
    assert stat_value(ours, "dsmtp_queue_oldest_seconds") == 0


def test_many_recipients_split_by_smtp_out_rcpt_max_over_one_session(dsmtp_factory, sink):
    port, handler = sink
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, smtp_out_rcpt_max=50,
                         max_rcpts=1000)
    rcpts = ["u%03d@far.example" % i for i in range(120)]
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN] + rcpts, b"Subject: many\n\nx\n")
    assert wait_for(lambda: sum(len(e.rcpt_tos) for e in handler.envelopes) == 120, 30), \
        ours.log()[-2000:]
    assert sorted(len(e.rcpt_tos) for e in handler.envelopes) == [20, 50, 50]
    assert sorted(r for e in handler.envelopes for r in e.rcpt_tos) == rcpts
    assert stat_value(ours, "dsmtp_outbound_sessions_total") == 1
    assert stat_value(ours, "dsmtp_outbound_reused_total") == 2
    assert wait_for(lambda: not ours.queue_files(), 10)


def test_kill9_with_a_thousand_relayed_in_flight(dsmtp_factory, sink):
    """kill -9 while 1,000 relayed messages go out; after the restart every one reaches
    the sink. A message whose 250 came but was not yet recorded goes again (at least
    once): their number is printed and bounded."""
    port, handler = sink
    handler.delay = 0.02  # 50 messages/s out: most are still queued after submission
    n = 1000
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, forward_from_ip="127.0.0.0/8")
    with smtplib.SMTP(HOST, ours.smtp_port, timeout=60) as s:
        for i in range(n):
            assert s.sendmail("alice@" + DOMAIN, ["r@far.example"],
                              "Subject: k%04d\r\n\r\nx\r\n" % i) == {}
    assert wait_for(lambda: len(handler.envelopes) >= 10, 60), ours.log()[-2000:]
    at_kill = len(handler.envelopes)
    ours.kill9()
    assert at_kill < n, "all delivered before the kill: nothing was in flight"
    handler.delay = 0
    ours.start()

    def subjects():
        return [e.content.split(b"Subject: ")[1][:5] for e in list(handler.envelopes)]

    assert wait_for(lambda: len(set(subjects())) == n, 120), (len(set(subjects())),
                                                               ours.log()[-2000:])
    assert wait_for(lambda: not ours.queue_files(), 20), len(ours.queue_files())
    dups = len(subjects()) - n
    print("kill -9 with %d of %d delivered: %d delivered twice" % (at_kill, n, dups))
    assert dups <= 20, dups


def test_4xx_then_2xx_delivered_once(dsmtp_factory, sink):
    port, handler = sink
    tries = []

    def reply(envelope):
        tries.append(envelope.rcpt_tos)
        return "451 4.3.0 try again later" if len(tries) == 1 else None

    handler.reply = reply
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, queue_retry=1)
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "x@far.example"], b"Subject: t\n\nx\n")
    assert wait_for(lambda: len(handler.envelopes) == 1, 30), ours.log()[-2000:]
    assert wait_for(lambda: not ours.queue_files(), 10)
    assert len(tries) == 2
    log = ours.log()
    assert 'dsn=4.3.0 status=deferred reply="451 4.3.0 try again later"' in log, log[-2000:]
    assert log.count("status=sent") == 1
    assert dsn_reports(ours, "alice") == []


def test_smtp_out_per_domain_bounds_parallel_sessions(dsmtp_factory, sink):
    port, handler = sink
    handler.delay = 0.5
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, smtp_out_per_domain=3)
    for i in range(9):
        sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "r%d@far.example" % i],
                 b"Subject: p\n\nx\n")
    assert wait_for(lambda: len(handler.envelopes) == 9, 30), ours.log()[-2000:]
    assert handler.max_inflight == 3, handler.max_inflight
    assert stat_value(ours, "dsmtp_outbound_sessions_total") <= 9


def test_one_message_fans_out_over_parallel_sessions(dsmtp_factory, sink):
    """One XVERP message to 24 recipients at one relay (24 transactions, as a list's post
    is): they go out over smtp_out_per_domain sessions at once, never more, not one after
    the other over one session; each recipient once."""
    port, handler = sink
    handler.delay = 0.3
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, smtp_out_per_domain=4,
                         forward_from_ip="127.0.0.0/8")
    rcpts = ["m%02d@far%d.example" % (i, i % 3) for i in range(24)]
    with smtplib.SMTP(HOST, ours.smtp_port, timeout=20) as s:
        assert s.sendmail("list-bounces@" + DOMAIN, rcpts, "Subject: fan\r\n\r\nx\r\n",
                          mail_options=["XVERP"]) == {}
    assert wait_for(lambda: len(handler.envelopes) == 24, 30), ours.log()[-2000:]
    assert handler.max_inflight == 4, handler.max_inflight
    got = sorted(r for e in handler.envelopes for r in e.rcpt_tos)
    assert got == sorted(rcpts)
    assert all(e.mail_from.startswith("list-bounces+") for e in handler.envelopes)


def test_relayed_message_goes_out_without_a_queue_scan(dsmtp_factory, sink):
    """A queue file whose recipients are all remote goes to outbound delivery as it is
    written (outq_offer), from SMTP and from sendmail alike."""
    port, handler = sink
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, forward_from_ip="127.0.0.0/8",
                         queue_retry=3600)
    with smtplib.SMTP(HOST, ours.smtp_port, timeout=20) as s:
        assert s.sendmail("alice@" + DOMAIN, ["a@far.example"], "Subject: o\r\n\r\nx\r\n") == {}
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "b@far.example"], b"Subject: p\n\nx\n")
    assert wait_for(lambda: len(handler.envelopes) == 2, 20), ours.log()[-2000:]
    assert ours.log().count("taken as written rcpts=1") == 2, ours.log()[-3000:]
    assert wait_for(lambda: not ours.queue_files(), 10)


def test_connection_dropped_mid_data_deferred_then_delivered(dsmtp_factory, peer_factory,
                                                              sink_factory):
    """The next hop drops the connection in the middle of the message: deferred 4.4.2,
    no report, the file kept; the retry (to a server that takes it) delivers once."""
    port, log = peer_factory("drop")
    ours = dsmtp_factory(smarthost="[127.0.0.1]:%d" % port, queue_retry=1)
    sendmail(ours, ["-i", "-f", "alice@" + DOMAIN, "x@far.example"],
             b"Subject: d\n\n" + (b"z" * 80 + b"\n") * 60)
    assert wait_for(lambda: "status=deferred" in ours.log(), 20), ours.log()[-2000:]
    line = [ln for ln in ours.log().splitlines() if "status=deferred" in ln][0]
    assert "dsn=4.4.2" in line, line
    assert b"DATA" in open(log, "rb").read()
    assert len(ours.queue_files()) == 1
    ours.stop()
    _, handler = sink_factory()
    ours.restart(smarthost="[127.0.0.1]:%d" % _)
    assert wait_for(lambda: len(handler.envelopes) == 1, 30), ours.log()[-2000:]
    assert handler.envelopes[0].content.endswith((b"z" * 80 + b"\r\n") * 60)
    assert dsn_reports(ours, "alice") == []
    assert wait_for(lambda: not ours.queue_files(), 10)
