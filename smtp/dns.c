/*
 * DNS lookups of the smtp agent: MX, A and AAAA queries through one
 * resolver state, and the parsing of their answers.
 *
 * The agent queries DNS itself with res_nquery() instead of getaddrinfo()
 * because it needs MX records and the exact failure (NXDOMAIN, no data,
 * SERVFAIL), and because smtp_dns_resolver_address may point the queries
 * at other servers than those of /etc/resolv.conf. res_nquery() asks
 * again over TCP when a UDP answer has the TC bit set.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netaddr.h"
#include "smtp.h"

/* The resolver state, read from /etc/resolv.conf once, before a chroot. */
static struct __res_state dns_state;
static int dns_ready;

/* Parses one smtp_dns_resolver_address item into sin. */
static int dns_server_parse(const char *item, struct sockaddr_in *sin,
    char **err_out)
{
	char *host = NULL;
	char *port = NULL;
	int bracketed = 0;
	long port_number = NS_DEFAULTPORT;
	int rc = -1;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (hostport_split(item, &host, &port, &bracketed) < 0 || host == NULL
	    || inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		/* TODO: accept IPv6 servers (glibc keeps them outside
		 * nsaddr_list, in private fields of the state). */
		*err_out = xasprintf("smtp_dns_resolver_address: \"%s\" is not "
		    "an IPv4 address or address:port", item);
		goto out;
	}
	if (port != NULL) {
		char *end;

		port_number = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || port_number < 1
		    || port_number > 65535) {
			*err_out = xasprintf("smtp_dns_resolver_address: "
			    "invalid port in \"%s\"", item);
			goto out;
		}
	}
	sin->sin_port = htons((unsigned short)port_number);
	rc = 0;
out:
	free(host);
	free(port);
	return rc;
}

int smtp_dns_init(const char *servers, char **err_out)
{
	struct sockaddr_in list[MAXNS];
	size_t count = 0;
	char **items = str_split(servers != NULL ? servers : "", ", \t",
	    &count);
	int rc = -1;

	if (count > MAXNS) {
		*err_out = xasprintf("smtp_dns_resolver_address lists %zu "
		    "servers; the resolver takes at most %d", count, MAXNS);
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		if (dns_server_parse(items[i], &list[i], err_out) < 0)
			goto out;

	if (dns_ready)
		res_nclose(&dns_state);
	memset(&dns_state, 0, sizeof(dns_state));
	if (res_ninit(&dns_state) < 0) {
		*err_out = xstrdup("cannot initialize the DNS resolver from "
		    "/etc/resolv.conf");
		goto out;
	}
	/* glibc's res_send() notices the changed list and drops its
	 * sockets to the old servers. */
	for (size_t i = 0; i < count; i++)
		dns_state.nsaddr_list[i] = list[i];
	if (count > 0)
		dns_state.nscount = (int)count;
	dns_ready = 1;
	rc = 0;
out:
	free(items);
	return rc;
}

static const char *dns_type_name(int type)
{
	switch (type) {
	case ns_t_mx:
		return "MX";
	case ns_t_a:
		return "A";
	case ns_t_aaaa:
		return "AAAA";
	default:
		return "?";
	}
}

/* Copies name without a trailing dot into out (NS_MAXDNAME bytes). */
static void dns_name_copy(char *out, const char *name)
{
	size_t len;

	snprintf(out, NS_MAXDNAME, "%s", name);
	len = strlen(out);
	if (len > 1 && out[len - 1] == '.')
		out[len - 1] = '\0';
}

/* Takes one answer record of the asked type; returns 0, or -1 when its
 * data is malformed. */
typedef int (*dns_take_fn)(const ns_msg *msg, const ns_rr *rr, void *ctx);

/*
 * Calls take for each IN record of type in the answer section owned by
 * name, or by the target of a CNAME owned by name (and so on down the
 * chain, which a recursive server puts in order).
 */
static enum smtp_dns_status dns_walk(const unsigned char *ans, size_t len,
    const char *name, int type, dns_take_fn take, void *ctx,
    char **err_out)
{
	ns_msg msg;
	ns_rr rr;
	char owner[NS_MAXDNAME];
	size_t found = 0;
	int rcode;

	dns_name_copy(owner, name);
	if (len > NS_MAXMSG || ns_initparse(ans, (int)len, &msg) < 0)
		goto malformed;
	rcode = ns_msg_getflag(msg, ns_f_rcode);
	if (rcode == ns_r_nxdomain) {
		*err_out = xasprintf("Host or domain name not found: DNS type "
		    "%s lookup of %s returned NXDOMAIN", dns_type_name(type),
		    owner);
		return SMTP_DNS_NXDOMAIN;
	}
	if (rcode != ns_r_noerror) {
		*err_out = xasprintf("DNS type %s lookup of %s failed with "
		    "reply code %d", dns_type_name(type), owner, rcode);
		return SMTP_DNS_TEMPFAIL;
	}

	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			goto malformed;
		if (ns_rr_class(rr) != ns_c_in ||
		    strcasecmp(ns_rr_name(rr), owner) != 0)
			continue;
		if (ns_rr_type(rr) == ns_t_cname && type != ns_t_cname) {
			char target[NS_MAXDNAME];

			if (dn_expand(ns_msg_base(msg), ns_msg_end(msg),
			    ns_rr_rdata(rr), target, sizeof(target))
			    != ns_rr_rdlen(rr))
				goto malformed;
			dns_name_copy(owner, target);
			continue;
		}
		if ((int)ns_rr_type(rr) != type)
			continue;
		if (take(&msg, &rr, ctx) < 0)
			goto malformed;
		found++;
	}
	if (found == 0) {
		*err_out = xasprintf("no DNS type %s record for %s",
		    dns_type_name(type), owner);
		return SMTP_DNS_NODATA;
	}
	return SMTP_DNS_OK;

malformed:
	*err_out = xasprintf("malformed DNS answer to the type %s lookup of "
	    "%s", dns_type_name(type), name);
	return SMTP_DNS_TEMPFAIL;
}

