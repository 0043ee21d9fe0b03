/*
 * Unit tests of lib/config.c: main.cf syntax, expansion, computed
 * defaults, typed getters and their fatal exits, overrides, printing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "config.h"
#include "log.h"

/* Output and exit status of a function run in a child process. */
struct child_result {
	int exited;     /* 1 when it called exit() */
	int status;     /* exit status, or the signal number */
	char output[4096];
};

/* Runs fn in a child with standard error captured, so that fatal exits
 * and aborts can be tested. */
static void run_child(void (*fn)(void), struct child_result *r)
{
	int fds[2];

	memset(r, 0, sizeof(*r));
	if (pipe(fds) < 0)
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		fn();
		_exit(0);
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(r->output) - 1 &&
	    (n = read(fds[0], r->output + len, sizeof(r->output) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	r->exited = WIFEXITED(status);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
}

static int load(const char *text)
{
	char *err = NULL;
	int rc = config_load_text(text, "main.cf", &err);

	free(err);
	return rc;
}

TEST(test_config_defaults)
{
	CHECK_INT(load(""), 0);
	CHECK_STR(config_str("message_size_limit"), "10240000");
	CHECK_INT(config_int("message_size_limit"), 10240000);
	CHECK_STR(config_raw("myorigin"), "$myhostname");
	CHECK_STR(config_str("myorigin"), config_str("myhostname"));
	CHECK_STR(config_str("queue_directory"), POSTERN_QUEUE_DIR);
	CHECK_STR(config_str("daemon_directory"), POSTERN_DAEMON_DIR);
	CHECK_INT(config_is_set("relayhost"), 0);
	CHECK(config_known("mynetworks"));
	CHECK(!config_known("no_such_parameter"));
}

TEST(test_config_computed_hostname)
{
	CHECK_INT(load(""), 0);
	const char *host = config_str("myhostname");
	const char *dot = strchr(host, '.');
	CHECK(dot != NULL);
	if (dot != NULL)
		CHECK_STR(config_str("mydomain"), dot + 1);

	CHECK_INT(load("myhostname = mx1.mail.example.test\n"), 0);
	CHECK_STR(config_str("mydomain"), "mail.example.test");
	CHECK_STR(config_str("mydestination"),
	    "mx1.mail.example.test, localhost.mail.example.test, localhost");

	CHECK_INT(load("myhostname = single\n"), 0);
	CHECK_STR(config_str("mydomain"), "localdomain");
}

TEST(test_config_expansion)
{
	CHECK_INT(load(
	    "myhostname = mail.example.test\n"
	    "relayhost = [relay.$mydomain]:25\n"
	    "relay_domains = ${mydomain}x $$literal a$ $\n"
	    "smtpd_banner = ${unknown_name}-$also_unknown-end\n"
	    "transport_maps = ${mydomain\n"), 0);
	CHECK_STR(config_str("relayhost"), "[relay.example.test]:25");
	CHECK_STR(config_raw("relayhost"), "[relay.$mydomain]:25");
	CHECK_STR(config_str("relay_domains"), "example.testx $literal a$ $");
	CHECK_STR(config_str("smtpd_banner"), "--end");
	CHECK_STR(config_str("transport_maps"), "${mydomain");

	char *s = config_expand("<$myhostname>");
	CHECK_STR(s, "<mail.example.test>");
	free(s);
}

TEST(test_config_expansion_loop)
{
	CHECK_INT(load(
	    "relayhost = $relay_domains\n"
	    "relay_domains = x$relayhost\n"
	    "transport_maps = $transport_maps\n"), 0);
	/* The loop is cut: each value ends in an empty expansion. */
	CHECK(strlen(config_str("relayhost")) <= 21);
	CHECK(strspn(config_str("relayhost"), "x") == strlen(config_str("relayhost")));
	CHECK_STR(config_str("transport_maps"), "");
	CHECK_STR(config_str("mail_name"), "Postern");
}

TEST(test_config_continuation_and_comments)
{
	CHECK_INT(load(
	    "# a comment\n"
	    "\n"
	    "   # an indented comment\n"
	    "mydestination = a,\n"
	    "    b,\n"
	    "\tc\n"
	    "# a comment between continuations\n"
	    "  d\n"
	    "mynetworks=10.0.0.0/8 # kept: '#' only starts a comment line\r\n"
	    "relayhost =\n"), 0);
	CHECK_STR(config_str("mydestination"), "a, b, c d");
	CHECK_STR(config_str("mynetworks"),
	    "10.0.0.0/8 # kept: '#' only starts a comment line");
	CHECK_STR(config_str("relayhost"), "");
	CHECK_INT(config_is_set("relayhost"), 1);

	size_t n = 0;
	char **items = config_list("mydestination", &n);
	CHECK_INT(n, 4);
	CHECK_STR(items[0], "a");
	CHECK_STR(items[3], "d");
	free(items);
}

TEST(test_config_later_line_wins)
{
	CHECK_INT(load("relayhost = one\nrelayhost = two\n"), 0);
	CHECK_STR(config_str("relayhost"), "two");
}

TEST(test_config_unknown_name_ignored)
{
	CHECK_INT(load("no_such_parameter = 1\nrelayhost = x\n"), 0);
	CHECK_STR(config_str("relayhost"), "x");
}

TEST(test_config_syntax_errors)
{
	static const struct {
		const char *text;
		const char *message;
	} cases[] = {
		{"= value\n", "main.cf, line 1: missing parameter name"},
		{"relayhost = a\nname without equals\n", "main.cf, line 2: missing '='"},
		{"  leading = continuation\n", "main.cf, line 1: continuation line"},
		{"my name = x\n", "main.cf, line 1: invalid parameter name"},
		{"relayhost = a\n\n=\n", "main.cf, line 3: missing parameter name"},
		{"bad-name = x\n", "main.cf, line 1: invalid parameter name"},
	};

	CHECK_INT(load("relayhost = kept\n"), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;
		int rc = config_load_text(cases[i].text, "main.cf", &err);
		if (rc != -1 || err == NULL ||
		    strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
			printf("  case %zu: rc %d, message \"%s\"\n", i, rc,
			    err ? err : "(null)");
		CHECK_INT(rc, -1);
		CHECK(err != NULL);
		if (err != NULL)
			CHECK(strncmp(err, cases[i].message,
			    strlen(cases[i].message)) == 0);
		free(err);
		/* A failed load leaves the previous values in place. */
		CHECK_STR(config_str("relayhost"), "kept");
	}
}

TEST(test_config_truncated_input)
{
	const char *text = "myhostname = mail.example.test\n"
	    "mydestination = $myhostname,\n  ${mydomain}\n# c\n"
	    "relayhost = [relay]:25\n";
	size_t len = strlen(text);

	/* Every prefix either loads or fails cleanly with a message. */
	for (size_t i = 0; i <= len; i++) {
		char *prefix = strndup(text, i);
		char *err = NULL;
		int rc = config_load_text(prefix, "main.cf", &err);
		if (rc != 0 && err == NULL)
			printf("  prefix %zu: failure without a message\n", i);
		CHECK(rc == 0 || err != NULL);
		free(err);
		free(prefix);
	}
}

TEST(test_config_time_units)
{
	static const struct {
		const char *value;
		long seconds;
	} cases[] = {
		{"300s", 300}, {"5m", 300}, {"1h", 3600}, {"5d", 432000},
		{"1w", 604800}, {"42", 42}, {"0", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "queue_run_delay = %s\n", cases[i].value);
		CHECK_INT(load(text), 0);
		if (config_time("queue_run_delay") != cases[i].seconds)
			printf("  case %zu: \"%s\"\n", i, cases[i].value);
		CHECK_INT(config_time("queue_run_delay"), cases[i].seconds);
	}
}

static const char *bad_value;

static void child_time(void)
{
	char text[128];

	setenv("POSTERN_LOG_STDERR", "1", 1);
	log_init("test");
	snprintf(text, sizeof(text), "queue_run_delay = %s\n", bad_value);
	load(text);
	config_time("queue_run_delay");
}

TEST(test_config_time_invalid_is_fatal)
{
	static const char *const values[] = {
		"5x", "", "m", "5mm", "-5", "5 m", "5.5h", "99999999999999999999w",
	};
	struct child_result r;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		bad_value = values[i];
		run_child(child_time, &r);
		if (!r.exited || r.status != 1)
			printf("  case %zu: \"%s\" was accepted\n", i, values[i]);
		CHECK_INT(r.exited, 1);
		CHECK_INT(r.status, 1);
		CHECK(strstr(r.output, "fatal: invalid value") != NULL);
		CHECK(strstr(r.output, "queue_run_delay") != NULL);
		CHECK(strstr(r.output, "300s, 5m, 1h, 5d or 1w") != NULL);
	}
}

TEST(test_config_bool_values)
{
	static const struct {
		const char *value;
		int result;
	} cases[] = {
		{"yes", 1}, {"no", 0}, {"YES", 1}, {"True", 1}, {"false", 0},
		{"on", 1}, {"off", 0}, {"1", 1}, {"0", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "disable_vrfy_command = %s\n",
		    cases[i].value);
		CHECK_INT(load(text), 0);
		CHECK_INT(config_bool("disable_vrfy_command"), cases[i].result);
	}
}

static void child_bool(void)
{
	setenv("POSTERN_LOG_STDERR", "1", 1);
	log_init("test");
	load("disable_vrfy_command = maybe\n");
	config_bool("disable_vrfy_command");
}

static void child_int(void)
{
	setenv("POSTERN_LOG_STDERR", "1", 1);
	log_init("test");
	load("message_size_limit = 10MB\n");
	config_int("message_size_limit");
}

static void child_unknown_getter(void)
{
	setenv("POSTERN_LOG_STDERR", "1", 1);
	log_init("test");
	config_str("no_such_parameter");
}

TEST(test_config_bad_values_are_fatal)
{
	struct child_result r;

	run_child(child_bool, &r);
	CHECK_INT(r.exited, 1);
	CHECK_INT(r.status, 1);
	CHECK(strstr(r.output, "invalid value \"maybe\" for parameter "
	    "disable_vrfy_command: expected yes or no") != NULL);

	run_child(child_int, &r);
	CHECK_INT(r.exited, 1);
	CHECK_INT(r.status, 1);
	CHECK(strstr(r.output, "\"10MB\" for parameter message_size_limit") != NULL);

	run_child(child_unknown_getter, &r);
	CHECK_INT(r.exited, 0);
	CHECK_INT(r.status, SIGABRT);
	CHECK(strstr(r.output, "panic:") != NULL);
}

static void child_overrides(void)
{
	int failed = 0;

	load("relayhost = from-file\nmyhostname = a.example.test\n");
	failed |= config_override("relayhost = [override]:25") != 0;
	failed |= strcmp(config_str("relayhost"), "[override]:25") != 0;
	failed |= config_override("no equals sign") != -1;
	failed |= config_override("no_such_parameter=1") != 0;
	failed |= config_override("mydomain=over.test") != 0;
	failed |= strcmp(config_str("mydomain"), "over.test") != 0;
	/* Overrides survive a reload of main.cf. */
	load("relayhost = changed\n");
	failed |= strcmp(config_str("relayhost"), "[override]:25") != 0;
	failed |= config_is_set("relayhost") != 1;
	_exit(failed ? 3 : 0);
}

TEST(test_config_overrides)
{
	struct child_result r;

	/* Overrides cannot be removed, so they run in a child. */
	run_child(child_overrides, &r);
	CHECK_INT(r.exited, 1);
	CHECK_INT(r.status, 0);
}

TEST(test_config_load_directory)
{
	char dir[] = "/tmp/test_config.XXXXXX";
	char path[64], *err = NULL;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_INT(config_load(dir, &err), -1);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "main.cf") != NULL);
	free(err);
	err = NULL;

	snprintf(path, sizeof(path), "%s/main.cf", dir);
	FILE *fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp != NULL) {
		fputs("relayhost = [file]\nx\n", fp);
		fclose(fp);
	}
	CHECK_INT(config_load(dir, &err), -1);
	CHECK(err != NULL);
	if (err != NULL)
		CHECK(strstr(err, "main.cf, line 2") != NULL);
	free(err);
	err = NULL;

	fp = fopen(path, "w");
	if (fp != NULL) {
		fputs("relayhost = [file]\n", fp);
		fclose(fp);
	}
	CHECK_INT(config_load(dir, &err), 0);
	CHECK_STR(config_dir(), dir);
	CHECK_STR(config_str("config_directory"), dir);
	CHECK_STR(config_str("relayhost"), "[file]");
	unlink(path);
	rmdir(dir);
}

