/*
 * SMTP AUTH towards the next hop (RFC 4954) with libsasl2's client side.
 *
 * With smtp_sasl_auth_enable = yes the agent looks the next hop up in
 * smtp_sasl_password_maps ("[host]:port", then "[host]", then "host"; the
 * value is "user:password") and, when the server offers AUTH, logs in
 * with a mechanism both sides support (smtp_sasl_mechanism_filter, when
 * set, limits the choice). smtp_sasl_tls_only = yes (the default) sends
 * credentials only over TLS. Passwords and AUTH payloads are never
 * logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "config.h"
#include "deliver.h"
#include "log.h"
#include "maps.h"
#include "sbuf.h"
#include "smtp.h"

/* RFC 4954 4: an AUTH command line may be 12288 octets. */
#define AUTH_LINE_MAX 12288

static struct {
	int loaded;
	int enable;
	int tls_only;
	struct maplist *passwords;
	char *filter;
	int sasl_ready;
} auth_conf;

struct auth_credentials {
	char *user;
	char *password;
	sasl_secret_t *secret;
};

static void auth_conf_load(void)
{
	char *err = NULL;

	if (auth_conf.loaded)
		return;
	auth_conf.loaded = 1;
	auth_conf.enable = config_bool("smtp_sasl_auth_enable");
	auth_conf.tls_only = config_bool("smtp_sasl_tls_only");
	auth_conf.filter = xstrdup(config_str("smtp_sasl_mechanism_filter"));
	if (!auth_conf.enable)
		return;
	auth_conf.passwords = maplist_open(
	    config_str("smtp_sasl_password_maps"), &err);
	if (auth_conf.passwords == NULL) {
		log_error("cannot open smtp_sasl_password_maps: %s; AUTH is "
		    "off", err);
		free(err);
		auth_conf.enable = 0;
		return;
	}
	if (sasl_client_init(NULL) != SASL_OK) {
		log_error("cannot initialize the SASL client library; AUTH "
		    "is off");
		auth_conf.enable = 0;
		return;
	}
	auth_conf.sasl_ready = 1;
}

/* Looks up "user:password" for the next hop. Returns 1 with creds
 * filled, 0 when no entry exists, -1 on a table error. */
static int auth_lookup(const struct smtp_conn *c,
    struct auth_credentials *creds)
{
	char *keys[4];
	char *value = NULL, *err = NULL, *colon;
	int r = 0;

	keys[0] = xasprintf("[%s]:%s", c->host, c->port);
	keys[1] = xasprintf("[%s]", c->host);
	keys[2] = xstrdup(c->host);
	keys[3] = NULL;
	for (size_t i = 0; keys[i] && r == 0; i++)
		r = maplist_lookup(auth_conf.passwords, keys[i], &value, &err);
	for (size_t i = 0; keys[i]; i++)
		free(keys[i]);
	if (r < 0) {
		log_warn("smtp_sasl_password_maps lookup for %s failed: %s",
		    c->host, err ? err : "unknown error");
		free(err);
		return -1;
	}
	if (r == 0)
		return 0;
	colon = strchr(value, ':');
	if (colon == NULL) {
		log_warn("smtp_sasl_password_maps entry for %s has no "
		    "\"user:password\" form; not using AUTH", c->host);
		explicit_bzero(value, strlen(value));
		free(value);
		return 0;
	}
	creds->user = xstrndup(value, (size_t)(colon - value));
	creds->password = xstrdup(colon + 1);
	explicit_bzero(value, strlen(value));
	free(value);
	return 1;
}

static void auth_credentials_clear(struct auth_credentials *creds)
{
	if (creds->password) {
		explicit_bzero(creds->password, strlen(creds->password));
		free(creds->password);
	}
	if (creds->secret) {
		explicit_bzero(creds->secret, sizeof(*creds->secret) +
		    creds->secret->len);
		free(creds->secret);
	}
	free(creds->user);
	memset(creds, 0, sizeof(*creds));
}

static int auth_cb_user(void *context, int id, const char **result,
    unsigned *len)
{
	struct auth_credentials *creds = context;

	*result = creds->user;
	if (len)
		*len = (unsigned)strlen(creds->user);
	return SASL_OK;
}

