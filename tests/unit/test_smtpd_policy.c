/*
 * Unit tests of smtpd's restriction lists: parsing (smtpd/policy.c) and
 * access tables (smtpd/access.c), with no session and no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "policy.h"

#define PREFIX "<a@b.test>: Sender address rejected"

static int parse(struct smtpd_restriction_list *list, const char *value,
    char **err)
{
	list->param = "smtpd_sender_restrictions";
	*err = NULL;
	return smtpd_restrictions_parse(list, value, err);
}

TEST(test_smtpd_policy_parse_names)
{
	struct smtpd_restriction_list list = {0};
	char *err;

	CHECK_INT(parse(&list, "permit_mynetworks, permit_sasl_authenticated,"
	    "reject_unauth_destination reject", &err), 0);
	CHECK_INT(list.count, 4);
	CHECK_STR(policy_item_name(&list.items[0]), "permit_mynetworks");
	CHECK_STR(policy_item_name(&list.items[3]), "reject");
	CHECK(list.items[0].table == NULL);
	smtpd_restrictions_free(&list);

	CHECK_INT(parse(&list, "", &err), 0);
	CHECK_INT(list.count, 0);
	smtpd_restrictions_free(&list);

	/* Names match case-insensitively, as in main.cf. */
	CHECK_INT(parse(&list, "PERMIT_MYNETWORKS", &err), 0);
	CHECK_INT(list.count, 1);
	smtpd_restrictions_free(&list);
}

TEST(test_smtpd_policy_parse_tables)
{
	struct smtpd_restriction_list list = {0};
	char *err;

	CHECK_INT(parse(&list, "check_sender_access inline:{ a@b.test=REJECT, "
	    "c.test=OK }, reject_non_fqdn_sender, check_client_access "
	    "static:DUNNO", &err), 0);
	CHECK_INT(list.count, 3);
	CHECK_STR(policy_item_name(&list.items[0]), "check_sender_access");
	CHECK(list.items[0].table != NULL);
	CHECK(list.items[1].table == NULL);
	CHECK_STR(policy_item_name(&list.items[2]), "check_client_access");
	CHECK(list.items[2].table != NULL);
	smtpd_restrictions_free(&list);
}

