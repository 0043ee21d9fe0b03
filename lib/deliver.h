/*
 * deliver - the request and reply between qmgr and the delivery agents
 * (local, smtp), as attribute records (attr.h) over private/TRANSPORT.
 *
 * Request, qmgr to agent:
 *   queue_id    the queue ID
 *   queue_file  the file, relative to queue_directory ("active/QID")
 *   sender      envelope sender, "" for the null sender
 *   transport   the master.cf service name that was chosen
 *   nexthop     next hop from resolve_addr(); may be ""
 *   rcpt        "INDEX ADDRESS", once per recipient of this request, where
 *               INDEX is the recipient's position in the queue file
 *
 * Reply, agent to qmgr, one line per recipient of the request:
 *   result      "INDEX STATUS DSN TEXT": STATUS is sent, defer or bounce;
 *               DSN is an RFC 3463 status code such as 2.0.0 or 5.1.1;
 *               TEXT is a one-line reason for logs, queue listings and
 *               bounces.
 *   remote_mta  "INDEX HOST" (optional): the server whose reply gave the
 *               result, for the Remote-MTA field of RFC 3464 reports.
 *   remote_reply "INDEX REPLY" (optional): that reply, "550 5.1.1 text",
 *               for the Diagnostic-Code field.
 *   dsn_action  "INDEX ACTION" (optional, sent recipients only): the
 *               RFC 3464 action a success notice reports, "delivered",
 *               "relayed" or "expanded", or "none" when the next hop took
 *               over the NOTIFY request (it offered DSN). Without it a
 *               sent recipient counts as "delivered".
 *
 * The agent opens the queue file itself and reads the message straight
 * from it. While delivering it holds a shared flock() on the file, and
 * after taking the lock it drops a request whose qmgr connection is
 * already closed (qmgr died; its successor will hand the recipient out
 * again). Before it replies it marks each "sent" recipient
 * QSTATUS_DELIVERED in the queue file with qfile_set_status(), so that a
 * crash of qmgr after the delivery never causes a second delivery.
 * qmgr records defer and bounce results.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stddef.h>

#define DELIVER_ATTR_QUEUE_ID "queue_id"
#define DELIVER_ATTR_QUEUE_FILE "queue_file"
#define DELIVER_ATTR_SENDER "sender"
#define DELIVER_ATTR_TRANSPORT "transport"
#define DELIVER_ATTR_NEXTHOP "nexthop"
#define DELIVER_ATTR_RCPT "rcpt"
#define DELIVER_ATTR_RESULT "result"
#define DELIVER_ATTR_REMOTE_MTA "remote_mta"
#define DELIVER_ATTR_REMOTE_REPLY "remote_reply"
#define DELIVER_ATTR_DSN_ACTION "dsn_action"

#define DELIVER_SENT "sent"
#define DELIVER_DEFER "defer"
#define DELIVER_BOUNCE "bounce"

/* Seconds qmgr waits for a reply before it defers the recipients. */
#define DELIVER_REPLY_TIMEOUT 3600

/* Parses "INDEX REST" (rcpt and result values). Returns 0 with the index
 * and a pointer into value for the rest, or -1 when malformed. */
int deliver_split_index(const char *value, size_t *index_out,
    const char **rest_out);

/* Parses the rest of a result value: "STATUS DSN TEXT". Copies STATUS
 * and DSN into the buffers and points *text_out into value. Returns 0 or
 * -1 when malformed. */
int deliver_parse_result(const char *rest, char *status, size_t status_size,
    char *dsn, size_t dsn_size, const char **text_out);

#endif
