/*
 * Unit tests of authd/scram.c: the client-first-message parser with
 * valid, malformed and truncated input, and the shape of decoy
 * server-first-messages (nonce, stable salt, iteration count).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authd.h"
#include "testlib.h"

static int parse(const char *msg, struct authd_scram_first *out)
{
	const char *err = NULL;
	int rc = authd_scram_parse_first(msg, strlen(msg), out, &err);

	if (rc < 0)
		CHECK(err != NULL);
	return rc;
}

TEST(test_authd_scram_parse_plain)
{
	struct authd_scram_first first;

	CHECK_INT(parse("n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL", &first), 0);
	CHECK_STR(first.user, "alice");
	CHECK_INT((int)first.nonce_len, 24);
	CHECK(memcmp(first.nonce, "fyko+d2lbbFgONRv9qkxdawL", 24) == 0);
	authd_scram_first_clear(&first);
	CHECK(first.user == NULL);
}

TEST(test_authd_scram_parse_escapes_and_extensions)
{
	struct authd_scram_first first;

	CHECK_INT(parse("n,,n=a=2Cb=3Dc,r=xyz,e=ext", &first), 0);
	CHECK_STR(first.user, "a,b=c");
	CHECK_INT((int)first.nonce_len, 3);
	CHECK(memcmp(first.nonce, "xyz", 3) == 0);
	authd_scram_first_clear(&first);
}

TEST(test_authd_scram_parse_gs2_variants)
{
	static const char *const valid[] = {
		"y,,n=bob,r=abc",
		"n,a=admin,n=bob,r=abc",
		"n,a=ad=2Cmin,n=bob,r=abc",
		"p=tls-unique,,n=bob,r=abc",
		"p=tls-server-end-point,a=x,n=bob,r=abc",
		"n,,n=bob,r=",  /* libsasl2 accepts an empty client nonce */
	};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct authd_scram_first first;

		CHECK_INT(parse(valid[i], &first), 0);
		CHECK_STR(first.user, "bob");
		authd_scram_first_clear(&first);
	}
}

TEST(test_authd_scram_parse_malformed)
{
	static const char *const invalid[] = {
		"",
		"x,,n=a,r=b",       /* unknown gs2-cbind-flag */
		"N,,n=a,r=b",
		"nn,n=a,r=b",       /* no comma after the flag */
		"p,,n=a,r=b",       /* p without = */
		"p=tls-unique",     /* unterminated channel binding name */
		"n,a=admin",        /* unterminated authzid */
		"n,a=ad=2min,n=a,r=b", /* invalid escape in authzid */
		"n,b=x,n=a,r=b",    /* not an authzid, no second comma */
		"n,,m=ext,n=a,r=b", /* mandatory extension */
		"n,,r=b,n=a",       /* nonce before the username */
		"n,,n=,r=b",        /* empty username */
		"n,,n=a=,r=b",      /* "=" at the end of the username */
		"n,,n=a=2,r=b",
		"n,,n=a=41,r=b",    /* only =2C and =3D are escapes */
		"n,,n=alice",       /* no nonce */
		"n,,n=alice,",
		"n,,n=alice,s=abc",
		"n,,n=alice,r",
		"c=biws,r=abc,p=cHJvb2Y=", /* a client-final-message */
	};

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct authd_scram_first first;

		if (parse(invalid[i], &first) == 0) {
			fprintf(stderr, "accepted: \"%s\"\n", invalid[i]);
			CHECK(0);
			authd_scram_first_clear(&first);
		}
	}
}

TEST(test_authd_scram_parse_nul)
{
	static const char msg[] = "n,,n=al\0ice,r=abc";
	struct authd_scram_first first;
	const char *err = NULL;

	CHECK_INT(authd_scram_parse_first(msg, sizeof(msg) - 1, &first, &err), -1);
	CHECK(err != NULL);
}

/* Every prefix shorter than "...,r=" fails; longer ones parse with the
 * nonce cut short. The parser must not read past len. */
TEST(test_authd_scram_parse_truncated_prefixes)
{
	static const char msg[] = "n,a=bob,n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
	size_t nonce_at = strstr(msg, "r=") - msg + 2;

	for (size_t len = 0; len <= sizeof(msg) - 1; len++) {
		char *copy = malloc(len > 0 ? len : 1);
		struct authd_scram_first first;
		const char *err = NULL;
		int rc;

		memcpy(copy, msg, len);
		rc = authd_scram_parse_first(copy, len, &first, &err);
		if (len < nonce_at) {
			CHECK_INT(rc, -1);
		} else {
			CHECK_INT(rc, 0);
			if (rc == 0) {
				CHECK_STR(first.user, "alice");
				CHECK_INT((int)first.nonce_len, (int)(len - nonce_at));
			}
			authd_scram_first_clear(&first);
		}
		free(copy);
	}
}

/* Splits "r=...,s=...,i=..." into its three values (static buffers). */
static int split_server_first(const char *text, char *nonce, char *salt,
    char *iterations)
{
	return sscanf(text, "r=%200[^,],s=%200[^,],i=%20s", nonce, salt,
	    iterations) == 3 ? 0 : -1;
}

static char *decoy(const char *mechanism, const char *msg)
{
	struct authd_scram_first first;
	struct sbuf out;
	char *text;

	sbuf_init(&out, 4096);
	CHECK_INT(parse(msg, &first), 0);
	CHECK_INT(authd_scram_decoy(mechanism, &first, &out), 0);
	authd_scram_first_clear(&first);
	text = xstrdup(sbuf_cstr(&out));
	sbuf_free(&out);
	return text;
}

