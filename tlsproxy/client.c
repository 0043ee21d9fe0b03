/*
 * Client role, for the smtp agent: security levels may, encrypt and
 * verify, trust anchors, SNI and the host name check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <gnutls/x509.h>

#include "config.h"
#include "log.h"
#include "mastercf.h"
#include "sbuf.h"
#include "service.h"
#include "tlsproxy.h"
#include "tlsproxy_client.h"

/* Credential sets by CA file. tlsproxy_client_init() loads the files
 * that the configuration names before the chroot. Other files load on
 * first use, which works only without a chroot. */
#define CLIENT_CRED_MAX 16
/* Preloaded entries stay for the process's life; the rest of the table
 * is a cache of on-demand entries that drops its oldest when full. */
#define CLIENT_CRED_PRELOAD_MAX (CLIENT_CRED_MAX / 2)

struct client_cred {
	char *ca_file;                /* "" for the system store */
	gnutls_certificate_credentials_t cred;   /* NULL when loading failed */
	char *error;                  /* the reason loading failed, or NULL */
	int preloaded;
};

static struct client_cred client_creds[CLIENT_CRED_MAX];
static size_t client_cred_count;

/* Loads ca_file, or the system store for "". Returns the credentials, or
 * NULL with a malloc'd reason in *error_out. */
static gnutls_certificate_credentials_t client_cred_load(const char *ca_file,
    char **error_out)
{
	gnutls_certificate_credentials_t cred;
	int rc;

	rc = gnutls_certificate_allocate_credentials(&cred);
	if (rc < 0) {
		*error_out = xasprintf("cannot allocate credentials: %s",
		    gnutls_strerror(rc));
		return NULL;
	}
	if (ca_file[0] != '\0')
		rc = gnutls_certificate_set_x509_trust_file(cred, ca_file,
		    GNUTLS_X509_FMT_PEM);
	else
		rc = gnutls_certificate_set_x509_system_trust(cred);
	if (rc <= 0) {
		*error_out = xasprintf("cannot load trust anchors from %s: %s",
		    ca_file[0] ? ca_file : "the system store",
		    rc < 0 ? gnutls_strerror(rc) : "no certificates found");
		gnutls_certificate_free_credentials(cred);
		return NULL;
	}
	return cred;
}

static struct client_cred *client_cred_find(const char *ca_file)
{
	for (size_t i = 0; i < client_cred_count; i++)
		if (strcmp(client_creds[i].ca_file, ca_file) == 0)
			return &client_creds[i];
	return NULL;
}

/* Makes room for one on-demand entry by dropping the oldest one. Its
 * credentials are never freed, because live sessions may still use
 * them. */
static void client_cred_evict(void)
{
	size_t i = 0;

	while (i < client_cred_count && client_creds[i].preloaded)
		i++;
	if (i == client_cred_count)
		return;
	log_warn("more than %d distinct CA files in use; dropping %s from "
	    "the cache", CLIENT_CRED_MAX, client_creds[i].ca_file);
	free(client_creds[i].ca_file);
	free(client_creds[i].error);
	client_cred_count--;
	memmove(&client_creds[i], &client_creds[i + 1],
	    (client_cred_count - i) * sizeof(client_creds[0]));
}

/* Stores a loaded ca_file, or its loading error, in the table. */
static void client_cred_store(const char *ca_file,
    gnutls_certificate_credentials_t cred, char *error, int preloaded)
{
	struct client_cred *c;

	if (client_cred_count == CLIENT_CRED_MAX)
		client_cred_evict();
	c = &client_creds[client_cred_count++];
	c->ca_file = xstrdup(ca_file);
	c->cred = cred;
	c->error = error;
	c->preloaded = preloaded;
}

/* Loads ca_file at start and logs a failure. Requests that need the file
 * get the same reason later. */
