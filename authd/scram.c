/*
 * SCRAM decoys: a plausible server-first-message for a user that the
 * store does not hold (RFC 5802, RFC 7677).
 *
 * The SCRAM plugin of Cyrus libsasl2 2.1.28 fails an unknown user at the
 * client-first-message but a wrong password only at the proof, so a
 * client could tell users apart. When libsasl2 returns SASL_NOUSER for a
 * client-first-message, authd replies with a challenge shaped like the
 * plugin's own and fails the client-final-message as it fails a wrong
 * password. What the plugin sends a real user (measured with 2.1.28 and
 * a sasldb made by saslpasswd2, which stores userPassword):
 *
 *   r=  the client nonce and 32 characters of base64 (24 random bytes)
 *   s=  a salt of the hash size (20 or 32 bytes), the same for every
 *       exchange of one user name until the process restarts
 *   i=  scram_iteration_counter from the SASL configuration, or 4096
 *
 * The decoy salt is HMAC-SHA-256 over the user name with a key drawn at
 * start, so it is stable too. A decoy also does the plugin's key
 * derivation work, then sleeps until it has taken as long as libsasl2's
 * recent first steps for real users (OpenSSL 3's HMAC, which the plugin
 * calls once per iteration, is several times slower than GnuTLS's).
 * Workers call this file concurrently.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "authd.h"
#include "log.h"

/* Random bytes behind the 32 base64 characters of the plugin's nonce. */
#define SCRAM_NONCE_RANDOM_BYTES 24
/* The plugin's iteration count when the configuration sets none. */
#define SCRAM_DEFAULT_ITERATIONS 4096
/* Iteration counts outside this range are ignored as implausible. */
#define SCRAM_MIN_ITERATIONS 1
#define SCRAM_MAX_ITERATIONS 1000000
/* Rounds of the plugin's own salt derivation from the user name. */
#define SCRAM_USER_SALT_ROUNDS 20
/* Maximum duration of one first step counted in the average, in microseconds. */
#define SCRAM_MAX_STEP_US 2000000LL

/* Shape of a real server-first-message of one mechanism. */
struct scram_profile {
	const char *mechanism;
	gnutls_mac_algorithm_t mac;
	size_t hash_len;
	unsigned iterations;
	size_t salt_len;
	long long real_us;  /* moving average of libsasl2's first step, or 0 */
};

static struct scram_profile scram_profiles[] = {
	{"SCRAM-SHA-1", GNUTLS_MAC_SHA1, 20, SCRAM_DEFAULT_ITERATIONS, 20, 0},
	{"SCRAM-SHA-256", GNUTLS_MAC_SHA256, 32, SCRAM_DEFAULT_ITERATIONS, 32, 0},
};
static pthread_mutex_t scram_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char scram_salt_key[32];

static struct scram_profile *scram_profile_find(const char *mechanism)
{
	for (size_t i = 0; i < sizeof(scram_profiles) / sizeof(scram_profiles[0]);
	    i++)
		if (strcasecmp(scram_profiles[i].mechanism, mechanism) == 0)
			return &scram_profiles[i];
	return NULL;
}

int authd_scram_is_scram(const char *mechanism)
{
	return scram_profile_find(mechanism) != NULL;
}

/* Parses a decimal iteration count. Returns 0 when invalid. */
static unsigned scram_parse_iterations(const char *text, size_t len)
{
	char buf[16];
	char *end;
	unsigned long n;

	if (len == 0 || len >= sizeof(buf) || !isdigit((unsigned char)text[0]))
		return 0;
	memcpy(buf, text, len);
	buf[len] = '\0';
	errno = 0;
	n = strtoul(buf, &end, 10);
	if (*end != '\0' || errno != 0 || n < SCRAM_MIN_ITERATIONS
	    || n > SCRAM_MAX_ITERATIONS)
		return 0;
	return (unsigned)n;
}

