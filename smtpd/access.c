/*
 * Access tables for check_client_access, check_helo_access,
 * check_sender_access and check_recipient_access: the lookup keys and
 * the meaning of a table's value. The value syntax follows Postfix's
 * access(5) for OK, DUNNO, REJECT, DEFER and numeric replies.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "maps.h"
#include "sbuf.h"
#include "policy.h"

/* A list of keys built in an sbuf, then turned into one allocation. */
struct key_list {
	struct sbuf text;   /* keys, each followed by a NUL */
	size_t count;
};

static void keys_add(struct key_list *k, const char *key, size_t len)
{
	sbuf_append(&k->text, key, len);
	sbuf_putc(&k->text, '\0');
	k->count++;
}

static char **keys_finish(struct key_list *k)
{
	size_t ptrs = (k->count + 1) * sizeof(char *);
	char **out = xmalloc(ptrs + k->text.len + 1);
	char *p = (char *)out + ptrs;

	if (k->text.len)
		memcpy(p, k->text.data, k->text.len);
	for (size_t i = 0; i < k->count; i++) {
		out[i] = p;
		p += strlen(p) + 1;
	}
	out[k->count] = NULL;
	sbuf_free(&k->text);
	return out;
}

/* Adds the domain and each of its parents ("a.b.c", "b.c", "c"). */
static void keys_add_domains(struct key_list *k, const char *domain)
{
	const char *d = domain;

	while (d && *d) {
		keys_add(k, d, strlen(d));
		d = strchr(d, '.');
		if (d)
			d++;
	}
}

char **access_domain_keys(const char *domain)
{
	struct key_list k = {.count = 0};

	sbuf_init(&k.text, 4096);
	keys_add_domains(&k, domain);
	return keys_finish(&k);
}

char **access_address_keys(const char *addr)
{
	struct key_list k = {.count = 0};
	const char *at = strrchr(addr, '@');

	sbuf_init(&k.text, 4096);
	if (*addr == '\0') {
		keys_add(&k, "<>", 2);
		return keys_finish(&k);
	}
	keys_add(&k, addr, strlen(addr));
	if (at) {
		keys_add_domains(&k, at + 1);
		keys_add(&k, addr, (size_t)(at - addr) + 1);
	}
	return keys_finish(&k);
}

char **access_client_keys(const char *name, const char *addr)
{
	struct key_list k = {.count = 0};
	char sep = strchr(addr, ':') ? ':' : '.';
	size_t len = strlen(addr);

	sbuf_init(&k.text, 4096);
	if (name && *name && strcasecmp(name, "unknown") != 0)
		keys_add_domains(&k, name);
	/* The address, then its networks with the last part removed. */
	while (len > 0) {
		keys_add(&k, addr, len);
		while (len > 0 && addr[len - 1] != sep)
			len--;
		while (len > 0 && addr[len - 1] == sep)
			len--;
	}
	return keys_finish(&k);
}

/* Length of the RFC 3463 code "C.D.D" of class cls at the start of s,
 * or 0 when s does not start with one. */
static size_t enhanced_code_len(const char *s, char cls)
{
	size_t n = 0;

	if (s[0] != cls || s[1] != '.')
		return 0;
	n = 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;

		while (isdigit((unsigned char)s[n]) && digits < 3) {
			n++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (part == 0) {
			if (s[n] != '.')
				return 0;
			n++;
		}
	}
	return (s[n] == ' ' || s[n] == '\0') ? n : 0;
}

/* Formats "CODE DSN prefix: text" with text defaulting to dflt. */
static void reply_format(char *reply, size_t size, const char *code,
    const char *text, const char *dflt, const char *prefix)
{
	char cls = code[0];
	size_t dsn_len;

	while (*text == ' ' || *text == '\t')
		text++;
	dsn_len = enhanced_code_len(text, cls);
	if (dsn_len) {
		const char *rest = text + dsn_len;

		while (*rest == ' ')
			rest++;
		snprintf(reply, size, "%.3s %.*s %s: %s", code, (int)dsn_len,
		    text, prefix, *rest ? rest : dflt);
	} else {
		snprintf(reply, size, "%.3s %c.7.1 %s: %s", code, cls, prefix,
		    *text ? text : dflt);
	}
}

