/*
 * dsn - delivery status notifications (RFC 3464, RFC 6522, RFC 3461 4.3 and 6).
 *
 * The three parts are built first into their own buffers (the returned copy of the
 * original, the explanation, the status fields), then a boundary is chosen that none of
 * them contains, then the message is put together. Every value that reaches the report
 * goes through dsn_clean (one line, printable US-ASCII, single spaces) and every value
 * written at a length the caller does not bound goes through dsn_wrap, which keeps lines
 * under DSN_LINE_MAX.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dsn.h"
#include "hash.h"
#include "xmem.h"

#define DSN_WIDTH 78        /* fold or wrap past this column when there is a space */
#define DSN_BOUNDARY_MAX 70 /* RFC 2046 5.1.1 */
#define DSN_HDR_VALUE_MAX 1000

static const char *const dsn_action_names[] = {"failed", "delayed", "delivered", "relayed",
                                               "expanded"};

/* dsn_action_name - the Action value of a; NULL if unknown. */
const char *
dsn_action_name(enum dsn_action a)
{
    if ((unsigned)a >= sizeof dsn_action_names / sizeof dsn_action_names[0])
        return NULL;
    return dsn_action_names[a];
}

/* dsn_put - append n bytes (the cap is never reached: memory runs out first). */
static void
dsn_put(struct buf *b, const char *s, size_t n)
{
    (void)buf_append(b, s, n);
}

/* dsn_put_buf - append what p holds (a buf that never held anything has no data). */
static void
dsn_put_buf(struct buf *b, const struct buf *p)
{
    if (p->len > 0)
        dsn_put(b, buf_peek(p), p->len);
}

static void
dsn_puts(struct buf *b, const char *s)
{
    dsn_put(b, s, strlen(s));
}

/* dsn_clean - s as one line of printable US-ASCII: control bytes (CR, LF, NUL, TAB...)
 * and DEL become spaces, bytes over 127 '?', runs of spaces one, none at either end; cut
 * at max octets with "..." at the end. n is s's length. Returns a new string. */