/*
 * Reads the iteration count from the SASL configuration file, whose
 * lines are "name: value": MECHANISM_scram_iteration_counter, which
 * libsasl2 tries first, else scram_iteration_counter.
 */
static void scram_read_config(const char *path)
{
	unsigned generic = 0;
	unsigned specific[sizeof(scram_profiles) / sizeof(scram_profiles[0])] = {0};
	FILE *f = fopen(path, "r");
	char line[512];

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');
		char *name, *value;
		unsigned n;

		if (colon == NULL)
			continue;
		*colon = '\0';
		name = str_trim(line);
		value = str_trim(colon + 1);
		n = scram_parse_iterations(value, strlen(value));
		if (n == 0)
			continue;
		if (strcasecmp(name, "scram_iteration_counter") == 0)
			generic = n;
		for (size_t i = 0; i < sizeof(specific) / sizeof(specific[0]); i++) {
			size_t mlen = strlen(scram_profiles[i].mechanism);

			if (strncasecmp(name, scram_profiles[i].mechanism, mlen) == 0
			    && strcasecmp(name + mlen, "_scram_iteration_counter") == 0)
				specific[i] = n;
		}
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(specific) / sizeof(specific[0]); i++) {
		if (specific[i] > 0)
			scram_profiles[i].iterations = specific[i];
		else if (generic > 0)
			scram_profiles[i].iterations = generic;
	}
}

void authd_scram_init(const char *sasl_config_path)
{
	if (gnutls_rnd(GNUTLS_RND_KEY, scram_salt_key, sizeof(scram_salt_key))
	    < 0)
		log_fatal("cannot draw the SCRAM salt key from the random number "
		    "generator");
	if (sasl_config_path != NULL)
		scram_read_config(sasl_config_path);
}

/* Decodes the saslname escapes ("=2C" is ",", "=3D" is "=") of
 * in[0..len) into out, which has room for len + 1 bytes. Returns 0, or
 * -1 for any other "=". */
static int scram_decode_saslname(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] != '=') {
			out[o++] = in[i];
			continue;
		}
		if (i + 2 < len && in[i + 1] == '2' && in[i + 2] == 'C') {
			out[o++] = ',';
		} else if (i + 2 < len && in[i + 1] == '3' && in[i + 2] == 'D') {
			out[o++] = '=';
		} else {
			out[o] = '\0';
			return -1;
		}
		i += 2;
	}
	out[o] = '\0';
	return 0;
}

/* Skips the gs2-header "FLAG,[a=AUTHZID]," at p. Returns the start of
 * client-first-message-bare, or NULL with *err_out set. */
static const char *scram_skip_gs2_header(const char *p, const char *end,
    const char **err_out)
{
	const char *comma;

	if (p < end && (*p == 'n' || *p == 'y')) {
		p++;
	} else if (end - p >= 2 && p[0] == 'p' && p[1] == '=') {
		/* Like libsasl2, any channel binding name up to the comma. */
		p = memchr(p + 2, ',', (size_t)(end - p - 2));
		if (p == NULL) {
			*err_out = "unterminated channel binding name";
			return NULL;
		}
	} else {
		*err_out = "gs2-cbind-flag is not n, y or p=";
		return NULL;
	}
	if (p >= end || *p != ',') {
		*err_out = "missing comma after gs2-cbind-flag";
		return NULL;
	}
	p++;
	if (end - p >= 2 && p[0] == 'a' && p[1] == '=') {
		char *authzid;
		int rc;

		comma = memchr(p + 2, ',', (size_t)(end - p - 2));
		if (comma == NULL) {
			*err_out = "unterminated authzid";
			return NULL;
		}
		authzid = xmalloc((size_t)(comma - p));
		rc = scram_decode_saslname(p + 2, (size_t)(comma - p - 2), authzid);
		free(authzid);
		if (rc < 0) {
			*err_out = "invalid escape in authzid";
			return NULL;
		}
		p = comma;
	}
	if (p >= end || *p != ',') {
		*err_out = "missing comma at the end of the gs2-header";
		return NULL;
	}
	return p + 1;
}

