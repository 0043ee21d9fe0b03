/*
 * Server role: certificates and keys, SNI, session tickets and the
 * optional client certificate request.
 *
 * Identities come from smtpd_tls_chain_files (each private key followed
 * by its certificate chain), or from smtpd_tls_key_file with
 * smtpd_tls_cert_file and smtpd_tls_eckey_file with smtpd_tls_eccert_file.
 * An RSA and an ECDSA identity in one credential set let GnuTLS pick the
 * one the client's signature algorithms allow. tls_server_sni_maps maps
 * a server name to a list of chain files, loaded at start because the
 * key files are readable by root only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "maps.h"
#include "sbuf.h"
#include "tls_check.h"
#include "tls_pem.h"
#include "tlsproxy.h"

struct sni_entry {
	char *name;                   /* lowercase; ".example.com" for parents */
	gnutls_certificate_credentials_t cred;
};

static gnutls_certificate_credentials_t server_cred;
static gnutls_priority_t server_priority;
static gnutls_datum_t ticket_key;
static struct sni_entry *sni_entries;
static size_t sni_count;
static int ask_ccert;
static int have_ca;
static long ticket_lifetime;

int tlsproxy_server_ready(void)
{
	return server_cred != NULL;
}

/* Builds a credential set from key and chain files. Returns NULL with a
 * logged error. */
static gnutls_certificate_credentials_t cred_load(char *const *files,
    size_t nfiles, const char *what)
{
	gnutls_certificate_credentials_t cred;
	struct tls_identity *ids = NULL;
	char *err = NULL;
	int n = tls_pem_load(files, nfiles, &ids, &err);

	if (n < 0) {
		log_error("%s: %s", what, err);
		free(err);
		return NULL;
	}
	gnutls_certificate_allocate_credentials(&cred);
	for (int i = 0; i < n; i++) {
		gnutls_datum_t certs = {(unsigned char *)ids[i].certs_pem,
		    (unsigned int)strlen(ids[i].certs_pem)};
		gnutls_datum_t key = {(unsigned char *)ids[i].key_pem,
		    (unsigned int)strlen(ids[i].key_pem)};
		int rc = gnutls_certificate_set_x509_key_mem2(cred, &certs, &key,
		    GNUTLS_X509_FMT_PEM, NULL, 0);

		if (rc < 0) {
			log_error("%s: key %d of %s: %s", what, i + 1,
			    ids[i].origin, gnutls_strerror(rc));
			gnutls_certificate_free_credentials(cred);
			tls_identities_free(&ids, (size_t)n);
			return NULL;
		}
	}
	tls_identities_free(&ids, (size_t)n);

	const char *ca = config_str("smtpd_tls_CAfile");
	if (ca[0] != '\0') {
		int rc = gnutls_certificate_set_x509_trust_file(cred, ca,
		    GNUTLS_X509_FMT_PEM);

		if (rc < 0)
			log_error("smtpd_tls_CAfile %s: %s", ca, gnutls_strerror(rc));
		else
			have_ca = 1;
	}
	return cred;
}

static struct maplist *sni_maps;

static void sni_add(const char *key, void *arg)
{
	char *value = NULL, *err = NULL;
	char lower[256];
	size_t nfiles = 0;
	char **files;
	gnutls_certificate_credentials_t cred;

	(void)arg;
	snprintf(lower, sizeof(lower), "%s", key);
	str_lower(lower);
	if (maplist_lookup(sni_maps, lower, &value, &err) != 1) {
		log_error("tls_server_sni_maps: lookup of %s failed: %s", lower,
		    err ? err : "not found");
		free(err);
		return;
	}
	files = str_split(value, ", \t", &nfiles);
	cred = cred_load(files, nfiles, "tls_server_sni_maps");
	free(files);
	free(value);
	if (cred == NULL)
		return;
	sni_entries = xrealloc(sni_entries, (sni_count + 1) * sizeof(*sni_entries));
	sni_entries[sni_count].name = xstrdup(lower);
	sni_entries[sni_count].cred = cred;
	sni_count++;
}

static void sni_init(void)
{
	const char *spec = config_str("tls_server_sni_maps");
	char *err = NULL;

	if (spec[0] == '\0')
		return;
	sni_maps = maplist_open(spec, &err);
	if (sni_maps == NULL) {
		log_error("tls_server_sni_maps: %s", err ? err : "cannot open");
		free(err);
		return;
	}
	/* Keys of the tables that can list them are loaded anyway. */
	if (tls_sni_keys(spec, sni_add, NULL, &err) < 0) {
		log_error("tls_server_sni_maps: %s", err);
		free(err);
	}
	maplist_close(&sni_maps);
	log_info("tls_server_sni_maps: %zu server names loaded", sni_count);
}

