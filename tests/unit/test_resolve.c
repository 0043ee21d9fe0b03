/*
 * Unit tests of lib/resolve: address classes, transport_maps, relayhost
 * and recipient existence, with tables built in a temporary directory.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "maps.h"
#include "resolve.h"
#include "sbuf.h"
#include "testlib.h"

static char test_dir[] = "/tmp/postern-test-resolve-XXXXXX";

/* Checks that text is not NULL and contains part. */
#define CHECK_CONTAINS(text, part) do { \
	const char *text_ = (text); \
	if (text_ == NULL || strstr(text_, (part)) == NULL) { \
		printf("  %s:%d: %s is \"%s\", want it to contain \"%s\"\n", \
		    __FILE__, __LINE__, #text, text_ ? text_ : "(null)", (part)); \
		testlib_case_failed = 1; \
	} \
} while (0)

static void write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", test_dir, name);
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, fp);
	fclose(fp);
	free(path);
}

/* Writes and builds DIR/name as a hash table. */
static void build_table(const char *name, const char *text)
{
	char *spec = xasprintf("hash:%s/%s", test_dir, name);
	char *err = NULL;

	write_file(name, text);
	if (map_build(spec, &err) < 0) {
		printf("  building %s failed: %s\n", spec, err);
		testlib_case_failed = 1;
	}
	free(err);
	free(spec);
}

static void remove_test_dir(void)
{
	DIR *d = opendir(test_dir);
	struct dirent *e;

	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *path = xasprintf("%s/%s", test_dir, e->d_name);
		unlink(path);
		free(path);
	}
	closedir(d);
	rmdir(test_dir);
}

/* Runs before main(), which TEST_MAIN defines. */
__attribute__((constructor)) static void make_test_dir(void)
{
	log_init("test_resolve");
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	atexit(remove_test_dir);
}

/*
 * Loads main.cf text (with "DIR" replaced by the test directory) and runs
 * resolve_init(). Returns its result; the message, if any, in *err_out.
 */
static int load_config(const char *text, char **err_out)
{
	struct sbuf cf;
	char *err = NULL;

	sbuf_init(&cf, 0);
	for (const char *p = text; *p != '\0'; p++) {
		if (strncmp(p, "DIR", 3) == 0) {
			sbuf_puts(&cf, test_dir);
			p += 2;
		} else {
			sbuf_putc(&cf, *p);
		}
	}
	if (config_load_text(sbuf_cstr(&cf), "test main.cf", &err) < 0) {
		printf("  config: %s\n", err);
		testlib_case_failed = 1;
		free(err);
		err = NULL;
	}
	sbuf_free(&cf);
	int rc = resolve_init(&err);
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	return rc;
}

static const char base_cf[] =
	"myhostname = mail.example.test\n"
	"mydestination = localhost, $myhostname, .sub.local.test,\n"
	"    inline:{ tabled.test=yes }\n"
	"virtual_mailbox_domains = virtual.test, catchall.test\n"
	"virtual_mailbox_maps = inline:{ alice@virtual.test=alice/,\n"
	"    @catchall.test=all/ }\n"
	"virtual_alias_maps = inline:{ info@virtual.test=alice@virtual.test }\n"
	"relay_domains = relay.test\n"
	"relayhost = [192.0.2.1]:2525\n"
	"transport_maps =\n"
	"alias_maps = hash:DIR/aliases\n"
	"recipient_delimiter = +\n";

struct route_case {
	const char *addr;
	int addr_class;
	const char *transport;
	const char *nexthop;
	const char *recipient;
};

static void check_routes(const struct route_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct resolve_result r;
		char *err = NULL;

		if (resolve_addr(cases[i].addr, &r, &err) < 0) {
			printf("  case %zu %s: %s\n", i, cases[i].addr, err);
			testlib_case_failed = 1;
			free(err);
			continue;
		}
		if ((int)r.addr_class != cases[i].addr_class ||
		    strcmp(r.transport, cases[i].transport) != 0 ||
		    strcmp(r.nexthop, cases[i].nexthop) != 0 ||
		    strcmp(r.recipient, cases[i].recipient) != 0) {
			printf("  case %zu %s: got class %d %s %s %s, want %d %s %s "
			    "%s\n", i, cases[i].addr, (int)r.addr_class, r.transport,
			    r.nexthop, r.recipient, cases[i].addr_class,
			    cases[i].transport, cases[i].nexthop, cases[i].recipient);
			testlib_case_failed = 1;
		}
	}
}

