/*
 * Restriction lists, all evaluated for each RCPT in this order:
 * smtpd_client_restrictions, smtpd_helo_restrictions,
 * smtpd_sender_restrictions, smtpd_relay_restrictions and
 * smtpd_recipient_restrictions. As with Postfix's default
 * smtpd_delay_reject = yes, a client, HELO or sender rejection is
 * reported at RCPT, when the client listens to the reply and the log
 * line can name the recipient. Each list is tried in order and the
 * first restriction that permits, rejects or defers decides that list.
 * A reject or defer is final; a permit moves on to the next list. When
 * no restriction decides, the recipient is permitted.
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
#include "maps.h"
#include "sbuf.h"
#include "smtpd.h"
#include "policy.h"

struct restriction {
	const char *name;
	restriction_fn check;
	int refuses_relay; /* 1 when it can stop relaying to any domain */
	int takes_table;   /* 1 when the next item names its table */
};

static struct smtpd_restriction_list client_list = {
	.param = "smtpd_client_restrictions",
	.subject = POLICY_SUBJECT_CLIENT};
static struct smtpd_restriction_list helo_list = {
	.param = "smtpd_helo_restrictions",
	.subject = POLICY_SUBJECT_HELO};
static struct smtpd_restriction_list sender_list = {
	.param = "smtpd_sender_restrictions",
	.subject = POLICY_SUBJECT_SENDER};
static struct smtpd_restriction_list relay_list = {
	.param = "smtpd_relay_restrictions",
	.subject = POLICY_SUBJECT_RECIPIENT};
static struct smtpd_restriction_list recipient_list = {
	.param = "smtpd_recipient_restrictions",
	.subject = POLICY_SUBJECT_RECIPIENT};

void policy_subject_text(const struct policy_request *req,
    enum policy_subject subject, char *out, size_t size)
{
	switch (subject) {
	case POLICY_SUBJECT_CLIENT:
		snprintf(out, size, "<%s[%s]>: Client host rejected",
		    req->sess->name ? req->sess->name : "unknown",
		    req->sess->addr);
		break;
	case POLICY_SUBJECT_HELO:
		snprintf(out, size, "<%s>: Helo command rejected",
		    req->sess->helo ? req->sess->helo : "");
		break;
	case POLICY_SUBJECT_SENDER:
		snprintf(out, size, "<%s>: Sender address rejected",
		    req->sender_text);
		break;
	default:
		snprintf(out, size, "<%s>: Recipient address rejected",
		    req->rcpt_text);
		break;
	}
}

static enum smtpd_policy_result check_permit_mynetworks(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	char prefix[SMTPD_REPLY_MAX];

	if (req->sess->in_mynetworks < 0) {
		/* A mynetworks table could not be read at connect time. */
		policy_subject_text(req, req->subject, prefix, sizeof(prefix));
		snprintf(reply, reply_size, "451 4.3.0 %s: Temporary lookup "
		    "failure", prefix);
		return SMTPD_POLICY_DEFER;
	}
	return req->sess->in_mynetworks ? SMTPD_POLICY_PERMIT :
	    SMTPD_POLICY_DUNNO;
}

static enum smtpd_policy_result check_permit_sasl_authenticated(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	return req->sess->sasl_user ? SMTPD_POLICY_PERMIT : SMTPD_POLICY_DUNNO;
}

/* 1 when the local part of addr (internal form) routes the mail on by
 * itself: "user%host", "host!user" or a quoted "user@host". */
static int policy_sender_routed(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t local_len = at ? (size_t)(at - addr) : strlen(addr);

	for (size_t i = 0; i < local_len; i++)
		if (addr[i] == '@' || addr[i] == '%' || addr[i] == '!')
			return 1;
	return 0;
}

