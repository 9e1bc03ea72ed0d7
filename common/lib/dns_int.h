/*
 * dns_int - what dns.c (the resolver on the loop) and dns_parse.c (answers into results)
 * share. Not for other modules.
 *
 * Contract: the parsers are pure: each takes one answer (abuf, alen: a DNS message as
 * c-ares hands it over) and fills r's array of its kind (r->n entries, allocated with
 * xmem; dns_result_free releases them). They return a c-ares status: ARES_SUCCESS,
 * ARES_ENODATA when the answer holds no record of the kind, or a parse error.
 * dns_parse_mx also sets r->status DNS_NULLMX (ARES_SUCCESS) for a null MX (RFC 7505),
 * sorts the exchangers by preference and shuffles equal ones (RFC 5321 5.1).
 */
#ifndef DMAIL_DNS_INT_H
#define DMAIL_DNS_INT_H

#include "dns.h"

#define DNS_T_TLSA 52 /* RFC 6698 */
#define DNS_MAXTLSA DNS_MAXTLSA_KEPT

int dns_parse_mx(struct dns_result *r, const unsigned char *abuf, int alen);
int dns_parse_txt(struct dns_result *r, const unsigned char *abuf, int alen);
/* dns_parse_ptr - the names, without final dots or duplicates, at most DNS_MAXPTR. */
int dns_parse_ptr(struct dns_result *r, const unsigned char *abuf, int alen);
/* dns_parse_tlsa - the TLSA records whatever their owner (a CNAME chain ends there);
 * a record without association data is left out. */
int dns_parse_tlsa(struct dns_result *r, const unsigned char *abuf, int alen);

/* dns_parse_owner - the owner name of the answer's first record of type (where a CNAME
 * chain ended), without a final dot; NULL when there is none. */
char *dns_parse_owner(const unsigned char *abuf, int alen, unsigned type);

#endif
