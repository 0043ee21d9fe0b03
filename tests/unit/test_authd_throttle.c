/*
 * Unit tests of authd/throttle.c: growing delays, lockout after the
 * failure limit, the end of a window and of a lockout, success resets,
 * expiry, eviction from a full table, the delay limit and the keys of
 * client addresses. The clock is a plain number passed in.
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

TEST(test_throttle_full_table_evicts)
{
	/* 4 keys: 2 for addresses, 2 for user names. */
	struct throttle *t = throttle_new(&policy, 4);
	int started = 0;

	throttle_failure(t, "addr:a", 0, &started);
	throttle_failure(t, "addr:a", 10, &started);
	throttle_failure(t, "addr:b", 20, &started);
	/* The table is full for addresses: addr:b has the fewest failures. */
	CHECK_INT(throttle_failure(t, "addr:c", 30, &started), 100);
	CHECK_INT(throttle_size(t), 2);
	CHECK_INT(throttle_evictions(t), 1);
	CHECK_INT(throttle_failures(t, "addr:b", 30), 0);
	CHECK_INT(throttle_failures(t, "addr:a", 30), 2);
	CHECK_INT(throttle_failures(t, "addr:c", 30), 1);
	/* The new key keeps counting up to its lockout. */
	CHECK_INT(throttle_failure(t, "addr:c", 40, &started), 200);
	CHECK_INT(throttle_failure(t, "addr:c", 50, &started), 300);
	CHECK_INT(started, 1);
	CHECK(throttle_locked(t, "addr:c", 50) > 0);
	throttle_free(&t);
}

TEST(test_throttle_full_table_ties_oldest)
{
	struct throttle *t = throttle_new(&policy, 4);
	int started = 0;

	throttle_failure(t, "addr:a", 0, &started);
	throttle_failure(t, "addr:b", 10, &started);
	/* Equal failures: the older last failure goes. */
	throttle_failure(t, "addr:c", 20, &started);
	CHECK_INT(throttle_failures(t, "addr:a", 20), 0);
	CHECK_INT(throttle_failures(t, "addr:b", 20), 1);
	CHECK_INT(throttle_failures(t, "addr:c", 20), 1);
	throttle_free(&t);
}

TEST(test_throttle_full_table_expired_first)
{
	struct throttle *t = throttle_new(&policy, 4);
	int started = 0;

	throttle_failure(t, "addr:a", 0, &started);
	throttle_failure(t, "addr:a", 1, &started);
	throttle_failure(t, "addr:b", 5000, &started);
	/* addr:a's window is over at 10000: it goes, not addr:b. */
	throttle_failure(t, "addr:c", 10000, &started);
	CHECK_INT(throttle_evictions(t), 0);
	CHECK_INT(throttle_failures(t, "addr:b", 10000), 1);
	CHECK_INT(throttle_failures(t, "addr:c", 10000), 1);
	CHECK_INT(throttle_size(t), 2);
	throttle_free(&t);
}

TEST(test_throttle_lockout_survives_eviction)
{
	struct throttle *t = throttle_new(&policy, 4);
	char key[32];
	int started = 0;

	for (int i = 0; i < 3; i++)
		throttle_failure(t, "addr:locked", i, &started);
	CHECK_INT(started, 1);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "addr:10.0.%d.%d", i / 256, i % 256);
		throttle_failure(t, key, 100 + i, &started);
	}
	CHECK_INT(throttle_evictions(t), 999);
	CHECK_INT(throttle_size(t), 2);
	CHECK_INT(throttle_locked(t, "addr:locked", 2000), 8002);
	CHECK_INT(throttle_failures(t, "addr:10.0.3.231", 2000), 1);
	throttle_free(&t);
}

TEST(test_throttle_all_locked_evicts_oldest_lockout)
{
	struct throttle *t = throttle_new(&policy, 4);
	int started = 0;

	for (int i = 0; i < 3; i++)
		throttle_failure(t, "addr:a", i, &started);
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "addr:b", 100 + i, &started);
	throttle_failure(t, "addr:c", 200, &started);
	CHECK_INT(throttle_evictions(t), 1);
	CHECK_INT(throttle_locked(t, "addr:a", 200), 0);
	CHECK_INT(throttle_locked(t, "addr:b", 200), 9902);
	CHECK_INT(throttle_failures(t, "addr:c", 200), 1);
	throttle_free(&t);
}

TEST(test_throttle_user_lockout_holds_during_churn)
{
	struct throttle *t = throttle_new(&policy, 10);
	char key[32];
	int started = 0;

	/* One failure per address, all against user:alice. */
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "addr:10.%d.%d.1", i / 256, i % 256);
		throttle_failure(t, key, i, &started);
		if (i < 3)
			throttle_failure(t, "user:alice", i, &started);
		CHECK(throttle_size(t) <= 10);
	}
	CHECK_INT(throttle_failures(t, "addr:10.0.0.1", 3000), 0);
	CHECK_INT(throttle_locked(t, "user:alice", 3000), 7002);
	throttle_free(&t);
}

