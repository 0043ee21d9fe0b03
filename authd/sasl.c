/*
 * libsasl2 server side and the worker pool that runs its blocking calls.
 *
 * authd gives libsasl2 pthread mutexes (sasl_set_mutex) before
 * sasl_server_init, because its default mutex functions do nothing. Each sasl_conn_t is
 * used by one thread at a time: the session hands it from worker to
 * worker, one job at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <sasl/sasl.h>

#include "authd.h"
#include "config.h"
#include "iox.h"
#include "log.h"

static char *authd_sasl_service;
static char *authd_sasl_config_dir;
static char *authd_sasl_hostname;
static char *authd_sasl_realm;
static unsigned authd_sec_flags[2];   /* [encrypted] */
static char authd_mech_list[2][256];  /* [encrypted] */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct authd_session *pool_todo_head, *pool_todo_tail;
static struct authd_session *pool_done_head, *pool_done_tail;
static size_t pool_inflight;  /* main thread only */
static int pool_notify_fd[2] = {-1, -1};
static struct event *pool_done_ev;

static void *authd_mutex_alloc(void)
{
	pthread_mutex_t *m = malloc(sizeof(*m));

	if (m != NULL)
		pthread_mutex_init(m, NULL);
	return m;
}

static int authd_mutex_lock(void *m)
{
	return pthread_mutex_lock(m) == 0 ? SASL_OK : SASL_FAIL;
}

static int authd_mutex_unlock(void *m)
{
	return pthread_mutex_unlock(m) == 0 ? SASL_OK : SASL_FAIL;
}

static void authd_mutex_free(void *m)
{
	pthread_mutex_destroy(m);
	free(m);
}

static int authd_sasl_getconfpath(void *context, char **path)
{
	(void)context;
	*path = authd_sasl_config_dir;
	return SASL_OK;
}

/* libsasl2's own messages. SASL_LOG_PASS and the trace levels can hold
 * protocol data, so they are never logged. */
static int authd_sasl_log(void *context, int level, const char *message)
{
	(void)context;
	if (level == SASL_LOG_ERR)
		log_error("libsasl2: %s", message);
	else if (level == SASL_LOG_WARN)
		log_warn("libsasl2: %s", message);
	else if (level == SASL_LOG_NOTE || level == SASL_LOG_FAIL)
		log_debug("libsasl2: %s", message);
	return SASL_OK;
}

/* Records the user name the client gave, for throttling and the log, and
 * leaves it unchanged. Runs in a worker thread. */
static int authd_sasl_canon_user(sasl_conn_t *conn, void *context,
    const char *in, unsigned inlen, unsigned flags, const char *user_realm,
    char *out, unsigned out_max, unsigned *out_len)
{
	struct authd_session *s = context;

	(void)conn;
	(void)user_realm;
	if (inlen >= out_max)
		return SASL_BUFOVER;
	memcpy(out, in, inlen);
	out[inlen] = '\0';
	*out_len = inlen;
	if (flags & SASL_CU_AUTHID) {
		size_t n = inlen < AUTHD_USER_MAX ? inlen : AUTHD_USER_MAX;

		memcpy(s->job.user, in, n);
		s->job.user[n] = '\0';
	}
	return SASL_OK;
}

static unsigned authd_parse_sec_options(const char *param)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {
		{"noanonymous", SASL_SEC_NOANONYMOUS},
		{"noplaintext", SASL_SEC_NOPLAINTEXT},
		{"noactive", SASL_SEC_NOACTIVE},
		{"nodictionary", SASL_SEC_NODICTIONARY},
		{"forward_secrecy", SASL_SEC_FORWARD_SECRECY},
		{"mutual_auth", SASL_SEC_MUTUAL_AUTH},
	};
	size_t count;
	char **items = config_list(param, &count);
	unsigned flags = 0;

	for (size_t i = 0; i < count; i++) {
		size_t k;

		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strcasecmp(items[i], names[k].name) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0]))
			log_fatal("unknown option \"%s\" in %s: expected noanonymous, "
			    "noplaintext, noactive, nodictionary, forward_secrecy "
			    "or mutual_auth", items[i], param);
		flags |= names[k].flag;
	}
	free(items);
	return flags;
}