/* Returns what config_print wrote. */
static char *print_to_string(int what, char *const *names, int *rc_out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);

	*rc_out = config_print(mem, what, names);
	fclose(mem);
	return buf;
}

TEST(test_config_print_modes)
{
	int rc;
	char *out;

	CHECK_INT(load("relayhost = [r]\nmydestination = $myhostname\n"), 0);
	out = print_to_string(1, NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(out, "mydestination = $myhostname\nrelayhost = [r]\n");
	free(out);

	out = print_to_string(2, (char *[]){"relayhost", NULL}, &rc);
	CHECK_STR(out, "relayhost = \n");
	free(out);

	out = print_to_string(0, (char *[]){"relayhost", "no_such_name", NULL}, &rc);
	CHECK(rc != 0);
	CHECK_STR(out, "relayhost = [r]\n");
	free(out);

	out = print_to_string(0, NULL, &rc);
	CHECK(strstr(out, "\nmail_name = Postern\n") != NULL);
	/* Every name sorts after the one on the line before. */
	char previous[128] = "";
	for (char *line = out; line != NULL && *line; ) {
		char *end = strchr(line, '\n');
		size_t len = strcspn(line, " ");
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)len, line);
		if (strcmp(previous, name) >= 0)
			printf("  \"%s\" printed after \"%s\"\n", name, previous);
		CHECK(strcmp(previous, name) < 0);
		snprintf(previous, sizeof(previous), "%s", name);
		line = end != NULL ? end + 1 : NULL;
	}
	free(out);
}

TEST_MAIN(
	TEST_CASE(test_config_defaults),
	TEST_CASE(test_config_computed_hostname),
	TEST_CASE(test_config_expansion),
	TEST_CASE(test_config_expansion_loop),
	TEST_CASE(test_config_continuation_and_comments),
	TEST_CASE(test_config_later_line_wins),
	TEST_CASE(test_config_unknown_name_ignored),
	TEST_CASE(test_config_syntax_errors),
	TEST_CASE(test_config_truncated_input),
	TEST_CASE(test_config_time_units),
	TEST_CASE(test_config_time_invalid_is_fatal),
	TEST_CASE(test_config_bool_values),
	TEST_CASE(test_config_bad_values_are_fatal),
	TEST_CASE(test_config_overrides),
	TEST_CASE(test_config_load_directory),
	TEST_CASE(test_config_print_modes)
)
