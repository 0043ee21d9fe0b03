/*
 * Maps the Postfix-style protocols and cipher grade parameters onto a
 * GnuTLS priority string. No GnuTLS calls here, so the unit test links
 * this file alone; tlsproxy checks the result with gnutls_priority_init.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"
#include "tlsproxy.h"

/* The versions tlsproxy may enable, oldest first, with GnuTLS names. */
static const struct {
	const char *name;
	const char *gnutls;
} tls_versions[] = {
	{"TLSv1.2", "VERS-TLS1.2"},
	{"TLSv1.3", "VERS-TLS1.3"},
};
#define NVERSIONS 2

/* Older names, accepted in exclusions and bounds. Rank -1 is below 1.2. */
static int version_rank(const char *name)
{
	static const char *const old[] = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"};

	for (int i = 0; i < NVERSIONS; i++)
		if (strcmp(name, tls_versions[i].name) == 0)
			return i;
	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++)
		if (strcmp(name, old[i]) == 0)
			return -1;
	return -2;
}

/* Applies one word of the protocols value to the enabled set. Returns 0,
 * or -1 for an unknown version name. */
static int protocol_word(const char *w, int enabled[NVERSIONS], int *any_plain)
{
	int rank;

	if (strncmp(w, ">=", 2) == 0 || strncmp(w, "<=", 2) == 0) {
		int at_least = w[0] == '>';

		rank = version_rank(w + 2);
		if (rank == -2)
			return -1;
		for (int i = 0; i < NVERSIONS; i++)
			if (at_least ? i < rank : i > rank)
				enabled[i] = 0;
		return 0;
	}
	if (w[0] == '!') {
		rank = version_rank(w + 1);
		if (rank == -2)
			return -1;
		if (rank >= 0)
			enabled[rank] = 0;
		return 0;
	}
	rank = version_rank(w);
	if (rank == -2)
		return -1;
	/* A plain list names the versions to use: the first plain word
	 * clears the default set. */
	if (!*any_plain) {
		*any_plain = 1;
		for (int i = 0; i < NVERSIONS; i++)
			enabled[i] = -enabled[i];
	}
	if (rank >= 0 && enabled[rank] != 0)
		enabled[rank] = 2;
	return 0;
}

static const char *cipher_base(const char *grade)
{
	if (grade == NULL || grade[0] == '\0' || strcmp(grade, "medium") == 0 ||
	    strcmp(grade, "low") == 0)
		return "NORMAL";
	if (strcmp(grade, "high") == 0)
		return "SECURE128";
	return NULL;
}

char *tlsproxy_priority_build(const char *protocols, const char *ciphers,
    char **err_out)
{
	int enabled[NVERSIONS] = {1, 1};
	int any_plain = 0;
	size_t count = 0;
	char **words = str_split(protocols ? protocols : "", " \t,:", &count);
	const char *base = cipher_base(ciphers);
	struct sbuf out;

	if (base == NULL) {
		*err_out = xasprintf("unknown cipher grade \"%s\": use low, medium "
		    "or high, or set tls_priority", ciphers);
		free(words);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		if (protocol_word(words[i], enabled, &any_plain) < 0) {
			*err_out = xasprintf("unknown TLS protocol \"%s\" in \"%s\": "
			    "use names such as TLSv1.2 and TLSv1.3 with an optional "
			    "!, >= or <=", words[i], protocols);
			free(words);
			return NULL;
		}
	}
	free(words);

	sbuf_init(&out, 1024);
	sbuf_printf(&out, "%s:-VERS-ALL", base);
	for (int i = 0; i < NVERSIONS; i++) {
		/* Without a plain list, 1 means enabled; with one, 2 means
		 * listed and not excluded. */
		if (enabled[i] == (any_plain ? 2 : 1))
			sbuf_printf(&out, ":+%s", tls_versions[i].gnutls);
	}
	if (strstr(out.data, ":+VERS") == NULL) {
		*err_out = xasprintf("the TLS protocols \"%s\" leave no version "
		    "enabled; TLSv1.2 and TLSv1.3 are supported",
		    protocols ? protocols : "");
		sbuf_free(&out);
		return NULL;
	}
	return sbuf_detach(&out);
}
