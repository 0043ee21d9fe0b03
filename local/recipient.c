/*
 * One recipient: loop checks, address class, aliases, then the mailbox
 * of a system user (mydestination) or of a virtual address
 * (virtual_mailbox_domains).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "deliver.h"
#include "local.h"
#include "log.h"
#include "maps.h"
#include "resolve.h"

/* Tables opened on first use, one per parameter name. */
struct local_table {
	const char *param;
	struct maplist *list;
};

static struct local_table local_tables[] = {
	{"alias_maps", NULL},
	{"virtual_alias_maps", NULL},
	{"virtual_mailbox_maps", NULL},
	{"virtual_uid_maps", NULL},
	{"virtual_gid_maps", NULL},
};

struct maplist *local_maps(const char *param, struct local_result *res)
{
	struct local_table *t = NULL;
	char *err = NULL;

	for (size_t i = 0; i < sizeof(local_tables) / sizeof(local_tables[0]); i++)
		if (strcmp(local_tables[i].param, param) == 0)
			t = &local_tables[i];
	if (t == NULL)
		log_panic("local_maps: %s is not a table parameter", param);
	if (t->list != NULL)
		return t->list;

	/* A table that cannot be opened now is tried again next time. */
	t->list = maplist_open(config_str(param), &err);
	if (t->list == NULL) {
		log_error("cannot open %s: %s", param, err ? err : "unknown error");
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot open %s: %s", param, err ? err : "unknown error");
		free(err);
	}
	return t->list;
}

int local_maps_lookup(const char *param, const char *key, char **value_out,
    struct local_result *res)
{
	struct maplist *list = local_maps(param, res);
	char *err = NULL;
	int rc;

	if (list == NULL)
		return -1;
	rc = maplist_lookup(list, key, value_out, &err);
	if (rc < 0) {
		log_error("%s lookup of %s failed: %s", param, key,
		    err ? err : "unknown error");
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "%s lookup failed: %s", param, err ? err : "unknown error");
	}
	free(err);
	return rc;
}

char *local_part_key(const char *addr, int strip)
{
	const char *delims = config_str("recipient_delimiter");
	char *local = addr_localpart(addr);

	/* A delimiter at the start is part of the name, not an extension. */
	if (strip && delims[0] != '\0' && local[0] != '\0') {
		size_t n = strcspn(local + 1, delims);

		local[n + 1] = '\0';
	}
	str_lower(local);
	return local;
}

int local_deliver_mailbox(const struct local_msg *m, const struct qrcpt *r,
    int is_virtual, struct local_result *res)
{
	struct local_mailbox mb = {0};
	char *name = NULL;
	int rc;

	if (is_virtual) {
		rc = local_virtual_mailbox(r->addr, &mb, res);
	} else {
		name = local_part_key(r->addr, 1);
		rc = local_system_mailbox(name, &mb, res);
	}
	if (rc == 0)
		local_result_set(res, DELIVER_BOUNCE, "5.1.1",
		    "unknown user: %s", is_virtual ? r->addr : name);
	free(name);
	if (rc <= 0)
		return -1;

	rc = local_mailbox_deliver(m, &mb, r->addr, res);
	local_mailbox_free(&mb);
	return rc;
}

/* Sets a bounce and returns 1 when the message has looped. */
static int local_loop_check(const struct local_msg *m, const char *addr,
    struct local_result *res)
{
	long limit = config_int("hopcount_limit");
	char *ext = addr_externalize(addr);
	int received, delivered;

	local_header_scan(m->header, m->header_len, ext, &received, &delivered);
	free(ext);
	if (delivered) {
		local_result_set(res, DELIVER_BOUNCE, "5.4.6",
		    "mail forwarding loop for %s", addr);
		return 1;
	}
	if (limit > 0 && received > limit) {
		local_result_set(res, DELIVER_BOUNCE, "5.4.6",
		    "too many hops: %d Received headers, hopcount_limit is %ld",
		    received, limit);
		return 1;
	}
	return 0;
}

void local_deliver_rcpt(const struct local_msg *m, const struct qrcpt *r,
    struct local_result *res)
{
	struct resolve_result rr;
	char *err = NULL;
	int is_virtual;

	if (local_loop_check(m, r->addr, res))
		return;

	if (resolve_addr(r->addr, &rr, &err) < 0) {
		local_result_set(res, DELIVER_DEFER, "4.3.0",
		    "cannot resolve %s: %s", r->addr, err ? err : "table error");
		free(err);
		return;
	}

	/* Any class but VIRTUAL is delivered by local part, as a domain that
	 * transport_maps sends to local is meant for its system users. */
	is_virtual = rr.addr_class == ADDR_CLASS_VIRTUAL;
	if (alias_expand(m, r, is_virtual ? "virtual_alias_maps" : "alias_maps",
	    res) != 0)
		return;
	local_deliver_mailbox(m, r, is_virtual, res);
}