static int auth_cb_pass(sasl_conn_t *conn, void *context, int id,
    sasl_secret_t **psecret)
{
	struct auth_credentials *creds = context;
	size_t len = strlen(creds->password);

	if (creds->secret == NULL) {
		creds->secret = xcalloc(1, sizeof(*creds->secret) + len + 1);
		creds->secret->len = len;
		memcpy(creds->secret->data, creds->password, len);
	}
	*psecret = creds->secret;
	return SASL_OK;
}

/* 1 when word is one of the space-separated words of list. */
static int word_listed(const char *list, const char *word)
{
	size_t n = strlen(word);

	while (list && *list) {
		size_t len = strcspn(list, " ");

		if (len == n && strncasecmp(list, word, n) == 0)
			return 1;
		list += len + (list[len] ? 1 : 0);
	}
	return 0;
}

/* Collects the mechanisms of the "AUTH" line(s) of the EHLO reply that
 * pass smtp_sasl_mechanism_filter. */
static void auth_server_mechanisms(const struct smtp_reply *r,
    struct sbuf *out)
{
	const char *line = r->lines.data ? r->lines.data : "";
	size_t nfilter;
	char **filter = str_split(auth_conf.filter, ", \t", &nfilter);

	for (; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")]
	    ? 1 : 0)) {
		size_t len = strcspn(line, "\n"), n;
		char *copy;
		char **words;

		if (len < 5 || strncasecmp(line, "AUTH", 4) != 0 ||
		    (line[4] != ' ' && line[4] != '='))
			continue;
		copy = xstrndup(line + 5, len - 5);
		words = str_split(copy, " ", &n);
		for (size_t i = 0; i < n; i++) {
			int pass = nfilter == 0;

			for (size_t j = 0; j < nfilter && !pass; j++)
				pass = strcasecmp(words[i], filter[j]) == 0;
			if (pass && strcasecmp(words[i], "NTLM") != 0 &&
			    !word_listed(out->data, words[i]))
				sbuf_printf(out, "%s%s", out->len ? " " : "",
				    words[i]);
		}
		free(words);
		free(copy);
	}
	free(filter);
}

/* Writes line with CRLF and reads the reply. Returns 0 or -1 (I/O). */
static int auth_exchange(struct smtp_agent *agent, struct smtp_conn *c,
    struct sbuf *line, struct smtp_reply *r)
{
	int timeout = agent->timeouts.helo;

	sbuf_append(line, "\r\n", 2);
	smtp_reply_reset(r);
	if (smtp_conn_write(c, line->data, line->len, timeout) < 0)
		return -1;
	return smtp_conn_read_reply(c, r, timeout);
}

/* Base64 of data into line (after what line holds). */
static int auth_encode(struct sbuf *line, const char *data, unsigned len)
{
	char enc[AUTH_LINE_MAX];
	unsigned enc_len = 0;

	if (sasl_encode64(data, len, enc, sizeof(enc), &enc_len) != SASL_OK)
		return -1;
	sbuf_append(line, enc, enc_len);
	explicit_bzero(enc, enc_len);
	return 0;
}

/*
 * Runs the SASL exchange. Returns 1 after 235, 0 with the failure reply
 * in r, -1 after an I/O or SASL library failure (detail in *why).
 */
static int auth_run(struct smtp_agent *agent, struct smtp_conn *c,
    sasl_conn_t *conn, const char *mechs, struct smtp_reply *r,
    const char **why)
{
	const char *out = NULL, *mech = NULL;
	unsigned out_len = 0;
	struct sbuf line;
	char dec[AUTH_LINE_MAX];
	int rc = sasl_client_start(conn, mechs, NULL, &out, &out_len, &mech);
	int result = -1;

	sbuf_init(&line, AUTH_LINE_MAX + 2);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		*why = sasl_errdetail(conn);
		goto done;
	}
	sbuf_printf(&line, "AUTH %s", mech);
	if (out) {
		sbuf_puts(&line, " ");
		if (out_len == 0)
			sbuf_puts(&line, "=");
		else if (auth_encode(&line, out, out_len) < 0)
			goto done;
	}
	for (;;) {
		unsigned dec_len = 0;
		const char *challenge;

		if (auth_exchange(agent, c, &line, r) < 0) {
			*why = "I/O error";
			goto done;
		}
		explicit_bzero(line.data, line.len);
		sbuf_reset(&line);
		if (r->code != 334) {
			result = r->code == 235 ? 1 : 0;
			goto done;
		}
		challenge = r->lines.data ? r->lines.data : "";
		if (sasl_decode64(challenge, (unsigned)strcspn(challenge, "\n"),
		    dec, sizeof(dec), &dec_len) != SASL_OK) {
			*why = "invalid base64 challenge from the server";
			goto done;
		}
		rc = sasl_client_step(conn, dec, dec_len, NULL, &out, &out_len);
		if (rc != SASL_OK && rc != SASL_CONTINUE) {
			*why = sasl_errdetail(conn);
			goto done;
		}
		if (out && out_len && auth_encode(&line, out, out_len) < 0)
			goto done;
	}
