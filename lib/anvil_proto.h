/*
 * anvil_proto - the records that smtpd and anvil exchange over
 * private/anvil, in the attribute format of attr.h.
 *
 * anvil counts, per ident ("SERVICE:ADDRESS", for example
 * "smtp:192.0.2.7"), the connections open now and the connections that
 * began in the current rate window of anvil_rate_time_unit.
 *
 *   request=connect  id=N  ident=SERVICE:ADDRESS
 *     reply: id=N  status=ok  count=C  rate=R
 *            (C and R include this connection)
 *     or:    id=N  status=fail  reason=TEXT  (nothing was counted)
 *   request=disconnect  ident=SERVICE:ADDRESS
 *     no reply; ends one connection counted on this socket.
 *
 * Counts belong to the socket that sent the connect. When that socket
 * closes (smtpd exits or crashes, or anvil restarts), anvil drops the
 * connections it counted, so a caller must not send a disconnect for a
 * connection that it counted on an earlier socket.
 */
#ifndef POSTERN_ANVIL_PROTO_H
#define POSTERN_ANVIL_PROTO_H

#define ANVIL_SOCKET_NAME "private/anvil"

#define ANVIL_ATTR_REQUEST "request"
#define ANVIL_ATTR_ID "id"
#define ANVIL_ATTR_IDENT "ident"
#define ANVIL_ATTR_STATUS "status"
#define ANVIL_ATTR_COUNT "count"
#define ANVIL_ATTR_RATE "rate"
#define ANVIL_ATTR_REASON "reason"

#define ANVIL_REQ_CONNECT "connect"
#define ANVIL_REQ_DISCONNECT "disconnect"

#define ANVIL_STATUS_OK "ok"
#define ANVIL_STATUS_FAIL "fail"

/* Longest ident: a master.cf service name, ':' and an IPv6 address. */
#define ANVIL_IDENT_MAX 200

#endif
