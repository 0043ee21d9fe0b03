/*
 * The client's host name, found without blocking the event loop.
 *
 * The hosts file (read once at start, before any chroot) is tried
 * first. Otherwise evdns looks up the PTR record, and the name is kept
 * only when a forward lookup of it returns the client's address. Every
 * other outcome, including a timeout, gives "unknown". Loopback
 * clients missing from the hosts file are "unknown" without a query,
 * because a PTR query for them would only go to the resolver for
 * nothing on every local connection.
 *
 * A cancelled evdns request still calls its callback (with
 * DNS_ERR_CANCEL or EVUTIL_EAI_CANCEL), so a lookup whose session went
 * away stays allocated until that callback has run.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "netaddr.h"
#include "sbuf.h"
#include "smtpd.h"

#define LOOKUP_TIMEOUT_SEC 3  /* the banner waits at most this long */
#define HOSTS_FILE "/etc/hosts"

struct smtpd_lookup {
	struct smtpd_session *sess;   /* NULL once finished or cancelled */
	int reverse_pending;          /* a PTR request awaits its callback */
	int forward_pending;          /* a getaddrinfo request awaits it */
	struct evdns_request *reverse;
	struct evdns_getaddrinfo_request *forward;
	struct event *timer;
	char addr[INET6_ADDRSTRLEN];
	char *name;                   /* PTR result being confirmed */
};

struct hosts_entry {
	char addr[INET6_ADDRSTRLEN];
	char *name;
};

static struct hosts_entry *hosts;
static size_t hosts_count;

/* Writes the canonical text form of a numeric address, or returns -1. */
static int addr_canonical(const char *text, char *out, size_t size)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, text, &a4) == 1)
		return inet_ntop(AF_INET, &a4, out, size) ? 0 : -1;
	if (inet_pton(AF_INET6, text, &a6) == 1)
		return inet_ntop(AF_INET6, &a6, out, size) ? 0 : -1;
	return -1;
}

void smtpd_lookup_init(void)
{
	FILE *fp = fopen(HOSTS_FILE, "r");
	char line[1024];

	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp)) {
		char *save = NULL, *addr, *name;
		char canon[INET6_ADDRSTRLEN];

		line[strcspn(line, "#\n")] = '\0';
		addr = strtok_r(line, " \t", &save);
		name = addr ? strtok_r(NULL, " \t", &save) : NULL;
		if (name == NULL ||
		    addr_canonical(addr, canon, sizeof(canon)) < 0)
			continue;
		hosts = xrealloc(hosts, (hosts_count + 1) * sizeof(*hosts));
		memcpy(hosts[hosts_count].addr, canon, sizeof(canon));
		hosts[hosts_count].name = xstrdup(name);
		hosts_count++;
	}
	fclose(fp);
}

static const char *hosts_find(const char *addr)
{
	for (size_t i = 0; i < hosts_count; i++)
		if (strcmp(hosts[i].addr, addr) == 0)
			return hosts[i].name;
	return NULL;
}

static int addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return sin6->sin6_addr.s6_addr[12] == 127;
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return 0;
}

static void lookup_release(struct smtpd_lookup *lk)
{
	if (lk->sess || lk->reverse_pending || lk->forward_pending)
		return;
	if (lk->timer)
		event_free(lk->timer);
	free(lk->name);
	free(lk);
}

/* Cancels what is outstanding; the callbacks then release lk. */
static void lookup_detach(struct smtpd_lookup *lk)
{
	lk->sess = NULL;
	if (lk->timer)
		event_del(lk->timer);
	if (lk->reverse_pending)
		evdns_cancel_request(smtpd_dns_base, lk->reverse);
	if (lk->forward_pending)
		evdns_getaddrinfo_cancel(lk->forward);
	lookup_release(lk);
}

static void lookup_finish(struct smtpd_lookup *lk, const char *name)
{
	struct smtpd_session *sess = lk->sess;

	if (sess == NULL)
		return;
	sess->lookup = NULL;
	lookup_detach(lk);
	smtpd_session_start(sess, xstrdup(name));
}

static void lookup_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	lookup_finish(arg, "unknown");
}