done:
	explicit_bzero(dec, sizeof(dec));
	if (line.data)
		explicit_bzero(line.data, line.len);
	sbuf_free(&line);
	return result;
}

/* Defers every recipient without a result after a failed login. */
static void auth_defer(struct smtp_conn *c, struct smtp_request *req,
    const char *text)
{
	char msg[SMTP_REPLY_MAX_TEXT + 300];

	snprintf(msg, sizeof(msg), "SASL authentication failed with %s: %s",
	    c->peer, text);
	log_warn("%s: %s", req->qid, msg);
	smtp_request_fail_rest(req, DELIVER_DEFER, "4.7.0", msg);
}

int smtp_auth_login(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, const struct smtp_reply *ehlo)
{
	struct auth_credentials creds = {0};
	sasl_callback_t callbacks[] = {
		{SASL_CB_USER, (int (*)(void))(void (*)(void))auth_cb_user,
		    &creds},
		{SASL_CB_AUTHNAME, (int (*)(void))(void (*)(void))auth_cb_user,
		    &creds},
		{SASL_CB_PASS, (int (*)(void))(void (*)(void))auth_cb_pass,
		    &creds},
		{SASL_CB_LIST_END, NULL, NULL}
	};
	sasl_security_properties_t props = {.max_ssf = 0,
	    .maxbufsize = 0, .security_flags = SASL_SEC_NOANONYMOUS};
	struct sbuf mechs;
	struct smtp_reply r;
	sasl_conn_t *conn = NULL;
	const char *why = "unknown error";
	int rc, result = -1;

	auth_conf_load();
	if (!auth_conf.enable)
		return 0;
	sbuf_init(&mechs, 4096);
	auth_server_mechanisms(ehlo, &mechs);
	if (mechs.len == 0) {
		sbuf_free(&mechs);
		return 0;
	}
	rc = auth_lookup(c, &creds);
	if (rc <= 0) {
		sbuf_free(&mechs);
		if (rc < 0)
			smtp_request_fail_rest(req, DELIVER_DEFER, "4.3.0",
			    "smtp_sasl_password_maps lookup failed");
		return rc;
	}
	if (auth_conf.tls_only && c->tls[0] == '\0') {
		char key[80];

		/* One warning per delivery would repeat for every message
		 * to a next hop that never offers TLS. */
		snprintf(key, sizeof(key), "smtp-sasl-plaintext %s", c->host);
		if (log_ratelimit(key, 1, 300))
			log_warn("%s: not sending credentials to %s without "
			    "TLS (smtp_sasl_tls_only = yes)", req->qid,
			    c->peer);
		auth_credentials_clear(&creds);
		sbuf_free(&mechs);
		return 0;
	}

	smtp_reply_init(&r);
	if (sasl_client_new("smtp", c->host, NULL, NULL, callbacks, 0,
	    &conn) != SASL_OK) {
		auth_defer(c, req, "cannot create a SASL client context");
		goto done;
	}
	sasl_setprop(conn, SASL_SEC_PROPS, &props);
	rc = auth_run(agent, c, conn, mechs.data, &r, &why);
	if (rc == 1) {
		log_info("%s: authenticated to %s as %s", req->qid, c->peer,
		    creds.user);
		result = 1;
	} else if (rc == 0) {
		auth_defer(c, req, sbuf_cstr(&r.text));
	} else if (c->io_error != SMTP_IO_OK) {
		smtp_fail_io(c, req, "authenticating");
	} else {
		auth_defer(c, req, why);
	}
done:
	if (conn)
		sasl_dispose(&conn);
	smtp_reply_free(&r);
	sbuf_free(&mechs);
	auth_credentials_clear(&creds);
	return result;
}
