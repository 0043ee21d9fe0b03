/*
 * Unit tests of authd/request.c: request records (valid, missing and
 * invalid attributes), strict base64 with every truncated prefix,
 * durations and mechanism lists.
 */
#include <string.h>

#include "authd.h"
#include "testlib.h"

/* Builds a record from "name=value" strings, NULL-terminated. */
static struct attrs *record(const char *const *items)
{
	struct attrs *a = attrs_new();

	for (size_t i = 0; items[i] != NULL; i++) {
		char *name = xstrdup(items[i]);
		char *eq = strchr(name, '=');

		*eq = '\0';
		attrs_add(a, name, eq + 1);
		free(name);
	}
	return a;
}

TEST(test_authd_request_start_valid)
{
	const char *items[] = {"request=start", "session=s1", "mechanism=plain",
	    "response=AGFsaWNlAHNlY3JldA==", "client_address=192.0.2.1",
	    "encrypted=yes", NULL};
	struct attrs *a = record(items);
	struct authd_request req;
	const char *err = NULL;

	CHECK_INT(authd_request_parse(a, &req, &err), 0);
	CHECK_INT(req.op, AUTHD_OP_START);
	CHECK_STR(req.session, "s1");
	CHECK_STR(req.mechanism, "plain");
	CHECK_STR(req.response, "AGFsaWNlAHNlY3JldA==");
	CHECK_STR(req.client_address, "192.0.2.1");
	CHECK_INT(req.encrypted, 1);
	attrs_free(&a);
}

TEST(test_authd_request_start_without_response)
{
	const char *items[] = {"request=start", "session=7", "mechanism=LOGIN",
	    "client_address=::1", "encrypted=no", NULL};
	struct attrs *a = record(items);
	struct authd_request req;
	const char *err = NULL;

	CHECK_INT(authd_request_parse(a, &req, &err), 0);
	CHECK(req.response == NULL);
	CHECK_INT(req.encrypted, 0);
	attrs_free(&a);
}

TEST(test_authd_request_other_ops)
{
	const char *step[] = {"request=step", "session=a", "response=", NULL};
	const char *abort_[] = {"request=abort", "session=a", NULL};
	const char *mechs[] = {"request=mechanisms", "session=m",
	    "encrypted=no", NULL};
	struct authd_request req;
	const char *err = NULL;
	struct attrs *a;

	a = record(step);
	CHECK_INT(authd_request_parse(a, &req, &err), 0);
	CHECK_INT(req.op, AUTHD_OP_STEP);
	CHECK_STR(req.response, "");
	attrs_free(&a);
	a = record(abort_);
	CHECK_INT(authd_request_parse(a, &req, &err), 0);
	CHECK_INT(req.op, AUTHD_OP_ABORT);
	attrs_free(&a);
	a = record(mechs);
	CHECK_INT(authd_request_parse(a, &req, &err), 0);
	CHECK_INT(req.op, AUTHD_OP_MECHANISMS);
	CHECK_INT(req.encrypted, 0);
	attrs_free(&a);
}

TEST(test_authd_request_invalid_table)
{
	static const char *const cases[][8] = {
		{NULL},
		{"session=a", NULL},
		{"request=login", "session=a", NULL},
		{"request=abort", NULL},
		{"request=abort", "session=", NULL},
		{"request=abort", "session=has space", NULL},
		{"request=abort", "session="
		    "0123456789012345678901234567890123456789012345678901234567890123x",
		    NULL},
		{"request=step", "session=a", NULL},
		{"request=mechanisms", "session=a", NULL},
		{"request=mechanisms", "session=a", "encrypted=maybe", NULL},
		{"request=start", "session=a", "client_address=1.2.3.4",
		    "encrypted=no", NULL},
		{"request=start", "session=a", "mechanism=PL AIN",
		    "client_address=1.2.3.4", "encrypted=no", NULL},
		{"request=start", "session=a",
		    "mechanism=ABCDEFGHIJKLMNOPQRSTU", "client_address=1.2.3.4",
		    "encrypted=no", NULL},
		{"request=start", "session=a", "mechanism=PLAIN", "encrypted=no",
		    NULL},
		{"request=start", "session=a", "mechanism=PLAIN",
		    "client_address=", "encrypted=no", NULL},
		{"request=start", "session=a", "mechanism=PLAIN",
		    "client_address=1.2.3.4", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct attrs *a = record(cases[i]);
		struct authd_request req;
		const char *err = NULL;
		int rc = authd_request_parse(a, &req, &err);

		if (rc != -1 || err == NULL)
			printf("  case %zu: got %d, want -1 with a message\n", i, rc);
		CHECK_INT(rc, -1);
		CHECK(err != NULL);
		attrs_free(&a);
	}
}

TEST(test_authd_base64_decode_valid)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{"", ""},
		{"Zg==", "f"},
		{"Zm8=", "fo"},
		{"Zm9v", "foo"},
		{"Zm9vYg==", "foob"},
		{"Zm9vYmE=", "fooba"},
		{"Zm9vYmFy", "foobar"},
		{"+/+/", "\xfb\xff\xbf"},
	};
	unsigned char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long n = authd_base64_decode(cases[i].in, strlen(cases[i].in), out,
		    sizeof(out));

		CHECK_INT(n, (long)strlen(cases[i].out));
		if (n >= 0)
			CHECK(memcmp(out, cases[i].out, (size_t)n) == 0);
	}
}