/* Creates the libsasl2 connection of a session with its security
 * properties. context (the session) may be NULL for a list query. */
static int authd_sasl_new(struct authd_session *context, int encrypted,
    sasl_conn_t **conn_out)
{
	static sasl_callback_t session_callbacks[] = {
		{SASL_CB_CANON_USER, (int (*)(void))(void (*)(void))authd_sasl_canon_user, NULL},
		{SASL_CB_LIST_END, NULL, NULL},
	};
	sasl_callback_t *callbacks = NULL;
	sasl_security_properties_t props;
	int rc;

	/* libsasl2 keeps the pointer for the life of the connection. */
	if (context != NULL) {
		callbacks = xmalloc(sizeof(session_callbacks));
		memcpy(callbacks, session_callbacks, sizeof(session_callbacks));
		callbacks[0].context = context;
		context->sasl_callbacks = callbacks;
	}
	rc = sasl_server_new(authd_sasl_service, authd_sasl_hostname,
	    authd_sasl_realm, NULL, NULL, callbacks, 0, conn_out);
	if (rc != SASL_OK)
		return rc;
	memset(&props, 0, sizeof(props));
	props.max_ssf = 0;  /* no SASL security layer: TLS does that */
	props.maxbufsize = 0;
	props.security_flags = authd_sec_flags[encrypted ? 1 : 0];
	return sasl_setprop(*conn_out, SASL_SEC_PROPS, &props);
}

/* Fills authd_mech_list[encrypted]: authd_mechanisms, in that order,
 * less what libsasl2 cannot do for that kind of session, and never NTLM
 * (Windows' NTLM is not offered to SMTP clients). */