static enum smtpd_policy_result check_reject_unauth_destination(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	switch (req->res->addr_class) {
	case ADDR_CLASS_LOCAL:
	case ADDR_CLASS_VIRTUAL:
		return SMTPD_POLICY_DUNNO;
	case ADDR_CLASS_RELAY:
		/* The relay_domains host may honour the routing in the local
		 * part and pass the mail to any domain, as Postfix assumes. */
		if (!policy_sender_routed(req->rcpt))
			return SMTPD_POLICY_DUNNO;
		snprintf(reply, reply_size, "554 5.7.1 <%s>: Relay access denied",
		    req->rcpt_text);
		return SMTPD_POLICY_REJECT;
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
	char prefix[SMTPD_REPLY_MAX];

	policy_subject_text(req, req->subject, prefix, sizeof(prefix));
	snprintf(reply, reply_size, "554 5.7.1 %s: Access denied", prefix);
	return SMTPD_POLICY_REJECT;
}

static enum smtpd_policy_result check_defer(
    const struct policy_request *req, char *reply, size_t reply_size)
{
	char prefix[SMTPD_REPLY_MAX];

	policy_subject_text(req, req->subject, prefix, sizeof(prefix));
	snprintf(reply, reply_size, "450 4.7.1 %s: Try again later", prefix);
	return SMTPD_POLICY_DEFER;
}

static const struct restriction restriction_table[] = {
	{"permit_mynetworks", check_permit_mynetworks, 0, 0},
	{"permit_sasl_authenticated", check_permit_sasl_authenticated, 0, 0},
	{"reject_unauth_destination", check_reject_unauth_destination, 1, 0},
	{"check_client_access", restriction_check_client_access, 0, 1},
	{"check_helo_access", restriction_check_helo_access, 0, 1},
	{"check_sender_access", restriction_check_sender_access, 0, 1},
	{"check_recipient_access", restriction_check_recipient_access, 0, 1},
	{"reject_non_fqdn_sender", restriction_reject_non_fqdn_sender, 0, 0},
	{"reject_non_fqdn_recipient", restriction_reject_non_fqdn_recipient,
	    0, 0},
	{"reject_sender_login_mismatch",
	    restriction_reject_sender_login_mismatch, 0, 0},
	{"reject_plaintext_session", restriction_reject_plaintext_session,
	    0, 0},
	{"permit", check_permit, 0, 0},
	{"reject", check_reject, 1, 0},
	{"defer", check_defer, 1, 0},
	{NULL, NULL, 0, 0}
};

static const struct restriction *restriction_find(const char *name)
{
	for (const struct restriction *r = restriction_table; r->name; r++)
		if (strcasecmp(r->name, name) == 0)
			return r;
	return NULL;
}

const char *policy_item_name(const struct restriction_item *item)
{
	return item->r->name;
}

/* Appends the names of every restriction to out, for error messages. */
static void restriction_names(struct sbuf *out)
{
	for (const struct restriction *r = restriction_table; r->name; r++)
		sbuf_printf(out, "%s%s", out->len ? ", " : "", r->name);
}

int smtpd_restrictions_parse(struct smtpd_restriction_list *list,
    const char *value, char **err_out)
{
	size_t n;
	char *err = NULL;
	char **names = map_split_list(value, &n, &err);

	if (names == NULL) {
		*err_out = xasprintf("invalid %s: %s", list->param, err);
		free(err);
		return -1;
	}
	list->items = xcalloc(n + 1, sizeof(*list->items));
	list->count = 0;
	for (size_t i = 0; i < n; i++) {
		struct restriction_item *item = &list->items[list->count];

		item->r = restriction_find(names[i]);
		if (item->r == NULL) {
			struct sbuf known;

			sbuf_init(&known, 4096);
			restriction_names(&known);
			*err_out = xasprintf("unknown restriction \"%s\" in %s; "
			    "known are %s", names[i], list->param, known.data);
			sbuf_free(&known);
			goto fail;
		}
		list->count++;
		if (!item->r->takes_table)
			continue;
		if (i + 1 >= n || !map_spec_valid(names[i + 1])) {
			*err_out = xasprintf("%s in %s needs a table such as "
			    "hash:/etc/postern/access after it", names[i],
			    list->param);
			goto fail;
		}
		item->table = maplist_open(names[++i], &err);
		if (item->table == NULL) {
			*err_out = xasprintf("%s in %s: %s", names[i - 1],
			    list->param, err);
			free(err);
			goto fail;
		}
	}
	free(names);
	return 0;

fail:
	free(names);
	smtpd_restrictions_free(list);
	return -1;
}

void smtpd_restrictions_free(struct smtpd_restriction_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		maplist_close(&list->items[i].table);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static void list_parse(struct smtpd_restriction_list *list)
{
	char *err = NULL;

	if (smtpd_restrictions_parse(list, config_str(list->param), &err) < 0)
		log_fatal("%s", err);
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i].r->check ==
		    restriction_reject_sender_login_mismatch)
			restriction_login_maps_init();
}

/* 1 when a restriction that can refuse relaying comes before any
 * unconditional permit in the list. */
static int list_refuses_relay(const struct smtpd_restriction_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		if (list->items[i].r->refuses_relay)
			return 1;
		if (list->items[i].r->check == check_permit)
			return 0;
	}
	return 0;
}

void smtpd_policy_init(void)
{
	list_parse(&client_list);
	list_parse(&helo_list);
	list_parse(&sender_list);
	list_parse(&relay_list);
	list_parse(&recipient_list);
	if (!list_refuses_relay(&relay_list) &&
	    !list_refuses_relay(&recipient_list))
		log_fatal("smtpd_relay_restrictions and "
		    "smtpd_recipient_restrictions would allow open relaying: "
		    "add reject_unauth_destination to one of them");
}

static enum smtpd_policy_result list_eval(
    const struct smtpd_restriction_list *list,
    const struct policy_request *req, char *reply, size_t reply_size)
{
	struct policy_request item_req = *req;

	item_req.subject = list->subject;
	for (size_t i = 0; i < list->count; i++) {
		enum smtpd_policy_result r;

		item_req.table = list->items[i].table;
		r = list->items[i].r->check(&item_req, reply, reply_size);

		if (r != SMTPD_POLICY_DUNNO)
			return r;
	}
	return SMTPD_POLICY_DUNNO;
}

enum smtpd_policy_result smtpd_policy_check_rcpt(struct smtpd_session *sess,
    const char *rcpt, const struct resolve_result *res, char *reply,
    size_t reply_size)
{
	const struct smtpd_restriction_list *lists[] = {&client_list,
	    &helo_list, &sender_list, &relay_list, &recipient_list};
	struct policy_request req = {.sess = sess, .rcpt = rcpt, .res = res};
	char rcpt_text[ADDR_MAX_PATH + 1], sender_text[ADDR_MAX_PATH + 1];
	char *ext = addr_externalize(rcpt);

	str_sanitize(rcpt_text, sizeof(rcpt_text), ext, strlen(ext));
	free(ext);
	req.rcpt_text = rcpt_text;
	req.sender = sess->env && sess->env->sender ? sess->env->sender : "";
	ext = addr_externalize(req.sender);
	str_sanitize(sender_text, sizeof(sender_text), ext, strlen(ext));
	free(ext);
	req.sender_text = sender_text;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		enum smtpd_policy_result r = list_eval(lists[i], &req, reply,
		    reply_size);

		if (r == SMTPD_POLICY_REJECT || r == SMTPD_POLICY_DEFER)
			return r;
	}
	return SMTPD_POLICY_PERMIT;
}
