/*
 * smtp - the SMTP delivery agent.
 *
 * One process handles one delivery request (lib/deliver.h) at a time with
 * blocking I/O and a timeout on every network read and write. After a
 * transaction that left the connection in a clean state the agent keeps
 * it open for smtp_connection_cache_time_limit seconds and reuses it for
 * the next request to the same next hop.
 *
 * Parts: main.c (service loop and connection cache), request.c (request
 * and reply), result.c (per-recipient results), nexthop.c (next hop
 * syntax and address lookup), dns.c (MX, A and AAAA queries), mx.c (MX
 * order, null MX, loops back to this host), session.c
 * (connect, greeting, EHLO, RSET, QUIT), tls.c (STARTTLS),
 * transaction.c (MAIL, RCPT, DATA),
 * body.c (message encoding for DATA), reply.c (server replies),
 * lmtp.c (LMTP next hops and replies after the end of data).
 *
 * LMTP mode (RFC 2033): a process started under the master.cf service
 * name "lmtp" speaks LMTP. It greets with LHLO lmtp_lhlo_name, never
 * looks up MX records, takes next hops "unix:PATH" (relative to
 * queue_directory unless absolute) and "inet:HOST:PORT", "HOST:PORT" or
 * "[HOST]:PORT" (port 24 when absent), and reads one reply per accepted
 * recipient after the end of data.
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stddef.h>
#include <sys/types.h>

#include "qfile.h"
#include "sbuf.h"

/* Reply limits. RFC 5321 4.5.3.1.5 sets 512 octets per reply line; we
 * accept longer lines because real servers send them. */
#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_MAX_LINE 2048      /* bytes, with the CRLF */
#define SMTP_REPLY_MAX_TEXT 1000      /* bytes of reply text kept for logs */

/* Results of smtp_reply_parse. */
#define SMTP_PARSE_ERROR (-1)
#define SMTP_PARSE_MORE 0
#define SMTP_PARSE_DONE 1

/* One server reply, possibly of several lines. */
struct smtp_reply {
	int code;            /* 200..599 */
	size_t nlines;
	struct sbuf lines;   /* text after "CODE-" of each line, '\n' after each */
	struct sbuf text;    /* "CODE text1 text2 ...", sanitized, capped */
};

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_reset(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);

/*
 * Parses complete reply lines at the start of buf[0..len), adding them to
 * r (which smtp_reply_reset cleared before the first call of a reply).
 * Lines end with LF, optionally after CR. Returns SMTP_PARSE_DONE when
 * the last line of the reply was consumed, and SMTP_PARSE_MORE when every
 * complete line was consumed and the reply goes on. Returns
 * SMTP_PARSE_ERROR, with a static message in *err_out, for a malformed
 * line, a code that changes between lines, more than
 * SMTP_REPLY_MAX_LINES lines, or a line (also an unfinished one) longer
 * than SMTP_REPLY_MAX_LINE. *used_out receives the bytes consumed, and
 * the caller keeps the rest for the next call.
 */
int smtp_reply_parse(struct smtp_reply *r, const char *buf, size_t len,
    size_t *used_out, const char **err_out);

/*
 * Writes the RFC 3463 status code of r into out: the enhanced code at the
 * start of the first line when its class matches the reply code, else
 * "C.0.0" from the first digit of the reply code.
 */
void smtp_reply_dsn(const struct smtp_reply *r, char *out, size_t size);

/* A next hop: "[host]:port", "[host]", "host:port" or "host". */
struct smtp_nexthop {
	char *host;
	char port[8];
	int bracketed;  /* 1: use the host's addresses, never its MX records */
};

/*
 * Parses nexthop text. An empty text uses fallback_domain (the recipient
 * domain) on port 25. Returns 0, or -1 with a message in *err_out (caller
 * frees) for a malformed text, an empty host or a port outside 1..65535.
 */
