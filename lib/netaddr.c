/*
 * netaddr - network address lists and host:port strings (see netaddr.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "maps.h"
#include "netaddr.h"
#include "sbuf.h"

struct cidr_list {
	struct cidr_net *entries;
	size_t count;
	size_t capacity;
	struct map **tables;      /* "type:table" entries, looked up in order */
	size_t table_count;
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

/* An entry inside ::ffff:0:0/96 is an IPv4 network in IPv6 notation, and
 * is stored as IPv4 so that IPv4 clients match it. */
static void cidr_net_unmap(struct cidr_net *net)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff};

	if (net->family == AF_INET6 && net->prefix >= 96 &&
	    memcmp(net->addr, mapped, sizeof(mapped)) == 0) {
		memmove(net->addr, net->addr + 12, 4);
		memset(net->addr + 4, 0, 12);
		net->family = AF_INET;
		net->prefix -= 96;
	}
}

/* Parses a numeric address into net with a full-length prefix. */
static int cidr_net_parse_addr(const char *addr, struct cidr_net *net)
{
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, addr, net->addr) == 1) {
		net->family = AF_INET;
		net->prefix = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, net->addr) == 1) {
		net->family = AF_INET6;
		net->prefix = 128;
		return 0;
	}
	return -1;
}

int cidr_net_parse(const char *text, struct cidr_net *net, char **err_out)
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

	if (cidr_net_parse_addr(addr, net) < 0)
		goto bad;
	if (slash != NULL) {
		net->prefix = netaddr_parse_prefix(slash, net->prefix);
		if (net->prefix < 0)
			goto bad;
	}
	if (netaddr_has_host_bits(net->addr, net->family == AF_INET ? 4 : 16,
	    net->prefix)) {
		*err_out = xasprintf("invalid network \"%s\": address bits are set "
		    "after the /%d prefix", text, net->prefix);
		return -1;
	}
	cidr_net_unmap(net);
	return 0;

bad:
	*err_out = xasprintf("invalid network \"%s\": expected an address or "
	    "address/prefix such as 192.0.2.0/24 or [2001:db8::]/32", text);
	return -1;
}

int cidr_addr_parse(const char *text, struct cidr_net *addr_out)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(text);

	/* Accept "[::1]" as well as "::1", but brackets only around IPv6. */
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		if (n - 2 >= sizeof(buf))
			return -1;
		memcpy(buf, text + 1, n - 2);
		buf[n - 2] = '\0';
		if (strchr(buf, ':') == NULL)
			return -1;
		text = buf;
	}
	if (cidr_net_parse_addr(text, addr_out) < 0)
		return -1;
	cidr_net_unmap(addr_out);
	return 0;
}

int cidr_net_contains(const struct cidr_net *net, const struct cidr_net *addr)
{
	return net->family == addr->family &&
	    netaddr_prefix_eq(net->addr, addr->addr, net->prefix);
}

/* Appends one network to l. */
static void cidr_list_add(struct cidr_list *l, const struct cidr_net *net)
{
	if (l->count == l->capacity) {
		l->capacity = l->capacity ? l->capacity * 2 : 8;
		l->entries = xrealloc(l->entries,
		    l->capacity * sizeof(*l->entries));
	}
	l->entries[l->count++] = *net;
}

/* Adds the networks of a "/file/name" entry: blank-separated, with '#'
 * comments. */