int authd_scram_parse_first(const char *msg, size_t len,
    struct authd_scram_first *out, const char **err_out)
{
	const char *end = msg + len;
	const char *p, *comma;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		*err_out = "empty client-first-message";
		return -1;
	}
	if (memchr(msg, '\0', len) != NULL) {
		*err_out = "NUL in client-first-message";
		return -1;
	}
	p = scram_skip_gs2_header(msg, end, err_out);
	if (p == NULL)
		return -1;
	if (end - p >= 2 && p[0] == 'm' && p[1] == '=') {
		*err_out = "unsupported mandatory extension";
		return -1;
	}
	if (end - p < 2 || p[0] != 'n' || p[1] != '=') {
		*err_out = "missing username (n=)";
		return -1;
	}
	p += 2;
	comma = memchr(p, ',', (size_t)(end - p));
	if (comma == NULL) {
		*err_out = "missing nonce after the username";
		return -1;
	}
	if (comma == p) {
		*err_out = "empty username";
		return -1;
	}
	out->user = xmalloc((size_t)(comma - p) + 1);
	if (scram_decode_saslname(p, (size_t)(comma - p), out->user) < 0) {
		authd_scram_first_clear(out);
		*err_out = "invalid escape in username";
		return -1;
	}
	p = comma + 1;
	if (end - p < 2 || p[0] != 'r' || p[1] != '=') {
		authd_scram_first_clear(out);
		*err_out = "missing nonce (r=) after the username";
		return -1;
	}
	/* Like libsasl2, the nonce is whatever precedes the next comma;
	 * extensions after it are ignored. */
	out->nonce = p + 2;
	comma = memchr(out->nonce, ',', (size_t)(end - out->nonce));
	out->nonce_len = (size_t)((comma != NULL ? comma : end) - out->nonce);
	return 0;
}

void authd_scram_first_clear(struct authd_scram_first *first)
{
	if (first->user != NULL) {
		explicit_bzero(first->user, strlen(first->user));
		free(first->user);
	}
	memset(first, 0, sizeof(*first));
}

/* Fills salt[0..len) from HMAC-SHA-256(key, block number || user). */
static int scram_decoy_salt(const char *user, unsigned char *salt, size_t len)
{
	size_t user_len = strlen(user);
	unsigned char *input = xmalloc(user_len + 1);
	int rc = 0;

	memcpy(input + 1, user, user_len);
	for (size_t done = 0, block = 0; done < len && rc == 0; block++) {
		unsigned char digest[32];
		size_t n = len - done < sizeof(digest) ? len - done : sizeof(digest);

		input[0] = (unsigned char)block;
		rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, scram_salt_key,
		    sizeof(scram_salt_key), input, user_len + 1, digest);
		memcpy(salt + done, digest, n);
		done += n;
	}
	free(input);
	return rc < 0 ? -1 : 0;
}

/*
 * Spends about the time libsasl2 spends on a real user: its salt
 * derivation (SCRAM_USER_SALT_ROUNDS HMACs) and SaltedPassword, one
 * HMAC per iteration with the key set up each time as the plugin does.
 */
static void scram_decoy_work(const struct scram_profile *prof,
    const unsigned char *salt, size_t salt_len, const unsigned char *key,
    size_t key_len)
{
	unsigned char u[64], acc[64];
	unsigned rounds = prof->iterations + SCRAM_USER_SALT_ROUNDS;
	unsigned char *first = xmalloc(salt_len + 4);

	memcpy(first, salt, salt_len);
	memcpy(first + salt_len, "\0\0\0\1", 4);
	gnutls_hmac_fast(prof->mac, key, key_len, first, salt_len + 4, u);
	memcpy(acc, u, prof->hash_len);
	for (unsigned i = 1; i < rounds; i++) {
		gnutls_hmac_fast(prof->mac, key, key_len, u, prof->hash_len, u);
		for (size_t k = 0; k < prof->hash_len; k++)
			acc[k] ^= u[k];
	}
	explicit_bzero(acc, sizeof(acc));
	explicit_bzero(u, sizeof(u));
	free(first);
}