static void authd_sasl_compute_list(int encrypted, const char *allowed)
{
	sasl_conn_t *conn = NULL;
	const char *have = NULL;
	char *out = authd_mech_list[encrypted];
	size_t count;
	char **names;

	out[0] = '\0';
	if (authd_sasl_new(NULL, encrypted, &conn) != SASL_OK
	    || sasl_listmech(conn, NULL, "", " ", "", &have, NULL, NULL)
	    != SASL_OK)
		have = "";
	names = str_split(allowed, " ,\t", &count);
	for (size_t i = 0; i < count; i++) {
		for (char *p = names[i]; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		if (strcmp(names[i], "NTLM") == 0 || !authd_list_contains(have, names[i])
		    || authd_list_contains(out, names[i]))
			continue;
		if (strlen(out) + strlen(names[i]) + 2 > sizeof(authd_mech_list[0]))
			break;
		if (out[0] != '\0')
			strcat(out, " ");
		strcat(out, names[i]);
	}
	free(names);
	if (conn != NULL)
		sasl_dispose(&conn);
}

void authd_sasl_init(const char *service, const char *config_dir,
    const char *mechanisms)
{
	static sasl_callback_t global_callbacks[] = {
		{SASL_CB_GETCONFPATH, (int (*)(void))(void (*)(void))authd_sasl_getconfpath, NULL},
		{SASL_CB_LOG, (int (*)(void))(void (*)(void))authd_sasl_log, NULL},
		{SASL_CB_LIST_END, NULL, NULL},
	};
	const char *realm = config_str("smtpd_sasl_local_domain");
	char *conf_path;
	int rc;

	authd_sasl_service = xstrdup(service);
	authd_sasl_config_dir = xstrdup(config_dir);
	authd_sasl_hostname = xstrdup(config_str("myhostname"));
	authd_sasl_realm = realm[0] != '\0' ? xstrdup(realm) : NULL;
	authd_sec_flags[0] = authd_parse_sec_options("smtpd_sasl_security_options");
	authd_sec_flags[1] =
	    authd_parse_sec_options("smtpd_sasl_tls_security_options");

	sasl_set_mutex(authd_mutex_alloc, authd_mutex_lock, authd_mutex_unlock,
	    authd_mutex_free);
	rc = sasl_server_init(global_callbacks, authd_sasl_service);
	if (rc != SASL_OK)
		log_fatal("libsasl2 initialization for service %s with "
		    "configuration directory %s failed: %s", service, config_dir,
		    sasl_errstring(rc, NULL, NULL));
	authd_sasl_compute_list(0, mechanisms);
	authd_sasl_compute_list(1, mechanisms);
	conf_path = xasprintf("%s/%s.conf", config_dir, service);
	authd_scram_init(conf_path);
	free(conf_path);
	log_info("SASL service %s, configuration %s/%s.conf; mechanisms with "
	    "TLS: \"%s\", without TLS: \"%s\"", service, config_dir, service,
	    authd_mech_list[1], authd_mech_list[0]);
}

const char *authd_sasl_mechanisms(int encrypted)
{
	return authd_mech_list[encrypted ? 1 : 0];
}

enum authd_failure authd_sasl_failure(int sasl_rc, int *temporary_out)
{
	*temporary_out = 0;
	switch (sasl_rc) {
	case SASL_BADAUTH:
	case SASL_NOUSER:
	case SASL_BADPROT:
	case SASL_BADPARAM:
	case SASL_NOAUTHZ:
	case SASL_EXPIRED:
	case SASL_DISABLED:
	case SASL_NOVERIFY:
	case SASL_WEAKPASS:
	case SASL_ENCRYPT:
	case SASL_TOOWEAK:
		return AUTHD_FAILURE_CREDENTIALS;
	case SASL_NOMECH:
		return AUTHD_FAILURE_MECHANISM;
	default:
		*temporary_out = 1;
		return AUTHD_FAILURE_INTERNAL;
	}
}

void authd_sasl_dispose(struct authd_session *s)
{
	sasl_conn_t *conn = s->sasl;

	if (conn != NULL)
		sasl_dispose(&conn);
	s->sasl = NULL;
	free(s->sasl_callbacks);
	s->sasl_callbacks = NULL;
}

/*
 * After libsasl2 has handled a SCRAM client-first-message: learns from a
 * real server-first-message, or replaces SASL_NOUSER with a decoy
 * challenge written to decoy, so that an unknown user fails at the proof
 * as a wrong password does. Returns the result code to report. Worker
 * thread.
 */
static int authd_job_scram(struct authd_session *s, int rc, const char *in,
    unsigned in_len, const char *out, unsigned out_len, long long started_us,
    struct sbuf *decoy)
{
	struct authd_scram_first first;
	const char *err = NULL;

	if (rc == SASL_CONTINUE) {
		authd_scram_observe(s->mechanism, out, out_len,
		    authd_scram_now_us() - started_us);
		return rc;
	}
	if (rc != SASL_NOUSER)
		return rc;
	if (authd_scram_parse_first(in, in_len, &first, &err) < 0) {
		log_warn("%s: no decoy for an unknown user: %s", s->mechanism, err);
		return rc;
	}
	if (authd_scram_decoy(s->mechanism, &first, decoy) < 0) {
		log_error("%s: cannot make a decoy challenge", s->mechanism);
		authd_scram_first_clear(&first);
		return rc;
	}
	authd_scram_first_clear(&first);
	authd_scram_pad(s->mechanism, authd_scram_now_us() - started_us);
	s->scram_decoy = 1;
	return SASL_CONTINUE;
}

/* Runs one libsasl2 call for the session, or fails the step after a
 * SCRAM decoy. Worker thread. */
static void authd_job_run(struct authd_session *s)
{
	struct authd_job *j = &s->job;
	const char *in = (const char *)j->input;
	unsigned in_len = j->input_len < 0 ? 0 : (unsigned)j->input_len;
	const char *out = NULL;
	unsigned out_len = 0;
	sasl_conn_t *conn = s->sasl;
	struct sbuf decoy;
	int first_message = j->input_len >= 0 && s->client_messages++ == 0;
	long long started_us = authd_scram_now_us();
	int rc = SASL_OK;

	sbuf_init(&decoy, 4096);
	if (j->is_start) {
		rc = authd_sasl_new(s, s->encrypted, &conn);
		s->sasl = conn;
		if (rc == SASL_OK)
			rc = sasl_server_start(conn, s->mechanism,
			    j->input_len < 0 ? NULL : in, in_len, &out, &out_len);
	} else if (s->scram_decoy) {
		rc = SASL_BADAUTH;
	} else {
		rc = sasl_server_step(conn, in, in_len, &out, &out_len);
	}
	if (first_message && in_len > 0 && authd_scram_is_scram(s->mechanism)) {
		rc = authd_job_scram(s, rc, in, in_len, out, out_len, started_us,
		    &decoy);
		if (decoy.len > 0) {
			out = decoy.data;
			out_len = (unsigned)decoy.len;
		}
	}
	if (j->input != NULL)
		explicit_bzero(j->input, in_len);
	j->sasl_rc = rc;
	j->detail[0] = '\0';
	if (rc == SASL_CONTINUE) {
		sbuf_reset(&j->challenge);
		if (authd_base64_encode((const unsigned char *)out, out_len,
		    &j->challenge) < 0)
			j->sasl_rc = SASL_BUFOVER;
	} else if (rc == SASL_OK) {
		const void *name = NULL;

		if (sasl_getprop(conn, SASL_USERNAME, &name) == SASL_OK
		    && name != NULL)
			snprintf(j->user, sizeof(j->user), "%s",
			    (const char *)name);
	} else if (s->scram_decoy) {
		snprintf(j->detail, sizeof(j->detail), "user not found (a decoy "
		    "challenge was sent)");
	} else if (conn != NULL) {
		snprintf(j->detail, sizeof(j->detail), "%s", sasl_errdetail(conn));
	} else {
		snprintf(j->detail, sizeof(j->detail), "%s",
		    sasl_errstring(rc, NULL, NULL));
	}
	sbuf_free(&decoy);
}

static void *authd_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct authd_session *s;

		pthread_mutex_lock(&pool_lock);
		while (pool_todo_head == NULL)
			pthread_cond_wait(&pool_cond, &pool_lock);
		s = pool_todo_head;
		pool_todo_head = s->pool_next;
		if (pool_todo_head == NULL)
			pool_todo_tail = NULL;
		pthread_mutex_unlock(&pool_lock);

		authd_job_run(s);

		pthread_mutex_lock(&pool_lock);
		s->pool_next = NULL;
		if (pool_done_tail != NULL)
			pool_done_tail->pool_next = s;
		else
			pool_done_head = s;
		pool_done_tail = s;
		pthread_mutex_unlock(&pool_lock);
		/* The pipe only wakes the loop; a full pipe already will. */
		if (write(pool_notify_fd[1], "", 1) < 0 && errno != EAGAIN)
			log_error("cannot wake the event loop: %s", strerror(errno));
	}
	return NULL;
}

