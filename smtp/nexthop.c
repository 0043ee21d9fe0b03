/*
 * Next hops: the syntax qmgr passes in a request, and the lookup of a
 * host's addresses through getaddrinfo() (for "[host]" next hops).
 */
#define _GNU_SOURCE /* EAI_NODATA */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"
#include "smtp.h"

#define SMTP_DEFAULT_PORT "25"

/* 1 when s is a decimal port number in 1..65535. */
static int nexthop_port_valid(const char *s)
{
	long value = 0;

	if (*s == '\0' || strlen(s) > 5)
		return 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		value = value * 10 + (*p - '0');
	}
	return value >= 1 && value <= 65535;
}

int smtp_nexthop_parse(const char *text, const char *fallback_domain,
    struct smtp_nexthop *out, char **err_out)
{
	char *host = NULL;
	char *port = NULL;
	int bracketed = 0;

	memset(out, 0, sizeof(*out));
	if (text == NULL || *text == '\0')
		text = fallback_domain != NULL ? fallback_domain : "";
	if (*text == '\0') {
		*err_out = xstrdup("empty next hop and no recipient domain");
		return -1;
	}

	if (hostport_split(text, &host, &port, &bracketed) < 0) {
		*err_out = xasprintf("malformed next hop \"%s\"", text);
		return -1;
	}
	if (host == NULL || *host == '\0') {
		*err_out = xasprintf("next hop \"%s\" has no host", text);
		goto fail;
	}
	if (port != NULL && !nexthop_port_valid(port)) {
		*err_out = xasprintf("next hop \"%s\" has an invalid port", text);
		goto fail;
	}

	out->host = host;
	snprintf(out->port, sizeof(out->port), "%s",
	    port != NULL ? port : SMTP_DEFAULT_PORT);
	out->bracketed = bracketed;
	free(port);
	return 0;

fail:
	free(host);
	free(port);
	return -1;
}

void smtp_nexthop_free(struct smtp_nexthop *nh)
{
	free(nh->host);
	nh->host = NULL;
}

int smtp_nexthop_lookup(const struct smtp_nexthop *nh,
    struct smtp_addr_list *out, char **err_out)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(nh->host, nh->port, &hints, &res);
	if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL) {
		*err_out = xasprintf("Host or domain name not found: %s (%s)",
		    nh->host, gai_strerror(rc));
		return -1;
	}
	if (rc != 0) {
		*err_out = xasprintf("lookup of %s failed: %s", nh->host,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -2;
	}

	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char buf[64];

		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		sockaddr_to_str(ai->ai_addr, buf, sizeof(buf));
		smtp_addr_list_add(out, buf);
	}
	freeaddrinfo(res);
	if (out->count == 0) {
		*err_out = xasprintf("no IPv4 or IPv6 address for %s",
		    nh->host);
		return -1;
	}
	return 0;
}

int smtp_addr_list_has(const struct smtp_addr_list *l, const char *addr)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->addrs[i], addr) == 0)
			return 1;
	return 0;
}

void smtp_addr_list_add(struct smtp_addr_list *l, const char *addr)
{
	if (smtp_addr_list_has(l, addr))
		return;
	l->addrs = xrealloc(l->addrs, (l->count + 1) * sizeof(*l->addrs));
	l->addrs[l->count++] = xstrdup(addr);
}

void smtp_addr_list_free(struct smtp_addr_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->addrs[i]);
	free(l->addrs);
	l->addrs = NULL;
	l->count = 0;
}
