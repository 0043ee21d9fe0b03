/*
 * Unit tests of lib/attr.c: encoding, the incremental decoder with
 * truncated and malformed input, and the blocking stream with descriptor
 * passing over a socketpair.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "sbuf.h"
#include "testlib.h"

/* Encodes a into a new C string (caller frees). */
static char *encode(const struct attrs *a)
{
	struct sbuf sb;

	sbuf_init(&sb, 0);
	if (attrs_encode(a, &sb) < 0) {
		sbuf_free(&sb);
		return NULL;
	}
	return sbuf_detach(&sb);
}

/* Decodes one whole record from wire; returns the feed result. */
static int decode(const char *wire, size_t len, struct attrs **out,
    size_t *used_out)
{
	struct attr_decoder *d = attr_decoder_new();
	const char *err = NULL;
	size_t used = 0;
	int rc = attr_decoder_feed(d, wire, len, &used, out, &err);

	if (used_out != NULL)
		*used_out = used;
	attr_decoder_free(&d);
	return rc;
}

TEST(test_attr_encode_escapes)
{
	struct attrs *a = attrs_new();
	char *wire;

	attrs_add(a, "text", "50% off\r\nnext");
	attrs_add_long(a, "count", -42);
	attrs_addf(a, "id_2", "%s-%d", "x", 7);
	wire = encode(a);
	CHECK_STR(wire, "text=50%25 off%0D%0Anext\ncount=-42\nid_2=x-7\n\n");
	free(wire);
	attrs_free(&a);
	CHECK(a == NULL);
}

TEST(test_attr_roundtrip_special_bytes)
{
	struct attrs *a = attrs_new(), *b = NULL;
	char *wire;
	size_t used = 0;

	attrs_add(a, "multi", "line one\nline two\n");
	attrs_add(a, "percent", "%%25%");
	attrs_add(a, "cr", "\r");
	attrs_add(a, "empty", "");
	wire = encode(a);
	CHECK_INT(decode(wire, strlen(wire), &b, &used), 1);
	CHECK_INT(used, strlen(wire));
	if (b != NULL) {
		CHECK_INT(b->count, 4);
		CHECK_STR(attrs_get(b, "multi"), "line one\nline two\n");
		CHECK_STR(attrs_get(b, "percent"), "%%25%");
		CHECK_STR(attrs_get(b, "cr"), "\r");
		CHECK_STR(attrs_get(b, "empty"), "");
	}
	attrs_free(&b);
	attrs_free(&a);
	free(wire);
}

TEST(test_attr_roundtrip_nul_byte)
{
	static const char wire[] = "blob=a%00b%00\n\n";
	struct attrs *b = NULL;
	char *again;

	CHECK_INT(decode(wire, strlen(wire), &b, NULL), 1);
	if (b == NULL)
		return;
	CHECK_INT(b->items[0].value_len, 4);
	CHECK(memcmp(b->items[0].value, "a\0b\0", 4) == 0);
	again = encode(b);
	CHECK_STR(again, wire);
	free(again);
	attrs_free(&b);
}

TEST(test_attr_repeated_names_in_order)
{
	static const char wire[] = "rcpt=a@x\nsize=5\nrcpt=b@x\nrcpt=c@x\n\n";
	struct attrs *b = NULL;

	CHECK_INT(decode(wire, strlen(wire), &b, NULL), 1);
	if (b == NULL)
		return;
	CHECK_INT(b->count, 4);
	CHECK_STR(b->items[0].value, "a@x");
	CHECK_STR(b->items[2].value, "b@x");
	CHECK_STR(b->items[3].value, "c@x");
	CHECK_STR(attrs_get(b, "rcpt"), "a@x");
	attrs_free(&b);
}

TEST(test_attr_get_long_default)
{
	struct attrs *a = attrs_new();

	attrs_add(a, "n", "12");
	attrs_add(a, "bad", "12x");
	attrs_add(a, "empty", "");
	CHECK_INT(attrs_get_long(a, "n", -1), 12);
	CHECK_INT(attrs_get_long(a, "bad", -1), -1);
	CHECK_INT(attrs_get_long(a, "empty", -1), -1);
	CHECK_INT(attrs_get_long(a, "missing", 9), 9);
	CHECK(attrs_get(a, "missing") == NULL);
	attrs_free(&a);
}

