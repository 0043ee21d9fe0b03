/*
 * Tests of lib/tlsproxy_client.c and lib/tls_pem.c: the reply decoder,
 * the Received header summary, the request encoder, TLS policies and
 * the grouping of PEM blocks into identities.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "sbuf.h"
#include "testlib.h"
#include "tls_pem.h"
#include "tlsproxy_client.h"

TEST(test_tls_client_summary_format)
{
	struct tls_summary s;
	char buf[200];

	memset(&s, 0, sizeof(s));
	strcpy(s.protocol, "TLSv1.3");
	strcpy(s.cipher, "TLS_AES_256_GCM_SHA384");
	s.cipher_bits = 256;
	s.cipher_alg_bits = 256;
	tls_summary_format(&s, buf, sizeof(buf));
	CHECK_STR(buf, "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))");
}

TEST(test_tls_client_summary_truncated)
{
	struct tls_summary s;
	char buf[10];
	int need;

	memset(&s, 0, sizeof(s));
	strcpy(s.protocol, "TLSv1.2");
	strcpy(s.cipher, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
	need = tls_summary_format(&s, buf, sizeof(buf));
	CHECK_INT(strlen(buf), 9);
	CHECK(need > 9);
}

TEST(test_tls_client_reply_ok)
{
	struct attrs *a = attrs_new();
	struct tls_summary s;

	attrs_add(a, "status", "ok");
	attrs_add(a, "protocol", "TLSv1.2");
	attrs_add(a, "cipher", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
	attrs_add(a, "cipher_bits", "128");
	attrs_add(a, "cipher_alg_bits", "128");
	attrs_add(a, "peer_subject", "CN=mx.example.com");
	attrs_add(a, "verified", "yes");
	attrs_add(a, "resumed", "no");
	CHECK_INT(tlsproxy_reply_decode(a, &s), 0);
	CHECK_INT(s.ok, 1);
	CHECK_STR(s.protocol, "TLSv1.2");
	CHECK_INT(s.cipher_bits, 128);
	CHECK_STR(s.peer_subject, "CN=mx.example.com");
	CHECK_INT(s.verified, 1);
	CHECK_INT(s.resumed, 0);
	attrs_free(&a);
}

TEST(test_tls_client_reply_fail_and_malformed)
{
	struct attrs *a = attrs_new();
	struct tls_summary s;

	attrs_add(a, "status", "fail");
	attrs_add(a, "reason", "TLS handshake timed out");
	CHECK_INT(tlsproxy_reply_decode(a, &s), -1);
	CHECK_INT(s.ok, 0);
	CHECK_STR(s.reason, "TLS handshake timed out");
	attrs_free(&a);

	a = attrs_new();
	attrs_add(a, "protocol", "TLSv1.3");
	CHECK_INT(tlsproxy_reply_decode(a, &s), -1);
	CHECK(strstr(s.reason, "status is missing") != NULL);
	attrs_free(&a);

	a = attrs_new();
	attrs_add(a, "status", "maybe");
	attrs_add(a, "cipher_bits", "lots");
	CHECK_INT(tlsproxy_reply_decode(a, &s), -1);
	CHECK_INT(s.cipher_bits, 0);
	attrs_free(&a);
}

TEST(test_tls_client_reply_long_value_truncated)
{
	struct attrs *a = attrs_new();
	struct tls_summary s;
	char big[1000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	attrs_add(a, "status", "ok");
	attrs_add(a, "peer_subject", big);
	CHECK_INT(tlsproxy_reply_decode(a, &s), 0);
	CHECK_INT(strlen(s.peer_subject), sizeof(s.peer_subject) - 1);
	attrs_free(&a);
}

TEST(test_tls_client_request_skips_empty)
{
	struct tlsproxy_request req = {.role = "client", .server_name = "mx.example.com",
	    .security_level = "verify", .ca_file = ""};
	struct attrs *a = tlsproxy_request_encode(&req);

	CHECK_STR(attrs_get(a, "role"), "client");
	CHECK_STR(attrs_get(a, "security_level"), "verify");
	CHECK(attrs_get(a, "ca_file") == NULL);
	CHECK(attrs_get(a, "peer") == NULL);
	attrs_free(&a);
}

TEST(test_tls_client_levels)
{
	CHECK_INT(tls_level_parse("none"), TLS_LEVEL_NONE);
	CHECK_INT(tls_level_parse("MAY"), TLS_LEVEL_MAY);
	CHECK_INT(tls_level_parse("encrypt"), TLS_LEVEL_ENCRYPT);
	CHECK_INT(tls_level_parse("secure"), TLS_LEVEL_VERIFY);
	CHECK_INT(tls_level_parse("dane"), -1);
	CHECK_INT(tls_level_parse(""), -1);
	CHECK_STR(tls_level_name(TLS_LEVEL_ENCRYPT), "encrypt");
}

TEST(test_tls_client_policy_parse)
{
	struct tls_policy p;
	char *err = NULL;

	CHECK_INT(tls_policy_parse("verify match=mx1.example.com:example.com "
	    "protocols=>=TLSv1.3", &p, &err), 0);
	CHECK_INT(p.level, TLS_LEVEL_VERIFY);
	CHECK_STR(p.match, "mx1.example.com:example.com");
	CHECK_STR(p.protocols, ">=TLSv1.3");
	CHECK_STR(p.ciphers, "");

	CHECK_INT(tls_policy_parse("bogus", &p, &err), -1);
	CHECK(err != NULL && strstr(err, "\"bogus\"") != NULL);
	free(err);
	err = NULL;
	CHECK_INT(tls_policy_parse("may tafile=/x", &p, &err), -1);
	CHECK(err != NULL);
	free(err);
	err = NULL;
	CHECK_INT(tls_policy_parse("", &p, &err), -1);
	free(err);
}

#define KEY "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
#define ECKEY "-----BEGIN EC PRIVATE KEY-----\nBBBB\n-----END EC PRIVATE KEY-----\n"
#define CERT "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n"

TEST(test_tls_pem_two_identities)
{
	const char *text = KEY CERT CERT "junk\n" ECKEY CERT;
	struct tls_identity *ids = NULL;
	char *err = NULL;
	int n = tls_pem_split(text, strlen(text), "f", &ids, &err);

	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(ids[0].ncerts, 2);
		CHECK_INT(ids[1].ncerts, 1);
		CHECK(strstr(ids[1].key_pem, "EC PRIVATE KEY") != NULL);
		CHECK(strstr(ids[0].certs_pem, "PRIVATE") == NULL);
	}
	tls_identities_free(&ids, n > 0 ? (size_t)n : 0);
	CHECK(ids == NULL);
}

TEST(test_tls_pem_errors)
{
	static const char *const bad[] = {
		CERT KEY,                         /* certificate before key */
		KEY,                              /* key without certificate */
		"",                               /* nothing */
		KEY "-----BEGIN CERTIFICATE-----\nCCCC\n", /* no END line */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tls_identity *ids = NULL;
		char *err = NULL;

		if (tls_pem_split(bad[i], strlen(bad[i]), "f", &ids, &err) != -1)
			printf("  case %zu should fail\n", i);
		CHECK(err != NULL);
		CHECK(ids == NULL);
		free(err);
	}
}

TEST(test_tls_pem_every_prefix)
{
	const char *text = KEY CERT;
	size_t len = strlen(text);

	for (size_t i = 0; i < len; i++) {
		struct tls_identity *ids = NULL;
		char *err = NULL;
		int n = tls_pem_split(text, i, "f", &ids, &err);

		/* A prefix either fails or, once the certificate's END line is
		 * in, yields one identity; it never reads past len. */
		CHECK(n == -1 || n == 1);
		tls_identities_free(&ids, n > 0 ? (size_t)n : 0);
		free(err);
	}
}

TEST_MAIN(
	TEST_CASE(test_tls_client_summary_format),
	TEST_CASE(test_tls_client_summary_truncated),
	TEST_CASE(test_tls_client_reply_ok),
	TEST_CASE(test_tls_client_reply_fail_and_malformed),
	TEST_CASE(test_tls_client_reply_long_value_truncated),
	TEST_CASE(test_tls_client_request_skips_empty),
	TEST_CASE(test_tls_client_levels),
	TEST_CASE(test_tls_client_policy_parse),
	TEST_CASE(test_tls_pem_two_identities),
	TEST_CASE(test_tls_pem_errors),
	TEST_CASE(test_tls_pem_every_prefix)
)
