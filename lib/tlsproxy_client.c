/*
 * tlsproxy_client - request and reply records of tlsproxy, the blocking
 * exchange for the smtp agent, and smtp_tls_policy_maps lookups.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/socket.h>

#include "attr.h"
#include "config.h"
#include "iox.h"
#include "maps.h"
#include "sbuf.h"
#include "tlsproxy_client.h"

/* The peek window when looking for the end of the reply record; a reply
 * is a few hundred bytes, far below ATTR_MAX_RECORD. */
#define REPLY_PEEK_MAX 8192

static const char *const tls_level_names[] = {"none", "may", "encrypt", "verify"};

int tls_level_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		if (str_casecmp_eq(name, tls_level_names[i]))
			return i;
	if (str_casecmp_eq(name, "secure"))
		return TLS_LEVEL_VERIFY;
	return -1;
}

const char *tls_level_name(enum tls_level level)
{
	if ((int)level < 0 || level > TLS_LEVEL_VERIFY)
		return "invalid";
	return tls_level_names[level];
}

static void add_if_set(struct attrs *a, const char *name, const char *value)
{
	if (value != NULL && value[0] != '\0')
		attrs_add(a, name, value);
}

struct attrs *tlsproxy_request_encode(const struct tlsproxy_request *req)
{
	struct attrs *a = attrs_new();

	add_if_set(a, "role", req->role);
	add_if_set(a, "service", req->service);
	add_if_set(a, "peer", req->peer);
	add_if_set(a, "server_name", req->server_name);
	add_if_set(a, "security_level", req->security_level);
	add_if_set(a, "match", req->match);
	add_if_set(a, "ca_file", req->ca_file);
	add_if_set(a, "protocols", req->protocols);
	add_if_set(a, "ciphers", req->ciphers);
	add_if_set(a, "ask_ccert", req->ask_ccert);
	return a;
}

static void copy_attr(const struct attrs *a, const char *name, char *buf,
    size_t size)
{
	const char *v = attrs_get(a, name);

	snprintf(buf, size, "%s", v != NULL ? v : "");
}

static int attr_yes(const struct attrs *a, const char *name)
{
	const char *v = attrs_get(a, name);

	return v != NULL && strcmp(v, "yes") == 0;
}

int tlsproxy_reply_decode(const struct attrs *reply, struct tls_summary *out)
{
	const char *status = attrs_get(reply, "status");

	memset(out, 0, sizeof(*out));
	copy_attr(reply, "reason", out->reason, sizeof(out->reason));
	copy_attr(reply, "protocol", out->protocol, sizeof(out->protocol));
	copy_attr(reply, "cipher", out->cipher, sizeof(out->cipher));
	out->cipher_bits = (int)attrs_get_long(reply, "cipher_bits", 0);
	out->cipher_alg_bits = (int)attrs_get_long(reply, "cipher_alg_bits", 0);
	copy_attr(reply, "peer_subject", out->peer_subject, sizeof(out->peer_subject));
	copy_attr(reply, "peer_issuer", out->peer_issuer, sizeof(out->peer_issuer));
	copy_attr(reply, "peer_fingerprint", out->peer_fingerprint,
	    sizeof(out->peer_fingerprint));
	copy_attr(reply, "sni", out->sni, sizeof(out->sni));
	copy_attr(reply, "verify_error", out->verify_error,
	    sizeof(out->verify_error));
	out->verified = attr_yes(reply, "verified");
	out->resumed = attr_yes(reply, "resumed");

	if (status != NULL && strcmp(status, "ok") == 0) {
		out->ok = 1;
		return 0;
	}
	if (status == NULL || strcmp(status, "fail") != 0)
		snprintf(out->reason, sizeof(out->reason),
		    "invalid tlsproxy reply: status is %s",
		    status == NULL ? "missing" : "not ok or fail");
	else if (out->reason[0] == '\0')
		snprintf(out->reason, sizeof(out->reason), "TLS handshake failed");
	return -1;
}