/* Hands finished jobs back to the sessions. Main thread. */
static void authd_pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];
	struct authd_session *list;

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&pool_lock);
	list = pool_done_head;
	pool_done_head = pool_done_tail = NULL;
	pthread_mutex_unlock(&pool_lock);

	while (list != NULL) {
		struct authd_session *s = list;

		list = s->pool_next;
		s->pool_next = NULL;
		pool_inflight--;
		authd_session_job_done(s);
	}
}

void authd_pool_start(struct event_base *base, int nthreads)
{
	if (pipe2(pool_notify_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal("cannot create the worker pipe: %s", strerror(errno));
	pool_done_ev = event_new(base, pool_notify_fd[0], EV_READ | EV_PERSIST,
	    authd_pool_done_cb, NULL);
	event_add(pool_done_ev, NULL);
	for (int i = 0; i < nthreads; i++) {
		pthread_t tid;
		int rc = pthread_create(&tid, NULL, authd_worker, NULL);

		if (rc != 0)
			log_fatal("cannot start worker thread: %s", strerror(rc));
		pthread_detach(tid);
	}
}

void authd_pool_submit(struct authd_session *s)
{
	pool_inflight++;
	pthread_mutex_lock(&pool_lock);
	s->pool_next = NULL;
	if (pool_todo_tail != NULL)
		pool_todo_tail->pool_next = s;
	else
		pool_todo_head = s;
	pool_todo_tail = s;
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
}

size_t authd_pool_inflight(void)
{
	return pool_inflight;
}