TEST(test_resolve_classes)
{
	static const struct route_case cases[] = {
		{"user@localhost", ADDR_CLASS_LOCAL, "local", "localhost",
		    "user@localhost"},
		{"User@MAIL.Example.TEST", ADDR_CLASS_LOCAL, "local",
		    "mail.example.test", "User@MAIL.Example.TEST"},
		{"user@mail.example.test.", ADDR_CLASS_LOCAL, "local",
		    "mail.example.test", "user@mail.example.test."},
		{"bare", ADDR_CLASS_LOCAL, "local", "mail.example.test",
		    "bare@mail.example.test"},
		{"a@deep.Sub.local.test", ADDR_CLASS_LOCAL, "local",
		    "deep.sub.local.test", "a@deep.Sub.local.test"},
		{"a@Tabled.Test", ADDR_CLASS_LOCAL, "local", "tabled.test",
		    "a@Tabled.Test"},
		{"x@virtual.test", ADDR_CLASS_VIRTUAL, "local", "virtual.test",
		    "x@virtual.test"},
		{"x@relay.test", ADDR_CLASS_RELAY, "smtp", "[192.0.2.1]:2525",
		    "x@relay.test"},
		{"x@elsewhere.test", ADDR_CLASS_DEFAULT, "smtp", "[192.0.2.1]:2525",
		    "x@elsewhere.test"},
		/* ".sub.local.test" matches only subdomains. */
		{"a@sub.local.test", ADDR_CLASS_DEFAULT, "smtp", "[192.0.2.1]:2525",
		    "a@sub.local.test"},
		{"x@[192.0.2.7]", ADDR_CLASS_DEFAULT, "smtp", "[192.0.2.1]:2525",
		    "x@[192.0.2.7]"},
	};

	build_table("aliases", "postmaster: root\n");
	CHECK_INT(load_config(base_cf, NULL), 0);
	check_routes(cases, sizeof(cases) / sizeof(cases[0]));

	char *err = NULL;
	CHECK_INT(resolve_domain_class("RELAY.test", &err), ADDR_CLASS_RELAY);
	CHECK_INT(resolve_domain_class("virtual.test", &err), ADDR_CLASS_VIRTUAL);
	CHECK_INT(resolve_domain_class("localhost", &err), ADDR_CLASS_LOCAL);
	CHECK_INT(resolve_domain_class("other.test", &err), ADDR_CLASS_DEFAULT);
	CHECK_STR(err, NULL);

	struct resolve_result r;
	CHECK_INT(resolve_addr("", &r, &err), -1);
	CHECK(err != NULL);
	free(err);
}

TEST(test_resolve_default_nexthop)
{
	static const struct route_case cases[] = {
		{"x@Elsewhere.TEST", ADDR_CLASS_DEFAULT, "smtp", "elsewhere.test",
		    "x@Elsewhere.TEST"},
		/* relay_transport carries its own next hop. */
		{"x@relay.test", ADDR_CLASS_RELAY, "relay", "[198.51.100.1]",
		    "x@relay.test"},
		{"x@virtual.test", ADDR_CLASS_VIRTUAL, "virtual", "virtual.test",
		    "x@virtual.test"},
	};
	char *cf = xasprintf("%s%s", base_cf, "relayhost =\n"
	    "relay_transport = relay:[198.51.100.1]\n"
	    "virtual_transport = virtual\n");

	CHECK_INT(load_config(cf, NULL), 0);
	check_routes(cases, sizeof(cases) / sizeof(cases[0]));
	free(cf);
}

TEST(test_resolve_transport_maps_precedence)
{
	static const struct route_case cases[] = {
		{"special@route.test", ADDR_CLASS_DEFAULT, "smtp",
		    "[127.0.0.1]:2601", "special@route.test"},
		{"Special+tag@ROUTE.test", ADDR_CLASS_DEFAULT, "smtp",
		    "[127.0.0.1]:2601", "Special+tag@ROUTE.test"},
		{"other@route.test", ADDR_CLASS_DEFAULT, "smtp", "[127.0.0.1]:2602",
		    "other@route.test"},
		{"x@a.b.route.test", ADDR_CLASS_DEFAULT, "smtp", "[127.0.0.1]:2603",
		    "x@a.b.route.test"},
		{"x@unlisted.test", ADDR_CLASS_DEFAULT, "catchall",
		    "[192.0.2.1]:2525", "x@unlisted.test"},
		{"x@lmtp.test", ADDR_CLASS_DEFAULT, "lmtp", "[192.0.2.1]:2525",
		    "x@lmtp.test"},
		{"x@hoponly.test", ADDR_CLASS_DEFAULT, "smtp", "[192.0.2.9]",
		    "x@hoponly.test"},
		/* A local address routed elsewhere keeps its class. */
		{"user@localhost", ADDR_CLASS_LOCAL, "catchall", "localhost",
		    "user@localhost"},
	};

	build_table("aliases", "postmaster: root\n");
	build_table("transport",
	    "special@route.test  smtp:[127.0.0.1]:2601\n"
	    "route.test          smtp:[127.0.0.1]:2602\n"
	    ".route.test         smtp:[127.0.0.1]:2603\n"
	    "lmtp.test           lmtp:\n"
	    "hoponly.test        :[192.0.2.9]\n"
	    "*                   catchall\n");
	char *cf = xasprintf("%s%s", base_cf, "transport_maps = hash:DIR/transport\n");
	CHECK_INT(load_config(cf, NULL), 0);
	check_routes(cases, sizeof(cases) / sizeof(cases[0]));
	free(cf);
}