TEST(test_authd_scram_decoy_shape)
{
	char *a, *b, *c, *d;
	char na[201], sa[201], ia[21], nb[201], sb[201], ib[21];
	char nc[201], sc[201], ic[21], nd[201], sd[201], id[21];

	authd_scram_init(NULL);
	a = decoy("SCRAM-SHA-256", "n,,n=nosuchuser,r=clientnonce");
	b = decoy("scram-sha-256", "n,,n=nosuchuser,r=clientnonce");
	c = decoy("SCRAM-SHA-256", "n,,n=otheruser,r=clientnonce");
	d = decoy("SCRAM-SHA-1", "n,,n=nosuchuser,r=clientnonce");

	CHECK_INT(split_server_first(a, na, sa, ia), 0);
	CHECK_INT(split_server_first(b, nb, sb, ib), 0);
	CHECK_INT(split_server_first(c, nc, sc, ic), 0);
	CHECK_INT(split_server_first(d, nd, sd, id), 0);

	/* The client nonce and 32 base64 characters, new each time. */
	CHECK_INT((int)strlen(na), 11 + 32);
	CHECK(strncmp(na, "clientnonce", 11) == 0);
	CHECK(strspn(na + 11, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/") == 32);
	CHECK(strcmp(na, nb) != 0);

	/* A salt of the hash size, stable for one user name. */
	CHECK_INT((int)strlen(sa), 44);  /* 32 bytes */
	CHECK_STR(sa, sb);
	CHECK(strcmp(sa, sc) != 0);
	CHECK_INT((int)strlen(sd), 28);  /* 20 bytes */
	CHECK_STR(ia, "4096");
	CHECK_STR(id, "4096");
	free(a);
	free(b);
	free(c);
	free(d);
}

TEST(test_authd_scram_decoy_unknown_mechanism)
{
	struct authd_scram_first first;
	struct sbuf out;

	sbuf_init(&out, 4096);
	CHECK_INT(parse("n,,n=bob,r=abc", &first), 0);
	CHECK_INT(authd_scram_decoy("PLAIN", &first, &out), -1);
	CHECK_INT(authd_scram_is_scram("PLAIN"), 0);
	CHECK_INT(authd_scram_is_scram("SCRAM-SHA-256"), 1);
	authd_scram_first_clear(&first);
	sbuf_free(&out);
}

/* Runs after the cases that expect the defaults: it changes them. */
TEST(test_authd_scram_config_and_observe)
{
	char path[] = "/tmp/test_authd_scram.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	char n[201], s[201], i[21];
	char *text;

	CHECK(f != NULL);
	fputs("pwcheck_method: auxprop\nSCRAM-SHA-1_scram_iteration_counter: 5000\n"
	    "scram_iteration_counter: 10000\n", f);
	fclose(f);
	authd_scram_init(path);
	unlink(path);

	text = decoy("SCRAM-SHA-256", "n,,n=bob,r=abc");
	CHECK_INT(split_server_first(text, n, s, i), 0);
	CHECK_STR(i, "10000");
	free(text);
	text = decoy("SCRAM-SHA-1", "n,,n=bob,r=abc");
	CHECK_INT(split_server_first(text, n, s, i), 0);
	CHECK_STR(i, "5000");
	free(text);

	/* A real server-first-message with a 16-byte salt and 8192 rounds. */
	authd_scram_observe("SCRAM-SHA-256",
	    "r=abcdef,s=QUJDREVGR0hJSktMTU5PUA==,i=8192", 42, 0);
	text = decoy("SCRAM-SHA-256", "n,,n=bob,r=abc");
	CHECK_INT(split_server_first(text, n, s, i), 0);
	CHECK_STR(i, "8192");
	CHECK_INT((int)strlen(s), 24);
	free(text);

	/* Malformed ones change nothing. */
	authd_scram_observe("SCRAM-SHA-256", "r=abc,s=QUJD,i=x", 16, 0);
	authd_scram_observe("SCRAM-SHA-256", "r=abc,s=QUJ,i=4096", 18, 0);
	text = decoy("SCRAM-SHA-256", "n,,n=bob,r=abc");
	CHECK_INT(split_server_first(text, n, s, i), 0);
	CHECK_STR(i, "8192");
	free(text);
}

/* A decoy step waits until it has lasted as long as the observed real
 * steps, and not at all before any was observed. */
TEST(test_authd_scram_pad)
{
	long long t0 = authd_scram_now_us();

	authd_scram_pad("SCRAM-SHA-1", 0);
	CHECK(authd_scram_now_us() - t0 < 20000);
	authd_scram_observe("SCRAM-SHA-1", "r=abc,s=QUJD,i=4096", 19, 50000);
	t0 = authd_scram_now_us();
	authd_scram_pad("SCRAM-SHA-1", 10000);
	CHECK(authd_scram_now_us() - t0 >= 40000);
	t0 = authd_scram_now_us();
	authd_scram_pad("SCRAM-SHA-1", 60000);
	CHECK(authd_scram_now_us() - t0 < 20000);
}

TEST_MAIN(
	TEST_CASE(test_authd_scram_parse_plain),
	TEST_CASE(test_authd_scram_parse_escapes_and_extensions),
	TEST_CASE(test_authd_scram_parse_gs2_variants),
	TEST_CASE(test_authd_scram_parse_malformed),
	TEST_CASE(test_authd_scram_parse_nul),
	TEST_CASE(test_authd_scram_parse_truncated_prefixes),
	TEST_CASE(test_authd_scram_decoy_shape),
	TEST_CASE(test_authd_scram_decoy_unknown_mechanism),
	TEST_CASE(test_authd_scram_config_and_observe),
	TEST_CASE(test_authd_scram_pad),
)
