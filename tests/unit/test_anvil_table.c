/*
 * Unit tests of anvil/table.c: concurrent counts, rate windows, counts
 * kept per caller socket, disconnects that do not match, the sweep and
 * the table cap. The clock is a plain number passed in.
 */
#include "anvil.h"
#include "testlib.h"

#define UNIT_MS 60000

TEST(test_anvil_table_count_and_rate)
{
	struct anvil_table *t = anvil_table_new(UNIT_MS, 100);
	long count = -1, rate = -1;

	for (int i = 1; i <= 3; i++) {
		CHECK_INT(anvil_table_connect(t, "smtp:192.0.2.1", 1, 1000 + i,
		    &count, &rate), 0);
		CHECK_INT(count, i);
		CHECK_INT(rate, i);
	}
	CHECK_INT(anvil_table_connect(t, "smtp:192.0.2.2", 1, 1010, &count,
	    &rate), 0);
	CHECK_INT(count, 1);
	CHECK_INT(rate, 1);
	CHECK_INT(anvil_table_size(t), 2);

	anvil_table_disconnect(t, "smtp:192.0.2.1", 1);
	anvil_table_disconnect(t, "smtp:192.0.2.1", 1);
	CHECK_INT(anvil_table_connect(t, "smtp:192.0.2.1", 1, 1020, &count,
	    &rate), 0);
	CHECK_INT(count, 2);
	CHECK_INT(rate, 4);
	anvil_table_free(&t);
	CHECK(t == NULL);
}

TEST(test_anvil_table_rate_window_ends)
{
	struct anvil_table *t = anvil_table_new(UNIT_MS, 100);
	long count = -1, rate = -1;

	anvil_table_connect(t, "smtp:192.0.2.1", 1, 0, &count, &rate);
	anvil_table_connect(t, "smtp:192.0.2.1", 1, UNIT_MS - 1, &count, &rate);
	CHECK_INT(rate, 2);
	anvil_table_connect(t, "smtp:192.0.2.1", 1, UNIT_MS, &count, &rate);
	CHECK_INT(rate, 1);
	CHECK_INT(count, 3);
	anvil_table_free(&t);
}

TEST(test_anvil_table_disconnect_other_caller)
{
	struct anvil_table *t = anvil_table_new(UNIT_MS, 100);
	long count = -1, rate = -1;

	anvil_table_connect(t, "smtp:192.0.2.1", 1, 0, &count, &rate);
	/* Another socket, and an ident never seen, change nothing. */
	anvil_table_disconnect(t, "smtp:192.0.2.1", 2);
	anvil_table_disconnect(t, "smtp:192.0.2.9", 1);
	anvil_table_connect(t, "smtp:192.0.2.1", 2, 1, &count, &rate);
	CHECK_INT(count, 2);
	anvil_table_free(&t);
}

TEST(test_anvil_table_drop_caller)
{
	struct anvil_table *t = anvil_table_new(UNIT_MS, 100);
	long count = -1, rate = -1;

	anvil_table_connect(t, "smtp:192.0.2.1", 1, 0, &count, &rate);
	anvil_table_connect(t, "smtp:192.0.2.1", 1, 0, &count, &rate);
	anvil_table_connect(t, "smtp:192.0.2.1", 2, 0, &count, &rate);
	anvil_table_connect(t, "smtp:192.0.2.2", 1, 0, &count, &rate);
	anvil_table_drop_caller(t, 1);

	anvil_table_connect(t, "smtp:192.0.2.1", 3, 1, &count, &rate);
	CHECK_INT(count, 2);
	CHECK_INT(rate, 4);
	anvil_table_connect(t, "smtp:192.0.2.2", 3, 1, &count, &rate);
	CHECK_INT(count, 1);
	/* The dropped caller's late disconnect must not touch the others. */
	anvil_table_disconnect(t, "smtp:192.0.2.1", 1);
	anvil_table_connect(t, "smtp:192.0.2.1", 3, 2, &count, &rate);
	CHECK_INT(count, 3);
	anvil_table_free(&t);
}

TEST(test_anvil_table_sweep)
{
	struct anvil_table *t = anvil_table_new(UNIT_MS, 100);
	long count = -1, rate = -1;

	anvil_table_connect(t, "smtp:192.0.2.1", 1, 0, &count, &rate);
	anvil_table_connect(t, "smtp:192.0.2.2", 1, 0, &count, &rate);
	anvil_table_disconnect(t, "smtp:192.0.2.2", 1);

	/* Inside the window both stay, so the rate is still remembered. */
	CHECK_INT(anvil_table_sweep(t, UNIT_MS - 1), 0);
	CHECK_INT(anvil_table_size(t), 2);
	/* After it only the ident with an open connection stays. */
	CHECK_INT(anvil_table_sweep(t, UNIT_MS), 1);
	CHECK_INT(anvil_table_size(t), 1);
	anvil_table_connect(t, "smtp:192.0.2.1", 1, UNIT_MS, &count, &rate);
	CHECK_INT(count, 2);
	anvil_table_free(&t);
}

TEST(test_anvil_table_full)
{
	struct anvil_table *t = anvil_table_new(UNIT_MS, 2);
	long count = -1, rate = -1;

	CHECK_INT(anvil_table_connect(t, "a", 1, 0, &count, &rate), 0);
	CHECK_INT(anvil_table_connect(t, "b", 1, 0, &count, &rate), 0);
	count = rate = -1;
	CHECK_INT(anvil_table_connect(t, "c", 1, 0, &count, &rate), -1);
	CHECK_INT(count, -1);
	/* A known ident is still counted. */
	CHECK_INT(anvil_table_connect(t, "a", 1, 0, &count, &rate), 0);
	CHECK_INT(count, 2);
	/* Once "b" is gone and its window over, the sweep makes room. */
	anvil_table_disconnect(t, "b", 1);
	CHECK_INT(anvil_table_connect(t, "c", 1, UNIT_MS, &count, &rate), 0);
	CHECK_INT(count, 1);
	CHECK_INT(anvil_table_size(t), 2);
	anvil_table_free(&t);
}

TEST_MAIN(
	TEST_CASE(test_anvil_table_count_and_rate),
	TEST_CASE(test_anvil_table_rate_window_ends),
	TEST_CASE(test_anvil_table_disconnect_other_caller),
	TEST_CASE(test_anvil_table_drop_caller),
	TEST_CASE(test_anvil_table_sweep),
	TEST_CASE(test_anvil_table_full)
)
