/*
 * postern tls-check: checks the configured server certificates.
 */
#include <stdio.h>

#include <gnutls/gnutls.h>

#include "commands.h"
#include "tls_check.h"

static void print_finding(enum tls_check_severity severity, const char *origin,
    const char *message, void *arg)
{
	static const char *const words[] = {"ok", "warning", "error"};

	fprintf(severity == TLS_CHECK_OK ? stdout : stderr, "%s: %s: %s\n",
	    origin, words[severity], message);
}

int cmd_tls_check(int argc, char **argv)
{
	int problems;

	if (argc > 1) {
		fprintf(stderr, "usage: postern tls-check\n");
		return 2;
	}
	if (gnutls_global_init() < 0) {
		fprintf(stderr, "postern tls-check: cannot initialize GnuTLS\n");
		return 1;
	}
	problems = tls_check_run(print_finding, NULL);
	gnutls_global_deinit();
	if (problems > 0)
		printf("%d problem%s found\n", problems, problems == 1 ? "" : "s");
	return problems > 0 ? 1 : 0;
}