/* MX data: a 16-bit preference, then the exchange name (RFC 1035 3.3.9). */
static int dns_take_mx(const ns_msg *msg, const ns_rr *rr, void *ctx)
{
	struct smtp_mx_list *l = ctx;
	char host[NS_MAXDNAME];
	const unsigned char *rdata = ns_rr_rdata(*rr);
	int rdlen = ns_rr_rdlen(*rr);

	if (rdlen < 3 || dn_expand(ns_msg_base(*msg), ns_msg_end(*msg),
	    rdata + 2, host, sizeof(host)) != rdlen - 2)
		return -1;
	l->items = xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count].preference = ns_get16(rdata);
	/* dn_expand() writes the root name as "", which RFC 7505 uses for
	 * a null MX. */
	l->items[l->count].host = xstrdup(host);
	l->count++;
	return 0;
}

static int dns_take_addr(const ns_msg *msg, const ns_rr *rr, void *ctx)
{
	struct smtp_addr_list *l = ctx;
	char buf[INET6_ADDRSTRLEN];
	int family = ns_rr_type(*rr) == ns_t_a ? AF_INET : AF_INET6;
	int want = family == AF_INET ? NS_INADDRSZ : NS_IN6ADDRSZ;

	(void)msg;
	if (ns_rr_rdlen(*rr) != want ||
	    inet_ntop(family, ns_rr_rdata(*rr), buf, sizeof(buf)) == NULL)
		return -1;
	smtp_addr_list_add(l, buf);
	return 0;
}

enum smtp_dns_status smtp_dns_parse_mx(const unsigned char *ans, size_t len,
    const char *name, struct smtp_mx_list *out, char **err_out)
{
	enum smtp_dns_status st;

	memset(out, 0, sizeof(*out));
	st = dns_walk(ans, len, name, ns_t_mx, dns_take_mx, out, err_out);
	if (st != SMTP_DNS_OK)
		smtp_mx_list_free(out);
	return st;
}

enum smtp_dns_status smtp_dns_parse_addrs(const unsigned char *ans,
    size_t len, const char *name, int type, struct smtp_addr_list *out,
    char **err_out)
{
	return dns_walk(ans, len, name, type, dns_take_addr, out, err_out);
}

