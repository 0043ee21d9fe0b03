/*
 * tls_check - checks the configured server certificates the way a client
 * will see them, so that a missing intermediate or an expiring
 * certificate is found before clients fail. Used by `postern tls-check`;
 * master may run it at start (link $(GNUTLS_LIBS)).
 *
 * For each identity of smtpd_tls_chain_files (or the smtpd_tls_key_file /
 * smtpd_tls_cert_file and smtpd_tls_eckey_file / smtpd_tls_eccert_file
 * pairs) it checks: the private key matches the leaf; each certificate
 * is issued by the next one; the chain verifies up to a root in the
 * system store or smtpd_tls_CAfile; the days until each certificate
 * expires (a warning under tls_expiry_warning_days); the leaf names
 * cover myhostname. The chains of tls_server_sni_maps get the same
 * checks, with the table key in place of myhostname.
 */
#ifndef POSTERN_TLS_CHECK_H
#define POSTERN_TLS_CHECK_H

#include <stddef.h>

enum tls_check_severity {
	TLS_CHECK_OK,
	TLS_CHECK_WARNING,
	TLS_CHECK_ERROR
};

/* Receives each finding; origin names the files of the identity. */
typedef void tls_check_report_fn(enum tls_check_severity severity,
    const char *origin, const char *message, void *arg);

/*
 * Runs the checks on the loaded configuration, calling report for each
 * finding. Needs gnutls_global_init() in GnuTLS versions that do not
 * initialize themselves (3.3 and later do). Reads the key files, so it
 * must run as a user that can read them. Returns the number of warnings
 * and errors; 0 means everything is fine.
 */
int tls_check_run(tls_check_report_fn *report, void *arg);

/*
 * Returns the files of the main server identity in the order tlsproxy
 * reads them: the names in smtpd_tls_chain_files, else the key and
 * certificate files of the smtpd_tls_key_file / smtpd_tls_cert_file and
 * then the smtpd_tls_eckey_file / smtpd_tls_eccert_file pair (key first,
 * as a chain file holds them; a file named as both is listed once). The
 * array is NULL-terminated in one allocation that the caller frees with
 * free(); *count_out receives the number of files.
 */
char **tls_server_identity_files(size_t *count_out);

/*
 * Calls fn(key, arg) for each key of the tables in spec, the value of
 * tls_server_sni_maps. Only inline:{...}, hash:FILE and btree:FILE can
 * list their keys (the latter two from FILE, the source of FILE.db).
 * Returns 0, or -1 with a message in *err_out (caller frees) for another
 * table type or an unreadable source file; the keys of the other tables
 * are listed anyway.
 */
int tls_sni_keys(const char *spec, void (*fn)(const char *key, void *arg),
    void *arg, char **err_out);

#endif