static void forward_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct smtpd_lookup *lk = arg;
	int confirmed = 0;

	lk->forward_pending = 0;
	if (result == 0) {
		for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
			char addr[INET6_ADDRSTRLEN];

			sockaddr_to_str(ai->ai_addr, addr, sizeof(addr));
			if (strcmp(addr, lk->addr) == 0)
				confirmed = 1;
		}
		evutil_freeaddrinfo(res);
	}
	if (lk->sess) {
		if (!confirmed && result != EVUTIL_EAI_CANCEL)
			log_warn("hostname %s does not resolve to address %s",
			    lk->name, lk->addr);
		lookup_finish(lk, confirmed ? lk->name : "unknown");
	} else {
		lookup_release(lk);
	}
}

/* Checks that the name from the PTR record resolves to the client. */
static void lookup_forward(struct smtpd_lookup *lk)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	lk->forward_pending = 1;
	/* The callback may run before this returns, and then NULL is
	 * returned. */
	req = evdns_getaddrinfo(smtpd_dns_base, lk->name, NULL, &hints,
	    forward_cb, lk);
	if (req && lk->forward_pending)
		lk->forward = req;
}

/* Returns 1 when name is acceptable as a host name in logs and headers. */
static int name_plausible(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return 0;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' ||
		    *p == '_'))
			return 0;
	return 1;
}

static void reverse_cb(int result, char type, int count, int ttl,
    void *addresses, void *arg)
{
	struct smtpd_lookup *lk = arg;

	lk->reverse_pending = 0;
	if (lk->sess == NULL) {
		lookup_release(lk);
		return;
	}
	if (result != DNS_ERR_NONE || type != DNS_PTR || count < 1 ||
	    !name_plausible(((char **)addresses)[0])) {
		lookup_finish(lk, "unknown");
		return;
	}
	lk->name = xstrdup(((char **)addresses)[0]);
	lookup_forward(lk);
}

static int lookup_reverse(struct smtpd_lookup *lk, const struct sockaddr *sa)
{
	lk->reverse_pending = 1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		lk->reverse = evdns_base_resolve_reverse(smtpd_dns_base,
		    &sin->sin_addr, 0, reverse_cb, lk);
	} else if (IN6_IS_ADDR_V4MAPPED(
	    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr)) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		struct in_addr a4;

		memcpy(&a4, sin6->sin6_addr.s6_addr + 12, sizeof(a4));
		lk->reverse = evdns_base_resolve_reverse(smtpd_dns_base, &a4,
		    0, reverse_cb, lk);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		lk->reverse = evdns_base_resolve_reverse_ipv6(smtpd_dns_base,
		    &sin6->sin6_addr, 0, reverse_cb, lk);
	}
	if (lk->reverse == NULL) {
		lk->reverse_pending = 0;
		return -1;
	}
	return 0;
}

void smtpd_lookup_start(struct smtpd_session *sess, const struct sockaddr *sa)
{
	struct smtpd_lookup *lk;
	struct timeval tv = {LOOKUP_TIMEOUT_SEC, 0};
	const char *known;

	if (!smtpd_settings.peername_lookup || smtpd_dns_base == NULL ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
		smtpd_session_start(sess, xstrdup("unknown"));
		return;
	}
	known = hosts_find(sess->addr);
	if (known || addr_is_loopback(sa)) {
		smtpd_session_start(sess, xstrdup(known ? known : "unknown"));
		return;
	}

	lk = xcalloc(1, sizeof(*lk));
	lk->sess = sess;
	memcpy(lk->addr, sess->addr, sizeof(lk->addr));
	sess->lookup = lk;
	lk->timer = evtimer_new(smtpd_event_base, lookup_timeout_cb, lk);
	if (lk->timer)
		evtimer_add(lk->timer, &tv);
	if (lookup_reverse(lk, sa) < 0)
		lookup_finish(lk, "unknown");
}

void smtpd_lookup_cancel(struct smtpd_session *sess)
{
	struct smtpd_lookup *lk = sess->lookup;

	sess->lookup = NULL;
	if (lk)
		lookup_detach(lk);
}
