/*
 * The attributes of an established session for the reply record, and
 * the summary line for logs.
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/x509.h>

#include "tlsproxy.h"

/* "TLS1.3" as GnuTLS names it becomes "TLSv1.3", the form Postfix and
 * OpenSSL print and operators search logs for. */
static void protocol_name(gnutls_session_t tls, char *buf, size_t size)
{
	const char *name = gnutls_protocol_get_name(gnutls_protocol_get_version(tls));

	if (name == NULL)
		name = "unknown";
	if (strncmp(name, "TLS", 3) == 0 && name[3] != 'v')
		snprintf(buf, size, "TLSv%s", name + 3);
	else
		snprintf(buf, size, "%s", name);
}

static int cipher_bits(gnutls_session_t tls)
{
	return (int)gnutls_cipher_get_key_size(gnutls_cipher_get(tls)) * 8;
}

static const char *cipher_name(gnutls_session_t tls)
{
	const char *name = gnutls_ciphersuite_get(tls);

	return name != NULL ? name : "unknown";
}

void tlsproxy_summary_line(gnutls_session_t tls, char *buf, size_t size)
{
	char proto[16];
	int bits = cipher_bits(tls);

	protocol_name(tls, proto, sizeof(proto));
	snprintf(buf, size, "%s with cipher %s (%d/%d bits)", proto,
	    cipher_name(tls), bits, bits);
}

/* Adds peer_subject, peer_issuer and peer_fingerprint of the leaf. */
static void summary_add_peer(gnutls_session_t tls, struct attrs *reply)
{
	unsigned int count = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(tls, &count);
	gnutls_x509_crt_t leaf;
	gnutls_datum_t dn;
	unsigned char digest[32];
	size_t digest_size = sizeof(digest);
	char hex[sizeof(digest) * 3];

	if (certs == NULL || count == 0)
		return;
	if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &certs[0], digest,
	    &digest_size) == 0) {
		for (size_t i = 0; i < digest_size; i++)
			snprintf(hex + 3 * i, 4, "%02X%s", digest[i],
			    i + 1 < digest_size ? ":" : "");
		attrs_add(reply, "peer_fingerprint", hex);
	}
	if (gnutls_x509_crt_init(&leaf) < 0)
		return;
	if (gnutls_x509_crt_import(leaf, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
		if (gnutls_x509_crt_get_dn3(leaf, &dn, 0) == 0) {
			attrs_add(reply, "peer_subject", (const char *)dn.data);
			gnutls_free(dn.data);
		}
		if (gnutls_x509_crt_get_issuer_dn3(leaf, &dn, 0) == 0) {
			attrs_add(reply, "peer_issuer", (const char *)dn.data);
			gnutls_free(dn.data);
		}
	}
	gnutls_x509_crt_deinit(leaf);
}

void tlsproxy_summary_add(struct tlsproxy_session *s, struct attrs *reply)
{
	char proto[16];
	char sni[256];
	size_t sni_len = sizeof(sni) - 1;
	unsigned int type;
	int bits = cipher_bits(s->tls);

	protocol_name(s->tls, proto, sizeof(proto));
	attrs_add(reply, "protocol", proto);
	attrs_add(reply, "cipher", cipher_name(s->tls));
	attrs_add_long(reply, "cipher_bits", bits);
	attrs_add_long(reply, "cipher_alg_bits", bits);
	summary_add_peer(s->tls, reply);
	if (!s->client_role && gnutls_server_name_get(s->tls, sni, &sni_len,
	    &type, 0) == 0 && type == GNUTLS_NAME_DNS) {
		sni[sni_len] = '\0';
		attrs_add(reply, "sni", sni);
	} else if (s->client_role) {
		attrs_add(reply, "sni", s->server_name);
	}
	attrs_add(reply, "resumed", gnutls_session_is_resumed(s->tls) ? "yes" : "no");
}
