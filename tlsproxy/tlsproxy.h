/*
 * tlsproxy: the TLS engine. It takes a network socket with a request
 * record over private/tlsproxy (the protocol is in lib/tlsproxy_client.h),
 * runs the GnuTLS handshake, replies with a summary and then relays
 * plaintext between the caller and the TLS connection. Many sessions per
 * process, on one libevent loop; nothing blocks on a slow peer.
 *
 * Files: main.c (setup, listener, signals), request.c (the request record
 * and the passed descriptor), handshake.c (the handshake and the reply),
 * server.c (server credentials, SNI, session tickets), client.c (client
 * role and verification), relay.c (plaintext <-> TLS), summary.c (the
 * reply attributes), priority.c (parameters to a GnuTLS priority string).
 */
#ifndef POSTERN_TLSPROXY_H
#define POSTERN_TLSPROXY_H

#include <stddef.h>

#include <gnutls/gnutls.h>

#include "attr.h"
#include "sbuf.h"

/* Bytes buffered per direction of a relayed session; reading from a side
 * stops while the buffer toward the other side is full. */
#define TLSPROXY_RELAY_BUF 16384

struct event;
struct event_base;

enum tlsproxy_state {
	TLSPROXY_REQUEST,     /* reading the request record */
	TLSPROXY_HANDSHAKE,
	TLSPROXY_REPLY,       /* writing the reply record */
	TLSPROXY_RELAY
};

struct tlsproxy_session {
	unsigned long id;
	enum tlsproxy_state state;
	int ctl_fd;                   /* UNIX connection to the caller */
	int net_fd;                   /* the network socket, -1 until received */
	int client_role;              /* 0: server (smtpd), 1: client (smtp) */
	char peer[160];               /* for logs */
	char service[64];
	gnutls_session_t tls;

	/* Request stage. */
	struct attr_decoder *decoder;
	struct attrs *request;
	struct sbuf early;            /* caller bytes after the request record */

	/* Client role settings from the request. */
	int level;                    /* enum tls_level */
	char server_name[256];
	char *match;                  /* ':'-separated names to check */

	/* Reply stage. */
	struct sbuf reply;
	size_t reply_sent;
	int reply_ok;

	/* Events: ctl and net readiness, and the deadline of the current stage. */
	struct event *ctl_read_ev, *ctl_write_ev;
	struct event *net_read_ev, *net_write_ev;
	struct event *timer_ev;

	/* Relay stage. */
	char to_net[TLSPROXY_RELAY_BUF];   /* plaintext to encrypt */
	size_t to_net_len;
	size_t send_pending;               /* length of an interrupted record_send */
	char to_ctl[TLSPROXY_RELAY_BUF];   /* decrypted, for the caller */
	size_t to_ctl_len;
	int net_in_done, ctl_in_done;      /* no more input from that side */
	int net_out_done, ctl_out_done;    /* close_notify sent / caller shut */
	int bye_pending;
	int net_wait_write, ctl_wait_write;
	unsigned long long bytes_in, bytes_out;
};

/* main.c */
extern struct event_base *tlsproxy_base;
extern long tlsproxy_timeout_sec;
void tlsproxy_session_free(struct tlsproxy_session *s);
/* (Re)arms the session's deadline timer. */
void tlsproxy_session_deadline(struct tlsproxy_session *s, long seconds);

/* request.c */
void tlsproxy_request_start(struct tlsproxy_session *s);

/* handshake.c */
/* Sets up the GnuTLS session from the request and starts the handshake. */
void tlsproxy_handshake_start(struct tlsproxy_session *s);
/* Ends the session with a status=fail reply carrying reason. */
void tlsproxy_fail(struct tlsproxy_session *s, const char *reason);

/* server.c */
/* Loads certificates and keys; runs as root before the privilege drop.
 * Exits (log_fatal) on a configuration that cannot work. */
void tlsproxy_server_init(void);
/* Configures a server session. Returns 0 or -1 with *reason_out set. */
int tlsproxy_server_session(struct tlsproxy_session *s, const char **reason_out);
/* 1 when server credentials were configured. */
int tlsproxy_server_ready(void);

/* client.c */
/* Loads the trust anchors that requests can name: smtp_tls_CAfile, or the
 * system store when it is empty, and each "-o smtp_tls_CAfile=" value of
 * master.cf. Runs before the chroot and keeps them for the process's
 * life. A failure is logged, and requests that need the file fail with
 * the same reason. */
void tlsproxy_client_init(void);
int tlsproxy_client_session(struct tlsproxy_session *s, char *reason,
    size_t reason_size);
/* Checks the server certificate after the handshake at the session's
 * level. Returns 0 when the session may proceed, -1 with reason. */
int tlsproxy_client_verify(struct tlsproxy_session *s, int *verified_out,
    char *verify_error, size_t size);
/* Checks a client certificate against smtpd_tls_CAfile (server role). */
int tlsproxy_server_verify_peer(struct tlsproxy_session *s, char *verify_error,
    size_t size);

/* relay.c */
void tlsproxy_relay_start(struct tlsproxy_session *s);

/* summary.c */
/* Adds the reply attributes that describe an established session. */
void tlsproxy_summary_add(struct tlsproxy_session *s, struct attrs *reply);
/* Writes "TLSv1.3 with cipher X (256/256 bits)" for log lines. */
void tlsproxy_summary_line(gnutls_session_t tls, char *buf, size_t size);

/* priority.c */
/*
 * Builds a GnuTLS priority string from a protocols value in Postfix syntax
 * (">=TLSv1.2", "TLSv1.2 TLSv1.3", "!TLSv1 !TLSv1.1", "<=TLSv1.2") and a
 * cipher grade (low, medium, high). Only TLSv1.2 and TLSv1.3 can be
 * enabled; older versions are accepted in exclusions and ignored. Returns
 * a malloc'd string, or NULL with a message in *err_out (caller frees)
 * when nothing would be enabled or a word is not understood.
 */
char *tlsproxy_priority_build(const char *protocols, const char *ciphers,
    char **err_out);

#endif
