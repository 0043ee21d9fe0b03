/*
 * tlsproxy_client - how smtpd and the smtp agent use tlsproxy, and the
 * smtp_tls_policy_maps lookup that the smtp agent needs before it
 * decides to send STARTTLS.
 *
 * The protocol, over QUEUE_DIR/private/tlsproxy (a UNIX stream socket):
 *
 * 1. The caller connects and sends one lib/attr.h record with the network
 *    socket attached as SCM_RIGHTS data. Attributes:
 *      role            "server" (smtpd) or "client" (smtp agent)
 *      service         the caller's master.cf service name, for logs
 *      peer            the remote end as "name[address]:port", for logs
 *    client role only:
 *      server_name     the name sent as SNI and checked in the server's
 *                      certificate at level verify
 *      security_level  may, encrypt or verify ("secure" means verify);
 *                      absent: tlsproxy's smtp_tls_security_level
 *      match           names accepted in the certificate at level verify,
 *                      separated by ':' (default: server_name)
 *      ca_file         trust anchors for verify (default: tlsproxy's
 *                      smtp_tls_CAfile, then the system store)
 *      protocols, ciphers  overrides of smtp_tls_protocols and
 *                      smtp_tls_ciphers, in the same syntax
 *    server role only:
 *      ask_ccert       "yes" requests a client certificate (default:
 *                      tlsproxy's smtpd_tls_ask_ccert)
 *    The caller closes its own copy of the network socket right after
 *    sending it, so that only tlsproxy holds the connection.
 *
 * 2. tlsproxy runs the handshake without blocking its other sessions,
 *    within tlsproxy_timeout, and replies with one record:
 *      status          "ok" or "fail"
 *      reason          why it failed (status=fail only)
 *      protocol        "TLSv1.2", "TLSv1.3"
 *      cipher          the IANA cipher suite name, e.g. TLS_AES_256_GCM_SHA384
 *      cipher_bits     bits of the symmetric key in use
 *      cipher_alg_bits bits the algorithm supports
 *      peer_subject    the peer certificate's subject DN ("" without one)
 *      peer_issuer     its issuer DN
 *      peer_fingerprint  SHA-256 of the peer certificate (DER) as
 *                      colon-separated upper-case hex ("" without one)
 *      sni             the server name the client sent (server role)
 *      verified        "yes" when the peer certificate chain verified (and,
 *                      client role, the name matched), else "no"
 *      verify_error    why it did not verify ("" when verified)
 *      resumed         "yes" for a resumed session
 *    After status=fail tlsproxy closes the connection. At level verify a
 *    certificate that does not verify is a failure; at may and encrypt it
 *    only gives verified=no.
 *
 * 3. After status=ok the same UNIX connection carries the plaintext both
 *    ways: what the caller writes goes out encrypted, what the peer sends
 *    arrives decrypted. Bytes may follow the reply record at once, so an
 *    event-driven caller keeps whatever attr_decoder_feed() left unused.
 *    When the caller shuts down or closes its end, tlsproxy sends the TLS
 *    close_notify and closes the network socket once the peer's data is
 *    drained; when the peer closes, the caller reads end of file.
 */
#ifndef POSTERN_TLSPROXY_CLIENT_H
#define POSTERN_TLSPROXY_CLIENT_H

#include <stddef.h>

#include "attr.h"

#define TLSPROXY_SOCKET "private/tlsproxy"

enum tls_level {
	TLS_LEVEL_NONE = 0,
	TLS_LEVEL_MAY,
	TLS_LEVEL_ENCRYPT,
	TLS_LEVEL_VERIFY
};

/* Parses none, may, encrypt, verify or secure (same as verify). Returns the
 * level or -1 for anything else. */
int tls_level_parse(const char *name);
const char *tls_level_name(enum tls_level level);

/* The request of step 1. NULL or "" fields are left out of the record. */
struct tlsproxy_request {
	const char *role;            /* "server" or "client" */
	const char *service;
	const char *peer;
	const char *server_name;
	const char *security_level;
	const char *match;
	const char *ca_file;
	const char *protocols;
	const char *ciphers;
	const char *ask_ccert;
};

/* The reply of step 2; strings are truncated to their buffers. */
struct tls_summary {
	int ok;                      /* status=ok */
	char reason[256];
	char protocol[16];
	char cipher[96];
	int cipher_bits;
	int cipher_alg_bits;
	char peer_subject[256];
	char peer_issuer[256];
	char peer_fingerprint[100];  /* 32 bytes as "AB:CD:..." is 95 chars */
	char sni[256];
	int verified;
	char verify_error[128];
	int resumed;
};

/* Builds the request record (caller frees with attrs_free). */
struct attrs *tlsproxy_request_encode(const struct tlsproxy_request *req);

/*
 * Fills *out from a reply record, for event-driven callers that decode
 * it with attr_decoder_feed. Returns 0 for status=ok, -1 for status=fail
 * or a record without a valid status (out->reason says why).
 */
int tlsproxy_reply_decode(const struct attrs *reply, struct tls_summary *out);

/*
 * Writes the Received header comment for an ok summary, e.g.
 * "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))",
 * NUL-terminated and truncated to size. Returns the length it needed, as
 * snprintf does.
 */
int tls_summary_format(const struct tls_summary *s, char *buf, size_t size);

/*
 * The blocking exchange for the smtp agent: connects to
 * queue_dir/private/tlsproxy, sends req with net_fd, waits at most
 * timeout_ms for the reply and reads exactly the reply record, so no
 * plaintext is lost. Always closes net_fd (the caller's copy). Returns
 * the connected UNIX socket that carries the plaintext (blocking, caller
 * closes), or -1 with out->reason set: the handshake failed (out->ok is
 * 0 and the other fields are filled when tlsproxy replied), or tlsproxy
 * could not be reached or did not reply in time.
 */
int tlsproxy_start(const char *queue_dir, const struct tlsproxy_request *req,
    int net_fd, int timeout_ms, struct tls_summary *out);

/* One smtp_tls_policy_maps entry, "level [name=value ...]". */
struct tls_policy {
	enum tls_level level;
	char match[512];             /* ':'-separated names, "" for the default */
	char protocols[128];
	char ciphers[64];
};

/*
 * Parses a policy value such as "verify match=mx1.example.com:example.com
 * protocols=>=TLSv1.3". Known attributes: match, protocols, ciphers.
 * Returns 0, or -1 with a message in *err_out (caller frees).
 */
int tls_policy_parse(const char *text, struct tls_policy *out, char **err_out);

/*
 * Finds the policy for a next hop ("example.com" or "[mx.example.com]:25")
 * in smtp_tls_policy_maps: the next hop as given, then for a domain each
 * parent domain as ".example.com". Falls back to smtp_tls_security_level
 * and returns 0; returns -1 with *err_out set when a table cannot be
 * read or an entry is invalid (callers defer the delivery).
 */
int tls_policy_lookup(const char *nexthop, struct tls_policy *out,
    char **err_out);

#endif
