/*
 * resolve - address classes, transports and next hops from the routing
 * parameters of main.cf.
 *
 * The tables are opened by resolve_init(). A table that cannot be opened
 * (a hash: file not built yet, say) does not stop the others. Lookups
 * that need it fail as temporary errors, so mail is deferred rather than
 * misrouted. Opening it is retried at most every RESOLVE_RETRY_SECONDS.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "maps.h"
#include "resolve.h"
#include "sbuf.h"

#define RESOLVE_RETRY_SECONDS 5

/* The tables of one parameter. */
struct resolve_tables {
	const char *param;
	char *spec;            /* the specs to open; "" for none */
	struct maplist *list;  /* NULL while the specs fail to open */
	char *open_error;
	time_t retry_at;       /* CLOCK_MONOTONIC seconds */
};

/* A domain list: names, ".parent" patterns and tables. */
struct resolve_domains {
	const char *param;
	char **names;          /* lowercased, without a trailing dot */
	size_t name_count;
	struct resolve_tables tables;
	char *config_error;    /* set when the list itself is invalid */
};

static struct {
	int ready;
	struct resolve_domains local;
	struct resolve_domains virtual_domains;
	struct resolve_domains relay;
	struct resolve_tables transport;
	struct resolve_tables local_recipients;
	struct resolve_tables virtual_mailboxes;
	struct resolve_tables virtual_aliases;
} resolve;

static time_t resolve_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Tries to open t->spec. Returns 0, or -1 with t->open_error set. */
static int resolve_tables_try(struct resolve_tables *t)
{
	char *err = NULL;

	t->retry_at = resolve_now() + RESOLVE_RETRY_SECONDS;
	t->list = maplist_open(t->spec, &err);
	if (t->list != NULL) {
		free(t->open_error);
		t->open_error = NULL;
		return 0;
	}
	free(t->open_error);
	t->open_error = xasprintf("%s: %s", t->param, err);
	free(err);
	return -1;
}

/* Opens the tables in spec for param. On failure *err_out receives a copy
 * of the message unless it already has one. */
static int resolve_tables_open(struct resolve_tables *t, const char *param,
    const char *spec, char **err_out)
{
	t->param = param;
	t->spec = xstrdup(spec);
	if (resolve_tables_try(t) == 0)
		return 0;
	log_error("%s", t->open_error);
	if (*err_out == NULL)
		*err_out = xstrdup(t->open_error);
	return -1;
}

static void resolve_tables_close(struct resolve_tables *t)
{
	maplist_close(&t->list);
	free(t->spec);
	free(t->open_error);
	memset(t, 0, sizeof(*t));
}

/* Same results as maplist_lookup; a table that did not open is an error. */
static int resolve_tables_lookup(struct resolve_tables *t, const char *key,
    char **value_out, char **err_out)
{
	*value_out = NULL;
	if (t->list == NULL && (resolve_now() < t->retry_at ||
	    resolve_tables_try(t) < 0)) {
		*err_out = xstrdup(t->open_error);
		return -1;
	}
	return maplist_lookup(t->list, key, value_out, err_out);
}

/* 1 when the parameter names no table at all. */
static int resolve_tables_empty(const struct resolve_tables *t)
{
	return t->list != NULL && maplist_count(t->list) == 0;
}

/* Records an invalid domain list; lookups in it then fail. */
static int resolve_domains_fail(struct resolve_domains *d, char *message,
    char **err_out)
{
	d->config_error = message;
	log_error("%s", message);
	if (*err_out == NULL)
		*err_out = xstrdup(message);
	return -1;
}

/* Sorts the items of a domain list into names and tables. */
static int resolve_domains_open(struct resolve_domains *d, const char *param,
    char **err_out)
{
	size_t count;
	char *split_err = NULL;
	char **items = map_split_list(config_str(param), &count, &split_err);

	d->param = param;
	if (items == NULL) {
		char *message = xasprintf("%s: %s", param, split_err);
		free(split_err);
		return resolve_domains_fail(d, message, err_out);
	}

	struct sbuf specs;
	sbuf_init(&specs, 0);
	d->names = xcalloc(count + 1, sizeof(char *));
	for (size_t i = 0; i < count; i++) {
		char *item = items[i];
		if (strchr(item, ':') != NULL || item[0] == '/') {
			if (!map_spec_valid(item)) {
				char *message = xasprintf("%s: \"%s\" is neither a "
				    "domain name nor a type:name table", param, item);
				free(items);
				sbuf_free(&specs);
				return resolve_domains_fail(d, message, err_out);
			}
			sbuf_printf(&specs, "%s%s", specs.len ? ", " : "", item);
			continue;
		}
		size_t len = strlen(item);
		if (len > 1 && item[len - 1] == '.')
			item[len - 1] = '\0';
		str_lower(item);
		d->names[d->name_count++] = xstrdup(item);
	}
	free(items);
	int rc = resolve_tables_open(&d->tables, param, sbuf_cstr(&specs),
	    err_out);
	sbuf_free(&specs);
	return rc;
}

