/*
 * Unit tests of the smtp agent's DNS answer parsing (MX, A, AAAA), MX
 * ordering, null MX, resolver settings and literal routes. The answers
 * are DNS packets built here, including truncated and malformed ones.
 */
#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "testlib.h"

/* A DNS packet under construction. */
struct packet {
	unsigned char b[2048];
	size_t len;
};

static void put8(struct packet *p, unsigned v)
{
	p->b[p->len++] = (unsigned char)v;
}

static void put16(struct packet *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void put32(struct packet *p, unsigned long v)
{
	put16(p, (unsigned)(v >> 16));
	put16(p, (unsigned)(v & 0xffff));
}

/* Appends name in wire form without compression; "" is the root. */
static void put_name(struct packet *p, const char *name)
{
	while (*name != '\0') {
		size_t len = strcspn(name, ".");

		put8(p, (unsigned)len);
		memcpy(p->b + p->len, name, len);
		p->len += len;
		name += len;
		if (*name == '.')
			name++;
	}
	put8(p, 0);
}

/* Header and question of an answer to "name type" with rcode and
 * ancount records to follow. The question name starts at offset 12. */
static void put_head(struct packet *p, const char *name, unsigned type,
    unsigned rcode, unsigned ancount)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);   /* QR, RD, RA */
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put_name(p, name);
	put16(p, type);
	put16(p, ns_c_in);
}

/* The fixed part of a record owned by the question name (pointer to
 * offset 12), up to and including rdlength. */
static void put_rr_head(struct packet *p, unsigned type, unsigned rdlen)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, ns_c_in);
	put32(p, 300);
	put16(p, rdlen);
}

/* An MX record owned by the question name; exchange uncompressed. */
static void put_mx(struct packet *p, unsigned pref, const char *exchange)
{
	size_t start;

	put_rr_head(p, ns_t_mx, 0);
	start = p->len;
	put16(p, pref);
	put_name(p, exchange);
	p->b[start - 2] = (unsigned char)((p->len - start) >> 8);
	p->b[start - 1] = (unsigned char)((p->len - start) & 0xff);
}

/* "mx.test MX": 10 mx1.mx.test, then 20 mx2 compressed against the
 * question name ("mx2" + pointer to offset 12). */
static void build_mx_answer(struct packet *p)
{
	put_head(p, "mx.test", ns_t_mx, ns_r_noerror, 2);
	put_mx(p, 10, "mx1.mx.test");
	put_rr_head(p, ns_t_mx, 2 + 4 + 2);
	put16(p, 20);
	put8(p, 3);
	memcpy(p->b + p->len, "mx2", 3);
	p->len += 3;
	put16(p, 0xc00c);
}

TEST(test_smtp_mx_parse_records)
{
	struct packet p;
	struct smtp_mx_list l;
	char *err = NULL;

	build_mx_answer(&p);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_OK);
	CHECK_INT(l.count, 2);
	if (l.count == 2) {
		CHECK_INT(l.items[0].preference, 10);
		CHECK_STR(l.items[0].host, "mx1.mx.test");
		CHECK_INT(l.items[1].preference, 20);
		CHECK_STR(l.items[1].host, "mx2.mx.test");
	}
	CHECK(!smtp_mx_is_null(&l));
	smtp_mx_list_free(&l);

	/* A trailing dot on the name asked for changes nothing. */
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "MX.test.", &l, &err),
	    SMTP_DNS_OK);
	CHECK_INT(l.count, 2);
	smtp_mx_list_free(&l);
}

TEST(test_smtp_mx_parse_rcodes)
{
	struct packet p;
	struct smtp_mx_list l;
	char *err = NULL;

	put_head(&p, "gone.test", ns_t_mx, ns_r_nxdomain, 0);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "gone.test", &l, &err),
	    SMTP_DNS_NXDOMAIN);
	CHECK(err != NULL && strstr(err, "gone.test") != NULL);
	CHECK(err != NULL && strstr(err, "Host or domain name not found")
	    != NULL);
	free(err);
	err = NULL;

	put_head(&p, "fail.test", ns_t_mx, ns_r_servfail, 0);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "fail.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
	err = NULL;

	put_head(&p, "empty.test", ns_t_mx, ns_r_noerror, 0);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "empty.test", &l, &err),
	    SMTP_DNS_NODATA);
	CHECK_INT(l.count, 0);
	free(err);
}

