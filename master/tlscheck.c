/*
 * The certificate check master runs at start, so that a missing
 * intermediate or a certificate about to expire shows up in the log
 * before clients start failing. The same checks back `postern tls-check`.
 */
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

void master_tls_check(void)
{
	/* NOTE: only main.cf's certificates are checked, not one that a
	 * master.cf -o override names for a single service. */
	if (config_str("smtpd_tls_chain_files")[0] == '\0'
	    && config_str("smtpd_tls_cert_file")[0] == '\0'
	    && config_str("smtpd_tls_eccert_file")[0] == '\0')
		return;
	tls_check_run(master_tls_report, NULL);
}