TEST(test_attr_empty_record)
{
	struct attrs *b = NULL;
	size_t used = 0;

	CHECK_INT(decode("\nx=1\n\n", 6, &b, &used), 1);
	CHECK_INT(used, 1);
	CHECK(b != NULL && b->count == 0);
	attrs_free(&b);
}

/* Every strict prefix of a valid record leaves the decoder waiting. */
TEST(test_attr_every_prefix_incomplete)
{
	static const char wire[] = "request=deliver\nqueue_id=0A1B\nrcpt=a%0Ab@x\n\n";
	size_t len = strlen(wire);

	for (size_t cut = 0; cut < len; cut++) {
		struct attrs *b = NULL;
		size_t used = 99;
		int rc = decode(wire, cut, &b, &used);

		if (rc != 0 || b != NULL || used != cut)
			printf("  prefix of %zu bytes: rc %d, used %zu\n", cut, rc, used);
		CHECK_INT(rc, 0);
		CHECK(b == NULL);
		CHECK_INT(used, cut);
		attrs_free(&b);
	}
}

/* Fed one byte per call, the record completes exactly at the last byte. */
TEST(test_attr_byte_by_byte)
{
	static const char wire[] = "a=1%25\nb=%0D%0A\n\n";
	size_t len = strlen(wire);
	struct attr_decoder *d = attr_decoder_new();
	struct attrs *b = NULL;
	const char *err = NULL;

	for (size_t i = 0; i < len; i++) {
		size_t used = 0;
		int rc = attr_decoder_feed(d, wire + i, 1, &used, &b, &err);

		CHECK_INT(used, 1);
		if (i + 1 < len) {
			CHECK_INT(rc, 0);
		} else {
			CHECK_INT(rc, 1);
		}
	}
	CHECK(b != NULL);
	if (b != NULL) {
		CHECK_STR(attrs_get(b, "a"), "1%");
		CHECK_STR(attrs_get(b, "b"), "\r\n");
	}
	attrs_free(&b);
	attr_decoder_free(&d);
	CHECK(d == NULL);
}

TEST(test_attr_two_records_one_buffer)
{
	static const char wire[] = "a=1\n\nb=2\n\n";
	struct attr_decoder *d = attr_decoder_new();
	struct attrs *b = NULL;
	const char *err = NULL;
	size_t used = 0;

	CHECK_INT(attr_decoder_feed(d, wire, strlen(wire), &used, &b, &err), 1);
	CHECK_INT(used, 5);
	CHECK_STR(b ? attrs_get(b, "a") : NULL, "1");
	attrs_free(&b);
	CHECK_INT(attr_decoder_feed(d, wire + 5, strlen(wire) - 5, &used, &b, &err), 1);
	CHECK_INT(used, 5);
	CHECK_STR(b ? attrs_get(b, "b") : NULL, "2");
	attrs_free(&b);
	attr_decoder_free(&d);
}

TEST(test_attr_malformed_records)
{
	static const struct {
		const char *wire;
		size_t len;
	} cases[] = {
#define WIRE(s) {s, sizeof(s) - 1}
		WIRE("novalue\n\n"),
		WIRE("Upper=x\n\n"),
		WIRE("=x\n\n"),
		WIRE("a-b=x\n\n"),
		WIRE("a=%zz\n\n"),
		WIRE("a=%4\n\n"),
		WIRE("a=%\n\n"),
		WIRE("a=x\ry\n\n"),
		WIRE("a=x\0y\n\n"),
		WIRE("sp ace=x\n\n"),
#undef WIRE
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct attrs *b = NULL;
		int rc = decode(cases[i].wire, cases[i].len, &b, NULL);

		if (rc != -1)
			printf("  case %zu: rc %d, want -1\n", i, rc);
		CHECK_INT(rc, -1);
		CHECK(b == NULL);
	}
}

TEST(test_attr_decoder_after_error)
{
	struct attr_decoder *d = attr_decoder_new();
	struct attrs *b = NULL;
	const char *err = NULL;
	size_t used = 0;

	CHECK_INT(attr_decoder_feed(d, "bad\n", 4, &used, &b, &err), -1);
	CHECK(err != NULL);
	CHECK_INT(attr_decoder_feed(d, "ok=1\n\n", 6, &used, &b, &err), 1);
	CHECK_STR(b ? attrs_get(b, "ok") : NULL, "1");
	attrs_free(&b);
	attr_decoder_free(&d);
}