static int cidr_list_add_file(struct cidr_list *l, const char *path,
    char **err_out)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;
	unsigned long lineno = 0;
	int rc = 0;

	if (fp == NULL) {
		*err_out = xasprintf("cannot open the network list %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while (rc == 0 && getline(&line, &size, fp) >= 0) {
		char *words = line, *word, *save = NULL;

		lineno++;
		words[strcspn(words, "#")] = '\0';
		for (word = strtok_r(words, " \t\r\n,", &save); word != NULL;
		    word = strtok_r(NULL, " \t\r\n,", &save)) {
			struct cidr_net net;
			char *err = NULL;

			if (cidr_net_parse(word, &net, &err) < 0) {
				*err_out = xasprintf("%s line %lu: %s", path, lineno,
				    err);
				free(err);
				rc = -1;
				break;
			}
			cidr_list_add(l, &net);
		}
	}
	if (rc == 0 && ferror(fp)) {
		*err_out = xasprintf("reading %s failed: %s", path,
		    strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(fp);
	return rc;
}

/* Adds one item of the list: a network, a file or a table. */
static int cidr_list_add_item(struct cidr_list *l, const char *item,
    char **err_out)
{
	struct cidr_net net;

	if (item[0] == '/')
		return cidr_list_add_file(l, item, err_out);
	if (item[0] == '!') {
		*err_out = xasprintf("\"%s\": excluding networks with \"!\" is "
		    "not supported; list only the networks that match", item);
		return -1;
	}
	if (map_spec_valid(item)) {
		struct map *m = map_open(item, err_out);
		if (m == NULL)
			return -1;
		l->tables = xrealloc(l->tables,
		    (l->table_count + 1) * sizeof(*l->tables));
		l->tables[l->table_count++] = m;
		return 0;
	}
	if (cidr_net_parse(item, &net, err_out) < 0)
		return -1;
	cidr_list_add(l, &net);
	return 0;
}

struct cidr_list *cidr_list_parse(const char *spec, char **err_out)
{
	char *err = NULL;
	size_t n;
	/* map_split_list keeps an inline:{ a, b } table in one item. */
	char **items = map_split_list(spec, &n, &err);
	struct cidr_list *l = NULL;

	if (items == NULL)
		goto fail;
	l = xcalloc(1, sizeof(*l));
	for (size_t i = 0; i < n; i++)
		if (cidr_list_add_item(l, items[i], &err) < 0)
			goto fail;
	free(items);
	if (err_out != NULL)
		*err_out = NULL;
	return l;

fail:
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	free(items);
	cidr_list_free(&l);
	return NULL;
}

void cidr_list_free(struct cidr_list **l)
{
	if (*l == NULL)
		return;
	for (size_t i = 0; i < (*l)->table_count; i++)
		map_close(&(*l)->tables[i]);
	free((*l)->tables);
	free((*l)->entries);
	free(*l);
	*l = NULL;
}

/* Looks the address up in the tables of l; a found key is a match. */
static int cidr_list_match_tables(const struct cidr_list *l,
    const struct cidr_net *addr)
{
	char key[INET6_ADDRSTRLEN];

	if (l->table_count == 0)
		return 0;
	if (inet_ntop(addr->family, addr->addr, key, sizeof(key)) == NULL)
		return 0;
	for (size_t i = 0; i < l->table_count; i++) {
		char *value = NULL, *err = NULL;
		int rc = map_lookup(l->tables[i], key, &value, &err);

		free(value);
		if (rc < 0) {
			if (log_ratelimit(map_spec(l->tables[i]), 1, 60))
				log_warn("network list lookup of %s failed: %s", key,
				    err);
			free(err);
			return -1;
		}
		if (rc == 1)
			return 1;
	}
	return 0;
}

/* Matches a parsed address against the networks, then the tables. */
static int cidr_list_match_net(const struct cidr_list *l,
    const struct cidr_net *addr)
{
	for (size_t i = 0; i < l->count; i++)
		if (cidr_net_contains(&l->entries[i], addr))
			return 1;
	return cidr_list_match_tables(l, addr);
}

int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	struct cidr_net addr;

	if (l == NULL || sa == NULL)
		return 0;
	memset(&addr, 0, sizeof(addr));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		addr.family = AF_INET;
		addr.prefix = 32;
		memcpy(addr.addr, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		addr.family = AF_INET6;
		addr.prefix = 128;
		memcpy(addr.addr, sin6->sin6_addr.s6_addr, 16);
		/* A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d, and
		 * only IPv4 entries apply to it. */
		cidr_net_unmap(&addr);
	} else {
		return 0;
	}
	return cidr_list_match_net(l, &addr);
}

int cidr_list_match_str(const struct cidr_list *l, const char *addr)
{
	struct cidr_net net;

	if (l == NULL || cidr_addr_parse(addr, &net) < 0)
		return 0;
	return cidr_list_match_net(l, &net);
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