/* The word at the start of value, compared case-insensitively. */
static int word_is(const char *value, const char *word, const char **rest)
{
	size_t n = strlen(word);

	if (strncasecmp(value, word, n) != 0 ||
	    (value[n] != '\0' && value[n] != ' ' && value[n] != '\t'))
		return 0;
	*rest = value + n;
	return 1;
}

int access_parse_result(const char *value, const char *prefix,
    enum smtpd_policy_result *result_out, char *reply, size_t reply_size)
{
	const char *rest;
	size_t digits;

	while (*value == ' ' || *value == '\t')
		value++;
	digits = strspn(value, "0123456789");
	/* A 4NN or 5NN reply, also without text, before the rule that any
	 * other number permits. */
	if (digits == 3 && (value[0] == '4' || value[0] == '5') &&
	    (value[3] == ' ' || value[3] == '\t' || value[3] == '\0')) {
		reply_format(reply, reply_size, value, value + 3,
		    "Access denied", prefix);
		*result_out = value[0] == '4' ? SMTPD_POLICY_DEFER :
		    SMTPD_POLICY_REJECT;
		return 0;
	}
	if (word_is(value, "OK", &rest) ||
	    (digits > 0 && value[digits] == '\0')) {
		*result_out = SMTPD_POLICY_PERMIT;
		return 0;
	}
	if (word_is(value, "DUNNO", &rest)) {
		*result_out = SMTPD_POLICY_DUNNO;
		return 0;
	}
	if (word_is(value, "REJECT", &rest)) {
		reply_format(reply, reply_size, "554", rest, "Access denied",
		    prefix);
		*result_out = SMTPD_POLICY_REJECT;
		return 0;
	}
	if (word_is(value, "DEFER", &rest)) {
		reply_format(reply, reply_size, "450", rest, "Try again later",
		    prefix);
		*result_out = SMTPD_POLICY_DEFER;
		return 0;
	}
	snprintf(reply, reply_size, "451 4.3.5 Server configuration error");
	*result_out = SMTPD_POLICY_DEFER;
	return -1;
}

/*
 * The loop of access_check. With whole_key set, keys other than the first
 * and whole_key are derived ones, looked up with maplist_lookup_parent.
 */
static enum smtpd_policy_result access_check_keys(struct maplist *table,
    char **keys, const char *whole_key, const char *prefix, char *reply,
    size_t reply_size)
{
	enum smtpd_policy_result result = SMTPD_POLICY_DUNNO;

	for (size_t i = 0; keys[i]; i++) {
		char *value = NULL, *err = NULL;
		int derived = whole_key != NULL && i > 0 &&
		    strcmp(keys[i], whole_key) != 0;
		int r = derived ?
		    maplist_lookup_parent(table, keys[i], &value, &err) :
		    maplist_lookup(table, keys[i], &value, &err);

		if (r < 0) {
			log_warn("access table lookup of \"%s\" failed: %s",
			    keys[i], err ? err : "unknown error");
			free(err);
			snprintf(reply, reply_size, "451 4.3.0 %s: Temporary "
			    "lookup failure", prefix);
			return SMTPD_POLICY_DEFER;
		}
		if (r == 0)
			continue;
		/* The first key found decides, DUNNO included: it stops
		 * the search for less specific keys. */
		if (access_parse_result(value, prefix, &result, reply,
		    reply_size) < 0)
			log_warn("access table: invalid result \"%s\" for key "
			    "\"%s\"; use OK, DUNNO, REJECT, DEFER or a 4xx/5xx "
			    "reply", value, keys[i]);
		free(value);
		return result;
	}
	return SMTPD_POLICY_DUNNO;
}

enum smtpd_policy_result access_check(struct maplist *table, char **keys,
    const char *prefix, char *reply, size_t reply_size)
{
	return access_check_keys(table, keys, NULL, prefix, reply, reply_size);
}

enum smtpd_policy_result access_check_client(struct maplist *table,
    const char *name, const char *addr, const char *prefix, char *reply,
    size_t reply_size)
{
	char **keys = access_client_keys(name, addr);
	enum smtpd_policy_result result;

	result = access_check_keys(table, keys, addr, prefix, reply,
	    reply_size);
	free(keys);
	return result;
}
