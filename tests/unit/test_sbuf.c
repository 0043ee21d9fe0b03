#include "testlib.h"
#include "sbuf.h"

TEST(test_sbuf_placeholder)
{
	CHECK(1);
}

TEST_MAIN(TEST_CASE(test_sbuf_placeholder))