int tls_summary_format(const struct tls_summary *s, char *buf, size_t size)
{
	return snprintf(buf, size, "(using %s with cipher %s (%d/%d bits))",
	    s->protocol[0] ? s->protocol : "TLS",
	    s->cipher[0] ? s->cipher : "unknown",
	    s->cipher_bits, s->cipher_alg_bits);
}

/*
 * Reads exactly one record from a blocking socket: peeks until the
 * record's terminating empty line is visible, then consumes only those
 * bytes, so the plaintext that follows stays in the socket.
 */
static int reply_read(int fd, int timeout_ms, struct attrs **out,
    char *reason, size_t reason_size)
{
	long long deadline = iox_now_ms() + timeout_ms;
	char buf[REPLY_PEEK_MAX];
	size_t end = 0;

	for (;;) {
		int left = (int)(deadline - iox_now_ms());
		ssize_t n;

		if (left <= 0 || iox_wait(fd, POLLIN, left) <= 0) {
			snprintf(reason, reason_size, "no reply from tlsproxy "
			    "within %d ms", timeout_ms);
			return -1;
		}
		n = recv(fd, buf, sizeof(buf), MSG_PEEK);
		if (n <= 0) {
			snprintf(reason, reason_size, "tlsproxy closed the "
			    "connection without a reply");
			return -1;
		}
		for (size_t i = 0; i < (size_t)n; i++) {
			/* A record ends with an empty line: "\n" at its start
			 * or "\n\n" inside it. */
			if (buf[i] == '\n' && (i == 0 || buf[i - 1] == '\n')) {
				end = i + 1;
				break;
			}
		}
		if (end > 0)
			break;
		if ((size_t)n == sizeof(buf)) {
			snprintf(reason, reason_size, "tlsproxy reply too long");
			return -1;
		}
		/* Part of the record is there; wait for the rest. */
		usleep(1000);
	}

	if (recv(fd, buf, end, MSG_WAITALL) != (ssize_t)end) {
		snprintf(reason, reason_size, "reading the tlsproxy reply "
		    "failed: %s", strerror(errno));
		return -1;
	}

	struct attr_decoder *dec = attr_decoder_new();
	size_t used = 0;
	const char *err = NULL;
	int rc = attr_decoder_feed(dec, buf, end, &used, out, &err);

	attr_decoder_free(&dec);
	if (rc != 1) {
		snprintf(reason, reason_size, "invalid tlsproxy reply: %s",
		    err ? err : "incomplete record");
		return -1;
	}
	return 0;
}

int tlsproxy_start(const char *queue_dir, const struct tlsproxy_request *req,
    int net_fd, int timeout_ms, struct tls_summary *out)
{
	char *path = xasprintf("%s/%s", queue_dir, TLSPROXY_SOCKET);
	struct attrs *request = tlsproxy_request_encode(req);
	struct attrs *reply = NULL;
	struct attr_stream *stream = NULL;
	int fd;

	memset(out, 0, sizeof(*out));
	fd = iox_unix_connect(path, 0);
	if (fd < 0) {
		snprintf(out->reason, sizeof(out->reason),
		    "cannot connect to %s: %s", path, strerror(errno));
		goto fail;
	}
	stream = attr_stream_new(fd);
	if (attr_stream_send(stream, request, net_fd, timeout_ms) < 0) {
		snprintf(out->reason, sizeof(out->reason),
		    "sending the request to tlsproxy failed: %s",
		    strerror(errno));
		goto fail;
	}
	close(net_fd);
	net_fd = -1;
	if (reply_read(fd, timeout_ms, &reply, out->reason,
	    sizeof(out->reason)) < 0)
		goto fail;
	if (tlsproxy_reply_decode(reply, out) < 0)
		goto fail;

	attr_stream_free(&stream);
	attrs_free(&reply);
	attrs_free(&request);
	free(path);
	return fd;

fail:
	if (net_fd >= 0)
		close(net_fd);
	attr_stream_free(&stream);
	if (fd >= 0)
		close(fd);
	attrs_free(&reply);
	attrs_free(&request);
	free(path);
	return -1;
}

