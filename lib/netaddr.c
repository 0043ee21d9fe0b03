/*
 * netaddr - network address lists and host:port strings (see netaddr.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "sbuf.h"

struct cidr_entry {
	int family;               /* AF_INET or AF_INET6 */
	unsigned char addr[16];   /* network address, 4 or 16 bytes used */
	int prefix;               /* prefix length in bits */
};

struct cidr_list {
	struct cidr_entry *entries;
	size_t count;
};

/* Returns 1 when the first prefix bits of a and b are equal. */
static int netaddr_prefix_eq(const unsigned char *a, const unsigned char *b,
    int prefix)
{
	int bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a, b, (size_t)bytes) != 0)
		return 0;
	if (bits == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - bits));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/* Returns 1 when any bit after the first prefix bits of addr is set. */
static int netaddr_has_host_bits(const unsigned char *addr, int len, int prefix)
{
	for (int bit = prefix; bit < len * 8; bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			return 1;
	return 0;
}

/* Parses a prefix length of at most max bits. Returns it or -1. */
static int netaddr_parse_prefix(const char *s, int max)
{
	int value = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		value = value * 10 + (*s - '0');
	}
	return value <= max ? value : -1;
}

/* Parses one entry such as "10.0.0.0/8", "[2001:db8::]/32" or "::1". */
static int cidr_entry_parse(const char *text, struct cidr_entry *e,
    char **err_out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *addr = buf, *slash;

	if (strlen(text) >= sizeof(buf))
		goto bad;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (addr[0] == '[') {
		size_t n = strlen(addr);
		if (n < 3 || addr[n - 1] != ']')
			goto bad;
		addr[n - 1] = '\0';
		addr++;
		if (strchr(addr, ':') == NULL)
			goto bad;
	}

	memset(e, 0, sizeof(*e));
	if (inet_pton(AF_INET, addr, e->addr) == 1) {
		e->family = AF_INET;
		e->prefix = 32;
	} else if (inet_pton(AF_INET6, addr, e->addr) == 1) {
		e->family = AF_INET6;
		e->prefix = 128;
	} else {
		goto bad;
	}
	if (slash != NULL) {
		e->prefix = netaddr_parse_prefix(slash, e->prefix);
		if (e->prefix < 0)
			goto bad;
	}
	if (netaddr_has_host_bits(e->addr, e->family == AF_INET ? 4 : 16,
	    e->prefix)) {
		*err_out = xasprintf("invalid network \"%s\": address bits are set "
		    "after the /%d prefix", text, e->prefix);
		return -1;
	}

	/* An entry inside ::ffff:0:0/96 is an IPv4 network in IPv6 notation. */
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff};
	if (e->family == AF_INET6 && e->prefix >= 96 &&
	    memcmp(e->addr, mapped, sizeof(mapped)) == 0) {
		memmove(e->addr, e->addr + 12, 4);
		memset(e->addr + 4, 0, 12);
		e->family = AF_INET;
		e->prefix -= 96;
	}
	return 0;

bad:
	*err_out = xasprintf("invalid network \"%s\": expected an address or "
	    "address/prefix such as 192.0.2.0/24 or [2001:db8::]/32", text);
	return -1;
}

struct cidr_list *cidr_list_parse(const char *spec, char **err_out)
{
	size_t n;
	char **items = str_split(spec, ", \t\r\n", &n);
	struct cidr_list *l = xcalloc(1, sizeof(*l));

	if (err_out != NULL)
		*err_out = NULL;
	l->entries = xcalloc(n ? n : 1, sizeof(*l->entries));
	for (size_t i = 0; i < n; i++) {
		char *err = NULL;
		if (cidr_entry_parse(items[i], &l->entries[i], &err) < 0) {
			if (err_out != NULL)
				*err_out = err;
			else
				free(err);
			free(items);
			cidr_list_free(&l);
			return NULL;
		}
		l->count++;
	}
	free(items);
	return l;
}

void cidr_list_free(struct cidr_list **l)
{
	if (*l == NULL)
		return;
	free((*l)->entries);
	free(*l);
	*l = NULL;
}

/* Matches raw address bytes against the entries of one family. */
static int cidr_list_match_bytes(const struct cidr_list *l, int family,
    const unsigned char *addr)
{
	for (size_t i = 0; i < l->count; i++) {
		const struct cidr_entry *e = &l->entries[i];
		if (e->family == family && netaddr_prefix_eq(e->addr, addr, e->prefix))
			return 1;
	}
	return 0;
}

int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	if (l == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		return cidr_list_match_bytes(l, AF_INET,
		    (const unsigned char *)&sin->sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *bytes = sin6->sin6_addr.s6_addr;
		/* A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d, and
		 * only IPv4 entries apply to it. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return cidr_list_match_bytes(l, AF_INET, bytes + 12);
		return cidr_list_match_bytes(l, AF_INET6, bytes);
	}
	return 0;
}

int cidr_list_match_str(const struct cidr_list *l, const char *addr)
{
	struct sockaddr_in sin = {0};
	struct sockaddr_in6 sin6 = {0};
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(addr);

	/* Accept "[::1]" as well as "::1". */
	if (n >= 2 && n < sizeof(buf) && addr[0] == '[' && addr[n - 1] == ']') {
		memcpy(buf, addr + 1, n - 2);
		buf[n - 2] = '\0';
		addr = buf;
	}
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return cidr_list_match(l, (struct sockaddr *)&sin);
	}
	if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		return cidr_list_match(l, (struct sockaddr *)&sin6);
	}
	return 0;
}

/* A port is a number or a service name: letters, digits, '-' and '_'. */
static int netaddr_valid_port(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static int netaddr_all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int hostport_split(const char *s, char **host_out, char **port_out,
    int *bracketed_out)
{
	const char *host = s, *port = NULL;
	size_t host_len;
	int bracketed = 0;

	*host_out = NULL;
	*port_out = NULL;
	if (bracketed_out != NULL)
		*bracketed_out = 0;
	if (s[0] == '\0' || strpbrk(s, " \t\r\n") != NULL)
		return -1;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close == s + 1)
			return -1;
		host = s + 1;
		host_len = (size_t)(close - host);
		if (memchr(host, '[', host_len) != NULL)
			return -1;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
		bracketed = 1;
	} else {
		const char *colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			/* Two or more colons: a bare IPv6 address, no port. */
			host_len = strlen(s);
		} else if (colon != NULL) {
			host_len = (size_t)(colon - s);
			port = colon + 1;
			if (host_len == 0)
				return -1;
		} else if (netaddr_all_digits(s)) {
			*port_out = xstrdup(s);
			return 0;
		} else {
			host_len = strlen(s);
		}
		if (memchr(host, ']', host_len) != NULL)
			return -1;
	}
	if (port != NULL && !netaddr_valid_port(port))
		return -1;

	*host_out = xstrndup(host, host_len);
	if (port != NULL)
		*port_out = xstrdup(port);
	if (bracketed_out != NULL)
		*bracketed_out = bracketed;
	return 0;
}

char *sockaddr_to_str(const struct sockaddr *sa, char *out, size_t size)
{
	if (size == 0)
		return out;
	out[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		if (inet_ntop(AF_INET, &sin->sin_addr, out, size) == NULL)
			out[0] = '\0';
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, out,
			    size) == NULL)
				out[0] = '\0';
		} else if (inet_ntop(AF_INET6, &sin6->sin6_addr, out, size) == NULL) {
			out[0] = '\0';
		}
	} else if (sa->sa_family == AF_UNIX) {
		snprintf(out, size, "local");
	}
	return out;
}

int sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}
