/*
 * Unit tests of authd/throttle.c: growing delays, lockout after the
 * failure limit, the end of a window and of a lockout, success resets,
 * expiry and the table cap. The clock is a plain number passed in.
 */
#include "authd.h"
#include "testlib.h"

static const struct throttle_policy policy = {
	.delay_ms = 100,
	.max_failures = 3,
	.window_ms = 10000,
};

TEST(test_throttle_delay_grows)
{
	struct throttle *t = throttle_new(&policy, 100);
	int started = -1;

	CHECK_INT(throttle_failure(t, "addr:a", 1000, &started), 100);
	CHECK_INT(started, 0);
	CHECK_INT(throttle_failure(t, "addr:a", 1001, &started), 200);
	CHECK_INT(started, 0);
	CHECK_INT(throttle_failures(t, "addr:a", 1002), 2);
	CHECK_INT(throttle_failures(t, "addr:b", 1002), 0);
	throttle_free(&t);
	CHECK(t == NULL);
}

TEST(test_throttle_lockout_at_limit)
{
	struct throttle *t = throttle_new(&policy, 100);
	int started = 0;

	CHECK_INT(throttle_locked(t, "addr:a", 0), 0);
	throttle_failure(t, "addr:a", 0, &started);
	throttle_failure(t, "addr:a", 10, &started);
	CHECK_INT(throttle_locked(t, "addr:a", 20), 0);
	CHECK_INT(throttle_failure(t, "addr:a", 20, &started), 300);
	CHECK_INT(started, 1);
	CHECK_INT(throttle_locked(t, "addr:a", 20), 10000);
	CHECK_INT(throttle_locked(t, "addr:a", 10019), 1);
	CHECK_INT(throttle_locked(t, "addr:a", 10020), 0);
	CHECK_INT(throttle_locked(t, "addr:other", 20), 0);

	/* A further failure during the lockout does not restart it. */
	throttle_failure(t, "addr:a", 5000, &started);
	CHECK_INT(started, 0);
	CHECK_INT(throttle_locked(t, "addr:a", 5000), 5020);
	throttle_free(&t);
}

TEST(test_throttle_window_ends)
{
	struct throttle *t = throttle_new(&policy, 100);
	int started = 0;

	throttle_failure(t, "user:bob", 0, &started);
	throttle_failure(t, "user:bob", 9999, &started);
	CHECK_INT(throttle_failures(t, "user:bob", 9999), 2);
	/* The window started at 0, so at 10000 counting starts over. */
	CHECK_INT(throttle_failure(t, "user:bob", 10000, &started), 100);
	CHECK_INT(started, 0);
	CHECK_INT(throttle_failures(t, "user:bob", 10000), 1);
	CHECK_INT(throttle_locked(t, "user:bob", 10000), 0);
	throttle_free(&t);
}

TEST(test_throttle_success_resets)
{
	struct throttle *t = throttle_new(&policy, 100);
	int started = 0;

	throttle_failure(t, "user:bob", 0, &started);
	throttle_failure(t, "user:bob", 1, &started);
	throttle_success(t, "user:bob", 2);
	CHECK_INT(throttle_failures(t, "user:bob", 2), 0);
	CHECK_INT(throttle_size(t), 0);
	CHECK_INT(throttle_failure(t, "user:bob", 3, &started), 100);
	throttle_free(&t);
}

TEST(test_throttle_success_keeps_lockout)
{
	struct throttle *t = throttle_new(&policy, 100);
	int started = 0;

	for (int i = 0; i < 3; i++)
		throttle_failure(t, "user:bob", i, &started);
	CHECK_INT(started, 1);
	throttle_success(t, "user:bob", 100);
	CHECK(throttle_locked(t, "user:bob", 100) > 0);
	/* After the lockout a success forgets the key. */
	throttle_success(t, "user:bob", 20000);
	CHECK_INT(throttle_size(t), 0);
	throttle_free(&t);
}

TEST(test_throttle_expire_drops_old)
{
	struct throttle *t = throttle_new(&policy, 100);
	int started = 0;

	throttle_failure(t, "addr:a", 0, &started);
	throttle_failure(t, "addr:b", 5000, &started);
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "addr:c", 9000, &started);
	CHECK_INT(throttle_size(t), 3);
	CHECK_INT(throttle_expire(t, 9999), 0);
	CHECK_INT(throttle_expire(t, 10000), 1);
	CHECK_INT(throttle_size(t), 2);
	CHECK_INT(throttle_expire(t, 15000), 1);
	/* addr:c is locked until 19000, past the end of its window. */
	CHECK_INT(throttle_expire(t, 18999), 0);
	CHECK_INT(throttle_expire(t, 19000), 1);
	CHECK_INT(throttle_size(t), 0);
	throttle_free(&t);
}

TEST(test_throttle_table_cap)
{
	struct throttle *t = throttle_new(&policy, 2);
	int started = 0;

	throttle_failure(t, "addr:a", 0, &started);
	throttle_failure(t, "addr:b", 0, &started);
	/* The table is full: the failure gets the base delay, no entry. */
	CHECK_INT(throttle_failure(t, "addr:c", 0, &started), 100);
	CHECK_INT(throttle_failure(t, "addr:c", 0, &started), 100);
	CHECK_INT(throttle_size(t), 2);
	CHECK_INT(throttle_failures(t, "addr:c", 0), 0);
	throttle_free(&t);
}

TEST(test_throttle_many_keys)
{
	struct throttle *t = throttle_new(&policy, 100000);
	char key[32];
	int started = 0;

	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "addr:10.0.%d.%d", i / 256, i % 256);
		throttle_failure(t, key, 0, &started);
	}
	CHECK_INT(throttle_size(t), 20000);
	CHECK_INT(throttle_failures(t, "addr:10.0.77.7", 0), 1);
	CHECK_INT(throttle_expire(t, 10000), 20000);
	throttle_free(&t);
}

TEST_MAIN(
	TEST_CASE(test_throttle_delay_grows),
	TEST_CASE(test_throttle_lockout_at_limit),
	TEST_CASE(test_throttle_window_ends),
	TEST_CASE(test_throttle_success_resets),
	TEST_CASE(test_throttle_success_keeps_lockout),
	TEST_CASE(test_throttle_expire_drops_old),
	TEST_CASE(test_throttle_table_cap),
	TEST_CASE(test_throttle_many_keys),
)
