/*
 * tls_check - key, chain, trust, expiry and name checks of the server
 * certificates.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "config.h"
#include "maps.h"
#include "sbuf.h"
#include "tls_check.h"
#include "tls_pem.h"

/* At most this many certificates in one chain are checked. */
#define CHAIN_MAX 16

struct check_ctx {
	tls_check_report_fn *report;
	void *arg;
	const char *origin;
	int problems;
};

static void finding(struct check_ctx *c, enum tls_check_severity severity,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void finding(struct check_ctx *c, enum tls_check_severity severity,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (severity != TLS_CHECK_OK)
		c->problems++;
	c->report(severity, c->origin, msg, c->arg);
}

static void check_key(struct check_ctx *c, const char *key_pem,
    gnutls_x509_crt_t leaf)
{
	gnutls_datum_t data = {(unsigned char *)key_pem, (unsigned int)strlen(key_pem)};
	gnutls_x509_privkey_t key;
	unsigned char key_id[64], crt_id[64];
	size_t key_len = sizeof(key_id), crt_len = sizeof(crt_id);

	gnutls_x509_privkey_init(&key);
	if (gnutls_x509_privkey_import2(key, &data, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		finding(c, TLS_CHECK_ERROR, "the private key cannot be parsed");
	} else if (gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256,
	    key_id, &key_len) < 0 ||
	    gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, crt_id,
	    &crt_len) < 0 || key_len != crt_len ||
	    memcmp(key_id, crt_id, key_len) != 0) {
		finding(c, TLS_CHECK_ERROR, "the private key does not match the "
		    "first certificate (the leaf)");
	} else {
		finding(c, TLS_CHECK_OK, "the private key matches the leaf");
	}
	gnutls_x509_privkey_deinit(key);
}

static void check_order(struct check_ctx *c, gnutls_x509_crt_t *certs,
    unsigned int n)
{
	int ordered = 1;

	for (unsigned int i = 0; i + 1 < n; i++) {
		if (!gnutls_x509_crt_check_issuer(certs[i], certs[i + 1])) {
			finding(c, TLS_CHECK_ERROR, "certificate %u is not issued "
			    "by certificate %u: put the leaf first, then each "
			    "issuer in order", i + 1, i + 2);
			ordered = 0;
		}
	}
	if (ordered)
		finding(c, TLS_CHECK_OK, "the chain of %u certificates is in order", n);
}

static void check_trust(struct check_ctx *c, gnutls_x509_crt_t *certs,
    unsigned int n)
{
	const char *ca = config_str("smtpd_tls_CAfile");
	gnutls_x509_trust_list_t list;
	unsigned int status = 0;
	gnutls_datum_t text;

	gnutls_x509_trust_list_init(&list, 0);
	gnutls_x509_trust_list_add_system_trust(list, 0, 0);
	if (ca[0] != '\0' && gnutls_x509_trust_list_add_trust_file(list, ca,
	    NULL, GNUTLS_X509_FMT_PEM, 0, 0) <= 0)
		finding(c, TLS_CHECK_ERROR, "smtpd_tls_CAfile %s holds no usable "
		    "certificate", ca);
	if (gnutls_x509_trust_list_verify_crt(list, certs, n, 0, &status, NULL) < 0 ||
	    status != 0) {
		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &text, 0) == 0) {
			finding(c, TLS_CHECK_ERROR, "the chain does not verify up to "
			    "a trusted root (%s); a missing intermediate "
			    "certificate is the usual cause", text.data);
			gnutls_free(text.data);
		} else {
			finding(c, TLS_CHECK_ERROR, "the chain does not verify");
		}
	} else {
		finding(c, TLS_CHECK_OK, "the chain verifies up to a trusted root");
	}
	gnutls_x509_trust_list_deinit(list, 1);
}

static void check_expiry(struct check_ctx *c, gnutls_x509_crt_t *certs,
    unsigned int n)
{
	long warn_days = config_int("tls_expiry_warning_days");
	time_t now = time(NULL);

	for (unsigned int i = 0; i < n; i++) {
		time_t end = gnutls_x509_crt_get_expiration_time(certs[i]);
		time_t start = gnutls_x509_crt_get_activation_time(certs[i]);
		long days = (long)((end - now) / 86400);
		const char *which = i == 0 ? "the leaf" : "an intermediate";

		if (end < now)
			finding(c, TLS_CHECK_ERROR, "certificate %u (%s) expired %ld "
			    "days ago", i + 1, which, -days);
		else if (start > now)
			finding(c, TLS_CHECK_ERROR, "certificate %u (%s) is not valid "
			    "yet", i + 1, which);
		else if (days < warn_days)
			finding(c, TLS_CHECK_WARNING, "certificate %u (%s) expires in "
			    "%ld days", i + 1, which, days);
		else if (i == 0)
			finding(c, TLS_CHECK_OK, "the leaf expires in %ld days", days);
	}
}