int authd_scram_decoy(const char *mechanism,
    const struct authd_scram_first *first, struct sbuf *out)
{
	struct scram_profile *found = scram_profile_find(mechanism);
	struct scram_profile prof;
	unsigned char random[SCRAM_NONCE_RANDOM_BYTES];
	unsigned char salt[AUTHD_SCRAM_SALT_MAX];
	struct sbuf nonce, salt64;
	int rc = -1;

	if (found == NULL)
		return -1;
	pthread_mutex_lock(&scram_lock);
	prof = *found;
	pthread_mutex_unlock(&scram_lock);

	sbuf_init(&nonce, 64);
	sbuf_init(&salt64, 2 * AUTHD_SCRAM_SALT_MAX);
	if (gnutls_rnd(GNUTLS_RND_NONCE, random, sizeof(random)) < 0
	    || scram_decoy_salt(first->user, salt, prof.salt_len) < 0
	    || authd_base64_encode(random, sizeof(random), &nonce) < 0
	    || authd_base64_encode(salt, prof.salt_len, &salt64) < 0)
		goto done;
	scram_decoy_work(&prof, salt, prof.salt_len, random, sizeof(random));
	sbuf_reset(out);
	if (sbuf_puts(out, "r=") < 0
	    || sbuf_append(out, first->nonce, first->nonce_len) < 0
	    || sbuf_printf(out, "%s,s=%s,i=%u", sbuf_cstr(&nonce),
	    sbuf_cstr(&salt64), prof.iterations) < 0)
		goto done;
	rc = 0;
done:
	explicit_bzero(random, sizeof(random));
	sbuf_free(&nonce);
	sbuf_free(&salt64);
	return rc;
}

long long authd_scram_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void authd_scram_pad(const char *mechanism, long long elapsed_us)
{
	struct scram_profile *prof = scram_profile_find(mechanism);
	long long target;
	struct timespec ts;

	if (prof == NULL)
		return;
	pthread_mutex_lock(&scram_lock);
	target = prof->real_us;
	pthread_mutex_unlock(&scram_lock);
	if (target <= elapsed_us)
		return;
	ts.tv_sec = (time_t)((target - elapsed_us) / 1000000);
	ts.tv_nsec = (long)((target - elapsed_us) % 1000000) * 1000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void authd_scram_observe(const char *mechanism, const char *msg, size_t len,
    long long elapsed_us)
{
	struct scram_profile *prof = scram_profile_find(mechanism);
	const char *end = msg + len;
	const char *p = msg;
	size_t salt_len = 0;
	unsigned iterations = 0;

	if (prof == NULL)
		return;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *field_end = comma != NULL ? comma : end;
		size_t flen = (size_t)(field_end - p);

		if (flen > 2 && p[0] == 's' && p[1] == '=' && (flen - 2) % 4 == 0) {
			salt_len = (flen - 2) / 4 * 3;
			salt_len -= field_end[-1] == '=';
			salt_len -= field_end[-2] == '=';
		} else if (flen > 2 && p[0] == 'i' && p[1] == '=') {
			iterations = scram_parse_iterations(p + 2, flen - 2);
		}
		p = field_end + 1;
	}
	if (salt_len == 0 || salt_len > AUTHD_SCRAM_SALT_MAX || iterations == 0)
		return;
	if (elapsed_us > SCRAM_MAX_STEP_US)
		elapsed_us = SCRAM_MAX_STEP_US;
	pthread_mutex_lock(&scram_lock);
	prof->salt_len = salt_len;
	prof->iterations = iterations;
	if (elapsed_us > 0)
		prof->real_us = prof->real_us == 0 ? elapsed_us
		    : (prof->real_us * 7 + elapsed_us) / 8;
	pthread_mutex_unlock(&scram_lock);
}