TEST(test_attr_oversized_record)
{
	struct attrs *a = attrs_new();
	char *big = xmalloc(ATTR_MAX_RECORD + 1);
	struct sbuf sb;

	memset(big, 'x', ATTR_MAX_RECORD);
	big[ATTR_MAX_RECORD] = '\0';
	attrs_add(a, "big", big);
	sbuf_init(&sb, 0);
	sbuf_puts(&sb, "keep");
	errno = 0;
	CHECK_INT(attrs_encode(a, &sb), -1);
	CHECK_INT(errno, EMSGSIZE);
	CHECK_STR(sbuf_cstr(&sb), "keep");
	sbuf_free(&sb);
	attrs_free(&a);

	/* The same bytes on the wire: the decoder stops at the limit. */
	struct attr_decoder *d = attr_decoder_new();
	struct attrs *b = NULL;
	const char *err = NULL;
	size_t used = 0;
	int rc = 0;

	big[0] = 'v';
	big[1] = '=';
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = attr_decoder_feed(d, big, ATTR_MAX_RECORD, &used, &b, &err);
	CHECK_INT(rc, -1);
	CHECK(b == NULL);
	attr_decoder_free(&d);
	free(big);
}

TEST(test_attr_too_many_items)
{
	struct attrs *a = attrs_new();
	struct sbuf wire;
	struct attrs *b = NULL;

	for (int i = 0; i <= ATTR_MAX_ITEMS; i++)
		attrs_add(a, "r", "x");
	sbuf_init(&wire, 0);
	errno = 0;
	CHECK_INT(attrs_encode(a, &wire), -1);
	CHECK_INT(errno, EMSGSIZE);

	for (int i = 0; i <= ATTR_MAX_ITEMS; i++)
		sbuf_puts(&wire, "r=x\n");
	sbuf_putc(&wire, '\n');
	CHECK_INT(decode(wire.data, wire.len, &b, NULL), -1);
	sbuf_free(&wire);
	attrs_free(&a);
}

TEST(test_attr_encode_invalid_name)
{
	struct attrs *a = attrs_new();
	struct sbuf sb;

	attrs_add(a, "Bad Name", "x");
	sbuf_init(&sb, 0);
	CHECK_INT(attrs_encode(a, &sb), -1);
	CHECK_INT(sb.len, 0);
	sbuf_free(&sb);
	attrs_free(&a);
}

/* A socketpair with a stream on each end. */
struct pair {
	struct attr_stream *a, *b;
};

static int pair_open(struct pair *p)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	p->a = attr_stream_new(sv[0]);
	p->b = attr_stream_new(sv[1]);
	return 0;
}

static void pair_close(struct pair *p)
{
	attr_stream_close(&p->a);
	attr_stream_close(&p->b);
}

TEST(test_attr_stream_fd_passing)
{
	struct pair p;
	struct attrs *a = attrs_new(), *b = NULL;
	int pipefd[2], got_fd = -1;
	char buf[8] = {0};

	CHECK_INT(pair_open(&p), 0);
	CHECK_INT(pipe(pipefd), 0);
	attrs_add(a, "request", "hand_over");
	CHECK_INT(attr_stream_send(p.a, a, pipefd[1], 1000), 0);
	close(pipefd[1]);
	CHECK_INT(attr_stream_recv(p.b, &b, &got_fd, 1000), 1);
	CHECK_STR(b ? attrs_get(b, "request") : NULL, "hand_over");
	CHECK(got_fd >= 0);
	if (got_fd >= 0) {
		CHECK_INT(write(got_fd, "hi", 2), 2);
		close(got_fd);
		CHECK_INT(read(pipefd[0], buf, sizeof(buf)), 2);
		CHECK_STR(buf, "hi");
	}
	close(pipefd[0]);
	attrs_free(&b);
	attrs_free(&a);
	pair_close(&p);
}

/* Records sent back to back: the bytes of the later ones stay buffered,
 * and a descriptor goes with the record it was sent with. */
