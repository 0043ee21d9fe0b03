/*
 * The certificate check master runs at start, so that a missing
 * intermediate or a certificate about to expire shows up in the log
 * before clients start failing. The same checks back `postern tls-check`.
 */
#include <string.h>

#include "master.h"

#include "config.h"
#include "log.h"
#include "tls_check.h"

static void master_tls_report(enum tls_check_severity severity,
    const char *origin, const char *message, void *arg)
{
	(void)arg;
	if (severity == TLS_CHECK_OK)
		return;
	log_warn("TLS certificate %s: %s (run \"postern tls-check\" for the full report)",
	    origin, message);
}

/* Returns the value of a "-o name=value" in argv, else NULL. */
static const char *service_override(char **argv, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++)
		if (strcmp(argv[i], "-o") == 0 &&
		    strncmp(argv[i + 1], name, len) == 0 && argv[i + 1][len] == '=')
			return argv[i + 1] + len + 1;
	return NULL;
}

/* Returns a description of how an smtpd service uses TLS, or NULL when
 * it does not. */
static const char *service_tls_use(const struct master_service *svc)
{
	const char *wrapper = service_override(svc->argv, "smtpd_tls_wrappermode");
	const char *level = service_override(svc->argv, "smtpd_tls_security_level");

	if (wrapper == NULL)
		wrapper = config_str("smtpd_tls_wrappermode");
	if (level == NULL)
		level = config_str("smtpd_tls_security_level");
	if (strcmp(wrapper, "yes") == 0)
		return "smtpd_tls_wrappermode = yes";
	if (strcmp(level, "encrypt") == 0)
		return "smtpd_tls_security_level = encrypt";
	if (strcmp(level, "may") == 0)
		return "smtpd_tls_security_level = may";
	return NULL;
}

void master_tls_check(void)
{
	int have_cert = config_str("smtpd_tls_chain_files")[0] != '\0'
	    || config_str("smtpd_tls_cert_file")[0] != '\0'
	    || config_str("smtpd_tls_eccert_file")[0] != '\0';

	if (have_cert) {
		/* NOTE: only main.cf's certificates are checked, because
		 * tlsproxy reads main.cf, not a -o override of one smtpd. */
		tls_check_run(master_tls_report, NULL);
		return;
	}
	for (struct master_service *svc = master.services; svc != NULL;
	    svc = svc->next) {
		const char *use;

		if (strcmp(svc->command, "smtpd") != 0)
			continue;
		use = service_tls_use(svc);
		if (use != NULL)
			log_warn("service %s (master.cf line %d) has %s, but no "
			    "server certificate is configured: STARTTLS gets 454 "
			    "and wrapper-mode clients are disconnected; set "
			    "smtpd_tls_chain_files in main.cf", svc->name,
			    svc->line, use);
	}
}
