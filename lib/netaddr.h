/*
 * netaddr - network address lists and host:port strings.
 */
#ifndef POSTERN_NETADDR_H
#define POSTERN_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * A list of networks as in mynetworks: "127.0.0.0/8 [::1]/128 192.0.2.7
 * 2001:db8::/32", separated by commas or blanks. IPv6 addresses may be
 * bracketed. An IPv4 client seen as ::ffff:a.b.c.d matches IPv4 entries.
 */
struct cidr_list;

/* Returns NULL with a message naming the bad entry in *err_out. */
struct cidr_list *cidr_list_parse(const char *spec, char **err_out);
void cidr_list_free(struct cidr_list **l);
/* 1 when the address matches an entry. */
int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);
/* Same for a numeric address string; 0 when it does not parse. */
int cidr_list_match_str(const struct cidr_list *l, const char *addr);

/*
 * Splits "host:port", "[host]:port", "[ipv6]:port", "host" or "port"
 * (digits only: host_out gets NULL). *bracketed_out is 1 when the host
 * was in brackets (for nexthops: no MX lookup). Returns 0, or -1 for
 * malformed text. Caller frees host_out and port_out; port_out is NULL
 * when absent.
 */
int hostport_split(const char *s, char **host_out, char **port_out,
    int *bracketed_out);

/* Formats the numeric address of sa into out ("192.0.2.1", "::1"); an
 * IPv4-mapped IPv6 address is shown as IPv4. Returns out. */
char *sockaddr_to_str(const struct sockaddr *sa, char *out, size_t size);
/* Port of sa in host order. */
int sockaddr_port(const struct sockaddr *sa);

#endif