int smtp_nexthop_parse(const char *text, const char *fallback_domain,
    struct smtp_nexthop *out, char **err_out);
void smtp_nexthop_free(struct smtp_nexthop *nh);

/* An LMTP next hop: a UNIX socket path, or a host and port in inet. */
struct smtp_lmtp_hop {
	char *unix_path;            /* NULL for a TCP next hop */
	struct smtp_nexthop inet;   /* always bracketed: no MX lookup */
};

/*
 * Parses an LMTP next hop: "unix:PATH", "inet:HOST[:PORT]" or
 * "HOST[:PORT]" with HOST optionally in brackets. Returns 0, or -1 with
 * a message in *err_out (caller frees) for an empty text, an empty path
 * or host, or a port outside 1..65535.
 */
int smtp_lmtp_hop_parse(const char *text, struct smtp_lmtp_hop *out,
    char **err_out);
void smtp_lmtp_hop_free(struct smtp_lmtp_hop *hop);

/* Numeric addresses of a next hop, in the resolver's order. */
struct smtp_addr_list {
	char **addrs;
	size_t count;
};

/*
 * Looks up the A and AAAA records of nh->host (a literal address is used
 * as is). Returns 0; -1 when the name does not exist (permanent), -2 for a
 * temporary failure; both with a message in *err_out (caller frees).
 */
int smtp_nexthop_lookup(const struct smtp_nexthop *nh,
    struct smtp_addr_list *out, char **err_out);
void smtp_addr_list_free(struct smtp_addr_list *l);
/* Appends a copy of addr unless the list already contains it. */
void smtp_addr_list_add(struct smtp_addr_list *l, const char *addr);
/* 1 when the list contains addr (same numeric text). */
int smtp_addr_list_has(const struct smtp_addr_list *l, const char *addr);

/*
 * dns.c: MX, A and AAAA lookups with res_nquery() through one resolver
 * state, and the parsers of their answers.
 */
enum smtp_dns_status {
	SMTP_DNS_OK,
	SMTP_DNS_NXDOMAIN,  /* the name does not exist */
	SMTP_DNS_NODATA,    /* the name exists without records of the type */
	SMTP_DNS_TEMPFAIL   /* SERVFAIL, timeout, refusal or a malformed answer */
};

/* One MX record; host is "" for the root name ".". */
struct smtp_mx {
	unsigned preference;
	char *host;
};

struct smtp_mx_list {
	struct smtp_mx *items;
	size_t count;
};

void smtp_mx_list_free(struct smtp_mx_list *l);

/*
 * Sets up the resolver from /etc/resolv.conf (call before a chroot).
 * servers is smtp_dns_resolver_address: empty for the servers of
 * resolv.conf, else up to 3 IPv4 "address" or "address:port" items
 * separated by commas or blanks. Returns 0, or -1 with a message in
 * *err_out (caller frees).
 */
int smtp_dns_init(const char *servers, char **err_out);

/*
 * Parses the answer ans[0..len) to a query for name: the records of the
 * type that name, or the end of a CNAME chain from name, owns in the
 * answer section. Other statuses than SMTP_DNS_OK come with a message in
 * *err_out (caller frees); a truncated or malformed packet is
 * SMTP_DNS_TEMPFAIL.
 */
enum smtp_dns_status smtp_dns_parse_mx(const unsigned char *ans, size_t len,
    const char *name, struct smtp_mx_list *out, char **err_out);
/* type is ns_t_a or ns_t_aaaa; addresses are appended to out. */
enum smtp_dns_status smtp_dns_parse_addrs(const unsigned char *ans,
    size_t len, const char *name, int type, struct smtp_addr_list *out,
    char **err_out);

/* Queries the MX records of domain. Results as for smtp_dns_parse_mx. */
enum smtp_dns_status smtp_dns_lookup_mx(const char *domain,
    struct smtp_mx_list *out, char **err_out);