TEST(test_throttle_user_counter_survives_name_churn)
{
	struct throttle *t = throttle_new(&policy, 10);
	char key[32];
	int started = 0;

	throttle_failure(t, "user:alice", 0, &started);
	throttle_failure(t, "user:alice", 1, &started);
	/* Many user names with one failure each push out each other. */
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "user:u%d", i);
		throttle_failure(t, key, 10 + i, &started);
	}
	CHECK_INT(throttle_failures(t, "user:alice", 600), 2);
	throttle_failure(t, "user:alice", 600, &started);
	CHECK_INT(started, 1);
	CHECK(throttle_locked(t, "user:alice", 600) > 0);
	throttle_free(&t);
}

TEST(test_throttle_ipv6_same_network)
{
	struct throttle *t = throttle_new(&policy, 100);
	char k1[THROTTLE_ADDRESS_KEY_MAX];
	char k2[THROTTLE_ADDRESS_KEY_MAX];
	char other[THROTTLE_ADDRESS_KEY_MAX];
	int started = 0;

	throttle_address_key("2001:db8:1:2::1", k1, sizeof(k1));
	throttle_address_key("2001:db8:1:2:ffff:ffff:ffff:ffff", k2, sizeof(k2));
	throttle_address_key("2001:db8:1:3::1", other, sizeof(other));
	CHECK_STR(k1, "addr:2001:db8:1:2::/64");
	CHECK_STR(k2, "addr:2001:db8:1:2::/64");
	CHECK_STR(other, "addr:2001:db8:1:3::/64");

	throttle_failure(t, k1, 0, &started);
	throttle_failure(t, k2, 1, &started);
	throttle_failure(t, k1, 2, &started);
	CHECK_INT(started, 1);
	CHECK_INT(throttle_locked(t, k1, 2), 10000);
	CHECK_INT(throttle_locked(t, k2, 2), 10000);
	CHECK_INT(throttle_locked(t, other, 2), 0);
	throttle_free(&t);
}

TEST(test_throttle_address_key_forms)
{
	char key[THROTTLE_ADDRESS_KEY_MAX];
	char small[12];

	throttle_address_key("192.0.2.1", key, sizeof(key));
	CHECK_STR(key, "addr:192.0.2.1");
	throttle_address_key("::ffff:192.0.2.1", key, sizeof(key));
	CHECK_STR(key, "addr:192.0.2.1");
	throttle_address_key("::FFFF:c000:201", key, sizeof(key));
	CHECK_STR(key, "addr:192.0.2.1");
	throttle_address_key("2001:DB8::1", key, sizeof(key));
	CHECK_STR(key, "addr:2001:db8::/64");
	throttle_address_key("::1", key, sizeof(key));
	CHECK_STR(key, "addr:::/64");
	throttle_address_key("fe80::1%eth0", key, sizeof(key));
	CHECK_STR(key, "addr:fe80::/64");
	/* Not an address: kept as text, in lower case. */
	throttle_address_key("Unknown", key, sizeof(key));
	CHECK_STR(key, "addr:unknown");
	throttle_address_key("", key, sizeof(key));
	CHECK_STR(key, "addr:");
	throttle_address_key("2001:db8:", key, sizeof(key));
	CHECK_STR(key, "addr:2001:db8:");
	throttle_address_key("192.0.2.256", key, sizeof(key));
	CHECK_STR(key, "addr:192.0.2.256");
	/* A short buffer gets a truncated, terminated key. */
	throttle_address_key("2001:db8:1:2::1", small, sizeof(small));
	CHECK_STR(small, "addr:2001:d");
}

TEST(test_throttle_delay_limit)
{
	struct throttle_policy capped = policy;
	struct throttle *t;
	int started = 0;

	capped.delay_limit_ms = 250;
	capped.max_failures = 100;
	t = throttle_new(&capped, 100);
	CHECK_INT(throttle_failure(t, "addr:a", 0, &started), 100);
	CHECK_INT(throttle_failure(t, "addr:a", 1, &started), 200);
	CHECK_INT(throttle_failure(t, "addr:a", 2, &started), 250);
	CHECK_INT(throttle_failure(t, "addr:a", 3, &started), 250);
	CHECK_INT(throttle_delay(&capped, 1000000), 250);
	/* 0: no limit. */
	CHECK_INT(throttle_delay(&policy, 1000), 100000);
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
	TEST_CASE(test_throttle_full_table_evicts),
	TEST_CASE(test_throttle_full_table_ties_oldest),
	TEST_CASE(test_throttle_full_table_expired_first),
	TEST_CASE(test_throttle_lockout_survives_eviction),
	TEST_CASE(test_throttle_all_locked_evicts_oldest_lockout),
	TEST_CASE(test_throttle_user_lockout_holds_during_churn),
	TEST_CASE(test_throttle_user_counter_survives_name_churn),
	TEST_CASE(test_throttle_ipv6_same_network),
	TEST_CASE(test_throttle_address_key_forms),
	TEST_CASE(test_throttle_delay_limit),
	TEST_CASE(test_throttle_many_keys),
)
