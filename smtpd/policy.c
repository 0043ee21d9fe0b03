/*
 * Restriction lists: smtpd_relay_restrictions, then
 * smtpd_recipient_restrictions, evaluated for each RCPT. Each list is
 * tried in order and the first restriction that permits, rejects or
 * defers decides that list. A reject or defer in the relay list is
 * final; a permit there moves on to the recipient list. When no
 * restriction decides, the recipient is permitted.
 *
 * New restrictions are added to restriction_table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "sbuf.h"
#include "smtpd.h"

struct policy_request {
	struct smtpd_session *sess;
	const char *rcpt;                /* internal form */
	const char *rcpt_text;           /* external form, sanitized */
	const struct resolve_result *res;
};

typedef enum smtpd_policy_result (*restriction_fn)(
    const struct policy_request *req, char *reply, size_t reply_size);

struct restriction {
	const char *name;
	restriction_fn check;
	int refuses_relay; /* 1 when it can stop relaying to any domain */
};

struct restriction_list {
	const char *param;
	const struct restriction **items;
	size_t count;
};

static struct restriction_list relay_list = {
	.param = "smtpd_relay_restrictions"};
static struct restriction_list recipient_list = {
	.param = "smtpd_recipient_restrictions"};

static enum smtpd_policy_result check_permit_mynetworks(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	return req->sess->in_mynetworks ? SMTPD_POLICY_PERMIT :
	    SMTPD_POLICY_DUNNO;
}

/* No client can authenticate until AUTH is implemented, so this never
 * matches. */
static enum smtpd_policy_result check_permit_sasl_authenticated(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	return SMTPD_POLICY_DUNNO;
}

static enum smtpd_policy_result check_reject_unauth_destination(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	switch (req->res->addr_class) {
	case ADDR_CLASS_LOCAL:
	case ADDR_CLASS_VIRTUAL:
	case ADDR_CLASS_RELAY:
		return SMTPD_POLICY_DUNNO;
	default:
		snprintf(reply, reply_size, "554 5.7.1 <%s>: Relay access denied",
		    req->rcpt_text);
		return SMTPD_POLICY_REJECT;
	}
}

static enum smtpd_policy_result check_permit(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	return SMTPD_POLICY_PERMIT;
}

static enum smtpd_policy_result check_reject(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	snprintf(reply, reply_size,
	    "554 5.7.1 <%s>: Recipient address rejected: Access denied",
	    req->rcpt_text);
	return SMTPD_POLICY_REJECT;
}

static enum smtpd_policy_result check_defer(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	snprintf(reply, reply_size,
	    "450 4.7.1 <%s>: Recipient address rejected: Try again later",
	    req->rcpt_text);
	return SMTPD_POLICY_DEFER;
}

static const struct restriction restriction_table[] = {
	{"permit_mynetworks", check_permit_mynetworks, 0},
	{"permit_sasl_authenticated", check_permit_sasl_authenticated, 0},
	{"reject_unauth_destination", check_reject_unauth_destination, 1},
	{"permit", check_permit, 0},
	{"reject", check_reject, 1},
	{"defer", check_defer, 1},
	{NULL, NULL, 0}
};

static const struct restriction *restriction_find(const char *name)
{
	for (const struct restriction *r = restriction_table; r->name; r++)
		if (strcasecmp(r->name, name) == 0)
			return r;
	return NULL;
}

static void list_parse(struct restriction_list *list)
{
	size_t n;
	char **names = config_list(list->param, &n);

	list->items = xcalloc(n + 1, sizeof(*list->items));
	list->count = n;
	for (size_t i = 0; i < n; i++) {
		list->items[i] = restriction_find(names[i]);
		if (list->items[i] == NULL)
			log_fatal("unknown restriction \"%s\" in %s; known are "
			    "permit_mynetworks, permit_sasl_authenticated, "
			    "reject_unauth_destination, permit, reject, defer",
			    names[i], list->param);
	}
	free(names);
}

/* 1 when a restriction that can refuse relaying comes before any
 * unconditional permit in the list. */
static int list_refuses_relay(const struct restriction_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		if (list->items[i]->refuses_relay)
			return 1;
		if (list->items[i]->check == check_permit)
			return 0;
	}
	return 0;
}

void smtpd_policy_init(void)
{
	list_parse(&relay_list);
	list_parse(&recipient_list);
	if (!list_refuses_relay(&relay_list) &&
	    !list_refuses_relay(&recipient_list))
		log_fatal("smtpd_relay_restrictions and "
		    "smtpd_recipient_restrictions would allow open relaying: "
		    "add reject_unauth_destination to one of them");
}

static enum smtpd_policy_result list_eval(const struct restriction_list *list,
    const struct policy_request *req, char *reply, size_t reply_size)
{
	for (size_t i = 0; i < list->count; i++) {
		enum smtpd_policy_result r = list->items[i]->check(req, reply,
		    reply_size);

		if (r != SMTPD_POLICY_DUNNO)
			return r;
	}
	return SMTPD_POLICY_DUNNO;
}

enum smtpd_policy_result smtpd_policy_check_rcpt(struct smtpd_session *sess,
    const char *rcpt, const struct resolve_result *res, char *reply,
    size_t reply_size)
{
	struct policy_request req = {sess, rcpt, NULL, res};
	char *ext = addr_externalize(rcpt);
	char text[ADDR_MAX_PATH + 1];
	enum smtpd_policy_result r;

	str_sanitize(text, sizeof(text), ext, strlen(ext));
	free(ext);
	req.rcpt_text = text;

	r = list_eval(&relay_list, &req, reply, reply_size);
	if (r == SMTPD_POLICY_REJECT || r == SMTPD_POLICY_DEFER)
		return r;
	r = list_eval(&recipient_list, &req, reply, reply_size);
	if (r == SMTPD_POLICY_REJECT || r == SMTPD_POLICY_DEFER)
		return r;
	return SMTPD_POLICY_PERMIT;
}