static void resolve_domains_close(struct resolve_domains *d)
{
	for (size_t i = 0; i < d->name_count; i++)
		free(d->names[i]);
	free(d->names);
	free(d->config_error);
	resolve_tables_close(&d->tables);
	memset(d, 0, sizeof(*d));
}

/* Matches a lowercased domain: 1 listed, 0 not, -1 table error. */
static int resolve_domains_match(struct resolve_domains *d,
    const char *domain, char **err_out)
{
	size_t len = strlen(domain);

	if (d->config_error != NULL) {
		*err_out = xstrdup(d->config_error);
		return -1;
	}
	for (size_t i = 0; i < d->name_count; i++) {
		const char *name = d->names[i];
		size_t name_len = strlen(name);

		if (name[0] == '.') {
			if (len > name_len &&
			    strcmp(domain + len - name_len, name) == 0)
				return 1;
		} else if (strcmp(domain, name) == 0) {
			return 1;
		}
	}
	if (resolve_tables_empty(&d->tables))
		return 0;

	char *value;
	int rc = resolve_tables_lookup(&d->tables, domain, &value, err_out);
	free(value);
	return rc;
}

static void resolve_close(void);

int resolve_init(char **err_out)
{
	*err_out = NULL;
	if (resolve.ready)
		resolve_close();
	resolve.ready = 1;

	/* Open everything even after a failure, so that the tables that do
	 * open work and the others are retried on use. */
	resolve_domains_open(&resolve.local, "mydestination", err_out);
	resolve_domains_open(&resolve.virtual_domains, "virtual_mailbox_domains",
	    err_out);
	resolve_domains_open(&resolve.relay, "relay_domains", err_out);
	resolve_tables_open(&resolve.transport, "transport_maps",
	    config_str("transport_maps"), err_out);
	resolve_tables_open(&resolve.local_recipients, "local_recipient_maps",
	    config_str("local_recipient_maps"), err_out);
	resolve_tables_open(&resolve.virtual_mailboxes, "virtual_mailbox_maps",
	    config_str("virtual_mailbox_maps"), err_out);
	resolve_tables_open(&resolve.virtual_aliases, "virtual_alias_maps",
	    config_str("virtual_alias_maps"), err_out);
	return *err_out == NULL ? 0 : -1;
}

/* Releases every table; resolve_init() opens them again. */
static void resolve_close(void)
{
	resolve_domains_close(&resolve.local);
	resolve_domains_close(&resolve.virtual_domains);
	resolve_domains_close(&resolve.relay);
	resolve_tables_close(&resolve.transport);
	resolve_tables_close(&resolve.local_recipients);
	resolve_tables_close(&resolve.virtual_mailboxes);
	resolve_tables_close(&resolve.virtual_aliases);
	resolve.ready = 0;
}

/* Runs resolve_init() for a caller that skipped it. Its error was logged,
 * and lookups in a table that did not open report it again. */
static void resolve_ready(void)
{
	char *err = NULL;

	if (resolve.ready)
		return;
	resolve_init(&err);
	free(err);
}

/* Copies domain lowercased without a trailing dot (caller frees). */
static char *resolve_domain_key(const char *domain)
{
	char *key = xstrdup(domain);
	size_t len = strlen(key);

	if (len > 1 && key[len - 1] == '.')
		key[len - 1] = '\0';
	str_lower(key);
	return key;
}

/* Class of a domain already made a key by resolve_domain_key(). */
static int resolve_key_class(const char *key, char **err_out)
{
	static const struct {
		struct resolve_domains *domains;
		enum addr_class addr_class;
	} order[] = {
		{&resolve.local, ADDR_CLASS_LOCAL},
		{&resolve.virtual_domains, ADDR_CLASS_VIRTUAL},
		{&resolve.relay, ADDR_CLASS_RELAY},
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int rc = resolve_domains_match(order[i].domains, key, err_out);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return order[i].addr_class;
	}
	return ADDR_CLASS_DEFAULT;
}

