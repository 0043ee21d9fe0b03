/*
 * Failure throttling: counters per key in a chained hash table. The
 * current time is always passed in, so the unit tests drive the clock.
 *
 * Each entry is also on one of four lists, by kind (address or user
 * name) and state:
 *   open    no lockout in the current window, in order of window start
 *   locked  a lockout started in the current window, in order of start
 * With a monotonic clock the head of each list is the entry that ends
 * first, so expired entries are found and dropped in O(1).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "log.h"
#include "sbuf.h"

/* Open entries, from the oldest window on, that an eviction compares. */
#define THROTTLE_EVICT_SCAN 32
/* Milliseconds between warnings about evictions of unexpired keys. */
#define THROTTLE_WARN_INTERVAL_MS 60000

enum throttle_kind { THROTTLE_ADDRESS, THROTTLE_USER, THROTTLE_KINDS };

static const char *const throttle_kind_names[THROTTLE_KINDS] = {
	"client address", "user name"
};

struct throttle_entry {
	struct throttle_entry *next; /* hash chain */
	TAILQ_ENTRY(throttle_entry) order;
	long long window_start_ms;
	long long last_failure_ms;
	long long locked_until_ms; /* 0: no lockout in this window */
	int failures;
	enum throttle_kind kind;
	char key[];
};

TAILQ_HEAD(throttle_list, throttle_entry);

/* The entries of one kind. */
struct throttle_share {
	size_t count;
	size_t max_entries;
	struct throttle_list open;
	struct throttle_list locked;
};

struct throttle {
	struct throttle_policy policy;
	struct throttle_share shares[THROTTLE_KINDS];
	size_t evictions;        /* unexpired entries evicted, in total */
	size_t evictions_logged; /* evictions when the last warning went out */
	long long warned_ms;     /* time of the last warning */
	int warned;
	size_t nbuckets;         /* a power of two */
	struct throttle_entry **buckets;
};

/* FNV-1a, 32 bits. */
static size_t throttle_hash(const struct throttle *t, const char *key)
{
	unsigned int h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h & (t->nbuckets - 1);
}

static enum throttle_kind throttle_kind_of(const char *key)
{
	return strncmp(key, "user:", 5) == 0 ? THROTTLE_USER : THROTTLE_ADDRESS;
}

struct throttle *throttle_new(const struct throttle_policy *policy,
    size_t max_entries)
{
	struct throttle *t = xcalloc(1, sizeof(*t));
	size_t user_max = max_entries / 2;

	t->policy = *policy;
	if (t->policy.max_failures < 1)
		t->policy.max_failures = 1;
	if (user_max < 1)
		user_max = 1;
	t->shares[THROTTLE_USER].max_entries = user_max;
	t->shares[THROTTLE_ADDRESS].max_entries =
	    max_entries > user_max ? max_entries - user_max : 1;
	for (int k = 0; k < THROTTLE_KINDS; k++) {
		TAILQ_INIT(&t->shares[k].open);
		TAILQ_INIT(&t->shares[k].locked);
	}
	/* About four entries per chain when the table is full. */
	t->nbuckets = 64;
	while (t->nbuckets < max_entries / 4 && t->nbuckets < ((size_t)1 << 24))
		t->nbuckets *= 2;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	return t;
}

