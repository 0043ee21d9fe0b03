/*
 * plan - the pure decisions of qmgr: retry intervals and how recipients
 * are grouped into requests. No I/O, so unit tests call them directly.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "qmgr.h"
#include "sbuf.h"

long qmgr_backoff(long age, long min_backoff, long max_backoff)
{
	if (max_backoff < min_backoff)
		max_backoff = min_backoff;
	if (age < min_backoff)
		return min_backoff;
	if (age > max_backoff)
		return max_backoff;
	return age;
}

static int route_cmp(const void *a, const void *b, void *ctx)
{
	const struct qmgr_route *routes = ctx;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = strcmp(routes[ia].transport, routes[ib].transport);

	if (c == 0)
		c = strcmp(routes[ia].nexthop, routes[ib].nexthop);
	if (c == 0)
		c = ia < ib ? -1 : ia > ib;
	return c;
}

/* A group of recipients with one route, in the sorted index array. */
struct plan_group {
	size_t start;
	size_t count;
	size_t first_index;
};

static int group_cmp(const void *a, const void *b)
{
	const struct plan_group *ga = a, *gb = b;

	return ga->first_index < gb->first_index ? -1
	    : ga->first_index > gb->first_index;
}

static int same_route(const struct qmgr_route *a, const struct qmgr_route *b)
{
	return strcmp(a->transport, b->transport) == 0
	    && strcmp(a->nexthop, b->nexthop) == 0;
}

size_t qmgr_plan_batches(const struct qmgr_route *routes, size_t n,
    size_t (*limit_of)(const char *transport, void *ctx), void *ctx,
    size_t *order_out, struct qmgr_batch *batches_out)
{
	size_t *sorted, ngroups = 0, nbatches = 0, out = 0;
	struct plan_group *groups;

	if (n == 0)
		return 0;
	sorted = xcalloc(n, sizeof(*sorted));
	groups = xcalloc(n, sizeof(*groups));
	for (size_t i = 0; i < n; i++)
		sorted[i] = i;
	qsort_r(sorted, n, sizeof(*sorted), route_cmp, (void *)routes);

	/* Sorting by route then index makes each group contiguous, with its
	 * first recipient at its start. */
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || !same_route(&routes[sorted[i]],
		    &routes[sorted[i - 1]])) {
			groups[ngroups].start = i;
			groups[ngroups].first_index = sorted[i];
			ngroups++;
		}
		groups[ngroups - 1].count++;
	}
	qsort(groups, ngroups, sizeof(*groups), group_cmp);

	for (size_t g = 0; g < ngroups; g++) {
		size_t limit = limit_of(routes[groups[g].first_index].transport,
		    ctx);

		if (limit < 1)
			limit = 1;
		for (size_t k = 0; k < groups[g].count; k++) {
			if (k % limit == 0) {
				batches_out[nbatches].first = out;
				batches_out[nbatches].count = 0;
				nbatches++;
			}
			order_out[out++] = sorted[groups[g].start + k];
			batches_out[nbatches - 1].count++;
		}
	}
	free(groups);
	free(sorted);
	return nbatches;
}