TEST(test_authd_base64_decode_nul_bytes)
{
	unsigned char out[64];
	long n = authd_base64_decode("AGFsaWNlAHNlY3JldA==", 20, out, sizeof(out));

	CHECK_INT(n, 13);
	CHECK(memcmp(out, "\0alice\0secret", 13) == 0);
}

TEST(test_authd_base64_decode_invalid)
{
	static const char *const cases[] = {
		"Zg", "Zg=", "Z===", "====", "Zm9v=", "Zm 9v", "Zm9v\n", "Zm9*",
		"Zg==Zg==", "Zh==", "Zm9=", "=Zm9", "Zm=v", "-_-_", "*",
	};
	unsigned char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long n = authd_base64_decode(cases[i], strlen(cases[i]), out,
		    sizeof(out));

		if (n != -1)
			printf("  case %zu \"%s\": got %ld, want -1\n", i, cases[i], n);
		CHECK_INT(n, -1);
	}
}

TEST(test_authd_base64_truncated_prefixes)
{
	const char *full = "AGFsaWNlAHNlY3JldA==";
	unsigned char out[64];

	/* Every prefix whose length is not a multiple of 4 is invalid; the
	 * others decode to a prefix of the data. */
	for (size_t len = 0; len < strlen(full); len++) {
		long n = authd_base64_decode(full, len, out, sizeof(out));

		if (len % 4 != 0)
			CHECK_INT(n, -1);
		else
			CHECK_INT(n, (long)(len / 4 * 3));
	}
}

TEST(test_authd_base64_decode_too_long)
{
	unsigned char out[3];

	CHECK_INT(authd_base64_decode("Zm9v", 4, out, 3), 3);
	CHECK_INT(authd_base64_decode("Zm9vYg==", 8, out, 3), -1);
}

TEST(test_authd_base64_round_trip)
{
	unsigned char data[256], back[256];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(data); len += 17) {
		struct sbuf sb;

		sbuf_init(&sb, 0);
		CHECK_INT(authd_base64_encode(data, len, &sb), 0);
		CHECK_INT(sb.len, (len + 2) / 3 * 4);
		CHECK_INT(authd_base64_decode(sb.data, sb.len, back, sizeof(back)),
		    (long)len);
		CHECK(memcmp(data, back, len) == 0);
		sbuf_free(&sb);
	}
}

TEST(test_authd_base64_encode_empty)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	CHECK_INT(authd_base64_encode((const unsigned char *)"", 0, &sb), 0);
	CHECK_STR(sbuf_cstr(&sb), "");
	sbuf_free(&sb);
}

TEST(test_authd_parse_duration)
{
	CHECK_INT(authd_parse_duration_ms("250ms"), 250);
	CHECK_INT(authd_parse_duration_ms("2"), 2000);
	CHECK_INT(authd_parse_duration_ms("2s"), 2000);
	CHECK_INT(authd_parse_duration_ms("10m"), 600000);
	CHECK_INT(authd_parse_duration_ms("1h"), 3600000);
	CHECK_INT(authd_parse_duration_ms(""), -1);
	CHECK_INT(authd_parse_duration_ms("-1s"), -1);
	CHECK_INT(authd_parse_duration_ms("1x"), -1);
	CHECK_INT(authd_parse_duration_ms("s"), -1);
	CHECK_INT(authd_parse_duration_ms("99999999999"), -1);
}

TEST(test_authd_list_contains)
{
	CHECK_INT(authd_list_contains("PLAIN LOGIN", "login"), 1);
	CHECK_INT(authd_list_contains("PLAIN, LOGIN", "PLAIN"), 1);
	CHECK_INT(authd_list_contains("PLAIN LOGIN", "LOG"), 0);
	CHECK_INT(authd_list_contains("PLAINX", "PLAIN"), 0);
	CHECK_INT(authd_list_contains("", "PLAIN"), 0);
}

TEST_MAIN(
	TEST_CASE(test_authd_request_start_valid),
	TEST_CASE(test_authd_request_start_without_response),
	TEST_CASE(test_authd_request_other_ops),
	TEST_CASE(test_authd_request_invalid_table),
	TEST_CASE(test_authd_base64_decode_valid),
	TEST_CASE(test_authd_base64_decode_nul_bytes),
	TEST_CASE(test_authd_base64_decode_invalid),
	TEST_CASE(test_authd_base64_truncated_prefixes),
	TEST_CASE(test_authd_base64_decode_too_long),
	TEST_CASE(test_authd_base64_round_trip),
	TEST_CASE(test_authd_base64_encode_empty),
	TEST_CASE(test_authd_parse_duration),
	TEST_CASE(test_authd_list_contains),
)
