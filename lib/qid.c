/*
 * qid - queue IDs: arrival time, process and a per-process counter in
 * fixed-width uppercase hex, so that IDs sort by arrival and are unique.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

#include "qfile.h"

/* Distinguishes IDs made by one process in the same microsecond. */
static atomic_uint qid_counter;

void qid_new(char out[QID_SIZE])
{
	struct timeval tv;
	unsigned count = atomic_fetch_add(&qid_counter, 1);

	gettimeofday(&tv, NULL);
	/* 9 hex digits of seconds last until the year 4147; microseconds
	 * (below 0xF4240) fit in 5. */
	snprintf(out, QID_SIZE, "%09llX%05lX%04X%04X",
	    (unsigned long long)tv.tv_sec & 0xFFFFFFFFFULL,
	    (unsigned long)tv.tv_usec & 0xFFFFF,
	    (unsigned)getpid() & 0xFFFF, count & 0xFFFF);
}

int qid_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= QID_LEN)
			return 0;
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	}
	return i == QID_LEN;
}
