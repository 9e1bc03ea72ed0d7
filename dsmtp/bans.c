/*
 * bans - ban_ip, ban_ip_except, ban_mailfrom, ban_rcptto. See bans.h.
 */
#include <string.h>

#include "bans.h"
#include "log.h"
#include "logq.h"

/* bans_log - one line: the stage, what was refused and the rule that matched. */
static void
bans_log(struct smtp_session *s, const char *stage, const char *what, const char *value,
         const char *setting, const char *rule)
{
    char esc[600], resc[600];

    log_escape(esc, sizeof(esc), value, strlen(value), 300);
    log_escape(resc, sizeof(resc), rule, strlen(rule), 300);
    log_sess(LOGLVL_INFO, s->base.sid, "banned stage=%s %s=<%s> setting=%s rule=%s", stage, what,
             esc, setting, resc);
}

/* bans_connect - ban_ip matched and ban_ip_except did not. */
bool
bans_connect(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    const char *rule = conf_ip_rule(&cf->ban_ip, s->base.ip);

    if (rule == NULL)
        return false;
    if (conf_ip_match(&cf->ban_ip_except, s->base.ip)) {
        log_sess(LOGLVL_DEBUG, s->base.sid, "ban-exempt ip=%s setting=ban_ip_except", s->base.ip);
        return false;
    }
    bans_log(s, "connect", "ip", s->base.ip, "ban_ip", rule);
    /* no enhanced code on a greeting (RFC 2034), but the text carries it, as Postfix's */
    session_reply(s, 554, "5.7.1", "5.7.1 %s Access denied: client [%s] is banned",
                  s->d->srv.hostname, s->base.ip);
    sess_close(&s->base, "banned");
    return true;
}

/* bans_mail - ban_mailfrom. */
bool
bans_mail(struct smtp_session *s, const char *sender)
{
    const char *rule = conf_addr_rule(&s->base.cf->ban_mailfrom, sender);

    if (rule == NULL)
        return false;
    bans_log(s, "mail", "from", sender, "ban_mailfrom", rule);
    session_reply(s, 550, "5.7.1", "<%s>: Sender address rejected: Access denied", sender);
    return true;
}

/* bans_rcpt - ban_rcptto. */
bool
bans_rcpt(struct smtp_session *s, const char *rcpt)
{
    const char *rule = conf_addr_rule(&s->base.cf->ban_rcptto, rcpt);

    if (rule == NULL)
        return false;
    bans_log(s, "rcpt", "to", rcpt, "ban_rcptto", rule);
    session_reply(s, 550, "5.7.1", "<%s>: Recipient address rejected: Access denied", rcpt);
    return true;
}