TEST(test_smtp_mx_parse_other_owner)
{
	struct packet p;
	struct smtp_mx_list l;
	char *err = NULL;

	/* The records belong to the question name "mx.test", not to the
	 * name the caller asked for. */
	build_mx_answer(&p);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "other.test", &l, &err),
	    SMTP_DNS_NODATA);
	free(err);
}

TEST(test_smtp_mx_parse_truncated)
{
	struct packet p;

	build_mx_answer(&p);
	for (size_t cut = 0; cut < p.len; cut++) {
		struct smtp_mx_list l;
		char *err = NULL;
		enum smtp_dns_status st = smtp_dns_parse_mx(p.b, cut,
		    "mx.test", &l, &err);

		if (st != SMTP_DNS_TEMPFAIL)
			printf("  prefix of %zu bytes\n", cut);
		CHECK_INT(st, SMTP_DNS_TEMPFAIL);
		CHECK(err != NULL);
		CHECK_INT(l.count, 0);
		free(err);
	}
}

TEST(test_smtp_mx_parse_malformed)
{
	struct packet p;
	struct smtp_mx_list l;
	char *err = NULL;

	/* Trailing bytes after the last record. */
	build_mx_answer(&p);
	put8(&p, 0);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
	err = NULL;

	/* An exchange that is a compression pointer to itself. */
	put_head(&p, "mx.test", ns_t_mx, ns_r_noerror, 1);
	put_rr_head(&p, ns_t_mx, 4);
	put16(&p, 10);
	put16(&p, 0xc000 | (unsigned)p.len);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
	err = NULL;

	/* A pointer past the end of the packet. */
	put_head(&p, "mx.test", ns_t_mx, ns_r_noerror, 1);
	put_rr_head(&p, ns_t_mx, 4);
	put16(&p, 10);
	put16(&p, 0xc000 | 0x3ff);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
	err = NULL;

	/* Record data too short for a preference and a name. */
	put_head(&p, "mx.test", ns_t_mx, ns_r_noerror, 1);
	put_rr_head(&p, ns_t_mx, 2);
	put16(&p, 10);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
	err = NULL;

	/* Bytes left in the record data after the exchange name. */
	put_head(&p, "mx.test", ns_t_mx, ns_r_noerror, 1);
	put_rr_head(&p, ns_t_mx, 2 + 5 + 1);
	put16(&p, 10);
	put_name(&p, "mx1");
	put8(&p, 0xff);
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
	err = NULL;

	/* An answer count larger than the records present. */
	put_head(&p, "mx.test", ns_t_mx, ns_r_noerror, 3);
	put_mx(&p, 10, "mx1.mx.test");
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "mx.test", &l, &err),
	    SMTP_DNS_TEMPFAIL);
	free(err);
}

TEST(test_smtp_mx_null_mx)
{
	struct packet p;
	struct smtp_mx_list l;
	char *err = NULL;

	put_head(&p, "nomail.test", ns_t_mx, ns_r_noerror, 1);
	put_mx(&p, 0, "");
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "nomail.test", &l, &err),
	    SMTP_DNS_OK);
	CHECK_INT(l.count, 1);
	if (l.count == 1)
		CHECK_STR(l.items[0].host, "");
	CHECK(smtp_mx_is_null(&l));
	smtp_mx_list_free(&l);

	/* "." with another preference, or next to another record, is not
	 * a null MX under RFC 7505. */
	put_head(&p, "nomail.test", ns_t_mx, ns_r_noerror, 1);
	put_mx(&p, 10, "");
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "nomail.test", &l, &err),
	    SMTP_DNS_OK);
	CHECK(!smtp_mx_is_null(&l));
	smtp_mx_list_free(&l);

	put_head(&p, "nomail.test", ns_t_mx, ns_r_noerror, 2);
	put_mx(&p, 0, "");
	put_mx(&p, 10, "mx1.nomail.test");
	CHECK_INT(smtp_dns_parse_mx(p.b, p.len, "nomail.test", &l, &err),
	    SMTP_DNS_OK);
	CHECK(!smtp_mx_is_null(&l));
	smtp_mx_list_free(&l);
}