/* what: "myhostname" or "the SNI name"; host: the name to cover. */
static void check_names(struct check_ctx *c, gnutls_x509_crt_t leaf,
    const char *what, const char *host)
{
	char sample[300];

	/* A key ".example.com" stands for every name below example.com; a
	 * name one label below it shows whether a wildcard covers them. */
	if (host[0] == '.') {
		snprintf(sample, sizeof(sample), "mail%s", host);
		host = sample;
	}
	if (gnutls_x509_crt_check_hostname2(leaf, host, 0))
		finding(c, TLS_CHECK_OK, "the leaf names cover %s %s", what, host);
	else
		finding(c, TLS_CHECK_ERROR, "the leaf names do not cover "
		    "%s %s", what, host);
}

static void check_identity(struct check_ctx *c, const struct tls_identity *id,
    const char *what, const char *host)
{
	gnutls_datum_t data = {(unsigned char *)id->certs_pem,
	    (unsigned int)strlen(id->certs_pem)};
	gnutls_x509_crt_t certs[CHAIN_MAX];
	unsigned int n = CHAIN_MAX;

	if (gnutls_x509_crt_list_import(certs, &n, &data, GNUTLS_X509_FMT_PEM,
	    0) < 0) {
		finding(c, TLS_CHECK_ERROR, "the certificates cannot be parsed "
		    "(or there are more than %d)", CHAIN_MAX);
		return;
	}
	check_key(c, id->key_pem, certs[0]);
	check_order(c, certs, n);
	check_trust(c, certs, n);
	check_expiry(c, certs, n);
	check_names(c, certs[0], what, host);
	for (unsigned int i = 0; i < n; i++)
		gnutls_x509_crt_deinit(certs[i]);
}

char **tls_server_identity_files(size_t *count_out)
{
	const char *chain = config_str("smtpd_tls_chain_files");
	const char *pairs[2][2] = {
		{config_str("smtpd_tls_key_file"), config_str("smtpd_tls_cert_file")},
		{config_str("smtpd_tls_eckey_file"), config_str("smtpd_tls_eccert_file")},
	};
	struct sbuf list;
	char **files;

	if (chain[0] != '\0')
		return str_split(chain, ", \t", count_out);
	sbuf_init(&list, 8192);
	for (int i = 0; i < 2; i++) {
		if (pairs[i][1][0] == '\0')
			continue;
		/* A file that holds both key and chain is read once. */
		if (pairs[i][0][0] != '\0' && strcmp(pairs[i][0], pairs[i][1]) != 0)
			sbuf_printf(&list, "%s\n", pairs[i][0]);
		sbuf_printf(&list, "%s\n", pairs[i][1]);
	}
	files = str_split(sbuf_cstr(&list), "\n", count_out);
	sbuf_free(&list);
	return files;
}

/* Calls fn for each key of an inline:{...} table. */
static void inline_keys(const char *spec, void (*fn)(const char *, void *),
    void *arg)
{
	const char *p = strchr(spec, '{');
	const char *end = strrchr(spec, '}');

	if (p == NULL || end == NULL || end < p)
		return;
	p++;
	while (p < end) {
		while (p < end && (*p == ',' || isspace((unsigned char)*p)))
			p++;
		const char *k = p;
		while (p < end && *p != '=' && *p != ',' && !isspace((unsigned char)*p))
			p++;
		if (p > k) {
			char *key = xstrndup(k, (size_t)(p - k));
			fn(key, arg);
			free(key);
		}
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p < end && *p == '=')
			p++;
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p < end && *p == '{') {
			const char *close = memchr(p, '}', (size_t)(end - p));
			p = close ? close + 1 : end;
		} else {
			while (p < end && *p != ',' && !isspace((unsigned char)*p))
				p++;
		}
	}
}

/* Calls fn for the first field of each entry of a hash: or btree:
 * source file. Returns -1 when the file cannot be opened. */
static int source_keys(const char *path, void (*fn)(const char *, void *),
    void *arg)
{
	FILE *f = fopen(path, "r");
	char line[4096];

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || isspace((unsigned char)line[0]))
			continue;
		char *e = line + strcspn(line, " \t\r\n");
		if (e > line && e[-1] == ':')
			e--;
		*e = '\0';
		if (line[0] != '\0')
			fn(line, arg);
	}
	fclose(f);
	return 0;
}