static void priority_init(void)
{
	const char *fixed = config_str("tls_priority");
	char *text = NULL, *err = NULL;
	const char *where = NULL;
	int rc;

	if (fixed[0] != '\0')
		text = xstrdup(fixed);
	else
		text = tlsproxy_priority_build(config_str("smtpd_tls_protocols"),
		    config_str("smtpd_tls_ciphers"), &err);
	if (text == NULL)
		log_fatal("smtpd_tls_protocols or smtpd_tls_ciphers: %s", err);
	rc = gnutls_priority_init(&server_priority, text, &where);
	if (rc < 0)
		log_fatal("invalid TLS priority string \"%s\" near \"%s\": %s",
		    text, where ? where : "", gnutls_strerror(rc));
	log_info("server TLS priority: %s", text);
	free(text);
}

void tlsproxy_server_init(void)
{
	size_t nfiles = 0;
	char **files = tls_server_identity_files(&nfiles);

	priority_init();
	ask_ccert = config_bool("smtpd_tls_ask_ccert");
	ticket_lifetime = config_time("smtpd_tls_session_cache_timeout");
	if (nfiles > 0) {
		server_cred = cred_load(files, nfiles, "server certificate");
		if (server_cred == NULL)
			log_error("the server role is disabled until the "
			    "certificate files are fixed");
	}
	free(files);
	sni_init();

	/* GnuTLS derives the ticket encryption keys from this key and
	 * rotates them on a schedule tied to the ticket lifetime
	 * (gnutls_db_set_cache_expiration), so old tickets expire without a
	 * restart. A new process generation, as on reload, gets a new key. */
	if (gnutls_session_ticket_key_generate(&ticket_key) < 0)
		log_fatal("cannot generate the session ticket key");
}

/* Picks the credentials for the name the client sent, if SNI entries
 * exist: the exact name, then each parent domain as ".example.com". */
static int sni_select(gnutls_session_t tls)
{
	char name[256];
	size_t len = sizeof(name) - 1;
	unsigned int type;

	if (gnutls_server_name_get(tls, name, &len, &type, 0) < 0 ||
	    type != GNUTLS_NAME_DNS)
		return 0;
	name[len] = '\0';
	str_lower(name);
	/* "mail.example.com", then ".example.com", then ".com". */
	for (const char *n = name; n != NULL && n[0] != '\0';
	    n = strchr(n + 1, '.')) {
		for (size_t i = 0; i < sni_count; i++) {
			if (strcmp(sni_entries[i].name, n) == 0) {
				gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE,
				    sni_entries[i].cred);
				return 0;
			}
		}
	}
	return 0;
}

static int post_client_hello_cb(gnutls_session_t tls)
{
	return sni_select(tls);
}

int tlsproxy_server_session(struct tlsproxy_session *s, const char **reason_out)
{
	const char *ask = attrs_get(s->request, "ask_ccert");
	int rc;

	if (server_cred == NULL) {
		*reason_out = "no usable server certificate is configured in tlsproxy";
		return -1;
	}
	rc = gnutls_init(&s->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK);
	if (rc < 0) {
		*reason_out = gnutls_strerror(rc);
		return -1;
	}
	gnutls_session_set_ptr(s->tls, s);
	gnutls_priority_set(s->tls, server_priority);
	gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, server_cred);
	gnutls_session_ticket_enable_server(s->tls, &ticket_key);
	gnutls_db_set_cache_expiration(s->tls, (int)ticket_lifetime);
	if (sni_count > 0)
		gnutls_handshake_set_post_client_hello_function(s->tls,
		    post_client_hello_cb);
	if (ask != NULL ? strcmp(ask, "yes") == 0 : ask_ccert)
		gnutls_certificate_server_set_request(s->tls, GNUTLS_CERT_REQUEST);
	return 0;
}

int tlsproxy_server_verify_peer(struct tlsproxy_session *s, char *verify_error,
    size_t size)
{
	unsigned int list_size = 0;
	unsigned int status = 0;
	gnutls_datum_t text;

	if (gnutls_certificate_get_peers(s->tls, &list_size) == NULL ||
	    list_size == 0) {
		snprintf(verify_error, size, "no client certificate");
		return -1;
	}
	if (!have_ca) {
		snprintf(verify_error, size, "no smtpd_tls_CAfile to verify "
		    "client certificates against");
		return -1;
	}
	if (gnutls_certificate_verify_peers2(s->tls, &status) < 0 || status != 0) {
		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &text, 0) == 0) {
			snprintf(verify_error, size, "%s", text.data);
			gnutls_free(text.data);
		} else {
			snprintf(verify_error, size, "verification failed");
		}
		return -1;
	}
	return 0;
}
