/*
 * Unit tests of the smtp agent's DATA encoder: LF to CRLF, dot-stuffing
 * and the end of data, with the input split at every position.
 */
#include <string.h>

#include "smtp.h"
#include "testlib.h"

static const struct {
	const char *in;
	const char *out;
} body_cases[] = {
	{"", ".\r\n"},
	{"a\n", "a\r\n.\r\n"},
	{"no final newline", "no final newline\r\n.\r\n"},
	{".\n", "..\r\n.\r\n"},
	{"..\n", "...\r\n.\r\n"},
	{"a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n"},
	{"a.b\n .c\n", "a.b\r\n .c\r\n.\r\n"},
	{"\n\n", "\r\n\r\n.\r\n"},
	{".", "..\r\n.\r\n"},
	{"x\n.", "x\r\n..\r\n.\r\n"},
	{"h: v\n\n.body\n..two\nend", "h: v\r\n\r\n..body\r\n...two\r\nend\r\n.\r\n"},
	{"8bit \xc3\xa9\n", "8bit \xc3\xa9\r\n.\r\n"},
};

/* Encodes in as two chunks split at split and finishes. */
static void encode_split(const char *in, size_t split, struct sbuf *out)
{
	struct smtp_body_encoder e;
	size_t len = strlen(in);

	smtp_body_init(&e);
	sbuf_reset(out);
	CHECK_INT(smtp_body_encode(&e, in, split, out), 0);
	CHECK_INT(smtp_body_encode(&e, in + split, len - split, out), 0);
	CHECK_INT(smtp_body_finish(&e, out), 0);
}

TEST(test_smtp_body_every_split)
{
	struct sbuf out;

	sbuf_init(&out, 0);
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const char *in = body_cases[i].in;

		for (size_t split = 0; split <= strlen(in); split++) {
			encode_split(in, split, &out);
			if (strcmp(sbuf_cstr(&out), body_cases[i].out) != 0)
				printf("  case %zu split %zu\n", i, split);
			CHECK_STR(sbuf_cstr(&out), body_cases[i].out);
		}
	}
	sbuf_free(&out);
}

TEST(test_smtp_body_byte_by_byte)
{
	struct sbuf out;

	sbuf_init(&out, 0);
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		struct smtp_body_encoder e;
		const char *in = body_cases[i].in;

		smtp_body_init(&e);
		sbuf_reset(&out);
		for (size_t k = 0; in[k] != '\0'; k++)
			CHECK_INT(smtp_body_encode(&e, in + k, 1, &out), 0);
		CHECK_INT(smtp_body_finish(&e, &out), 0);
		if (strcmp(sbuf_cstr(&out), body_cases[i].out) != 0)
			printf("  case %zu\n", i);
		CHECK_STR(sbuf_cstr(&out), body_cases[i].out);
	}
	sbuf_free(&out);
}

TEST(test_smtp_body_nul_bytes)
{
	static const char in[] = {'a', '\0', 'b', '\n', '.', '\0', '\n'};
	static const char want[] = {'a', '\0', 'b', '\r', '\n', '.', '.', '\0',
	    '\r', '\n', '.', '\r', '\n'};
	struct smtp_body_encoder e;
	struct sbuf out;

	sbuf_init(&out, 0);
	smtp_body_init(&e);
	CHECK_INT(smtp_body_encode(&e, in, sizeof(in), &out), 0);
	CHECK_INT(smtp_body_finish(&e, &out), 0);
	CHECK_INT(out.len, sizeof(want));
	if (out.len == sizeof(want))
		CHECK(memcmp(out.data, want, out.len) == 0);
	sbuf_free(&out);
}

TEST(test_smtp_body_cap)
{
	struct smtp_body_encoder e;
	struct sbuf out;

	/* "a\n" needs three bytes of output; a cap of two must fail. */
	sbuf_init(&out, 2);
	smtp_body_init(&e);
	CHECK_INT(smtp_body_encode(&e, "a\n", 2, &out), -1);
	sbuf_free(&out);
}

TEST_MAIN(
	TEST_CASE(test_smtp_body_every_split),
	TEST_CASE(test_smtp_body_byte_by_byte),
	TEST_CASE(test_smtp_body_nul_bytes),
	TEST_CASE(test_smtp_body_cap)
)