TEST(test_smtp_mx_sort_preference)
{
	static const unsigned prefs[] = {30, 10, 20, 10, 0};
	struct smtp_mx_list l;
	int first_seen[2] = {0, 0};

	for (int run = 0; run < 64; run++) {
		l.count = sizeof(prefs) / sizeof(prefs[0]);
		l.items = calloc(l.count, sizeof(*l.items));
		for (size_t i = 0; i < l.count; i++) {
			l.items[i].preference = prefs[i];
			l.items[i].host = xasprintf("h%zu", i);
		}
		smtp_mx_sort(&l);
		CHECK_INT(l.items[0].preference, 0);
		CHECK_INT(l.items[1].preference, 10);
		CHECK_INT(l.items[2].preference, 10);
		CHECK_INT(l.items[3].preference, 20);
		CHECK_INT(l.items[4].preference, 30);
		CHECK_STR(l.items[4].host, "h0");
		/* Which of the two preference-10 hosts comes first. */
		first_seen[strcmp(l.items[1].host, "h1") == 0]++;
		smtp_mx_list_free(&l);
	}
	/* Both orders turn up; the chance that one never does in 64 runs
	 * is 2^-63. */
	CHECK(first_seen[0] > 0);
	CHECK(first_seen[1] > 0);
}

TEST(test_smtp_mx_parse_addrs)
{
	static const unsigned char v4[4] = {127, 0, 0, 2};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 1};
	struct packet p;
	struct smtp_addr_list l = {NULL, 0};
	char *err = NULL;

	put_head(&p, "mx1.test", ns_t_a, ns_r_noerror, 2);
	put_rr_head(&p, ns_t_a, 4);
	memcpy(p.b + p.len, v4, 4);
	p.len += 4;
	/* The same address twice is kept once. */
	put_rr_head(&p, ns_t_a, 4);
	memcpy(p.b + p.len, v4, 4);
	p.len += 4;
	CHECK_INT(smtp_dns_parse_addrs(p.b, p.len, "mx1.test", ns_t_a, &l,
	    &err), SMTP_DNS_OK);

	put_head(&p, "mx1.test", ns_t_aaaa, ns_r_noerror, 1);
	put_rr_head(&p, ns_t_aaaa, 16);
	memcpy(p.b + p.len, v6, 16);
	p.len += 16;
	CHECK_INT(smtp_dns_parse_addrs(p.b, p.len, "mx1.test", ns_t_aaaa,
	    &l, &err), SMTP_DNS_OK);
	CHECK_INT(l.count, 2);
	if (l.count == 2) {
		CHECK_STR(l.addrs[0], "127.0.0.2");
		CHECK_STR(l.addrs[1], "2001:db8::1");
	}
	smtp_addr_list_free(&l);

	/* An A record of 5 bytes. */
	put_head(&p, "mx1.test", ns_t_a, ns_r_noerror, 1);
	put_rr_head(&p, ns_t_a, 5);
	memcpy(p.b + p.len, "\x7f\0\0\x02\0", 5);
	p.len += 5;
	CHECK_INT(smtp_dns_parse_addrs(p.b, p.len, "mx1.test", ns_t_a, &l,
	    &err), SMTP_DNS_TEMPFAIL);
	free(err);
	smtp_addr_list_free(&l);
}

TEST(test_smtp_mx_parse_cname_chain)
{
	struct packet p;
	struct smtp_addr_list l = {NULL, 0};
	char *err = NULL;
	size_t rdlen_at;

	/* alias.test CNAME real.test, real.test A 127.0.0.3. */
	put_head(&p, "alias.test", ns_t_a, ns_r_noerror, 2);
	put_rr_head(&p, ns_t_cname, 0);
	rdlen_at = p.len - 2;
	put_name(&p, "real.test");
	p.b[rdlen_at + 1] = (unsigned char)(p.len - rdlen_at - 2);
	put_name(&p, "real.test");
	put16(&p, ns_t_a);
	put16(&p, ns_c_in);
	put32(&p, 300);
	put16(&p, 4);
	memcpy(p.b + p.len, "\x7f\0\0\x03", 4);
	p.len += 4;
	CHECK_INT(smtp_dns_parse_addrs(p.b, p.len, "alias.test", ns_t_a, &l,
	    &err), SMTP_DNS_OK);
	CHECK_INT(l.count, 1);
	if (l.count == 1)
		CHECK_STR(l.addrs[0], "127.0.0.3");
	smtp_addr_list_free(&l);
}