/*
 * Queries the A, then the AAAA records of host and appends the addresses
 * to out. SMTP_DNS_OK when either query found an address.
 */
enum smtp_dns_status smtp_dns_lookup_addrs(const char *host,
    struct smtp_addr_list *out, char **err_out);

/*
 * mx.c: the server addresses of a next hop (RFC 5321 section 5.1).
 */

/* One server address to try, with the host name it was found under. */
struct smtp_target {
	char *host;
	char *addr;
	unsigned preference;  /* of the MX record; 0 without MX */
};

struct smtp_target_list {
	struct smtp_target *items;
	size_t count;
};

void smtp_target_list_free(struct smtp_target_list *l);

/* This host, for finding MX records that point back at it. */
struct smtp_self {
	char *hostname;               /* myhostname */
	struct smtp_addr_list addrs;  /* numeric addresses of inet_interfaces */
};

/*
 * Fills self from myhostname and inet_interfaces ("all": every address
 * of every interface; "loopback-only"; or a list of addresses and host
 * names). Returns 0, or -1 with a message in *err_out (caller frees).
 */
int smtp_self_init(struct smtp_self *self, const char *hostname,
    const char *interfaces, char **err_out);
void smtp_self_free(struct smtp_self *self);

/*
 * Sorts MX records by preference and shuffles those of equal preference
 * (RFC 5321 section 5.1), using random().
 */
void smtp_mx_sort(struct smtp_mx_list *l);
/* 1 for a null MX (RFC 7505): a single record "." of preference 0. */
int smtp_mx_is_null(const struct smtp_mx_list *l);

/*
 * Looks up the addresses to try for nh: for a bracketed host or an IP
 * address, the host's own addresses; otherwise the sorted MX hosts'
 * addresses, or the domain's own addresses when it has no MX record.
 * MX hosts at or above the preference of one that is self are dropped.
 * At most address_limit addresses (0: no limit). Returns 0, or -1 with
 * the RFC 3463 code in *dsn_out (a static string; class 5 means bounce)
 * and a message in *err_out (caller frees).
 */
int smtp_route_lookup(const struct smtp_nexthop *nh,
    const struct smtp_self *self, long address_limit,
    struct smtp_target_list *out, const char **dsn_out, char **err_out);

/* Timeouts in milliseconds, from the smtp_*_timeout parameters. */
struct smtp_timeouts {
	int connect;
	int helo;
	int mail;
	int rcpt;
	int data_init;
	int data_xfer;
	int data_done;
	int quit;
};

/* Cause of the last I/O failure on a connection. */
enum smtp_io_error {
	SMTP_IO_OK = 0,
	SMTP_IO_TIMEOUT,  /* no reply or write progress in time */
	SMTP_IO_LOST,     /* end of file or a socket error */
	SMTP_IO_PROTO     /* a malformed reply */
};

/* Server capabilities from the EHLO reply. */
#define SMTP_CAP_PIPELINING 0x01
#define SMTP_CAP_SIZE 0x02
#define SMTP_CAP_8BITMIME 0x04
#define SMTP_CAP_ENHANCEDSTATUSCODES 0x08
#define SMTP_CAP_STARTTLS 0x10
#define SMTP_CAP_DSN 0x20

/* An open SMTP session with one server address. */
struct smtp_conn {
	int fd;
	char *nexthop;        /* the request's nexthop text, the cache key */
	char *host;           /* host name from the next hop */
	char addr[64];        /* numeric address */
	char port[8];
	char peer[320];       /* "host[addr]" */
	char relay[330];      /* "host[addr]:port" */
	struct sbuf in;       /* received bytes not yet parsed */
	unsigned caps;        /* SMTP_CAP_* */
	unsigned long long size_limit;   /* SIZE value; 0 when none given */
	enum smtp_io_error io_error;
	char io_detail[128];  /* errno text or parse error of the failure */
	long long idle_since_ms;         /* iox_now_ms() when cached */
	char tls[200];        /* "TLSv1.3 with cipher ...", "" without TLS */
	int no_tls;           /* 1: a handshake at level may failed, skip TLS */
	int unix_socket;      /* 1: an LMTP UNIX socket, never with TLS */
};

