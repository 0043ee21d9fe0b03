/*
 * Failure throttling: counters per key in a chained hash table. The
 * current time is always passed in, so the unit tests drive the clock.
 */
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "sbuf.h"

#define THROTTLE_BUCKETS 4096

struct throttle_entry {
	struct throttle_entry *next;
	long long window_start_ms;
	long long locked_until_ms; /* 0: not locked */
	int failures;
	char key[];
};

struct throttle {
	struct throttle_policy policy;
	size_t max_entries;
	size_t count;
	struct throttle_entry *buckets[THROTTLE_BUCKETS];
};

/* FNV-1a, 32 bits. */
static size_t throttle_hash(const char *key)
{
	unsigned int h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % THROTTLE_BUCKETS;
}

struct throttle *throttle_new(const struct throttle_policy *policy,
    size_t max_entries)
{
	struct throttle *t = xcalloc(1, sizeof(*t));

	t->policy = *policy;
	if (t->policy.max_failures < 1)
		t->policy.max_failures = 1;
	t->max_entries = max_entries;
	return t;
}

void throttle_free(struct throttle **t)
{
	if (*t == NULL)
		return;
	for (size_t i = 0; i < THROTTLE_BUCKETS; i++) {
		struct throttle_entry *e = (*t)->buckets[i];

		while (e != NULL) {
			struct throttle_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free(*t);
	*t = NULL;
}

static struct throttle_entry *throttle_find(struct throttle *t,
    const char *key)
{
	for (struct throttle_entry *e = t->buckets[throttle_hash(key)]; e;
	    e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* An entry is over when its window and its lockout have both ended. */
static int throttle_entry_over(const struct throttle *t,
    const struct throttle_entry *e, long long now_ms)
{
	return now_ms >= e->window_start_ms + t->policy.window_ms
	    && now_ms >= e->locked_until_ms;
}

long throttle_locked(struct throttle *t, const char *key, long long now_ms)
{
	struct throttle_entry *e = throttle_find(t, key);

	if (e == NULL || e->locked_until_ms <= now_ms)
		return 0;
	return (long)(e->locked_until_ms - now_ms);
}

int throttle_failures(struct throttle *t, const char *key, long long now_ms)
{
	struct throttle_entry *e = throttle_find(t, key);

	if (e == NULL || throttle_entry_over(t, e, now_ms))
		return 0;
	return e->failures;
}

static struct throttle_entry *throttle_insert(struct throttle *t,
    const char *key)
{
	size_t len = strlen(key);
	size_t b = throttle_hash(key);
	struct throttle_entry *e;

	/* TODO: a full table counts no new key, so clients from enough
	 * IPv6 addresses (each address is its own key) can fill it and then
	 * guess without a lockout; key IPv6 clients by /64 and evict. */
	if (t->count >= t->max_entries)
		return NULL;
	e = xcalloc(1, sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->next = t->buckets[b];
	t->buckets[b] = e;
	t->count++;
	return e;
}

long throttle_failure(struct throttle *t, const char *key, long long now_ms,
    int *lockout_started)
{
	struct throttle_entry *e = throttle_find(t, key);

	*lockout_started = 0;
	if (e == NULL) {
		e = throttle_insert(t, key);
		if (e == NULL)
			return t->policy.delay_ms;
		e->window_start_ms = now_ms;
	} else if (throttle_entry_over(t, e, now_ms)) {
		e->window_start_ms = now_ms;
		e->locked_until_ms = 0;
		e->failures = 0;
	}
	e->failures++;
	if (e->failures >= t->policy.max_failures && e->locked_until_ms <= now_ms) {
		e->locked_until_ms = now_ms + t->policy.window_ms;
		*lockout_started = 1;
	}
	return t->policy.delay_ms * e->failures;
}

void throttle_success(struct throttle *t, const char *key, long long now_ms)
{
	struct throttle_entry **link = &t->buckets[throttle_hash(key)];

	for (; *link != NULL; link = &(*link)->next) {
		struct throttle_entry *e = *link;

		if (strcmp(e->key, key) != 0)
			continue;
		/* A lockout lasts its full length, even after a success. */
		if (e->locked_until_ms > now_ms)
			return;
		*link = e->next;
		free(e);
		t->count--;
		return;
	}
}

size_t throttle_expire(struct throttle *t, long long now_ms)
{
	size_t dropped = 0;

	for (size_t i = 0; i < THROTTLE_BUCKETS; i++) {
		struct throttle_entry **link = &t->buckets[i];

		while (*link != NULL) {
			struct throttle_entry *e = *link;

			if (!throttle_entry_over(t, e, now_ms)) {
				link = &e->next;
				continue;
			}
			*link = e->next;
			free(e);
			t->count--;
			dropped++;
		}
	}
	return dropped;
}

size_t throttle_size(const struct throttle *t)
{
	return t->count;
}