TEST(test_attr_stream_fd_on_later_record)
{
	struct pair p;
	struct attrs *a = attrs_new(), *b = NULL;
	int devnull = open("/dev/null", O_RDONLY), got_fd = -2;

	CHECK_INT(pair_open(&p), 0);
	attrs_add(a, "n", "1");
	CHECK_INT(attr_stream_send(p.a, a, -1, 1000), 0);
	CHECK_INT(attr_stream_send(p.a, a, -1, 1000), 0);
	CHECK_INT(attr_stream_send(p.a, a, devnull, 1000), 0);
	close(devnull);

	for (int i = 0; i < 3; i++) {
		CHECK_INT(attr_stream_recv(p.b, &b, &got_fd, 1000), 1);
		CHECK_STR(b ? attrs_get(b, "n") : NULL, "1");
		attrs_free(&b);
		if (i < 2) {
			CHECK_INT(got_fd, -1);
		} else {
			CHECK(got_fd >= 0);
		}
	}
	if (got_fd >= 0)
		close(got_fd);
	attrs_free(&a);
	pair_close(&p);
}

TEST(test_attr_stream_timeout)
{
	struct pair p;
	struct attrs *b = NULL;

	CHECK_INT(pair_open(&p), 0);
	errno = 0;
	CHECK_INT(attr_stream_recv(p.b, &b, NULL, 50), -1);
	CHECK_INT(errno, ETIMEDOUT);

	/* Half a record, then silence: still a timeout. */
	CHECK_INT(write(attr_stream_fd(p.a), "a=1\n", 4), 4);
	errno = 0;
	CHECK_INT(attr_stream_recv(p.b, &b, NULL, 50), -1);
	CHECK_INT(errno, ETIMEDOUT);
	CHECK(b == NULL);
	pair_close(&p);
}

TEST(test_attr_stream_end_of_file)
{
	struct pair p;
	struct attrs *b = NULL;

	CHECK_INT(pair_open(&p), 0);
	attr_stream_close(&p.a);
	CHECK_INT(attr_stream_recv(p.b, &b, NULL, 1000), 0);
	pair_close(&p);

	CHECK_INT(pair_open(&p), 0);
	CHECK_INT(write(attr_stream_fd(p.a), "a=1\n", 4), 4);
	attr_stream_close(&p.a);
	errno = 0;
	CHECK_INT(attr_stream_recv(p.b, &b, NULL, 1000), -1);
	CHECK_INT(errno, EPROTO);
	pair_close(&p);
}

TEST(test_attr_stream_malformed)
{
	struct pair p;
	struct attrs *b = NULL;

	CHECK_INT(pair_open(&p), 0);
	CHECK_INT(write(attr_stream_fd(p.a), "GET / HTTP/1.0\r\n\r\n", 18), 18);
	errno = 0;
	CHECK_INT(attr_stream_recv(p.b, &b, NULL, 1000), -1);
	CHECK_INT(errno, EPROTO);
	CHECK(b == NULL);
	pair_close(&p);
}

TEST(test_attr_stream_send_peer_gone)
{
	struct pair p;
	struct attrs *a = attrs_new();

	CHECK_INT(pair_open(&p), 0);
	attrs_add(a, "x", "y");
	attr_stream_close(&p.b);
	errno = 0;
	CHECK_INT(attr_stream_send(p.a, a, -1, 1000), -1);
	CHECK_INT(errno, EPIPE);
	attrs_free(&a);
	pair_close(&p);
}

TEST_MAIN(
	TEST_CASE(test_attr_encode_escapes),
	TEST_CASE(test_attr_roundtrip_special_bytes),
	TEST_CASE(test_attr_roundtrip_nul_byte),
	TEST_CASE(test_attr_repeated_names_in_order),
	TEST_CASE(test_attr_get_long_default),
	TEST_CASE(test_attr_empty_record),
	TEST_CASE(test_attr_every_prefix_incomplete),
	TEST_CASE(test_attr_byte_by_byte),
	TEST_CASE(test_attr_two_records_one_buffer),
	TEST_CASE(test_attr_malformed_records),
	TEST_CASE(test_attr_decoder_after_error),
	TEST_CASE(test_attr_oversized_record),
	TEST_CASE(test_attr_too_many_items),
	TEST_CASE(test_attr_encode_invalid_name),
	TEST_CASE(test_attr_stream_fd_passing),
	TEST_CASE(test_attr_stream_fd_on_later_record),
	TEST_CASE(test_attr_stream_timeout),
	TEST_CASE(test_attr_stream_end_of_file),
	TEST_CASE(test_attr_stream_malformed),
	TEST_CASE(test_attr_stream_send_peer_gone)
)
