/*
 * Unit tests of qmgr/plan.c: retry back-off and recipient batches.
 */
#include <string.h>

#include "qmgr.h"
#include "testlib.h"

/* Test limits: "local" one recipient per request, "smtp" two, "zero"
 * an invalid 0, anything else three. */
static size_t test_limit(const char *transport, void *ctx)
{
	(void)ctx;
	if (strcmp(transport, "local") == 0)
		return 1;
	if (strcmp(transport, "smtp") == 0)
		return 2;
	if (strcmp(transport, "zero") == 0)
		return 0;
	return 3;
}

TEST(test_qmgr_plan_backoff_table)
{
	static const struct {
		long age, min, max, want;
	} cases[] = {
		{ 0, 300, 4000, 300 },
		{ -5, 300, 4000, 300 },
		{ 299, 300, 4000, 300 },
		{ 300, 300, 4000, 300 },
		{ 1234, 300, 4000, 1234 },
		{ 4000, 300, 4000, 4000 },
		{ 90000, 300, 4000, 4000 },
		{ 50, 10, 5, 10 },   /* max below min: min wins */
		{ 7, 1, 1, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long got = qmgr_backoff(cases[i].age, cases[i].min,
		    cases[i].max);

		if (got != cases[i].want)
			printf("  case %zu:\n", i);
		CHECK_INT(got, cases[i].want);
	}
}

TEST(test_qmgr_plan_batches_empty)
{
	size_t order[1];
	struct qmgr_batch batches[1];

	CHECK_INT(qmgr_plan_batches(NULL, 0, test_limit, NULL, order, batches),
	    0);
}

TEST(test_qmgr_plan_batches_local_one_each)
{
	const struct qmgr_route routes[] = {
		{ "local", "example.test" },
		{ "local", "example.test" },
		{ "local", "example.test" },
	};
	size_t order[3];
	struct qmgr_batch b[3];
	size_t n = qmgr_plan_batches(routes, 3, test_limit, NULL, order, b);

	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(b[i].first, i);
		CHECK_INT(b[i].count, 1);
		CHECK_INT(order[i], i);
	}
}

TEST(test_qmgr_plan_batches_grouped_by_route)
{
	/* Recipients 0, 2, 4 go to one relay, 1 and 5 to another, 3 is
	 * local. */
	const struct qmgr_route routes[] = {
		{ "smtp", "[127.0.0.1]:2626" },
		{ "smtp", "other.test" },
		{ "smtp", "[127.0.0.1]:2626" },
		{ "local", "example.test" },
		{ "smtp", "[127.0.0.1]:2626" },
		{ "smtp", "other.test" },
	};
	size_t order[6];
	struct qmgr_batch b[6];
	size_t n = qmgr_plan_batches(routes, 6, test_limit, NULL, order, b);

	/* Groups in order of their first recipient; the first group is
	 * split at the limit of two. */
	CHECK_INT(n, 4);
	CHECK_INT(b[0].count, 2);
	CHECK_INT(order[b[0].first], 0);
	CHECK_INT(order[b[0].first + 1], 2);
	CHECK_INT(b[1].count, 1);
	CHECK_INT(order[b[1].first], 4);
	CHECK_INT(b[2].count, 2);
	CHECK_INT(order[b[2].first], 1);
	CHECK_INT(order[b[2].first + 1], 5);
	CHECK_INT(b[3].count, 1);
	CHECK_INT(order[b[3].first], 3);
}

TEST(test_qmgr_plan_batches_transport_differs)
{
	/* One next hop under two transports is two destinations. */
	const struct qmgr_route routes[] = {
		{ "relay", "example.net" },
		{ "smtp", "example.net" },
		{ "relay", "example.net" },
	};
	size_t order[3];
	struct qmgr_batch b[3];
	size_t n = qmgr_plan_batches(routes, 3, test_limit, NULL, order, b);

	CHECK_INT(n, 2);
	CHECK_INT(b[0].count, 2);
	CHECK_INT(order[b[0].first], 0);
	CHECK_INT(order[b[0].first + 1], 2);
	CHECK_INT(b[1].count, 1);
	CHECK_INT(order[b[1].first], 1);
}

TEST(test_qmgr_plan_batches_zero_limit)
{
	const struct qmgr_route routes[] = {
		{ "zero", "" },
		{ "zero", "" },
	};
	size_t order[2];
	struct qmgr_batch b[2];

	CHECK_INT(qmgr_plan_batches(routes, 2, test_limit, NULL, order, b), 2);
}

TEST(test_qmgr_plan_batches_cover_all)
{
	/* Every recipient appears exactly once across the batches. */
	struct qmgr_route routes[50];
	const char *transports[] = { "local", "smtp", "relay" };
	const char *hops[] = { "a.test", "b.test" };
	size_t order[50], seen[50] = { 0 }, total = 0;
	struct qmgr_batch b[50];
	size_t n;

	for (size_t i = 0; i < 50; i++) {
		routes[i].transport = transports[i % 3];
		routes[i].nexthop = hops[(i / 3) % 2];
	}
	n = qmgr_plan_batches(routes, 50, test_limit, NULL, order, b);
	for (size_t k = 0; k < n; k++) {
		const struct qmgr_route *r0 = &routes[order[b[k].first]];

		CHECK(b[k].count >= 1);
		CHECK(b[k].count <= test_limit(r0->transport, NULL));
		for (size_t j = 0; j < b[k].count; j++) {
			const struct qmgr_route *r = &routes[order[b[k].first + j]];

			CHECK_STR(r->transport, r0->transport);
			CHECK_STR(r->nexthop, r0->nexthop);
			seen[order[b[k].first + j]]++;
			total++;
		}
	}
	CHECK_INT(total, 50);
	for (size_t i = 0; i < 50; i++)
		CHECK_INT(seen[i], 1);
}

TEST_MAIN(
	TEST_CASE(test_qmgr_plan_backoff_table),
	TEST_CASE(test_qmgr_plan_batches_empty),
	TEST_CASE(test_qmgr_plan_batches_local_one_each),
	TEST_CASE(test_qmgr_plan_batches_grouped_by_route),
	TEST_CASE(test_qmgr_plan_batches_transport_differs),
	TEST_CASE(test_qmgr_plan_batches_zero_limit),
	TEST_CASE(test_qmgr_plan_batches_cover_all)
)
