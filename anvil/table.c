/*
 * The connection counters: a chained hash table keyed by ident. Each
 * entry also records how many of its open connections each caller
 * socket counted, so that the connections of a socket that closes can
 * be ended without a disconnect record for each.
 */
#include <stdlib.h>
#include <string.h>

#include "anvil.h"
#include "sbuf.h"

#define TABLE_BUCKETS 16384

struct caller_count {
	unsigned long caller;
	long count;
};

struct table_entry {
	struct table_entry *next;
	long count;                  /* open connections, all callers */
	long rate;                   /* connections in the current window */
	long long window_start_ms;
	struct caller_count *callers;
	size_t ncallers;
	size_t callers_alloc;
	char ident[];
};

struct anvil_table {
	long long rate_unit_ms;
	size_t max_entries;
	size_t count;
	struct table_entry *buckets[TABLE_BUCKETS];
};

/* FNV-1a, 32 bits. */
static size_t table_hash(const char *key)
{
	unsigned int h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % TABLE_BUCKETS;
}

struct anvil_table *anvil_table_new(long long rate_unit_ms,
    size_t max_entries)
{
	struct anvil_table *t = xcalloc(1, sizeof(*t));

	t->rate_unit_ms = rate_unit_ms > 0 ? rate_unit_ms : 1;
	t->max_entries = max_entries;
	return t;
}

static void entry_free(struct table_entry *e)
{
	free(e->callers);
	free(e);
}

void anvil_table_free(struct anvil_table **t)
{
	if (*t == NULL)
		return;
	for (size_t i = 0; i < TABLE_BUCKETS; i++) {
		struct table_entry *e = (*t)->buckets[i];

		while (e != NULL) {
			struct table_entry *next = e->next;

			entry_free(e);
			e = next;
		}
	}
	free(*t);
	*t = NULL;
}

static struct table_entry *table_find(struct anvil_table *t,
    const char *ident)
{
	for (struct table_entry *e = t->buckets[table_hash(ident)]; e;
	    e = e->next)
		if (strcmp(e->ident, ident) == 0)
			return e;
	return NULL;
}

static struct table_entry *table_add(struct anvil_table *t,
    const char *ident, long long now_ms)
{
	size_t len = strlen(ident);
	size_t b = table_hash(ident);
	struct table_entry *e = xcalloc(1, sizeof(*e) + len + 1);

	memcpy(e->ident, ident, len + 1);
	e->window_start_ms = now_ms;
	e->next = t->buckets[b];
	t->buckets[b] = e;
	t->count++;
	return e;
}

static struct caller_count *entry_caller(struct table_entry *e,
    unsigned long caller, int create)
{
	for (size_t i = 0; i < e->ncallers; i++)
		if (e->callers[i].caller == caller)
			return &e->callers[i];
	if (!create)
		return NULL;
	if (e->ncallers == e->callers_alloc) {
		e->callers_alloc = e->callers_alloc ? 2 * e->callers_alloc : 2;
		e->callers = xrealloc(e->callers,
		    e->callers_alloc * sizeof(*e->callers));
	}
	e->callers[e->ncallers].caller = caller;
	e->callers[e->ncallers].count = 0;
	return &e->callers[e->ncallers++];
}

/* Removes a caller whose count reached zero, keeping the array dense. */
static void entry_remove_caller(struct table_entry *e, struct caller_count *c)
{
	*c = e->callers[--e->ncallers];
}

int anvil_table_connect(struct anvil_table *t, const char *ident,
    unsigned long caller, long long now_ms, long *count_out,
    long *rate_out)
{
	struct table_entry *e = table_find(t, ident);
	struct caller_count *c;

	if (e == NULL) {
		if (t->count >= t->max_entries)
			anvil_table_sweep(t, now_ms);
		if (t->count >= t->max_entries)
			return -1;
		e = table_add(t, ident, now_ms);
	}
	if (now_ms - e->window_start_ms >= t->rate_unit_ms) {
		e->window_start_ms = now_ms;
		e->rate = 0;
	}
	e->rate++;
	e->count++;
	c = entry_caller(e, caller, 1);
	c->count++;
	*count_out = e->count;
	*rate_out = e->rate;
	return 0;
}

void anvil_table_disconnect(struct anvil_table *t, const char *ident,
    unsigned long caller)
{
	struct table_entry *e = table_find(t, ident);
	struct caller_count *c;

	if (e == NULL)
		return;
	c = entry_caller(e, caller, 0);
	if (c == NULL)
		return;
	e->count--;
	if (--c->count == 0)
		entry_remove_caller(e, c);
}

void anvil_table_drop_caller(struct anvil_table *t, unsigned long caller)
{
	for (size_t i = 0; i < TABLE_BUCKETS; i++) {
		for (struct table_entry *e = t->buckets[i]; e; e = e->next) {
			struct caller_count *c = entry_caller(e, caller, 0);

			if (c == NULL)
				continue;
			e->count -= c->count;
			entry_remove_caller(e, c);
		}
	}
}

size_t anvil_table_sweep(struct anvil_table *t, long long now_ms)
{
	size_t removed = 0;

	for (size_t i = 0; i < TABLE_BUCKETS; i++) {
		struct table_entry **link = &t->buckets[i];

		while (*link != NULL) {
			struct table_entry *e = *link;

			if (e->count > 0 ||
			    now_ms - e->window_start_ms < t->rate_unit_ms) {
				link = &e->next;
				continue;
			}
			*link = e->next;
			entry_free(e);
			t->count--;
			removed++;
		}
	}
	return removed;
}

size_t anvil_table_size(const struct anvil_table *t)
{
	return t->count;
}