static void client_cred_preload(const char *ca_file, const char *origin)
{
	gnutls_certificate_credentials_t cred;
	char *error = NULL;

	if (client_cred_find(ca_file) != NULL)
		return;
	if (client_cred_count == CLIENT_CRED_PRELOAD_MAX) {
		log_warn("%s: more than %d CA files to load at start; %s loads "
		    "on first use, which fails in a chroot", origin,
		    CLIENT_CRED_PRELOAD_MAX, ca_file);
		return;
	}
	cred = client_cred_load(ca_file, &error);
	if (cred == NULL)
		log_warn("%s: %s", origin, error);
	client_cred_store(ca_file, cred, error, 1);
}

/* Preloads the smtp_tls_CAfile values that master.cf gives smtp
 * services with -o, because an agent sends its own value with each
 * request. */
static void client_cred_preload_mastercf(void)
{
	struct mastercf_entry *entries = NULL;
	size_t count = 0;
	char *path = xasprintf("%s/master.cf", config_dir());
	char *err = NULL;
	const char *prefix = "smtp_tls_CAfile=";

	if (mastercf_load(path, &entries, &count, &err) < 0) {
		log_warn("cannot read CA files named in master.cf: %s", err);
		free(err);
		free(path);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < entries[i].noverrides; j++) {
			const char *o = entries[i].overrides[j];
			char *ca_file, *origin;

			if (strncmp(o, prefix, strlen(prefix)) != 0 ||
			    o[strlen(prefix)] == '\0')
				continue;
			ca_file = config_expand(o + strlen(prefix));
			origin = xasprintf("%s line %d: smtp_tls_CAfile", path,
			    entries[i].line);
			if (ca_file[0] != '\0')
				client_cred_preload(ca_file, origin);
			free(origin);
			free(ca_file);
		}
	}
	mastercf_free(&entries, count);
	free(path);
}

void tlsproxy_client_init(void)
{
	const char *level = config_str("smtp_tls_security_level");

	if (level[0] != '\0' && tls_level_parse(level) < 0)
		log_warn("invalid smtp_tls_security_level \"%s\": requests "
		    "without a security_level will fail", level);
	/* smtp_tls_policy_maps cannot name a CA file (tls_policy_parse()
	 * rejects tafile), so these are all the files a request can name
	 * unless an agent's configuration changes without a reload. */
	client_cred_preload(config_str("smtp_tls_CAfile"), "client role");
	client_cred_preload_mastercf();
}

/* Returns the credentials for ca_file. Without a chroot, a file that
 * tlsproxy_client_init() did not load, or failed to load, is loaded now.
 * Such a failure is not cached, so a fixed file works at once. */
static gnutls_certificate_credentials_t client_cred_get(const char *ca_file,
    char *reason, size_t size)
{
	struct client_cred *c = client_cred_find(ca_file);
	gnutls_certificate_credentials_t cred;
	char *error = NULL;

	if (c != NULL && c->cred != NULL)
		return c->cred;
	if (service_chrooted()) {
		if (c != NULL)
			snprintf(reason, size, "%s", c->error);
		else
			snprintf(reason, size, "cannot load trust anchors from "
			    "%s: not loaded at start and outside the chroot",
			    ca_file[0] ? ca_file : "the system store");
		return NULL;
	}
	cred = client_cred_load(ca_file, &error);
	if (cred == NULL) {
		snprintf(reason, size, "%s", error);
		free(error);
		return NULL;
	}
	if (c != NULL) {
		free(c->error);
		c->error = NULL;
		c->cred = cred;
	} else {
		client_cred_store(ca_file, cred, NULL, 0);
	}
	return cred;
}

static const char *request_or_config(struct tlsproxy_session *s,
    const char *attr, const char *param)
{
	const char *v = attrs_get(s->request, attr);

	return v != NULL && v[0] != '\0' ? v : config_str(param);
}

static int is_ip_literal(const char *name)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