/*
 * Parses the lines of an EHLO reply (the first names the server) into
 * SMTP_CAP_* bits and the SIZE value. Keywords match case-insensitively.
 */
unsigned smtp_ehlo_parse(const struct smtp_reply *r,
    unsigned long long *size_out);

/* Wraps a connected socket in a session with empty fields. */
struct smtp_conn *smtp_conn_new(int fd);

/*
 * Reads one reply within timeout_ms. Returns 0, or -1 with c->io_error
 * and c->io_detail set.
 */
int smtp_conn_read_reply(struct smtp_conn *c, struct smtp_reply *r,
    int timeout_ms);
/* Writes len bytes within timeout_ms. Returns 0, or -1 as above. */
int smtp_conn_write(struct smtp_conn *c, const void *buf, size_t len,
    int timeout_ms);
/* Closes the socket and frees c; *c becomes NULL. */
void smtp_conn_free(struct smtp_conn **c);

/* One recipient of a request and its result. */
struct smtp_rcpt {
	size_t index;        /* position in the queue file */
	char *addr;          /* internal form */
	struct qrcpt *qr;    /* the queue file's record, or NULL when mismatched */
	int skip;            /* not to deliver: request.c set its result */
	int accepted;        /* RCPT got 2xx in the current transaction */
	int done;            /* a result is set */
	char status[8];      /* DELIVER_SENT, DELIVER_DEFER, DELIVER_BOUNCE */
	char dsn[16];
	char *text;
	char *remote_mta;    /* server whose reply gave the result, or NULL */
	char *remote_reply;  /* that reply for Diagnostic-Code, or NULL */
	const char *dsn_action; /* sent: success notice action (deliver.h) */
};

/* A delivery request with its open, share-locked queue file. */
struct smtp_request {
	char *qid;
	char *queue_file;
	char *sender;
	char *nexthop;
	struct smtp_rcpt *rcpts;
	size_t nrcpt;
	struct qenv *env;
	int qfd;
	char relay[330];     /* "host[addr]:port" of the session used, or "none" */
};

/*
 * Sets the result of one recipient unless it already has one. status is
 * DELIVER_*; text is copied with control characters replaced.
 */