static int policy_copy(char *dst, size_t size, const char *value,
    const char *name, char **err_out)
{
	if (strlen(value) >= size) {
		*err_out = xasprintf("TLS policy %s value is longer than %zu "
		    "bytes", name, size - 1);
		return -1;
	}
	strcpy(dst, value);
	return 0;
}

int tls_policy_parse(const char *text, struct tls_policy *out, char **err_out)
{
	size_t count = 0;
	char **words = str_split(text, " \t,", &count);
	int level, rc = -1;

	memset(out, 0, sizeof(*out));
	if (count == 0) {
		*err_out = xstrdup("empty TLS policy: expected a level such as "
		    "may, encrypt or verify");
		goto done;
	}
	level = tls_level_parse(words[0]);
	if (level < 0) {
		*err_out = xasprintf("unknown TLS security level \"%s\": use none, "
		    "may, encrypt, verify or secure", words[0]);
		goto done;
	}
	out->level = (enum tls_level)level;
	for (size_t i = 1; i < count; i++) {
		const char *w = words[i];

		if (strncmp(w, "match=", 6) == 0) {
			if (policy_copy(out->match, sizeof(out->match), w + 6,
			    "match", err_out) < 0)
				goto done;
		} else if (strncmp(w, "protocols=", 10) == 0) {
			if (policy_copy(out->protocols, sizeof(out->protocols),
			    w + 10, "protocols", err_out) < 0)
				goto done;
		} else if (strncmp(w, "ciphers=", 8) == 0) {
			if (policy_copy(out->ciphers, sizeof(out->ciphers),
			    w + 8, "ciphers", err_out) < 0)
				goto done;
		} else {
			*err_out = xasprintf("unknown TLS policy attribute \"%s\": "
			    "use match=, protocols= or ciphers=", w);
			goto done;
		}
	}
	rc = 0;
done:
	free(words);
	return rc;
}

/* Tries key in the policy maps. Returns 1 found, 0 not found, -1 error. */
static int policy_try(struct maplist *maps, const char *key,
    struct tls_policy *out, char **err_out)
{
	char *value = NULL;
	char *err = NULL;
	int rc = maplist_lookup(maps, key, &value, &err);

	if (rc < 0) {
		*err_out = xasprintf("smtp_tls_policy_maps lookup of %s failed: %s",
		    key, err ? err : "unknown error");
		free(err);
		return -1;
	}
	if (rc == 0)
		return 0;
	if (tls_policy_parse(value, out, &err) < 0) {
		*err_out = xasprintf("smtp_tls_policy_maps entry for %s: %s",
		    key, err);
		free(err);
		free(value);
		return -1;
	}
	free(value);
	return 1;
}

static int policy_default(struct tls_policy *out, char **err_out)
{
	const char *name = config_str("smtp_tls_security_level");
	int level = name[0] == '\0' ? TLS_LEVEL_NONE : tls_level_parse(name);

	memset(out, 0, sizeof(*out));
	if (level < 0) {
		*err_out = xasprintf("invalid smtp_tls_security_level \"%s\": use "
		    "none, may, encrypt or verify", name);
		return -1;
	}
	out->level = (enum tls_level)level;
	return 0;
}

int tls_policy_lookup(const char *nexthop, struct tls_policy *out,
    char **err_out)
{
	const char *spec = config_str("smtp_tls_policy_maps");
	struct maplist *maps;
	char *err = NULL;
	int rc = 0;

	if (spec[0] == '\0')
		return policy_default(out, err_out);
	/* NOTE: opened per lookup; the smtp agent does one lookup per
	 * connection, which costs far less than the TLS handshake. */
	maps = maplist_open(spec, &err);
	if (maps == NULL) {
		*err_out = xasprintf("cannot open smtp_tls_policy_maps: %s",
		    err ? err : "unknown error");
		free(err);
		return -1;
	}

	rc = policy_try(maps, nexthop, out, err_out);
	/* A domain also matches the entries of its parents as ".parent". */
	for (const char *dot = nexthop; rc == 0 && nexthop[0] != '[' &&
	    (dot = strchr(dot, '.')) != NULL; dot++)
		rc = policy_try(maps, dot, out, err_out);
	maplist_close(&maps);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return policy_default(out, err_out);
	return 0;
}
