/*
 * testlib - the minimal harness of the C unit tests.
 *
 * A test program defines cases with TEST(name) and lists them in
 * TEST_MAIN(name, ...). Each CHECK that fails prints the file, line and
 * what was expected and got, and marks the case failed; the case goes on.
 * The program prints "ok NAME" or "FAIL NAME" per case and ends with the
 * line "N passed, N failed", exiting 1 when a case failed.
 */
#ifndef POSTERN_TESTLIB_H
#define POSTERN_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int testlib_case_failed;

#define TEST(name) static void name(void)

#define CHECK(cond) do { \
	if (!(cond)) { \
		printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		testlib_case_failed = 1; \
	} \
} while (0)

#define CHECK_INT(got, want) do { \
	long long testlib_g = (long long)(got), testlib_w = (long long)(want); \
	if (testlib_g != testlib_w) { \
		printf("  %s:%d: %s: got %lld, want %lld\n", __FILE__, __LINE__, \
		    #got, testlib_g, testlib_w); \
		testlib_case_failed = 1; \
	} \
} while (0)

#define CHECK_STR(got, want) do { \
	const char *testlib_g = (got), *testlib_w = (want); \
	if (testlib_g == NULL || testlib_w == NULL ? testlib_g != testlib_w \
	    : strcmp(testlib_g, testlib_w) != 0) { \
		printf("  %s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
		    #got, testlib_g ? testlib_g : "(null)", \
		    testlib_w ? testlib_w : "(null)"); \
		testlib_case_failed = 1; \
	} \
} while (0)

struct testlib_case {
	const char *name;
	void (*fn)(void);
};

#define TEST_CASE(fn) { #fn, fn }

static inline int testlib_run(const struct testlib_case *cases, size_t n)
{
	size_t passed = 0, failed = 0;

	for (size_t i = 0; i < n; i++) {
		testlib_case_failed = 0;
		cases[i].fn();
		printf("%s %s\n", testlib_case_failed ? "FAIL" : "ok", cases[i].name);
		if (testlib_case_failed)
			failed++;
		else
			passed++;
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define TEST_MAIN(...) \
int main(void) \
{ \
	static const struct testlib_case testlib_cases[] = { __VA_ARGS__ }; \
	return testlib_run(testlib_cases, \
	    sizeof(testlib_cases) / sizeof(testlib_cases[0])); \
}

#endif