TEST(test_smtpd_policy_parse_errors)
{
	static const struct {
		const char *value;
		const char *in_message;
	} cases[] = {
		{"permit_mynetworks, reject_everyone", "\"reject_everyone\""},
		{"check_client_access", "needs a table"},
		{"check_helo_access, permit", "needs a table"},
		{"check_sender_access nosuch:/etc/x", "needs a table"},
		{"check_sender_access hash:/nonexistent/postern/access",
		    "check_sender_access"},
		{"check_recipient_access inline:{ a=b", "invalid"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtpd_restriction_list list = {0};
		char *err;
		int rc = parse(&list, cases[i].value, &err);

		if (rc != -1 || err == NULL ||
		    strstr(err, cases[i].in_message) == NULL)
			printf("  case %zu: \"%s\": got %d \"%s\"\n", i,
			    cases[i].value, rc, err ? err : "(null)");
		CHECK_INT(rc, -1);
		CHECK(err != NULL && strstr(err, cases[i].in_message) != NULL);
		CHECK(err != NULL && strstr(err,
		    "smtpd_sender_restrictions") != NULL);
		CHECK_INT(list.count, 0);
		free(err);
	}
}

TEST(test_smtpd_policy_access_results)
{
	static const struct {
		const char *value;
		int rc;
		enum smtpd_policy_result result;
		const char *reply;   /* NULL: not checked */
	} cases[] = {
		{"OK", 0, SMTPD_POLICY_PERMIT, NULL},
		{"ok", 0, SMTPD_POLICY_PERMIT, NULL},
		{"  OK", 0, SMTPD_POLICY_PERMIT, NULL},
		{"250", 0, SMTPD_POLICY_PERMIT, NULL},
		{"DUNNO", 0, SMTPD_POLICY_DUNNO, NULL},
		{"REJECT", 0, SMTPD_POLICY_REJECT,
		    "554 5.7.1 " PREFIX ": Access denied"},
		{"reject Go away", 0, SMTPD_POLICY_REJECT,
		    "554 5.7.1 " PREFIX ": Go away"},
		{"REJECT 5.7.26 Bad origin", 0, SMTPD_POLICY_REJECT,
		    "554 5.7.26 " PREFIX ": Bad origin"},
		{"DEFER", 0, SMTPD_POLICY_DEFER,
		    "450 4.7.1 " PREFIX ": Try again later"},
		{"550 5.7.0 Not from there", 0, SMTPD_POLICY_REJECT,
		    "550 5.7.0 " PREFIX ": Not from there"},
		{"550", 0, SMTPD_POLICY_REJECT,
		    "550 5.7.1 " PREFIX ": Access denied"},
		{"421 Busy", 0, SMTPD_POLICY_DEFER, "421 4.7.1 " PREFIX ": Busy"},
		/* An enhanced code of another class is text, not a code. */
		{"550 4.7.0 odd", 0, SMTPD_POLICY_REJECT,
		    "550 5.7.1 " PREFIX ": 4.7.0 odd"},
		{"REJECTED", -1, SMTPD_POLICY_DEFER,
		    "451 4.3.5 Server configuration error"},
		{"", -1, SMTPD_POLICY_DEFER, NULL},
		{"600 no", -1, SMTPD_POLICY_DEFER, NULL},
		{"55x", -1, SMTPD_POLICY_DEFER, NULL},
		{"PERMIT", -1, SMTPD_POLICY_DEFER, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum smtpd_policy_result result = SMTPD_POLICY_PERMIT;
		char reply[SMTPD_REPLY_MAX] = "";
		int rc = access_parse_result(cases[i].value, PREFIX, &result,
		    reply, sizeof(reply));

		if (rc != cases[i].rc || result != cases[i].result)
			printf("  case %zu \"%s\": got rc %d result %d\n", i,
			    cases[i].value, rc, (int)result);
		CHECK_INT(rc, cases[i].rc);
		CHECK_INT(result, cases[i].result);
		if (cases[i].reply)
			CHECK_STR(reply, cases[i].reply);
	}
}

/* Joins a NULL-terminated key array with spaces into out. */
static const char *join(char **keys, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; keys[i]; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s",
		    i ? " " : "", keys[i]);
	free(keys);
	return out;
}

TEST(test_smtpd_policy_access_keys)
{
	char buf[512];

	CHECK_STR(join(access_address_keys("user@sub.example.com"), buf,
	    sizeof(buf)), "user@sub.example.com sub.example.com example.com "
	    "com user@");
	CHECK_STR(join(access_address_keys(""), buf, sizeof(buf)), "<>");
	CHECK_STR(join(access_address_keys("postmaster"), buf, sizeof(buf)),
	    "postmaster");
	CHECK_STR(join(access_domain_keys("mx.example.org"), buf,
	    sizeof(buf)), "mx.example.org example.org org");
	CHECK_STR(join(access_client_keys("host.example.com", "192.0.2.40"),
	    buf, sizeof(buf)), "host.example.com example.com com "
	    "192.0.2.40 192.0.2 192.0 192");
	CHECK_STR(join(access_client_keys("unknown", "192.0.2.40"), buf,
	    sizeof(buf)), "192.0.2.40 192.0.2 192.0 192");
	CHECK_STR(join(access_client_keys(NULL, "2001:db8::1"), buf,
	    sizeof(buf)), "2001:db8::1 2001:db8 2001");
}

TEST(test_smtpd_policy_access_check)
{
	struct smtpd_restriction_list list = {0};
	char reply[SMTPD_REPLY_MAX] = "";
	char *err;

	CHECK_INT(parse(&list, "check_sender_access inline:{ "
	    "vip@bad.test=DUNNO, bad.test=REJECT, good.test=OK, "
	    "odd.test=MAYBE }", &err), 0);
	CHECK_INT(access_check(list.items[0].table,
	    access_address_keys("x@mail.bad.test"), PREFIX, reply,
	    sizeof(reply)), SMTPD_POLICY_REJECT);
	CHECK_STR(reply, "554 5.7.1 " PREFIX ": Access denied");
	/* DUNNO on the full address stops the search for the domain. */
	CHECK_INT(access_check(list.items[0].table,
	    access_address_keys("vip@bad.test"), PREFIX, reply,
	    sizeof(reply)), SMTPD_POLICY_DUNNO);
	CHECK_INT(access_check(list.items[0].table,
	    access_address_keys("a@good.test"), PREFIX, reply,
	    sizeof(reply)), SMTPD_POLICY_PERMIT);
	CHECK_INT(access_check(list.items[0].table,
	    access_address_keys("a@other.test"), PREFIX, reply,
	    sizeof(reply)), SMTPD_POLICY_DUNNO);
	CHECK_INT(access_check(list.items[0].table,
	    access_address_keys("a@odd.test"), PREFIX, reply,
	    sizeof(reply)), SMTPD_POLICY_DEFER);
	CHECK_STR(reply, "451 4.3.5 Server configuration error");
	smtpd_restrictions_free(&list);
}

TEST_MAIN(
	TEST_CASE(test_smtpd_policy_parse_names),
	TEST_CASE(test_smtpd_policy_parse_tables),
	TEST_CASE(test_smtpd_policy_parse_errors),
	TEST_CASE(test_smtpd_policy_access_results),
	TEST_CASE(test_smtpd_policy_access_keys),
	TEST_CASE(test_smtpd_policy_access_check)
)