int resolve_domain_class(const char *domain, char **err_out)
{
	*err_out = NULL;
	resolve_ready();

	char *key = resolve_domain_key(domain);
	int rc = resolve_key_class(key, err_out);
	free(key);
	return rc;
}

/*
 * Completes a bare address ("user" or "user@") with myorigin. Returns
 * the address (caller frees) and points *domain_out into it.
 */
static char *resolve_complete(const char *addr, const char **domain_out)
{
	const char *at = strrchr(addr, '@');
	char *full;

	if (at == NULL)
		full = xasprintf("%s@%s", addr, config_str("myorigin"));
	else if (at[1] == '\0')
		full = xasprintf("%s%s", addr, config_str("myorigin"));
	else
		full = xstrdup(addr);
	*domain_out = strrchr(full, '@') + 1;
	return full;
}

/*
 * Returns a copy of addr ("local@domain" or a bare local part) without
 * the address extension that starts at the first recipient_delimiter
 * character, or NULL when it has none.
 */
static char *resolve_strip_extension(const char *addr)
{
	const char *delimiters = config_str("recipient_delimiter");
	const char *at = strrchr(addr, '@');
	size_t local_len = at ? (size_t)(at - addr) : strlen(addr);

	if (*delimiters == '\0' || local_len == 0)
		return NULL;
	/* Position 0 is skipped: "+foo" has no user part to keep. */
	for (size_t i = 1; i < local_len; i++) {
		if (strchr(delimiters, addr[i]) != NULL)
			return xasprintf("%.*s%s", (int)i, addr, at ? at : "");
	}
	return NULL;
}