TEST(test_smtp_mx_resolver_address)
{
	static const char *const good[] = {"", "127.0.0.1", "127.0.0.1:5353",
	    "[127.0.0.1]:53", "127.0.0.1, 127.0.0.2:54 127.0.0.3"};
	static const char *const bad[] = {"::1", "[::1]:53", "127.0.0.1:0",
	    "127.0.0.1:65536", "127.0.0.1:x", "dns.example",
	    "127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4", "[127.0.0.1"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *err = NULL;
		int rc = smtp_dns_init(good[i], &err);

		if (rc != 0)
			printf("  good %zu: %s\n", i, err);
		CHECK_INT(rc, 0);
		free(err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;
		int rc = smtp_dns_init(bad[i], &err);

		if (rc != -1)
			printf("  bad %zu: \"%s\"\n", i, bad[i]);
		CHECK_INT(rc, -1);
		CHECK(rc == 0 || err != NULL);
		free(err);
	}
}

TEST(test_smtp_mx_route_literal)
{
	static const char *const cases[] = {"[127.0.0.1]:2626",
	    "127.0.0.1:2626", "[::1]"};
	static const char *const want[] = {"127.0.0.1", "127.0.0.1", "::1"};

	/* Bracketed hosts and IP addresses need no DNS. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_nexthop nh;
		struct smtp_target_list t;
		const char *dsn = NULL;
		char *err = NULL;

		CHECK_INT(smtp_nexthop_parse(cases[i], NULL, &nh, &err), 0);
		CHECK_INT(smtp_route_lookup(&nh, NULL, 5, &t, &dsn, &err), 0);
		CHECK_INT(t.count, 1);
		if (t.count == 1) {
			CHECK_STR(t.items[0].addr, want[i]);
			CHECK_STR(t.items[0].host, want[i]);
		}
		smtp_target_list_free(&t);
		smtp_nexthop_free(&nh);
	}
}

TEST(test_smtp_mx_self_interfaces)
{
	struct smtp_self self;
	char *err = NULL;

	CHECK_INT(smtp_self_init(&self, "mail.example.test",
	    "loopback-only", &err), 0);
	CHECK_STR(self.hostname, "mail.example.test");
	CHECK(smtp_addr_list_has(&self.addrs, "127.0.0.1"));
	CHECK(smtp_addr_list_has(&self.addrs, "::1"));
	CHECK(!smtp_addr_list_has(&self.addrs, "127.0.0.2"));
	smtp_self_free(&self);

	CHECK_INT(smtp_self_init(&self, "h", "127.0.0.9, [::1]", &err), 0);
	CHECK_INT(self.addrs.count, 2);
	CHECK(smtp_addr_list_has(&self.addrs, "127.0.0.9"));
	CHECK(smtp_addr_list_has(&self.addrs, "::1"));
	smtp_self_free(&self);

	/* "all" lists the loopback interface too. */
	CHECK_INT(smtp_self_init(&self, "h", "all", &err), 0);
	CHECK(smtp_addr_list_has(&self.addrs, "127.0.0.1"));
	smtp_self_free(&self);
}

TEST_MAIN(
	TEST_CASE(test_smtp_mx_parse_records),
	TEST_CASE(test_smtp_mx_parse_rcodes),
	TEST_CASE(test_smtp_mx_parse_other_owner),
	TEST_CASE(test_smtp_mx_parse_truncated),
	TEST_CASE(test_smtp_mx_parse_malformed),
	TEST_CASE(test_smtp_mx_null_mx),
	TEST_CASE(test_smtp_mx_sort_preference),
	TEST_CASE(test_smtp_mx_parse_addrs),
	TEST_CASE(test_smtp_mx_parse_cname_chain),
	TEST_CASE(test_smtp_mx_resolver_address),
	TEST_CASE(test_smtp_mx_route_literal),
	TEST_CASE(test_smtp_mx_self_interfaces)
)
