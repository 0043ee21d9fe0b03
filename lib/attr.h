/*
 * attr - the request/response format of every private and public socket.
 *
 * A record is a sequence of "name=value\n" lines followed by an empty
 * line. Names are [a-z0-9_]+. In values, '%', '\n', '\r' and NUL are
 * written as %25, %0A, %0D and %00, so any byte string round-trips. A
 * name may repeat (a list of recipients is several "rcpt" lines, kept in
 * order). Limits: ATTR_MAX_RECORD bytes per record, ATTR_MAX_ITEMS lines.
 * A file descriptor may travel with a record as SCM_RIGHTS data attached
 * to its first byte.
 *
 * Blocking programs use attr_stream_send/recv, which time out. Event-
 * driven programs feed received bytes to an attr_decoder and send the
 * output of attrs_encode() from their loop.
 */
#ifndef POSTERN_ATTR_H
#define POSTERN_ATTR_H

#include <stddef.h>
#include "sbuf.h"

#define ATTR_MAX_RECORD (256 * 1024)
#define ATTR_MAX_ITEMS 4096

struct attr_item {
	char *name;
	char *value;
	size_t value_len; /* values may hold NUL bytes */
};

struct attrs {
	struct attr_item *items;
	size_t count;
	size_t alloc;
};

struct attrs *attrs_new(void);
void attrs_free(struct attrs **a);
void attrs_add(struct attrs *a, const char *name, const char *value);
void attrs_addf(struct attrs *a, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void attrs_add_long(struct attrs *a, const char *name, long value);

/* First value of name, or NULL. */
const char *attrs_get(const struct attrs *a, const char *name);
/* First value of name parsed as a decimal long, or dflt when absent or
 * not a number. */
long attrs_get_long(const struct attrs *a, const char *name, long dflt);

/* Appends the wire form of a to out. Returns -1 with EMSGSIZE when the
 * record would exceed ATTR_MAX_RECORD. */
int attrs_encode(const struct attrs *a, struct sbuf *out);

/* Incremental decoder for event-driven readers. */
struct attr_decoder;
struct attr_decoder *attr_decoder_new(void);
void attr_decoder_free(struct attr_decoder **d);
/*
 * Consumes bytes from buf. Returns 1 when a record is complete (stored in
 * *out, caller frees; *used_out tells how many bytes were consumed, the
 * rest belongs to the next record), 0 when all len bytes were consumed and
 * more are needed, -1 on a malformed or oversized record (*err_out points
 * to a static message).
 */
int attr_decoder_feed(struct attr_decoder *d, const char *buf, size_t len,
    size_t *used_out, struct attrs **out, const char **err_out);

/* Blocking reader and writer with timeouts, for one connection. */
struct attr_stream;
/* Wraps fd; the stream does not close fd unless attr_stream_close is used. */
struct attr_stream *attr_stream_new(int fd);
void attr_stream_free(struct attr_stream **s);
/* Frees the stream and closes its descriptor. */
void attr_stream_close(struct attr_stream **s);
int attr_stream_fd(const struct attr_stream *s);
/*
 * Sends a record, with pass_fd attached when it is >= 0. Waits at most
 * timeout_ms for the socket to accept it. Returns 0, or -1 with errno
 * (ETIMEDOUT on timeout, EPIPE when the peer is gone).
 */
int attr_stream_send(struct attr_stream *s, const struct attrs *a,
    int pass_fd, int timeout_ms);
/*
 * Receives one record, waiting at most timeout_ms in total. A descriptor
 * that came with it is stored in *fd_out (else -1; fd_out may be NULL, in
 * which case a received descriptor is closed). Returns 1 with the record
 * in *out, 0 at end of file before any byte of a record, -1 with errno
 * (ETIMEDOUT, EPROTO for a malformed record, EMSGSIZE when too large).
 */
int attr_stream_recv(struct attr_stream *s, struct attrs **out, int *fd_out,
    int timeout_ms);

#endif
