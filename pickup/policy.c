/*
 * Who may submit through sendmail, and with which envelope senders.
 *
 * authorized_submit_users (default "static:anyone") is a list of items
 * tried in order against the login name of the file's owner: a login
 * name, or a type:table in which the name is looked up (any result
 * matches). An item that starts with '!' rejects on a match. The first
 * matching item decides; when none matches the user may not submit.
 *
 * local_login_sender_maps (default "static:*") maps a login name to the
 * senders that user may give with -f: a list of addresses, "@domain" for
 * any address in a domain, "<>" for the null sender, or "*" for any.
 * A user may always send as login@myorigin; any other sender that is not
 * allowed is replaced by login@myorigin. Postfix has the same two
 * parameters; with the defaults every user may submit with any sender.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "maps.h"
#include "pickup.h"
#include "sbuf.h"

struct pickup_submit_item {
	int negate;
	struct map *table;   /* NULL: name is a login name */
	char *name;
};

static struct pickup_submit_item *submit_items;
static size_t submit_count;
static struct maplist *sender_maps;

void pickup_policy_open(void)
{
	char *err = NULL;
	char **items = map_split_list(config_str("authorized_submit_users"),
	    &submit_count, &err);

	if (items == NULL)
		log_fatal("invalid authorized_submit_users: %s", err);
	submit_items = xcalloc(submit_count + 1, sizeof(*submit_items));
	for (size_t i = 0; i < submit_count; i++) {
		const char *item = items[i];
		struct pickup_submit_item *s = &submit_items[i];

		s->negate = item[0] == '!';
		item += s->negate;
		s->name = xstrdup(item);
		if (strchr(item, ':') != NULL
		    && (s->table = map_open(item, &err)) == NULL)
			log_fatal("invalid authorized_submit_users item \"%s\": %s",
			    item, err);
	}
	free(items);
	sender_maps = maplist_open(config_str("local_login_sender_maps"), &err);
	if (sender_maps == NULL)
		log_fatal("invalid local_login_sender_maps: %s", err);
}

int pickup_policy_may_submit(uid_t uid, const char *login)
{
	if (uid == 0)
		return 1;
	for (size_t i = 0; i < submit_count; i++) {
		struct pickup_submit_item *s = &submit_items[i];
		int match;

		if (s->table != NULL) {
			char *value = NULL, *err = NULL;

			match = map_lookup(s->table, login, &value, &err);
			free(value);
			if (match < 0) {
				log_warn("authorized_submit_users lookup of %s failed: %s",
				    login, err);
				free(err);
				return -1;
			}
		} else {
			match = strcmp(s->name, login) == 0;
		}
		if (match)
			return !s->negate;
	}
	return 0;
}

/* 1 when one item of a local_login_sender_maps result allows sender. */
static int pickup_sender_item_matches(const char *item, const char *sender)
{
	if (strcmp(item, "*") == 0)
		return 1;
	if (strcmp(item, "<>") == 0)
		return sender[0] == '\0';
	if (sender[0] == '\0')
		return 0;
	if (item[0] == '@') {
		const char *domain = addr_domain(sender);

		return domain != NULL && str_casecmp_eq(domain, item + 1);
	}
	return str_casecmp_eq(item, sender);
}

int pickup_policy_may_send_as(uid_t uid, const char *login,
    const char *sender)
{
	char *own = xasprintf("%s@%s", login, pickup.myorigin);
	char *value = NULL, *err = NULL;
	int allowed = uid == 0 || str_casecmp_eq(own, sender);

	free(own);
	if (allowed)
		return 1;
	int found = maplist_lookup(sender_maps, login, &value, &err);
	if (found < 0) {
		log_warn("local_login_sender_maps lookup of %s failed: %s", login,
		    err);
		free(err);
		return -1;
	}
	if (found > 0) {
		size_t count;
		char **items = str_split(value, ", \t", &count);

		for (size_t i = 0; i < count && !allowed; i++)
			allowed = pickup_sender_item_matches(items[i], sender);
		free(items);
	}
	free(value);
	return allowed;
}
