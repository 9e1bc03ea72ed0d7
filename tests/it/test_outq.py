"""The outbound scheduler's own bounds: queue_active_max messages in delivery at once,
the rest taken as room frees up (not at the next queue_retry)."""

from dmail_site import DOMAIN, sendmail, wait_for


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