void smtp_rcpt_result(struct smtp_rcpt *r, const char *status,
    const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Sets the same result on every recipient that has none yet. */
void smtp_request_fail_rest(struct smtp_request *req, const char *status,
    const char *dsn, const char *text);

/* The agent's settings and its cached connection. */
struct smtp_agent {
	struct smtp_timeouts timeouts;
	char *helo_name;          /* smtp_helo_name, or lmtp_lhlo_name */
	int lmtp;                 /* 1: LMTP mode (service name "lmtp") */
	char *bind_address;       /* NULL when smtp_bind_address is empty */
	long cache_time_ms;
	int ipc_timeout_ms;       /* for reading a request and replying */
	long mx_address_limit;    /* addresses tried per request; 0: no limit */
	long mx_session_limit;    /* connections opened per request; 0: no limit */
	struct smtp_self self;    /* for the MX loop check */
	struct smtp_conn *cached; /* idle connection kept for reuse, or NULL */
};

/*
 * Reads one request from qmgr on fd, delivers it and replies. Returns 0,
 * or -1 when the request could not be read or the reply not sent (logged).
 */
int smtp_request_serve(struct smtp_agent *agent, int fd);

/*
 * Delivers req over a new or cached connection and sets a result on
 * every recipient. Leaves a connection worth reusing in agent->cached.
 */
void smtp_deliver(struct smtp_agent *agent, struct smtp_request *req);

/*
 * Opens a session with the next hop of req: looks up its addresses and
 * tries each until one greets and completes EHLO or HELO. Returns the
 * session, or NULL after setting a result on every recipient.
 */
struct smtp_conn *smtp_session_open(struct smtp_agent *agent,
    struct smtp_request *req);
/* Sends RSET on a cached session. Returns 0 when the server replied 2xx. */
int smtp_session_reset(struct smtp_agent *agent, struct smtp_conn *c);
/* Sends QUIT (ignoring the outcome) and frees the session. */
void smtp_session_quit(struct smtp_agent *agent, struct smtp_conn **c);

/*
 * tls.c: after EHLO, sends STARTTLS when the TLS policy of the next hop
 * (smtp_tls_policy_maps, smtp_tls_security_level) calls for it and hands
 * the socket to tlsproxy. Returns 1 when TLS is on (c->fd is the
 * plaintext connection and the caller sends EHLO again), 0 to go on
 * without TLS, -1 after deferring every recipient without a result
 * (TLS required but not offered or refused, or the handshake or the
 * certificate check failed), -2 when the handshake failed at level may
 * (the connection is gone; the caller reconnects with c->no_tls set).
 * Blocks for up to tlsproxy_timeout.
 */
int smtp_tls_starttls(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req);

/*
 * auth.c: logs in to the server with AUTH when smtp_sasl_auth_enable is
 * on, the EHLO reply ehlo offers AUTH and smtp_sasl_password_maps has
 * credentials for the next hop (and, with smtp_sasl_tls_only, TLS is
 * on). Returns 1 when logged in, 0 to go on without AUTH, -1 after
 * setting a deferral on every recipient without a result (the server
 * rejected the login, or the exchange failed); the caller then closes
 * the session.
 */
int smtp_auth_login(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, const struct smtp_reply *ehlo);

/*
 * Runs MAIL, RCPT and DATA for req on c. Returns 1 when the session is
 * still in a clean state for another transaction, 0 when it must be
 * closed without QUIT (an I/O failure, or a server left in DATA mode).
 */
int smtp_transaction(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req);

/*
 * Reads the replies that follow the end of data in LMTP, one for each
 * recipient accepted by RCPT in RCPT order, and sets each recipient's
 * result: sent for 2xx, deferred for 4xx, bounced for 5xx. Returns 1,
 * or 0 after an I/O failure, which defers the recipients without a
 * reply yet (the caller then closes the session).
 */
int smtp_lmtp_data_replies(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req, struct smtp_reply *reply);

/*
 * Sets the deferral caused by the I/O failure on c, during stage (a
 * phrase such as "sending DATA"), on every recipient without a result.
 */
void smtp_fail_io(struct smtp_conn *c, struct smtp_request *req,
    const char *stage);

/* Encoder of a stored message (LF line ends) into DATA form. */
struct smtp_body_encoder {
	int at_line_start;   /* the next byte begins a line */
};

void smtp_body_init(struct smtp_body_encoder *e);
/*
 * Appends buf[0..len) to out with each LF as CRLF and a '.' added before
 * a '.' that starts a line (RFC 5321 4.5.2). Input may be split anywhere.
 * Returns 0, or -1 when out would exceed its cap.
 */
int smtp_body_encode(struct smtp_body_encoder *e, const char *buf,
    size_t len, struct sbuf *out);
/* Appends the end of data: CRLF when the last line was unfinished, then
 * ".\r\n". Returns 0 or -1 as above. */
int smtp_body_finish(struct smtp_body_encoder *e, struct sbuf *out);

/*
 * Streams the message of req (offset env->msg_offset, env->msg_size
 * bytes) to c in DATA form, including the final ".". Returns 0, or -1 with
 * c->io_error set. A queue file read error also defers every recipient
 * without a result, with the reason, and is logged.
 */
int smtp_body_send(struct smtp_agent *agent, struct smtp_conn *c,
    struct smtp_request *req);

#endif
