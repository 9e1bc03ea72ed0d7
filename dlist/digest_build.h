/*
 * digest_build - the text of one digest issue from the posts of its mbox.
 *
 * Contract:
 * - Owns: nothing; output goes into the caller's buffer.
 * - Blocks on: nothing (memory only); called on the thread pool by digest.c.
 * - Input: an mbox as drop_deliver writes it (From lines, X-UIDL, mboxrd quoting, a blank
 *   line after each message); each message is unquoted and its X-UIDL dropped.
 * - Output: one whole message, LF line ends, headers From: LIST-request@DOMAIN, To:
 *   LIST@DOMAIN, Subject: "LIST digest, issue N" (RFC 1153: "LIST Digest V1 #N"), Date
 *   (now), Message-ID <digest.N.LIST@DOMAIN> (the same for the same issue), List-Id,
 *   Precedence: list, MIME-Version. MIME (def->digest_mime): multipart/mixed with a
 *   text/plain table of contents and a multipart/digest of the posts as they were (each a
 *   message/rfc822 part); the boundary is made so no line of the posts equals it. RFC
 *   1153: text/plain UTF-8 8bit; the topics, then each post's Date, From, Subject and
 *   decoded text/plain parts (other parts named), separated by 30 dashes (a line of 30
 *   dashes in a post gets a leading blank), ending with "End of LIST Digest V1 #N" and a
 *   line of stars.
 */
#ifndef DLIST_DIGEST_BUILD_H
#define DLIST_DIGEST_BUILD_H

#include <stddef.h>
#include <time.h>

struct buf;
struct lists_def;

/* digest_build - issue n of def (domain the list's domain) from mbox[len] at now into b. */
void digest_build(const struct lists_def *def, const char *domain, long n, const char *mbox,
                  size_t len, time_t now, struct buf *b);

#endif
