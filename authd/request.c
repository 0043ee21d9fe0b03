/*
 * Request parsing and strict base64 for authd. Nothing here does I/O, so
 * the unit tests link this file alone.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authd.h"

static int authd_session_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > AUTHD_SESSION_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return 0;
	return 1;
}

/* RFC 4422 section 3.1: 1 to 20 characters of [A-Z0-9-_]; lowercase is
 * accepted because SMTP commands are case-insensitive. */
static int authd_mechanism_valid(const char *mech)
{
	size_t len = strlen(mech);

	if (len == 0 || len > AUTHD_MECHANISM_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)mech[i]) && mech[i] != '-'
		    && mech[i] != '_')
			return 0;
	return 1;
}

static int authd_parse_yes_no(const char *value, int *out)
{
	if (value == NULL)
		return -1;
	if (strcmp(value, "yes") == 0)
		*out = 1;
	else if (strcmp(value, "no") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

static int authd_request_op(const char *name, enum authd_op *out)
{
	static const struct {
		const char *name;
		enum authd_op op;
	} ops[] = {
		{"mechanisms", AUTHD_OP_MECHANISMS},
		{"start", AUTHD_OP_START},
		{"step", AUTHD_OP_STEP},
		{"abort", AUTHD_OP_ABORT},
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (name != NULL && strcmp(ops[i].name, name) == 0) {
			*out = ops[i].op;
			return 0;
		}
	}
	return -1;
}

/* Checks the attributes of a start request. */
static int authd_request_parse_start(const struct attrs *rec,
    struct authd_request *out, const char **err_out)
{
	out->mechanism = attrs_get(rec, "mechanism");
	out->client_address = attrs_get(rec, "client_address");
	if (out->mechanism == NULL || !authd_mechanism_valid(out->mechanism)) {
		*err_out = "missing or invalid mechanism";
		return -1;
	}
	if (out->client_address == NULL || out->client_address[0] == '\0'
	    || strlen(out->client_address) > AUTHD_ADDRESS_MAX) {
		*err_out = "missing or invalid client_address";
		return -1;
	}
	if (authd_parse_yes_no(attrs_get(rec, "encrypted"), &out->encrypted) < 0) {
		*err_out = "encrypted must be yes or no";
		return -1;
	}
	return 0;
}

int authd_request_parse(const struct attrs *rec, struct authd_request *out,
    const char **err_out)
{
	memset(out, 0, sizeof(*out));
	if (authd_request_op(attrs_get(rec, "request"), &out->op) < 0) {
		*err_out = "missing or unknown request";
		return -1;
	}
	out->session = attrs_get(rec, "session");
	if (out->session == NULL || !authd_session_id_valid(out->session)) {
		*err_out = "missing or invalid session id";
		return -1;
	}
	out->response = attrs_get(rec, "response");

	switch (out->op) {
	case AUTHD_OP_MECHANISMS:
		if (authd_parse_yes_no(attrs_get(rec, "encrypted"),
		    &out->encrypted) < 0) {
			*err_out = "encrypted must be yes or no";
			return -1;
		}
		return 0;
	case AUTHD_OP_START:
		return authd_request_parse_start(rec, out, err_out);
	case AUTHD_OP_STEP:
		if (out->response == NULL) {
			*err_out = "missing response";
			return -1;
		}
		return 0;
	case AUTHD_OP_ABORT:
		return 0;
	}
	*err_out = "unknown request";
	return -1;
}

static int authd_base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long authd_base64_decode(const char *in, size_t in_len, unsigned char *out,
    size_t out_max)
{
	size_t n = 0;

	if (in_len % 4 != 0)
		return -1;
	for (size_t i = 0; i < in_len; i += 4) {
		int v[4];
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			/* '=' may only end the last group: "xx==" or "xxx=". */
			if (c == '=' && i + 4 == in_len && k >= 2
			    && (k == 3 || in[i + 3] == '=')) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[k] = authd_base64_value(c)) < 0)
				return -1;
		}
		unsigned long group = ((unsigned long)v[0] << 18) | (v[1] << 12)
		    | (v[2] << 6) | v[3];
		size_t bytes = 3 - (size_t)pad;

		/* Bits below the last byte must be zero (canonical form). */
		if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf)))
			return -1;
		if (n + bytes > out_max)
			return -1;
		out[n++] = (unsigned char)(group >> 16);
		if (bytes > 1)
			out[n++] = (unsigned char)(group >> 8);
		if (bytes > 2)
			out[n++] = (unsigned char)group;
	}
	return (long)n;
}

int authd_base64_encode(const unsigned char *in, size_t len, struct sbuf *out)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < len; i += 3) {
		unsigned long group = (unsigned long)in[i] << 16;
		char quad[4];

		if (i + 1 < len)
			group |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			group |= in[i + 2];
		quad[0] = alphabet[(group >> 18) & 63];
		quad[1] = alphabet[(group >> 12) & 63];
		quad[2] = i + 1 < len ? alphabet[(group >> 6) & 63] : '=';
		quad[3] = i + 2 < len ? alphabet[group & 63] : '=';
		if (sbuf_append(out, quad, 4) < 0)
			return -1;
	}
	if (out->data == NULL && sbuf_append(out, "", 0) < 0)
		return -1;
	return 0;
}

long authd_parse_duration_ms(const char *value)
{
	char *end;
	long n;

	if (value == NULL || !isdigit((unsigned char)value[0]))
		return -1;
	errno = 0;
	n = strtol(value, &end, 10);
	if (errno == ERANGE || n > 7L * 86400 * 1000)
		return -1;
	if (strcmp(end, "ms") == 0)
		return n;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return n * 1000;
	if (strcmp(end, "m") == 0)
		return n * 60 * 1000;
	if (strcmp(end, "h") == 0)
		return n * 3600 * 1000;
	return -1;
}

int authd_list_contains(const char *list, const char *name)
{
	size_t name_len = strlen(name);
	const char *p = list;

	while (*p != '\0') {
		size_t len;

		p += strspn(p, " ,\t");
		len = strcspn(p, " ,\t");
		if (len == name_len && len > 0 && strncasecmp(p, name, len) == 0)
			return 1;
		p += len;
	}
	return 0;
}
