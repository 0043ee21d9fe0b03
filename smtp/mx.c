/*
 * Routes of the smtp agent (RFC 5321 section 5.1): the MX records of a
 * next hop domain in order of preference, the addresses of each
 * exchanger, the implicit MX of a domain without MX records, the null
 * MX of RFC 7505, and MX records that point back at this host.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "netaddr.h"
#include "smtp.h"

void smtp_target_list_free(struct smtp_target_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->items[i].host);
		free(l->items[i].addr);
	}
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/* Appends a target unless its address is already in the list. */
static void mx_target_add(struct smtp_target_list *l, const char *host,
    const char *addr, unsigned preference)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].addr, addr) == 0)
			return;
	l->items = xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count].host = xstrdup(host);
	l->items[l->count].addr = xstrdup(addr);
	l->items[l->count].preference = preference;
	l->count++;
}

/* Adds the addresses of every interface. */
static int mx_self_interfaces(struct smtp_addr_list *out, char **err_out)
{
	struct ifaddrs *list;

	if (getifaddrs(&list) < 0) {
		*err_out = xasprintf("cannot list the network interfaces: %m");
		return -1;
	}
	for (struct ifaddrs *ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
		char buf[64];

		if (ifa->ifa_addr == NULL || (ifa->ifa_addr->sa_family
		    != AF_INET && ifa->ifa_addr->sa_family != AF_INET6))
			continue;
		smtp_addr_list_add(out, sockaddr_to_str(ifa->ifa_addr, buf,
		    sizeof(buf)));
	}
	freeifaddrs(list);
	return 0;
}

/* Adds the addresses of one inet_interfaces item (address or name). */
static int mx_self_item(struct smtp_addr_list *out, const char *item,
    char **err_out)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	size_t len = strlen(item);
	int rc;

	/* An IPv6 address may be written in brackets. */
	if (len >= 2 && item[0] == '[' && item[len - 1] == ']' &&
	    len - 2 < sizeof(host)) {
		memcpy(host, item + 1, len - 2);
		host[len - 2] = '\0';
	} else {
		snprintf(host, sizeof(host), "%s", item);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		*err_out = xasprintf("inet_interfaces: cannot look up \"%s\": "
		    "%s", item, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char buf[64];

		smtp_addr_list_add(out, sockaddr_to_str(ai->ai_addr, buf,
		    sizeof(buf)));
	}
	freeaddrinfo(res);
	return 0;
}

int smtp_self_init(struct smtp_self *self, const char *hostname,
    const char *interfaces, char **err_out)
{
	size_t count = 0;
	char **items = str_split(interfaces, ", \t", &count);
	int rc = 0;

	memset(self, 0, sizeof(*self));
	self->hostname = xstrdup(hostname);
	for (size_t i = 0; i < count && rc == 0; i++) {
		if (strcasecmp(items[i], "all") == 0)
			rc = mx_self_interfaces(&self->addrs, err_out);
		else if (strcasecmp(items[i], "loopback-only") == 0) {
			smtp_addr_list_add(&self->addrs, "127.0.0.1");
			smtp_addr_list_add(&self->addrs, "::1");
		} else
			rc = mx_self_item(&self->addrs, items[i], err_out);
	}
	free(items);
	if (rc < 0)
		smtp_self_free(self);
	return rc;
}

void smtp_self_free(struct smtp_self *self)
{
	free(self->hostname);
	self->hostname = NULL;
	smtp_addr_list_free(&self->addrs);
}

static int mx_compare(const void *a, const void *b)
{
	const struct smtp_mx *x = a, *y = b;

	return (x->preference > y->preference) - (x->preference < y->preference);
}

void smtp_mx_sort(struct smtp_mx_list *l)
{
	/* Shuffle first (Fisher-Yates), then sort by preference with a
	 * stable insertion sort, so records of equal preference keep the
	 * random order. */
	for (size_t i = l->count; i > 1; i--) {
		size_t j = (size_t)random() % i;
		struct smtp_mx tmp = l->items[i - 1];

		l->items[i - 1] = l->items[j];
		l->items[j] = tmp;
	}
	for (size_t i = 1; i < l->count; i++) {
		struct smtp_mx cur = l->items[i];
		size_t j = i;

		while (j > 0 && mx_compare(&l->items[j - 1], &cur) > 0) {
			l->items[j] = l->items[j - 1];
			j--;
		}
		l->items[j] = cur;
	}
}

int smtp_mx_is_null(const struct smtp_mx_list *l)
{
	return l->count == 1 && l->items[0].preference == 0
	    && l->items[0].host[0] == '\0';
}

/* 1 when host names this host by myhostname. */
static int mx_is_self_name(const struct smtp_self *self, const char *host)
{
	return self != NULL && self->hostname != NULL
	    && strcasecmp(self->hostname, host) == 0;
}

static int mx_is_self_addr(const struct smtp_self *self,
    const struct smtp_addr_list *addrs)
{
	if (self == NULL)
		return 0;
	for (size_t i = 0; i < addrs->count; i++)
		if (smtp_addr_list_has(&self->addrs, addrs->addrs[i]))
			return 1;
	return 0;
}

/* 1 when the limit (0: none) leaves room for another address. */
static int mx_room(const struct smtp_target_list *out, long limit)
{
	return limit <= 0 || out->count < (size_t)limit;
}

/* A bracketed next hop or an IP address: its own addresses, no MX. */
static int mx_route_direct(const struct smtp_nexthop *nh, long limit,
    struct smtp_target_list *out, const char **dsn_out, char **err_out)
{
	struct smtp_addr_list addrs;
	int rc = smtp_nexthop_lookup(nh, &addrs, err_out);

