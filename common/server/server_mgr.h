/*
 * server_mgr - the remote manager port (DMail's manager channel, issue 12): the control
 * protocol of ctl.h over TCP with implicit TLS, for `tellsmtp -n HOST -p PORT` and
 * `tellpop -n HOST -p PORT`.
 *
 * Contract:
 * - Owns: struct server_mgr, its own net server (its connections never count toward
 *   max_connections, status' connections or "suspend"), its login-penalty table, its
 *   resolver (only with manager_ip_name) and every manager connection.
 * - Port: proto->conf_mgr_port (dsmtp: smtp_manager_port, dpop: pop_manager_port; 0 =
 *   off) on every `listen` address. Implicit TLS with the server's certificate; without
 *   one the port is refused (start-up fails) unless manager_plaintext_loopback is true,
 *   which opens it in plaintext on 127.0.0.1 and ::1 only, for loopback clients only.
 *   manager_password (a crypt(3) hash) must be set, or start-up fails.
 * - Access: a client address must match manager_ip_address (conf_ip_match: wildcards,
 *   CIDR), or its reverse name, confirmed forward (c-ares), match manager_ip_name (DMail
 *   wildcards, '*'); both empty: loopback addresses only. Others are logged and closed
 *   at once, before any TLS handshake.
 * - Login: the first line must be "AUTH PASSWORD"; it is checked with crypt(3) on the
 *   thread pool after the login guard's wait (penalty.h: auth_fail_delay,
 *   login_penalty_max, login_fail_max per client address). "OK authenticated", or
 *   "ERR authentication failed" and the connection is closed. The password is never
 *   logged. After the login every byte is relayed to and from the server's own control
 *   socket (work_path/NAME.ctl), so every control command works as it does locally.
 * - Blocks on: nothing; crypt(3) runs on the pool.
 */
#ifndef DMAIL_SERVER_MGR_H
#define DMAIL_SERVER_MGR_H

#include <stdbool.h>

struct server;
struct server_mgr;

#define SERVER_MGR_CONNS_MAX 16  /* manager connections at once */
#define SERVER_MGR_PER_IP 4      /* manager connections of one address */
#define SERVER_MGR_AUTH_MS 30000 /* time to send the AUTH line */

/* server_mgr_open - as root, with the listeners: the manager port when configured.
 * Errors are fatal (log_fatal). Returns NULL when the port is off. */
struct server_mgr *server_mgr_open(struct server *srv);
/* server_mgr_reload - after a reload: the new TLS context, and the resolver when
 * manager_ip_name is newly set (the lists are read per connection). */
void server_mgr_reload(struct server_mgr *m);
/* server_mgr_close - stop listening and close every manager connection. */
void server_mgr_close(struct server_mgr **m);

#endif