/* Copies src into dst of dst_size bytes; -1 with a message when too long. */
static int resolve_copy(char *dst, size_t dst_size, const char *src,
    const char *what, char **err_out)
{
	size_t len = strlen(src);

	if (len >= dst_size) {
		*err_out = xasprintf("%s \"%.60s...\" is longer than %zu bytes",
		    what, src, dst_size - 1);
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

/* Applies "transport:nexthop" over out; empty parts leave out unchanged. */
static int resolve_apply_route(struct resolve_result *out, const char *route,
    const char *origin, char **err_out)
{
	const char *colon = strchr(route, ':');
	size_t transport_len = colon ? (size_t)(colon - route) : strlen(route);
	const char *nexthop = colon ? colon + 1 : "";

	while (*nexthop == ' ' || *nexthop == '\t')
		nexthop++;
	if (transport_len >= sizeof(out->transport)) {
		*err_out = xasprintf("%s: transport in \"%.80s\" is longer than "
		    "%zu bytes", origin, route, sizeof(out->transport) - 1);
		return -1;
	}
	if (transport_len > 0) {
		memcpy(out->transport, route, transport_len);
		out->transport[transport_len] = '\0';
	}
	if (*nexthop != '\0')
		return resolve_copy(out->nexthop, sizeof(out->nexthop), nexthop,
		    origin, err_out);
	return 0;
}

/* Fills out->transport and out->nexthop with the defaults of the class. */
static int resolve_class_defaults(struct resolve_result *out,
    const char *domain_key, char **err_out)
{
	static const char *const params[] = {
		[ADDR_CLASS_LOCAL] = "local_transport",
		[ADDR_CLASS_VIRTUAL] = "virtual_transport",
		[ADDR_CLASS_RELAY] = "relay_transport",
		[ADDR_CLASS_DEFAULT] = "default_transport",
	};
	const char *nexthop = domain_key;
	const char *relayhost = config_str("relayhost");

	if ((out->addr_class == ADDR_CLASS_RELAY ||
	    out->addr_class == ADDR_CLASS_DEFAULT) && *relayhost != '\0')
		nexthop = relayhost;
	if (resolve_copy(out->nexthop, sizeof(out->nexthop), nexthop,
	    "next hop", err_out) < 0)
		return -1;

	/* A next hop in the transport parameter itself ("smtp:[relay]")
	 * wins over relayhost. */
	const char *param = params[out->addr_class];
	out->transport[0] = '\0';
	if (resolve_apply_route(out, config_str(param), param, err_out) < 0)
		return -1;
	if (out->transport[0] == '\0') {
		*err_out = xasprintf("%s names no transport; set it to a "
		    "master.cf service such as smtp or local", param);
		return -1;
	}
	return 0;
}

/*
 * Looks the address up in transport_maps: the address, the address
 * without its extension, the domain, each parent domain as ".parent",
 * then "*". Returns 1 with the route, 0 when nothing matches, -1.
 */
static int resolve_transport_lookup(const char *addr, const char *domain_key,
    char **route_out, char **err_out)
{
	char *base = resolve_strip_extension(addr);
	int rc;

	rc = resolve_tables_lookup(&resolve.transport, addr, route_out, err_out);
	if (rc == 0 && base != NULL)
		rc = resolve_tables_lookup(&resolve.transport, base, route_out,
		    err_out);
	free(base);
	if (rc == 0)
		rc = resolve_tables_lookup(&resolve.transport, domain_key,
		    route_out, err_out);
	for (const char *dot = strchr(domain_key, '.'); rc == 0 && dot != NULL;
	    dot = strchr(dot + 1, '.'))
		rc = resolve_tables_lookup(&resolve.transport, dot, route_out,
		    err_out);
	if (rc == 0)
		rc = resolve_tables_lookup(&resolve.transport, "*", route_out,
		    err_out);
	return rc;
}

int resolve_addr(const char *addr, struct resolve_result *out,
    char **err_out)
{
	const char *domain;
	char *full, *domain_key = NULL, *route = NULL;
	int rc = -1;

	*err_out = NULL;
	memset(out, 0, sizeof(*out));
	resolve_ready();
	if (*addr == '\0') {
		*err_out = xstrdup("cannot resolve an empty address");
		return -1;
	}

	full = resolve_complete(addr, &domain);
	if (resolve_copy(out->recipient, sizeof(out->recipient), full,
	    "address", err_out) < 0)
		goto out;
	domain_key = resolve_domain_key(domain);
	int addr_class = resolve_key_class(domain_key, err_out);
	if (addr_class < 0)
		goto out;
	out->addr_class = (enum addr_class)addr_class;
	if (resolve_class_defaults(out, domain_key, err_out) < 0)
		goto out;

	if (!resolve_tables_empty(&resolve.transport)) {
		int found = resolve_transport_lookup(full, domain_key, &route,
		    err_out);
		if (found < 0)
			goto out;
		if (found > 0 && resolve_apply_route(out, route, "transport_maps",
		    err_out) < 0)
			goto out;
	}
	rc = 0;
out:
	free(route);
	free(domain_key);
	free(full);
	return rc;
}

/* Looks each key up in t until one is found: 1, 0 or -1. */
static int resolve_find_any(struct resolve_tables *t, char *const keys[],
    size_t key_count, char **err_out)
{
	for (size_t i = 0; i < key_count; i++) {
		char *value;
		int rc;

		if (keys[i] == NULL)
			continue;
		rc = resolve_tables_lookup(t, keys[i], &value, err_out);
		free(value);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Local domains: the lowercased local part, with and without extension. */
static int resolve_local_exists(const char *full, char **err_out)
{
	char *keys[2];
	int rc = 1;

	keys[0] = xstrndup(full, (size_t)(strrchr(full, '@') - full));
	str_lower(keys[0]);
	keys[1] = resolve_strip_extension(keys[0]);
	if (strcmp(keys[0], "postmaster") != 0 &&
	    (keys[1] == NULL || strcmp(keys[1], "postmaster") != 0) &&
	    !resolve_tables_empty(&resolve.local_recipients))
		rc = resolve_find_any(&resolve.local_recipients, keys, 2, err_out);
	free(keys[0]);
	free(keys[1]);
	return rc;
}

/* Virtual domains: the address, without extension, then "@domain". */
static int resolve_virtual_exists(const char *full, const char *domain,
    char **err_out)
{
	char *keys[3];
	int rc;

	keys[0] = xstrdup(full);
	keys[1] = resolve_strip_extension(full);
	keys[2] = xasprintf("@%s", domain);
	rc = resolve_find_any(&resolve.virtual_mailboxes, keys, 3, err_out);
	if (rc == 0)
		rc = resolve_find_any(&resolve.virtual_aliases, keys, 3, err_out);
	for (size_t i = 0; i < 3; i++)
		free(keys[i]);
	return rc;
}

int resolve_recipient_exists(const char *addr, char **err_out)
{
	const char *domain;
	char *full, *domain_key;
	int rc;

	*err_out = NULL;
	resolve_ready();
	full = resolve_complete(addr, &domain);
	domain_key = resolve_domain_key(domain);
	rc = resolve_key_class(domain_key, err_out);
	if (rc == ADDR_CLASS_LOCAL)
		rc = resolve_local_exists(full, err_out);
	else if (rc == ADDR_CLASS_VIRTUAL)
		rc = resolve_virtual_exists(full, domain_key, err_out);
	else if (rc >= 0)
		rc = 1;
	free(domain_key);
	free(full);
	return rc;
}
