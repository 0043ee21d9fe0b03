/*
 * anvil - counts the connections of each SMTP client across every smtpd
 * process, so that smtpd can enforce smtpd_client_connection_count_limit
 * and smtpd_client_connection_rate_limit. One process on a libevent loop
 * serves every smtpd over private/anvil (lib/anvil_proto.h).
 *   main.c   service setup, the listener, the sweep timer, signals
 *   conn.c   one smtpd connection: records in, replies out
 *   table.c  the counters (no I/O; the caller passes the time)
 */
#ifndef POSTERN_ANVIL_H
#define POSTERN_ANVIL_H

#include <stddef.h>

struct event_base;

/* ---- table.c */

struct anvil_table;

/*
 * Creates an empty table. rate_unit_ms is the length of a rate window;
 * max_entries bounds the idents kept at once.
 */
struct anvil_table *anvil_table_new(long long rate_unit_ms,
    size_t max_entries);
void anvil_table_free(struct anvil_table **t);

/*
 * Counts a new connection of ident for caller (a socket id). A rate
 * window starts at the first connection and lasts rate_unit_ms; the
 * next connection after it starts a new window. Stores the open
 * connections and those of the current window, both including this
 * one, in *count_out and *rate_out. Returns 0, or -1 when the table is
 * full even after a sweep (nothing is counted).
 */
int anvil_table_connect(struct anvil_table *t, const char *ident,
    unsigned long caller, long long now_ms, long *count_out,
    long *rate_out);

/* Ends one connection of ident counted for caller; does nothing when
 * caller has none open. */
void anvil_table_disconnect(struct anvil_table *t, const char *ident,
    unsigned long caller);

/* Ends every connection counted for caller, whose socket closed. */
void anvil_table_drop_caller(struct anvil_table *t, unsigned long caller);

/* Removes the idents without open connections whose rate window has
 * ended. Returns how many were removed. */
size_t anvil_table_sweep(struct anvil_table *t, long long now_ms);

/* Number of idents in the table. */
size_t anvil_table_size(const struct anvil_table *t);

/* ---- conn.c */

extern struct anvil_table *anvil_counts;

/* Serves a connection accepted on private/anvil. */
void anvil_conn_new(struct event_base *base, int fd);

/* Number of open connections. */
size_t anvil_conn_count(void);

#endif
