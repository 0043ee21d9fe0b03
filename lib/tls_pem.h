/*
 * tls_pem - groups the PEM blocks of certificate and key files into
 * identities: one private key followed by its certificate chain (leaf
 * first, then intermediates), as smtpd_tls_chain_files and the
 * smtpd_tls_key_file / smtpd_tls_cert_file pair hold them. Pure text
 * handling, shared by tlsproxy and `postern tls-check`.
 */
#ifndef POSTERN_TLS_PEM_H
#define POSTERN_TLS_PEM_H

#include <stddef.h>

struct tls_identity {
	char *key_pem;        /* the private key block, NUL-terminated */
	char *certs_pem;      /* the certificate blocks in file order */
	size_t ncerts;
	char *origin;         /* file names, for messages */
};

/*
 * Splits text (the contents of the files in the order given, origin
 * names them) into identities: each private key block ("PRIVATE KEY",
 * "RSA PRIVATE KEY", "EC PRIVATE KEY") starts one, and the certificate
 * blocks after it belong to it. Other blocks are skipped. Returns the
 * number of identities (at least 1) with the array in *out (free with
 * tls_identities_free), or -1 with a message in *err_out (caller frees)
 * when a block is unterminated, a certificate comes before any key, or
 * a key has no certificate.
 */
int tls_pem_split(const char *text, size_t len, const char *origin,
    struct tls_identity **out, char **err_out);

/*
 * Reads the files in the order given (as the calling user, so tlsproxy
 * calls it before it drops root) and splits their concatenated contents.
 * Same results as tls_pem_split; an unreadable file is an error naming
 * it.
 */
int tls_pem_load(char *const *files, size_t nfiles, struct tls_identity **out,
    char **err_out);

void tls_identities_free(struct tls_identity **ids, size_t count);

#endif
