#include <errno.h>

#include "testlib.h"
#include "sbuf.h"

TEST(test_sbuf_append_and_cstr)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	CHECK_STR(sbuf_cstr(&sb), "");
	CHECK_INT(sbuf_puts(&sb, "abc"), 0);
	CHECK_INT(sbuf_putc(&sb, 'd'), 0);
	CHECK_INT(sbuf_printf(&sb, "-%d-%s", 42, "x"), 0);
	CHECK_STR(sbuf_cstr(&sb), "abcd-42-x");
	CHECK_INT(sb.len, 9);
	sbuf_free(&sb);
	CHECK_STR(sbuf_cstr(&sb), "");
}

TEST(test_sbuf_cap_rejects_growth)
{
	struct sbuf sb;

	sbuf_init(&sb, 5);
	CHECK_INT(sbuf_puts(&sb, "12345"), 0);
	errno = 0;
	CHECK_INT(sbuf_putc(&sb, '6'), -1);
	CHECK_INT(errno, EMSGSIZE);
	CHECK_STR(sbuf_cstr(&sb), "12345");
	CHECK_INT(sbuf_printf(&sb, "%s", "x"), -1);
	CHECK_INT(sb.len, 5);
	sbuf_reset(&sb);
	CHECK_INT(sbuf_printf(&sb, "%s", "123456"), -1);
	CHECK_STR(sbuf_cstr(&sb), "");
	sbuf_free(&sb);
}

TEST(test_sbuf_long_printf)
{
	struct sbuf sb;
	char big[1000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sbuf_init(&sb, 0);
	CHECK_INT(sbuf_printf(&sb, "<%s>", big), 0);
	CHECK_INT(sb.len, 1001);
	CHECK(sb.data[0] == '<');
	CHECK(sb.data[1000] == '>');
	CHECK(sb.data[1001] == '\0');
	sbuf_free(&sb);
}

TEST(test_sbuf_consume_and_detach)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	sbuf_puts(&sb, "hello world");
	sbuf_consume(&sb, 6);
	CHECK_STR(sbuf_cstr(&sb), "world");
	sbuf_consume(&sb, 100);
	CHECK_STR(sbuf_cstr(&sb), "");
	CHECK_INT(sb.len, 0);
	sbuf_puts(&sb, "kept");
	char *s = sbuf_detach(&sb);
	CHECK_STR(s, "kept");
	CHECK(sb.data == NULL);
	free(s);
	s = sbuf_detach(&sb);
	CHECK_STR(s, "");
	free(s);
}

TEST(test_sbuf_binary_contents)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	CHECK_INT(sbuf_append(&sb, "a\0b", 3), 0);
	CHECK_INT(sb.len, 3);
	CHECK(memcmp(sb.data, "a\0b", 4) == 0);
	CHECK_INT(sbuf_append(&sb, NULL, 0), 0);
	CHECK_INT(sb.len, 3);
	sbuf_free(&sb);
}

TEST(test_sbuf_str_split)
{
	size_t n = 99;
	char **f = str_split(" a, b  c,,d ", ", ", &n);

	CHECK_INT(n, 4);
	CHECK_STR(f[0], "a");
	CHECK_STR(f[1], "b");
	CHECK_STR(f[2], "c");
	CHECK_STR(f[3], "d");
	CHECK(f[4] == NULL);
	free(f);

	f = str_split("", ", ", &n);
	CHECK_INT(n, 0);
	CHECK(f[0] == NULL);
	free(f);

	f = str_split(",,, ,", ", ", &n);
	CHECK_INT(n, 0);
	free(f);

	f = str_split("x,y,z,w", ",", &n);
	CHECK_INT(n, 4);
	CHECK_STR(f[3], "w");
	free(f);
}

TEST(test_sbuf_str_helpers)
{
	char s[32] = "  MiXed Case\t\n";

	CHECK_STR(str_trim(s), "MiXed Case");
	str_lower(s);
	CHECK_STR(s, "mixed case");
	CHECK(str_casecmp_eq("Example.TEST", "example.test"));
	CHECK(!str_casecmp_eq("example.tes", "example.test"));
	CHECK(!str_casecmp_eq("", "a"));

	char blank[8] = " \t ";
	CHECK_STR(str_trim(blank), "");
}

TEST(test_sbuf_str_sanitize)
{
	char out[8];

	str_sanitize(out, sizeof(out), "a\r\nb\x7f\xc3z", 7);
	CHECK_STR(out, "a??b??z");
	str_sanitize(out, sizeof(out), "0123456789", 10);
	CHECK_STR(out, "0123456");
	str_sanitize(out, sizeof(out), "ab\0cd", 5);
	CHECK_STR(out, "ab?cd");
}

TEST(test_sbuf_xstrndup_short_input)
{
	char *s = xstrndup("abc", 10);

	CHECK_STR(s, "abc");
	free(s);
	s = xstrndup("abcdef", 2);
	CHECK_STR(s, "ab");
	free(s);
	s = xasprintf("%s=%d", "n", 5);
	CHECK_STR(s, "n=5");
	free(s);
}

TEST_MAIN(
	TEST_CASE(test_sbuf_append_and_cstr),
	TEST_CASE(test_sbuf_cap_rejects_growth),
	TEST_CASE(test_sbuf_long_printf),
	TEST_CASE(test_sbuf_consume_and_detach),
	TEST_CASE(test_sbuf_binary_contents),
	TEST_CASE(test_sbuf_str_split),
	TEST_CASE(test_sbuf_str_helpers),
	TEST_CASE(test_sbuf_str_sanitize),
	TEST_CASE(test_sbuf_xstrndup_short_input)
)
