#!/usr/bin/python3
"""dsn_check FILE [EXPECTATION...] - check a delivery status notification made by
common/mail/dsn.c with Python's own email package, independently of the C code.

Always checked: parses without defects as multipart/report; report-type=delivery-status;
three parts (text/plain, message/delivery-status, text/rfc822-headers or message/rfc822);
the report's own header fields are there; no line over 998 octets, no CR, no NUL.

EXPECTATION is one of (SECTION: h the report's header, m the per-message status fields, rN
recipient N's status fields from 0, o the returned message's header, p1 p2 p3 the headers of
the parts):
  SECTION.Field=value    the field is there with that value (white space collapsed)
  SECTION.Field~=text    the field is there and contains text
  SECTION.Field!         the field is not there
  nrcpt=N                N per-recipient blocks
  part3=TYPE             the third part's content type
  text~=words            the explanation (part 1) contains words (white space collapsed)
  text!~=words           ... does not
  body~=text             the returned message (part 3's content, raw) contains text
Exits 0 when all hold; else prints what failed and exits 1.
"""
import email
import email.policy
import sys


def norm(v):
    return " ".join(str(v).split())


def main():
    data = open(sys.argv[1], "rb").read()
    bad = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if len(line) > 998:
            bad.append("line %d: %d octets" % (n, len(line)))
    if b"\r" in data or b"\0" in data:
        bad.append("CR or NUL in the report")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    for part in msg.walk():
        if part.defects:
            bad.append("defects in %s: %r" % (part.get_content_type(), part.defects))
    if msg.get_content_type() != "multipart/report":
        bad.append("content type " + msg.get_content_type())
    if msg.get_param("report-type") != "delivery-status":
        bad.append("report-type %r" % msg.get_param("report-type"))
    for f in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted"):
        if msg[f] is None:
            bad.append("no " + f)
    if msg["Date"] is not None and msg["Date"].datetime is None:
        bad.append("Date unreadable")
    parts = msg.get_payload() if msg.is_multipart() else []
    types = [p.get_content_type() for p in parts]
    if len(parts) != 3 or types[0] != "text/plain" or types[1] != "message/delivery-status" \
            or types[2] not in ("text/rfc822-headers", "message/rfc822"):
        bad.append("parts %r" % types)
        print("\n".join(bad))
        return 1
    blocks = parts[1].get_payload()
    sections = {"h": msg, "p1": parts[0], "p2": parts[1], "p3": parts[2], "m": blocks[0]}
    for i, b in enumerate(blocks[1:]):
        sections["r%d" % i] = b
    if types[2] == "message/rfc822":
        orig = parts[2].get_payload(0)
        # the returned message as the report holds it: after the third delimiter line
        raw = data.split(b"\n--" + msg.get_boundary().encode() + b"\n")[3]
        body = raw.partition(b"\n\n")[2]
    else:
        orig = email.message_from_string(parts[2].get_content(), policy=email.policy.default)
        body = b""
    sections["o"] = orig
    text = norm(parts[0].get_content())
    for e in sys.argv[2:]:
        if e.startswith("nrcpt="):
            if len(blocks) - 1 != int(e[6:]):
                bad.append("%s: %d recipient blocks" % (e, len(blocks) - 1))
        elif e.startswith("part3="):
            if types[2] != e[6:]:
                bad.append("%s: %s" % (e, types[2]))
        elif e.startswith("text~="):
            if norm(e[6:]) not in text:
                bad.append("%s: not in %r" % (e, text))
        elif e.startswith("text!~="):
            if norm(e[7:]) in text:
                bad.append("%s: in the explanation" % e)
        elif e.startswith("body~="):
            if e[6:].encode() not in body:
                bad.append("%s: not in the body %r" % (e, body[:200]))
        else:
            sec, _, rest = e.partition(".")
            m = sections.get(sec)
            if m is None:
                bad.append("%s: no section %s" % (e, sec))
                continue
            if rest.endswith("!"):
                if m[rest[:-1]] is not None:
                    bad.append("%s: is %r" % (e, str(m[rest[:-1]])))
                continue
            contains = "~=" in rest
            field, _, want = rest.partition("~=" if contains else "=")
            got = m[field]
            if got is None:
                bad.append("%s: missing" % e)
            elif (norm(want) not in norm(got)) if contains else (norm(got) != norm(want)):
                bad.append("%s: is %r" % (e, norm(got)))
    if bad:
        print("\n".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