struct exists_case {
	const char *addr;
	int want;
};

static void check_exists(const struct exists_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *err = NULL;
		int got = resolve_recipient_exists(cases[i].addr, &err);

		if (got != cases[i].want) {
			printf("  case %zu %s: got %d, want %d (%s)\n", i,
			    cases[i].addr, got, cases[i].want, err ? err : "");
			testlib_case_failed = 1;
		}
		free(err);
	}
}

TEST(test_resolve_recipient_exists)
{
	static const struct exists_case cases[] = {
		{"root@localhost", 1},          /* unix:passwd.byname */
		{"ROOT@localhost", 1},
		{"sales@localhost", 1},         /* alias */
		{"Sales+promo@localhost", 1},   /* alias, extension dropped */
		{"nobody-postern-test@localhost", 0},
		{"Postmaster@mail.example.test", 1},
		{"postmaster+x@localhost", 1},
		{"alice@virtual.test", 1},      /* virtual_mailbox_maps */
		{"ALICE@Virtual.Test", 1},
		{"alice+tag@virtual.test", 1},
		{"info@virtual.test", 1},       /* virtual_alias_maps */
		{"ghost@virtual.test", 0},
		{"postmaster@virtual.test", 0},
		{"anyone@catchall.test", 1},    /* "@domain" */
		{"anyone@relay.test", 1},
		{"anyone@elsewhere.test", 1},
	};

	build_table("aliases", "sales: alice, bob\n");
	char *cf = xasprintf("%s%s", base_cf,
	    "local_recipient_maps = unix:passwd.byname $alias_maps\n");
	CHECK_INT(load_config(cf, NULL), 0);
	check_exists(cases, sizeof(cases) / sizeof(cases[0]));
	free(cf);
}

TEST(test_resolve_empty_local_recipient_maps)
{
	static const struct exists_case cases[] = {
		{"nobody-postern-test@localhost", 1},
		{"ghost@virtual.test", 0},
	};
	char *cf = xasprintf("%s%s", base_cf, "local_recipient_maps =\n");

	CHECK_INT(load_config(cf, NULL), 0);
	check_exists(cases, sizeof(cases) / sizeof(cases[0]));
	free(cf);
}

TEST(test_resolve_missing_table)
{
	char *err = NULL;
	char *cf = xasprintf("%s%s", base_cf,
	    "alias_maps = hash:DIR/unbuilt\n"
	    "local_recipient_maps = $alias_maps\n");

	write_file("unbuilt", "sales alice\n");
	CHECK_INT(load_config(cf, &err), -1);
	CHECK_CONTAINS(err, "local_recipient_maps");
	CHECK_CONTAINS(err, "postern map");
	free(err);

	/* Lookups that need the table fail as temporary errors; the others
	 * still work. */
	err = NULL;
	CHECK_INT(resolve_recipient_exists("sales@localhost", &err), -1);
	CHECK_CONTAINS(err, "unbuilt");
	free(err);
	CHECK_INT(resolve_recipient_exists("alice@virtual.test", &err), 1);
	free(err);
	struct resolve_result r;
	CHECK_INT(resolve_addr("sales@localhost", &r, &err), 0);
	free(err);

	/* Once built, a new resolve_init() finds it. */
	build_table("unbuilt", "sales alice\n");
	CHECK_INT(resolve_init(&err), 0);
	free(err);
	CHECK_INT(resolve_recipient_exists("sales@localhost", &err), 1);
	free(err);
	free(cf);
}

TEST(test_resolve_bad_domain_list)
{
	char *err = NULL;
	char *cf = xasprintf("%s%s", base_cf, "relay_domains = good.test, foo:bar\n");

	CHECK_INT(load_config(cf, &err), -1);
	CHECK_CONTAINS(err, "relay_domains");
	CHECK_CONTAINS(err, "foo:bar");
	free(err);
	err = NULL;
	/* Classes decided before the broken list still resolve. */
	CHECK_INT(resolve_domain_class("localhost", &err), ADDR_CLASS_LOCAL);
	CHECK_INT(resolve_domain_class("good.test", &err), -1);
	CHECK(err != NULL);
	free(err);
	free(cf);

	cf = xasprintf("%s%s", base_cf, "mydestination = inline:{ a=b\n");
	CHECK_INT(load_config(cf, &err), -1);
	CHECK_CONTAINS(err, "unclosed brace");
	free(err);
	free(cf);
}

TEST_MAIN(
	TEST_CASE(test_resolve_classes),
	TEST_CASE(test_resolve_default_nexthop),
	TEST_CASE(test_resolve_transport_maps_precedence),
	TEST_CASE(test_resolve_recipient_exists),
	TEST_CASE(test_resolve_empty_local_recipient_maps),
	TEST_CASE(test_resolve_missing_table),
	TEST_CASE(test_resolve_bad_domain_list))