int tls_sni_keys(const char *spec, void (*fn)(const char *key, void *arg),
    void *arg, char **err_out)
{
	size_t count = 0;
	char **specs = map_split_list(spec, &count, err_out);
	int rc = 0;

	if (specs == NULL)
		return -1;
	for (size_t i = 0; i < count; i++) {
		const char *path = NULL;

		if (strncmp(specs[i], "inline:", 7) == 0) {
			inline_keys(specs[i], fn, arg);
			continue;
		}
		if (strncmp(specs[i], "hash:", 5) == 0)
			path = specs[i] + 5;
		else if (strncmp(specs[i], "btree:", 6) == 0)
			path = specs[i] + 6;
		if (path != NULL && source_keys(path, fn, arg) == 0)
			continue;
		if (rc == 0 && path != NULL)
			*err_out = xasprintf("cannot open %s, the source file of "
			    "the table: %s", path, strerror(errno));
		else if (rc == 0)
			*err_out = xasprintf("%s is not supported: use inline:, "
			    "hash: or btree:, whose keys can be listed", specs[i]);
		rc = -1;
	}
	free(specs);
	return rc;
}

struct sni_check {
	struct check_ctx *c;
	struct maplist *maps;
};

/* Checks the chain files that tls_server_sni_maps gives for key. */
static void check_sni_key(const char *key, void *arg)
{
	struct sni_check *sc = arg;
	struct check_ctx *c = sc->c;
	struct tls_identity *ids = NULL;
	char *value = NULL, *err = NULL;
	char origin[512];
	size_t nfiles = 0;
	char **files;
	int n;

	char lower[256];

	/* tlsproxy looks up the lowercase name, as a client sends it. */
	snprintf(lower, sizeof(lower), "%s", key);
	str_lower(lower);
	key = lower;
	snprintf(origin, sizeof(origin), "tls_server_sni_maps %s", key);
	c->origin = origin;
	if (maplist_lookup(sc->maps, key, &value, &err) != 1) {
		finding(c, TLS_CHECK_ERROR, "lookup failed: %s",
		    err ? err : "not found");
		free(err);
		return;
	}
	files = str_split(value, ", \t", &nfiles);
	n = tls_pem_load(files, nfiles, &ids, &err);
	free(files);
	free(value);
	if (n < 0) {
		finding(c, TLS_CHECK_ERROR, "%s", err);
		free(err);
		return;
	}
	for (int i = 0; i < n; i++) {
		snprintf(origin, sizeof(origin), "tls_server_sni_maps %s: %s: key %d",
		    key, ids[i].origin, i + 1);
		check_identity(c, &ids[i], "the SNI name", key);
	}
	tls_identities_free(&ids, (size_t)n);
}

static void check_sni(struct check_ctx *c)
{
	const char *spec = config_str("tls_server_sni_maps");
	struct sni_check sc = {c, NULL};
	char *err = NULL;

	if (spec[0] == '\0')
		return;
	sc.maps = maplist_open(spec, &err);
	if (sc.maps == NULL) {
		finding(c, TLS_CHECK_ERROR, "tls_server_sni_maps: %s",
		    err ? err : "cannot open");
		free(err);
		return;
	}
	if (tls_sni_keys(spec, check_sni_key, &sc, &err) < 0) {
		c->origin = "configuration";
		finding(c, TLS_CHECK_ERROR, "tls_server_sni_maps: %s", err);
		free(err);
	}
	maplist_close(&sc.maps);
}

int tls_check_run(tls_check_report_fn *report, void *arg)
{
	struct check_ctx c = {report, arg, "configuration", 0};
	struct tls_identity *ids = NULL;
	size_t nfiles = 0;
	char **files = tls_server_identity_files(&nfiles);
	char *err = NULL;
	int n;

	if (nfiles == 0) {
		const char *level = config_str("smtpd_tls_security_level");

		free(files);
		if (strcmp(level, "none") == 0 || level[0] == '\0') {
			finding(&c, TLS_CHECK_OK, "no server certificate is "
			    "configured and smtpd_tls_security_level is none");
			return 0;
		}
		finding(&c, TLS_CHECK_ERROR, "smtpd_tls_security_level is %s but "
		    "no certificate is configured: set smtpd_tls_chain_files",
		    level);
		return c.problems;
	}
	n = tls_pem_load(files, nfiles, &ids, &err);
	free(files);
	if (n < 0) {
		finding(&c, TLS_CHECK_ERROR, "%s", err);
		free(err);
		return c.problems;
	}
	for (int i = 0; i < n; i++) {
		char origin[512];

		snprintf(origin, sizeof(origin), "%s: key %d", ids[i].origin, i + 1);
		c.origin = origin;
		check_identity(&c, &ids[i], "myhostname", config_str("myhostname"));
	}
	tls_identities_free(&ids, (size_t)n);
	c.origin = "configuration";
	check_sni(&c);
	return c.problems;
}