	if (rc < 0) {
		*dsn_out = rc == -1 ? "5.4.4" : "4.4.3";
		return -1;
	}
	for (size_t i = 0; i < addrs.count && mx_room(out, limit); i++)
		mx_target_add(out, nh->host, addrs.addrs[i], 0);
	smtp_addr_list_free(&addrs);
	return 0;
}

/* Where the walk over the MX hosts stopped, and why. */
struct mx_walk {
	int self_found;          /* an MX host is this host */
	unsigned self_pref;      /* the preference of the first such host */
	char *temp_err;          /* first temporary lookup failure */
	char *perm_err;          /* first permanent lookup failure */
};

/*
 * Resolves the MX hosts of l (sorted) in order into out until the
 * address limit, stopping at the first host that is this host.
 */
static void mx_resolve_hosts(const struct smtp_mx_list *l,
    const struct smtp_self *self, long limit,
    struct smtp_target_list *out, struct mx_walk *walk)
{
	for (size_t i = 0; i < l->count && mx_room(out, limit); i++) {
		const struct smtp_mx *mx = &l->items[i];
		struct smtp_addr_list addrs = {NULL, 0};
		char *err = NULL;
		enum smtp_dns_status st;

		if (mx->host[0] == '\0')
			continue;  /* "." is no host; see smtp_mx_is_null */
		if (mx_is_self_name(self, mx->host)) {
			walk->self_found = 1;
			walk->self_pref = mx->preference;
			return;
		}
		st = smtp_dns_lookup_addrs(mx->host, &addrs, &err);
		if (st != SMTP_DNS_OK) {
			char **slot = st == SMTP_DNS_TEMPFAIL ? &walk->temp_err
			    : &walk->perm_err;

			if (*slot == NULL)
				*slot = err;
			else
				free(err);
			continue;
		}
		if (mx_is_self_addr(self, &addrs)) {
			smtp_addr_list_free(&addrs);
			walk->self_found = 1;
			walk->self_pref = mx->preference;
			return;
		}
		for (size_t k = 0; k < addrs.count && mx_room(out, limit); k++)
			mx_target_add(out, mx->host, addrs.addrs[k],
			    mx->preference);
		smtp_addr_list_free(&addrs);
	}
}

/* Drops the targets at or above the preference of this host, because
 * mail from an MX host goes only to better ones (RFC 5321 section 5.1). */
static void mx_drop_from(struct smtp_target_list *out, unsigned pref)
{
	size_t kept = 0;

	for (size_t i = 0; i < out->count; i++) {
		if (out->items[i].preference >= pref) {
			free(out->items[i].host);
			free(out->items[i].addr);
			continue;
		}
		out->items[kept++] = out->items[i];
	}
	out->count = kept;
}

/* Sets the failure when no address is left after the walk. */
static void mx_walk_fail(const char *domain, struct mx_walk *walk,
    const char **dsn_out, char **err_out)
{
	if (walk->self_found) {
		*dsn_out = "5.4.6";
		*err_out = xasprintf("mail for %s loops back to myself",
		    domain);
	} else if (walk->temp_err != NULL) {
		*dsn_out = "4.4.3";
		*err_out = walk->temp_err;
		walk->temp_err = NULL;
	} else {
		*dsn_out = "5.4.4";
		*err_out = xasprintf("no mail server address for %s: %s",
		    domain, walk->perm_err != NULL ? walk->perm_err
		    : "no usable MX host");
	}
}

/* The MX records of domain, or the implicit MX of RFC 5321 5.1. */
static int mx_records(const char *domain, struct smtp_mx_list *l,
    const char **dsn_out, char **err_out)
{
	char *err = NULL;
	enum smtp_dns_status st = smtp_dns_lookup_mx(domain, l, &err);

	switch (st) {
	case SMTP_DNS_OK:
		if (smtp_mx_is_null(l)) {
			smtp_mx_list_free(l);
			free(err);
			*dsn_out = "5.1.10";
			*err_out = xasprintf("Recipient address has null MX: "
			    "%s accepts no mail", domain);
			return -1;
		}
		smtp_mx_sort(l);
		return 0;
	case SMTP_DNS_NODATA:
		/* No MX record: the domain itself, as if it were its own MX
		 * of preference 0. */
		free(err);
		l->items = xcalloc(1, sizeof(*l->items));
		l->items[0].host = xstrdup(domain);
		l->count = 1;
		return 0;
	case SMTP_DNS_NXDOMAIN:
		*dsn_out = "5.1.2";
		*err_out = err;
		return -1;
	default:
		*dsn_out = "4.4.3";
		*err_out = err;
		return -1;
	}
}

int smtp_route_lookup(const struct smtp_nexthop *nh,
    const struct smtp_self *self, long address_limit,
    struct smtp_target_list *out, const char **dsn_out, char **err_out)
{
	struct smtp_mx_list mx = {NULL, 0};
	struct mx_walk walk = {0, 0, NULL, NULL};
	unsigned char probe[sizeof(struct in6_addr)];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (nh->bracketed || inet_pton(AF_INET, nh->host, probe) == 1 ||
	    inet_pton(AF_INET6, nh->host, probe) == 1)
		return mx_route_direct(nh, address_limit, out, dsn_out,
		    err_out);

	if (mx_records(nh->host, &mx, dsn_out, err_out) < 0)
		return -1;
	mx_resolve_hosts(&mx, self, address_limit, out, &walk);
	if (walk.self_found)
		mx_drop_from(out, walk.self_pref);
	if (out->count == 0) {
		mx_walk_fail(nh->host, &walk, dsn_out, err_out);
		smtp_target_list_free(out);
		rc = -1;
	}
	free(walk.temp_err);
	free(walk.perm_err);
	smtp_mx_list_free(&mx);
	return rc;
}