/*
 * Sends one query. Returns SMTP_DNS_OK with the answer in *ans_out
 * (caller frees) and its length in *len_out, or another status with a
 * message in *err_out.
 */
static enum smtp_dns_status dns_query(const char *name, int type,
    unsigned char **ans_out, size_t *len_out, char **err_out)
{
	unsigned char *ans;
	int n;

	if (!dns_ready && smtp_dns_init("", err_out) < 0)
		return SMTP_DNS_TEMPFAIL;
	ans = xmalloc(NS_MAXMSG);
	dns_state.res_h_errno = 0;
	n = res_nquery(&dns_state, name, ns_c_in, type, ans, NS_MAXMSG);
	if (n >= 0) {
		*ans_out = ans;
		/* A longer answer than the buffer is cut; the parser then
		 * rejects it as truncated. */
		*len_out = n > NS_MAXMSG ? NS_MAXMSG : (size_t)n;
		return SMTP_DNS_OK;
	}
	free(ans);
	switch (dns_state.res_h_errno) {
	case HOST_NOT_FOUND:
		*err_out = xasprintf("Host or domain name not found: DNS type "
		    "%s lookup of %s returned NXDOMAIN", dns_type_name(type),
		    name);
		return SMTP_DNS_NXDOMAIN;
	case NO_DATA:
		*err_out = xasprintf("no DNS type %s record for %s",
		    dns_type_name(type), name);
		return SMTP_DNS_NODATA;
	case TRY_AGAIN:
		*err_out = xasprintf("DNS type %s lookup of %s failed: server "
		    "failure or no answer in time", dns_type_name(type), name);
		return SMTP_DNS_TEMPFAIL;
	default:
		/* NO_RECOVERY: a refusal or a malformed answer. */
		*err_out = xasprintf("DNS type %s lookup of %s failed: %s",
		    dns_type_name(type), name,
		    hstrerror(dns_state.res_h_errno));
		return SMTP_DNS_TEMPFAIL;
	}
}

enum smtp_dns_status smtp_dns_lookup_mx(const char *domain,
    struct smtp_mx_list *out, char **err_out)
{
	unsigned char *ans = NULL;
	size_t len = 0;
	enum smtp_dns_status st;

	memset(out, 0, sizeof(*out));
	st = dns_query(domain, ns_t_mx, &ans, &len, err_out);
	if (st == SMTP_DNS_OK)
		st = smtp_dns_parse_mx(ans, len, domain, out, err_out);
	free(ans);
	return st;
}

/* Queries one address type of host and appends what it finds to out. */
static enum smtp_dns_status dns_lookup_type(const char *host, int type,
    struct smtp_addr_list *out, char **err_out)
{
	unsigned char *ans = NULL;
	size_t len = 0;
	enum smtp_dns_status st;

	st = dns_query(host, type, &ans, &len, err_out);
	if (st == SMTP_DNS_OK)
		st = smtp_dns_parse_addrs(ans, len, host, type, out, err_out);
	free(ans);
	return st;
}

enum smtp_dns_status smtp_dns_lookup_addrs(const char *host,
    struct smtp_addr_list *out, char **err_out)
{
	char *err_a = NULL;
	char *err_aaaa = NULL;
	enum smtp_dns_status st_a, st_aaaa;

	st_a = dns_lookup_type(host, ns_t_a, out, &err_a);
	if (st_a == SMTP_DNS_NXDOMAIN) {
		*err_out = err_a;
		return st_a;
	}
	st_aaaa = dns_lookup_type(host, ns_t_aaaa, out, &err_aaaa);
	if (st_a == SMTP_DNS_OK || st_aaaa == SMTP_DNS_OK) {
		free(err_a);
		free(err_aaaa);
		return SMTP_DNS_OK;
	}

	/* Neither type found an address: a temporary failure of either
	 * query wins, because a retry may find one. */
	if (st_aaaa == SMTP_DNS_TEMPFAIL && st_a != SMTP_DNS_TEMPFAIL) {
		*err_out = err_aaaa;
		free(err_a);
		return st_aaaa;
	}
	*err_out = err_a;
	free(err_aaaa);
	return st_a;
}

void smtp_mx_list_free(struct smtp_mx_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i].host);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}