static int client_priority(struct tlsproxy_session *s, char *reason,
    size_t size)
{
	const char *fixed = config_str("tls_priority");
	const char *where = NULL;
	char *text, *err = NULL;
	int rc;

	if (fixed[0] != '\0')
		text = xstrdup(fixed);
	else
		text = tlsproxy_priority_build(
		    request_or_config(s, "protocols", "smtp_tls_protocols"),
		    request_or_config(s, "ciphers", "smtp_tls_ciphers"), &err);
	if (text == NULL) {
		snprintf(reason, size, "%s", err);
		free(err);
		return -1;
	}
	rc = gnutls_priority_set_direct(s->tls, text, &where);
	if (rc < 0)
		snprintf(reason, size, "invalid TLS priority \"%s\": %s", text,
		    gnutls_strerror(rc));
	free(text);
	return rc < 0 ? -1 : 0;
}

int tlsproxy_client_session(struct tlsproxy_session *s, char *reason,
    size_t size)
{
	const char *level = request_or_config(s, "security_level",
	    "smtp_tls_security_level");
	const char *name = attrs_get(s->request, "server_name");
	const char *match = attrs_get(s->request, "match");
	const char *ca = request_or_config(s, "ca_file", "smtp_tls_CAfile");
	gnutls_certificate_credentials_t cred;

	s->level = tls_level_parse(level);
	if (s->level <= TLS_LEVEL_NONE) {
		snprintf(reason, size, "invalid request: security level \"%s\" "
		    "does not use TLS", level);
		return -1;
	}
	snprintf(s->server_name, sizeof(s->server_name), "%s", name ? name : "");
	s->match = xstrdup(match && match[0] ? match : s->server_name);
	if (s->level == TLS_LEVEL_VERIFY && s->match[0] == '\0') {
		snprintf(reason, size, "invalid request: level verify needs "
		    "server_name or match");
		return -1;
	}
	cred = client_cred_get(ca, reason, size);
	if (cred == NULL)
		return -1;
	if (gnutls_init(&s->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0) {
		snprintf(reason, size, "cannot create a TLS session");
		return -1;
	}
	gnutls_session_set_ptr(s->tls, s);
	if (client_priority(s, reason, size) < 0)
		return -1;
	gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, cred);
	/* RFC 6066 section 3: SNI carries host names, never addresses. */
	if (s->server_name[0] != '\0' && !is_ip_literal(s->server_name))
		gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, s->server_name,
		    strlen(s->server_name));
	return 0;
}

/* Checks the leaf against the ':'-separated names. Returns 1 on a match. */
static int client_name_matches(struct tlsproxy_session *s)
{
	const gnutls_datum_t *certs;
	unsigned int count = 0;
	gnutls_x509_crt_t leaf;
	int found = 0;

	certs = gnutls_certificate_get_peers(s->tls, &count);
	if (certs == NULL || count == 0 || gnutls_x509_crt_init(&leaf) < 0)
		return 0;
	if (gnutls_x509_crt_import(leaf, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
		size_t n = 0;
		char **names = str_split(s->match, ":", &n);

		for (size_t i = 0; i < n && !found; i++)
			found = gnutls_x509_crt_check_hostname2(leaf, names[i], 0) != 0;
		free(names);
	}
	gnutls_x509_crt_deinit(leaf);
	return found;
}

int tlsproxy_client_verify(struct tlsproxy_session *s, int *verified_out,
    char *verify_error, size_t size)
{
	unsigned int status = 0;
	gnutls_datum_t text;

	*verified_out = 0;
	if (gnutls_certificate_verify_peers2(s->tls, &status) < 0 || status != 0) {
		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &text, 0) == 0) {
			snprintf(verify_error, size, "%s", text.data);
			gnutls_free(text.data);
		} else {
			snprintf(verify_error, size, "no certificate or chain error");
		}
	} else if (s->match[0] == '\0' || !client_name_matches(s)) {
		snprintf(verify_error, size, "the certificate does not match %s",
		    s->match[0] ? s->match : "any requested name");
	} else {
		*verified_out = 1;
	}
	return s->level == TLS_LEVEL_VERIFY && !*verified_out ? -1 : 0;
}
