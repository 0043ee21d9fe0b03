/*
 * netaddr - network address lists and host:port strings.
 */
#ifndef POSTERN_NETADDR_H
#define POSTERN_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * One network: "192.0.2.0/24", "2001:db8::/32", "[2001:db8::]/32", or an
 * address with a full-length prefix. A network inside ::ffff:0:0/96 is
 * stored as IPv4, so IPv4 clients match it, and a plain IPv6 network
 * never matches an IPv4 client.
 */
struct cidr_net {
	int family;               /* AF_INET or AF_INET6 */
	unsigned char addr[16];   /* network address, 4 or 16 bytes used */
	int prefix;               /* prefix length in bits */
};

/* Parses text into *net. Returns 0, or -1 with a message naming text in
 * *err_out (caller frees), also for address bits set after the prefix. */
int cidr_net_parse(const char *text, struct cidr_net *net, char **err_out);
/* Parses a numeric address ("192.0.2.1", "2001:db8::1", "[::1]") into a
 * full-length network; an IPv4-mapped address becomes IPv4. Returns 0,
 * or -1 when text is not an address (also for a bracketed IPv4 one). */
int cidr_addr_parse(const char *text, struct cidr_net *addr_out);
/* 1 when addr (from cidr_addr_parse) is inside net, else 0. */
int cidr_net_contains(const struct cidr_net *net, const struct cidr_net *addr);

/*
 * A list of networks as in mynetworks, separated by commas or blanks.
 * An item is a network as above; "/file/name", a file of networks
 * (separated by blanks, commas or line ends, '#' starts a comment), read
 * once by cidr_list_parse; or "type:table", a table whose lookup of the
 * client address decides: any key found is a match, whatever its value.
 * "!" exclusions are not supported. An IPv4 client seen as
 * ::ffff:a.b.c.d matches IPv4 entries.
 */
struct cidr_list;

/* Returns NULL with a message naming the bad entry, file line or table in
 * *err_out. Opens the tables, so call it before a chroot. */
struct cidr_list *cidr_list_parse(const char *spec, char **err_out);
void cidr_list_free(struct cidr_list **l);
/* 1 when the address matches an entry, 0 when not, -1 when a table
 * cannot be read (logged as a warning; callers defer, never treat it as
 * a match or as no match). */
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