static char *
dsn_clean_n(const char *s, size_t n, size_t max)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            c = ' ';
        else if (c > 0x7f)
            c = '?';
        if (c == ' ' && (o == 0 || out[o - 1] == ' '))
            continue;
        out[o++] = (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    if (o > max && max >= 3) {
        o = max - 3;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static char *
dsn_clean(const char *s, size_t max)
{
    return dsn_clean_n(s, strlen(s), max);
}

/* dsn_hexval - value of an xtext hex digit (RFC 3461 4: upper case; lower case taken
 * too), or -1. */
static int
dsn_hexval(char c)
{
    static const char digits[] = "0123456789ABCDEF";
    const char *p = c != '\0' ? strchr(digits, toupper((unsigned char)c)) : NULL;

    return p != NULL ? (int)(p - digits) : -1;
}

/* dsn_xtext - s decoded from xtext (RFC 3461 4: "+XX" is the byte XX; a '+' not followed
 * by two hex digits is kept) and cleaned. Returns a new string. */
static char *
dsn_xtext(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *dec = xmalloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+' && i + 2 < n && (hi = dsn_hexval(s[i + 1])) >= 0 &&
            (lo = dsn_hexval(s[i + 2])) >= 0) {
            dec[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dec[o++] = s[i];
        }
    }
    char *out = dsn_clean_n(dec, o, DSN_DIAG_MAX);
    free(dec);
    return out;
}

/* dsn_wrap - append cleaned text s at column col, breaking at spaces past DSN_WIDTH with
 * cont ("\n" and the next line's indentation: " " folds a header field). A run without a
 * space that would pass DSN_LINE_MAX is broken where it reaches it. */
static void
dsn_wrap(struct buf *b, size_t col, const char *cont, const char *s)
{
    size_t ind = strlen(cont) - 1;
    bool empty = true; /* nothing of s on this line yet */

    while (*s != '\0') {
        size_t w = strcspn(s, " ");
        if (w == 0) {
            s++;
            continue;
        }
        if (!empty && col + 1 + w > DSN_WIDTH) {
            dsn_puts(b, cont);
            col = ind;
            empty = true;
        }
        if (!empty) {
            dsn_put(b, " ", 1);
            col++;
        }
        while (col + w > DSN_LINE_MAX) {
            size_t n = DSN_LINE_MAX - col;
            dsn_put(b, s, n);
            dsn_puts(b, cont);
            s += n;
            w -= n;
            col = ind;
        }
        dsn_put(b, s, w);
        s += w;
        col += w;
        empty = false;
    }
}

/* dsn_field - "Name: value\n", value cleaned and folded. */
static void
dsn_field(struct buf *b, const char *name, const char *value)
{
    char *v = dsn_clean(value, DSN_DIAG_MAX);

    buf_printf(b, "%s: ", name);
    dsn_wrap(b, strlen(name) + 2, "\n ", v);
    dsn_put(b, "\n", 1);
    free(v);
}

/* dsn_date - the date-time of RFC 5322 3.3 in UTC (the programs keep the C locale). */
static void
dsn_date(char *d, size_t len, time_t t)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(d, len, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
        snprintf(d, len, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* dsn_date_field - "Name: date\n". */
static void
dsn_date_field(struct buf *b, const char *name, time_t t)
{
    char d[64];

    dsn_date(d, sizeof d, t);
    buf_printf(b, "%s: %s\n", name, d);
}

/* dsn_status_ok - s is class "." subject "." detail (RFC 3463): 2, 4 or 5, 1-3 digits,
 * 1-3 digits. */
static bool
dsn_status_ok(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        size_t n = strspn(s, "0123456789");
        if (n < 1 || n > 3)
            return false;
        s += n;
        if (part == 0 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

/* dsn_status_text - " (address problem)" etc. for a failure's subject (RFC 3463 3); ""
 * for success and for subjects 0 and above 7. */
static const char *
dsn_status_text(const char *status)
{
    static const char *const subjects[] = {"",
                                           " (address problem)",
                                           " (mailbox problem)",
                                           " (mail system problem)",
                                           " (network or routing problem)",
                                           " (mail protocol problem)",
                                           " (message content problem)",
                                           " (security or policy problem)"};
    unsigned sub = (unsigned)(status[2] - '0');

    if (status[0] == '2' || status[3] != '.' || sub >= sizeof subjects / sizeof subjects[0])
        return "";
    return subjects[sub];
}

/* dsn_check - m is usable; else a reason in err. */
static int
dsn_check(const struct dsn_msg *m, char *err, size_t errlen)
{
    const char *missing = NULL;

    if (m->hostname == NULL || m->hostname[0] == '\0')
        missing = "hostname";
    else if (m->postmaster == NULL || m->postmaster[0] == '\0')
        missing = "postmaster";
    else if (m->to == NULL || m->to[0] == '\0')
        missing = "to (a report never goes to the null sender)";
    else if (m->id == NULL || m->id[0] == '\0')
        missing = "id";
    else if (m->nrcpt == 0 || m->rcpt == NULL)
        missing = "recipients";
    else if (m->text == NULL && m->text_len > 0)
        missing = "text";
    if (missing != NULL) {
        snprintf(err, errlen, "dsn: no %s", missing);
        return -1;
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct dsn_rcpt *r = &m->rcpt[i];
        if (r->final_rcpt == NULL || r->final_rcpt[0] == '\0') {
            snprintf(err, errlen, "dsn: recipient %zu: no address", i + 1);
            return -1;
        }
        if (dsn_action_name(r->action) == NULL) {
            snprintf(err, errlen, "dsn: recipient %zu: unknown action %d", i + 1, (int)r->action);
            return -1;
        }
        if (!dsn_status_ok(r->status)) {
            snprintf(err, errlen, "dsn: recipient %zu: status is not x.y.z", i + 1);
            return -1;
        }
    }
    return 0;
}

/* dsn_header_len - length of the header block of text: up to and including the LF of the
 * last header line (the empty line not counted); all of text if it has no empty line. */
static size_t
dsn_header_len(const char *text, size_t len)
{
    if (len == 0 || text[0] == '\n')
        return 0;
    const char *end = memmem(text, len, "\n\n", 2);
    return end == NULL ? len : (size_t)(end - text) + 1;
}

/* dsn_copy_original - the n bytes at text into b as lines of at most DSN_LINE_MAX octets
 * (longer lines cut), NUL and CR dropped, LF-terminated. True if a byte over 127 went in. */
static bool
dsn_copy_original(struct buf *b, const char *text, size_t n)
{
    bool eightbit = false;
    size_t i = 0;

    while (i < n) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - text) : n;
        size_t col = 0, run = i, j;
        for (j = i; j < end; j++) {
            unsigned char c = (unsigned char)text[j];
            if (c == '\0' || c == '\r') {
                dsn_put(b, text + run, j - run);
                run = j + 1;
                continue;
            }
            if (col == DSN_LINE_MAX)
                break;
            eightbit |= c > 0x7f;
            col++;
        }
        dsn_put(b, text + run, j - run);
        dsn_put(b, "\n", 1);
        i = end + 1;
    }
    return eightbit;
}

/* dsn_type_len - length of a leading "type;" (an atom of letters, digits and '-', then
 * ';') of the cleaned value c, or 0. */
static size_t
dsn_type_len(const char *c)
{
    size_t n = 0;

    while (isalnum((unsigned char)c[n]) || c[n] == '-')
        n++;
    return n > 0 && c[n] == ';' ? n + 1 : 0;
}

/* dsn_typed_field - "Name: type; value" (RFC 3464 address-type, mta-name-type or
 * diagnostic-type), the type added unless value has one. */
static void
dsn_typed_field(struct buf *b, const char *name, const char *type, const char *value)
{
    char *c = dsn_clean(value, DSN_DIAG_MAX);

    if (dsn_type_len(c) > 0) {
        dsn_field(b, name, c);
    } else {
        char *t = xasprintf("%s; %s", type, c);
        dsn_field(b, name, t);
        free(t);
    }
    free(c);
}

/* dsn_line - one paragraph of the explanation: text cleaned and wrapped after indent
 * spaces, continued after cont (0 or 4) spaces. */
static void
dsn_line(struct buf *b, int indent, int cont, const char *text)
{
    char *c = dsn_clean(text, DSN_DIAG_MAX + 600);

    buf_printf(b, "%*s", indent, "");
    dsn_wrap(b, (size_t)indent, cont > 0 ? "\n    " : "\n", c);
    dsn_put(b, "\n", 1);
    free(c);
}

/* The explanation's paragraph for each action. */
static const char *const dsn_intro[] = {
    [DSN_FAILED] = "Your message could not be delivered to the recipients below; the mail "
                   "system has given up on them.",
    [DSN_DELAYED] = "Your message has not been delivered yet to the recipients below. The "
                    "mail system keeps trying; you need not send it again.",
    [DSN_DELIVERED] = "Your message was delivered to the recipients below, as you asked.",
    [DSN_RELAYED] = "Your message was passed on for the recipients below to a mail system "
                    "that does not report deliveries: no further report may come for them.",
    [DSN_EXPANDED] = "Your message was delivered to the recipients below, which pass it on "
                     "to further addresses (a list or a forward); their reports are not "
                     "asked for.",
};

/* dsn_explain_rcpt - the lines of one recipient in the explanation. */
static void
dsn_explain_rcpt(struct buf *b, const struct dsn_rcpt *r)
{
    char *addr = dsn_clean(r->final_rcpt, DSN_DIAG_MAX);
    char *line = xasprintf("<%s>: %s, status %s%s", addr, dsn_action_name(r->action), r->status,
                           dsn_status_text(r->status));

    dsn_line(b, 0, 4, line);
    free(line);
    if (r->diagnostic != NULL) {
        char *d = dsn_clean(r->diagnostic, DSN_DIAG_MAX);
        const char *text = d + dsn_type_len(d);
        text += strspn(text, " ");
        if (r->remote_mta != NULL) {
            char *host = dsn_clean(r->remote_mta, 300);
            line = xasprintf("host %s said: %s", host + dsn_type_len(host), text);
            free(host);
        } else {
            line = xasprintf("reason: %s", text);
        }
        dsn_line(b, 4, 4, line);
        free(line);
        free(d);
    } else if (r->remote_mta != NULL) {
        char *host = dsn_clean(r->remote_mta, 300);
        line = xasprintf("host: %s", host + dsn_type_len(host));
        dsn_line(b, 4, 4, line);
        free(line);
        free(host);
    }
    if (r->action == DSN_DELAYED && r->retry_until != 0) {
        char d[64];
        dsn_date(d, sizeof d, r->retry_until);
        line = xasprintf("The mail system keeps trying until %s; if the message is not "
                         "delivered by then, it is returned to you.",
                         d);
        dsn_line(b, 4, 4, line);
        free(line);
    }
    free(addr);
}

/* dsn_explain - the text/plain part. */
static void
dsn_explain(struct buf *b, const struct dsn_msg *m, bool full)
{
    char *s;

    s = xasprintf("This is the mail system at host %s.", m->hostname);
    dsn_line(b, 0, 0, s);
    free(s);
    if (m->orig_sender != NULL) {
        s = xasprintf("This report is for the postmaster: the message came from <%s>, which "
                      "cannot be sent a report.",
                      m->orig_sender);
        dsn_put(b, "\n", 1);
        dsn_line(b, 0, 0, s);
        free(s);
    }
    for (int a = DSN_FAILED; a <= DSN_EXPANDED; a++) {
        bool any = false;
        for (size_t i = 0; i < m->nrcpt; i++) {
            if ((int)m->rcpt[i].action != a)
                continue;
            if (!any) {
                dsn_put(b, "\n", 1);
                dsn_line(b, 0, 0, dsn_intro[a]);
                any = true;
            }
            dsn_put(b, "\n", 1);
            dsn_explain_rcpt(b, &m->rcpt[i]);
        }
    }
    dsn_put(b, "\n", 1);
    dsn_line(b, 0, 0,
             full ? "The message is attached." : "The headers of the message are attached.");
}

/* dsn_status - the message/delivery-status part (RFC 3464 2.2, 2.3). */
static void
dsn_status(struct buf *b, const struct dsn_msg *m)
{
    if (m->envid != NULL) {
        char *v = dsn_xtext(m->envid);
        dsn_field(b, "Original-Envelope-Id", v);
        free(v);
    }
    dsn_typed_field(b, "Reporting-MTA", "dns", m->hostname);
    dsn_date_field(b, "Arrival-Date", m->arrival);
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct dsn_rcpt *r = &m->rcpt[i];
        dsn_put(b, "\n", 1);
        if (r->orcpt != NULL) {
            char *v = dsn_xtext(r->orcpt);
            dsn_typed_field(b, "Original-Recipient", "rfc822", v);
            free(v);
        }
        dsn_typed_field(b, "Final-Recipient", "rfc822", r->final_rcpt);
        buf_printf(b, "Action: %s\nStatus: %s\n", dsn_action_name(r->action), r->status);
        if (r->remote_mta != NULL)
            dsn_typed_field(b, "Remote-MTA", "dns", r->remote_mta);
        if (r->diagnostic != NULL)
            dsn_typed_field(b, "Diagnostic-Code", "X-Dmail", r->diagnostic);
        if (r->last_attempt != 0)
            dsn_date_field(b, "Last-Attempt-Date", r->last_attempt);
        if (r->action == DSN_DELAYED && r->retry_until != 0)
            dsn_date_field(b, "Will-Retry-Until", r->retry_until);
    }
}

/* dsn_boundary - a boundary that no part contains: "dsn=_ID/NOW", then with a suffix made
 * from a hash of the parts and a counter (an original cannot hold them all). */
static void
dsn_boundary(char *bd, size_t len, const struct dsn_msg *m, struct buf *part, size_t nparts)
{
    char id[25];
    size_t n = 0;
    uint64_t h = 0;

    for (const char *p = m->id; *p != '\0' && n < sizeof id - 1; p++)
        if (isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-')
            id[n++] = *p;
    id[n] = '\0';
    for (uint64_t k = 0;; k++) {
        if (k == 0) {
            snprintf(bd, len, "dsn=_%s/%lld", id, (long long)m->now);
        } else {
            if (h == 0)
                for (size_t i = 0; i < nparts; i++)
                    h = h * 31 + (part[i].len > 0 ? hash_mem(buf_peek(&part[i]), part[i].len) : 0);
            uint64_t x = (h ^ k) * 0x9e3779b97f4a7c15ULL;
            snprintf(bd, len, "dsn=_%s/%lld/%016llx", id, (long long)m->now,
                     (unsigned long long)(x ^ (x >> 29)));
        }
        size_t i = 0;
        while (i < nparts && (part[i].len == 0 ||
                              memmem(buf_peek(&part[i]), part[i].len, bd, strlen(bd)) == NULL))
            i++;
        if (i == nparts)
            return;
    }
}

/* dsn_phrase - the display name n cleaned, as a quoted-string unless it is atoms. */
static char *
dsn_phrase(const char *n)
{
    char *c = dsn_clean(n, 200);
    bool atoms = c[0] != '\0';

    for (const char *p = c; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr(" !#$%&'*+-/=?^_`{|}~", *p) == NULL)
            atoms = false;
    if (atoms)
        return c;
    char *q = xmalloc(strlen(c) * 2 + 3);
    size_t o = 0;
    q[o++] = '"';
    for (const char *p = c; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            q[o++] = '\\';
        q[o++] = *p;
    }
    q[o++] = '"';
    q[o] = '\0';
    free(c);
    return q;
}

/* dsn_headers - the report's own header fields. */
static void
dsn_headers(struct buf *b, const struct dsn_msg *m, const char *subject, const char *boundary,
            bool eightbit)
{
    char *name = dsn_phrase(m->from_name != NULL ? m->from_name : DSN_FROM_NAME);
    char *addr = dsn_clean(m->postmaster, 400);
    char *v = xasprintf("%s <%s>", name, addr);
    char date[64];

    dsn_field(b, "From", v);
    free(v);
    free(addr);
    free(name);
    addr = dsn_clean(m->to, 400);
    v = xasprintf("<%s>", addr);
    dsn_field(b, "To", v);
    free(v);
    free(addr);
    dsn_field(b, "Subject", subject);
    dsn_date(date, sizeof date, m->now);
    buf_printf(b, "Date: %s\n", date);
    if (m->message_id != NULL) {
        addr = dsn_clean(m->message_id, 400);
        v = addr[0] == '<' ? xstrdup(addr) : xasprintf("<%s>", addr);
        free(addr);
    } else {
        v = xasprintf("<dsn.%s@%s>", m->id, m->hostname);
    }
    dsn_field(b, "Message-ID", v);
    free(v);
    buf_printf(b,
               "MIME-Version: 1.0\nAuto-Submitted: auto-replied\n"
               "Content-Type: multipart/report; report-type=delivery-status;\n"
               " boundary=\"%s\"\n",
               boundary);
    if (eightbit)
        dsn_puts(b, "Content-Transfer-Encoding: 8bit\n");
}

/* dsn_compose - see dsn.h. */
int
dsn_compose(const struct dsn_msg *m, struct dsn_out *out, char *err, size_t errlen)
{
    bool failed = false, delayed = false;
    struct buf part[3], b;
    char boundary[DSN_BOUNDARY_MAX + 1];

    if (dsn_check(m, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < m->nrcpt; i++) {
        failed |= m->rcpt[i].action == DSN_FAILED;
        delayed |= m->rcpt[i].action == DSN_DELAYED;
    }
    const char *subject = failed    ? "Undelivered Mail Returned to Sender"
                          : delayed ? "Delayed Mail (still being retried)"
                                    : "Successful Mail Delivery Report";
    bool full = failed && (m->ret == DSN_RET_FULL || (m->ret == DSN_RET_UNSET && m->bounce_body));
    const char *text = m->text != NULL ? m->text : "";
    for (size_t i = 0; i < 3; i++)
        buf_init(&part[i], SIZE_MAX / 4);
    dsn_explain(&part[0], m, full);
    dsn_status(&part[1], m);
    bool eightbit =
        dsn_copy_original(&part[2], text, full ? m->text_len : dsn_header_len(text, m->text_len));
    dsn_boundary(boundary, sizeof boundary, m, part, 3);

    buf_init(&b, SIZE_MAX / 4);
    dsn_headers(&b, m, subject, boundary, eightbit);
    buf_printf(&b,
               "\nThis is a MIME-encapsulated message.\n\n--%s\n"
               "Content-Description: Notification\n"
               "Content-Type: text/plain; charset=us-ascii\n\n",
               boundary);
    dsn_put_buf(&b, &part[0]);
    buf_printf(&b,
               "\n--%s\nContent-Description: Delivery report\n"
               "Content-Type: message/delivery-status\n\n",
               boundary);
    dsn_put_buf(&b, &part[1]);
    buf_printf(&b, "\n--%s\nContent-Description: %s\nContent-Type: %s\n%s\n", boundary,
               full ? "Undelivered Message" : "Message Headers",
               full ? "message/rfc822" : "text/rfc822-headers",
               eightbit ? "Content-Transfer-Encoding: 8bit\n" : "");
    dsn_put_buf(&b, &part[2]);
    buf_printf(&b, "\n--%s--\n", boundary);
    for (size_t i = 0; i < 3; i++)
        buf_free(&part[i]);
    b.data[b.len] = '\0';
    out->text = b.data;
    out->len = b.len;
    out->eightbit = eightbit;
    out->returned = full ? DSN_RETURNED_FULL : DSN_RETURNED_HEADERS;
    return 0;
}

/* dsn_out_free - release the report. */
void
dsn_out_free(struct dsn_out *out)
{
    free(out->text);
    out->text = NULL;
    out->len = 0;
}

/* dsn_header_value - the value of the first header field name in the header block of
 * text, unfolded, lower-cased and cleaned, into v. False if there is none. */
static bool
dsn_header_value(const char *text, size_t len, const char *name, char *v, size_t vlen)
{
    size_t hlen = dsn_header_len(text, len), nlen = strlen(name), i = 0;

    while (i < hlen) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', hlen - i);
        size_t end = nl != NULL ? (size_t)(nl - text) + 1 : hlen;
        if ((size_t)(end - i) > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            size_t start = i + nlen + 1;
            while (end < hlen && (text[end] == ' ' || text[end] == '\t')) {
                const char *more = memchr(text + end, '\n', hlen - end);
                end = more != NULL ? (size_t)(more - text) + 1 : hlen;
            }
            size_t n = end - start < DSN_HDR_VALUE_MAX ? end - start : DSN_HDR_VALUE_MAX;
            char *c = dsn_clean_n(text + start, n, vlen - 1);
            for (size_t k = 0; c[k] != '\0'; k++)
                c[k] = (char)tolower((unsigned char)c[k]);
            snprintf(v, vlen, "%s", c);
            free(c);
            return true;
        }
        i = end;
    }
    return false;
}

/* dsn_bounceable - see dsn.h. */
enum dsn_bounce
dsn_bounceable(const char *sender, const char *text, size_t len)
{
    char v[DSN_HDR_VALUE_MAX + 1];

    if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0)
        return DSN_NULL_SENDER;
    if (text == NULL)
        return DSN_BOUNCE_OK;
    if (dsn_header_value(text, len, "Content-Type", v, sizeof v) &&
        strncmp(v, "multipart/report", 16) == 0 && strstr(v, "delivery-status") != NULL)
        return DSN_IS_REPORT;
    /* RFC 3834 5: "no", maybe with parameters or a comment, is the only human value */
    if (dsn_header_value(text, len, "Auto-Submitted", v, sizeof v) && v[0] != '\0' &&
        !(strcspn(v, " ;(") == 2 && strncmp(v, "no", 2) == 0))
        return DSN_AUTO_SUBMITTED;
    return DSN_BOUNCE_OK;
}

/* dsn_bounce_text - a few words for logs. */
const char *
dsn_bounce_text(enum dsn_bounce b)
{
    switch (b) {
    case DSN_NULL_SENDER:
        return "null sender";
    case DSN_IS_REPORT:
        return "delivery report";
    case DSN_AUTO_SUBMITTED:
        return "auto-submitted";
    case DSN_BOUNCE_OK:
        break;
    }
    return "";
}