void throttle_free(struct throttle **t)
{
	if (*t == NULL)
		return;
	for (size_t i = 0; i < (*t)->nbuckets; i++) {
		struct throttle_entry *e = (*t)->buckets[i];

		while (e != NULL) {
			struct throttle_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free((*t)->buckets);
	free(*t);
	*t = NULL;
}

static struct throttle_entry *throttle_find(struct throttle *t,
    const char *key)
{
	for (struct throttle_entry *e = t->buckets[throttle_hash(t, key)]; e;
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

static struct throttle_list *throttle_list_of(struct throttle *t,
    const struct throttle_entry *e)
{
	struct throttle_share *share = &t->shares[e->kind];

	return e->locked_until_ms != 0 ? &share->locked : &share->open;
}

/* Unlinks e from its hash chain and its list, and frees it. */
static void throttle_drop(struct throttle *t, struct throttle_entry *e)
{
	struct throttle_entry **link = &t->buckets[throttle_hash(t, e->key)];

	while (*link != e)
		link = &(*link)->next;
	*link = e->next;
	TAILQ_REMOVE(throttle_list_of(t, e), e, order);
	t->shares[e->kind].count--;
	free(e);
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

/* Logs at most one warning per THROTTLE_WARN_INTERVAL_MS of the clock
 * that the callers pass in, with the evictions since the last one. */
static void throttle_note_eviction(struct throttle *t, enum throttle_kind kind,
    long long now_ms)
{
	t->evictions++;
	if (t->warned && now_ms - t->warned_ms < THROTTLE_WARN_INTERVAL_MS)
		return;
	log_warn("throttle table full with %zu %s keys: evicted %zu unexpired "
	    "keys since the last warning, the fewest failures first; many "
	    "clients or user names are failing to log in",
	    t->shares[kind].count, throttle_kind_names[kind],
	    t->evictions - t->evictions_logged);
	t->warned = 1;
	t->warned_ms = now_ms;
	t->evictions_logged = t->evictions;
}

/*
 * Picks the entry to evict from a full share: among the first
 * THROTTLE_EVICT_SCAN open entries (the oldest windows), an expired one
 * at once, else the one with the fewest failures, and of those the
 * oldest last failure. Only when no entry is open does it take a locked
 * one, the lockout that started first.
 */
static struct throttle_entry *throttle_pick_victim(struct throttle *t,
    struct throttle_share *share, long long now_ms)
{
	struct throttle_entry *best = NULL, *e;
	int scanned = 0;

	TAILQ_FOREACH(e, &share->open, order) {
		if (throttle_entry_over(t, e, now_ms))
			return e;
		if (best == NULL || e->failures < best->failures
		    || (e->failures == best->failures
		    && e->last_failure_ms < best->last_failure_ms))
			best = e;
		if (++scanned >= THROTTLE_EVICT_SCAN)
			break;
	}
	if (best != NULL)
		return best;
	return TAILQ_FIRST(&share->locked);
}

/* Frees one place in a full share: an expired entry at the head of a
 * list if there is one, else an evicted entry. */
static void throttle_make_room(struct throttle *t, enum throttle_kind kind,
    long long now_ms)
{
	struct throttle_share *share = &t->shares[kind];
	struct throttle_entry *e;

	e = TAILQ_FIRST(&share->locked);
	if (e != NULL && throttle_entry_over(t, e, now_ms)) {
		throttle_drop(t, e);
		return;
	}
	e = throttle_pick_victim(t, share, now_ms);
	if (e == NULL)
		return;
	if (!throttle_entry_over(t, e, now_ms))
		throttle_note_eviction(t, kind, now_ms);
	throttle_drop(t, e);
}

static struct throttle_entry *throttle_insert(struct throttle *t,
    const char *key, long long now_ms)
{
	size_t len = strlen(key);
	size_t b = throttle_hash(t, key);
	enum throttle_kind kind = throttle_kind_of(key);
	struct throttle_share *share = &t->shares[kind];
	struct throttle_entry *e;

	if (share->count >= share->max_entries)
		throttle_make_room(t, kind, now_ms);
	e = xcalloc(1, sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->kind = kind;
	e->window_start_ms = now_ms;
	e->next = t->buckets[b];
	t->buckets[b] = e;
	TAILQ_INSERT_TAIL(&share->open, e, order);
	share->count++;
	return e;
}

/* Starts a new window for an entry whose window and lockout are over. */
static void throttle_restart(struct throttle *t, struct throttle_entry *e,
    long long now_ms)
{
	TAILQ_REMOVE(throttle_list_of(t, e), e, order);
	e->window_start_ms = now_ms;
	e->locked_until_ms = 0;
	e->failures = 0;
	TAILQ_INSERT_TAIL(&t->shares[e->kind].open, e, order);
}

long throttle_delay(const struct throttle_policy *policy, int failures)
{
	long long delay = (long long)policy->delay_ms * failures;

	if (policy->delay_limit_ms > 0 && delay > policy->delay_limit_ms)
		delay = policy->delay_limit_ms;
	if (delay > LONG_MAX)
		delay = LONG_MAX;
	return (long)delay;
}

long throttle_failure(struct throttle *t, const char *key, long long now_ms,
    int *lockout_started)
{
	struct throttle_entry *e = throttle_find(t, key);

	*lockout_started = 0;
	if (e == NULL)
		e = throttle_insert(t, key, now_ms);
	else if (throttle_entry_over(t, e, now_ms))
		throttle_restart(t, e, now_ms);
	if (e->failures < INT_MAX)
		e->failures++;
	e->last_failure_ms = now_ms;
	/* locked_until_ms is 0 here unless a lockout is running, because a
	 * lockout never ends before the window it started in. */
	if (e->failures >= t->policy.max_failures && e->locked_until_ms == 0) {
		struct throttle_share *share = &t->shares[e->kind];

		TAILQ_REMOVE(&share->open, e, order);
		e->locked_until_ms = now_ms + t->policy.window_ms;
		TAILQ_INSERT_TAIL(&share->locked, e, order);
		*lockout_started = 1;
	}
	return throttle_delay(&t->policy, e->failures);
}

void throttle_success(struct throttle *t, const char *key, long long now_ms)
{
	struct throttle_entry *e = throttle_find(t, key);

	/* A lockout lasts its full length, even after a success. */
	if (e == NULL || e->locked_until_ms > now_ms)
		return;
	throttle_drop(t, e);
}

static size_t throttle_expire_list(struct throttle *t,
    struct throttle_list *list, long long now_ms)
{
	struct throttle_entry *e, *next;
	size_t dropped = 0;

	/* The whole list, so that a clock step back cannot hide entries
	 * behind an unexpired head. */
	for (e = TAILQ_FIRST(list); e != NULL; e = next) {
		next = TAILQ_NEXT(e, order);
		if (!throttle_entry_over(t, e, now_ms))
			continue;
		throttle_drop(t, e);
		dropped++;
	}
	return dropped;
}

size_t throttle_expire(struct throttle *t, long long now_ms)
{
	size_t dropped = 0;

	for (int k = 0; k < THROTTLE_KINDS; k++) {
		dropped += throttle_expire_list(t, &t->shares[k].open, now_ms);
		dropped += throttle_expire_list(t, &t->shares[k].locked, now_ms);
	}
	return dropped;
}

size_t throttle_size(const struct throttle *t)
{
	return t->shares[THROTTLE_ADDRESS].count + t->shares[THROTTLE_USER].count;
}

size_t throttle_evictions(const struct throttle *t)
{
	return t->evictions;
}

/* Writes the IPv6 network of a, keeping the first 64 bits. */
static void throttle_ipv6_network(struct in6_addr *a, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	memset(a->s6_addr + 8, 0, 8);
	inet_ntop(AF_INET6, a, text, sizeof(text));
	snprintf(out, size, "addr:%s/64", text);
}

void throttle_address_key(const char *address, char *out, size_t size)
{
	char host[AUTHD_ADDRESS_MAX + 1];
	struct in6_addr a6;
	struct in_addr a4;
	size_t len = strcspn(address, "%"); /* drop an IPv6 zone id */

	if (len > AUTHD_ADDRESS_MAX)
		len = AUTHD_ADDRESS_MAX;
	memcpy(host, address, len);
	host[len] = '\0';

	if (inet_pton(AF_INET, host, &a4) == 1) {
		char text[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &a4, text, sizeof(text));
		snprintf(out, size, "addr:%s", text);
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			char text[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, a6.s6_addr + 12, text, sizeof(text));
			snprintf(out, size, "addr:%s", text);
		} else {
			throttle_ipv6_network(&a6, out, size);
		}
	} else {
		/* Not numeric ("unknown"): the text itself, in lower case. */
		snprintf(out, size, "addr:%s", address);
		for (char *p = out; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	}
}
