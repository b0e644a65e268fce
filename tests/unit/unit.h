/*
 * A minimal unit-test harness.  A test file defines DPINGER_TEST, includes
 * ../../dpinger.c (so static functions are reachable), then this header,
 * and ends with UNIT_MAIN listing its test functions.  The closing line is
 * "N passed, N failed", which tests/test_unit.py checks.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static unsigned int unit_passed, unit_failed;

#define CHECK(cond) do {						\
	if (cond)							\
		unit_passed++;						\
	else {								\
		unit_failed++;						\
		fprintf(stderr, "%s:%d: %s: check failed: %s\n",	\
		    __FILE__, __LINE__, __func__, #cond);		\
	}								\
} while (0)

#define CHECK_EQ_INT(a, b) do {						\
	long long unit_a = (long long)(a), unit_b = (long long)(b);	\
	if (unit_a == unit_b)						\
		unit_passed++;						\
	else {								\
		unit_failed++;						\
		fprintf(stderr, "%s:%d: %s: %s == %lld, expected %lld\n", \
		    __FILE__, __LINE__, __func__, #a, unit_a, unit_b);	\
	}								\
} while (0)

#define CHECK_EQ_STR(a, b) do {						\
	const char *unit_a = (a), *unit_b = (b);			\
	if (unit_a != NULL && strcmp(unit_a, unit_b) == 0)		\
		unit_passed++;						\
	else {								\
		unit_failed++;						\
		fprintf(stderr, "%s:%d: %s: %s == \"%s\", expected \"%s\"\n", \
		    __FILE__, __LINE__, __func__, #a,			\
		    unit_a ? unit_a : "(null)", unit_b);		\
	}								\
} while (0)

#define UNIT_MAIN(...)							\
int									\
main(void)								\
{									\
	void (*unit_tests[])(void) = { __VA_ARGS__ };			\
	size_t i;							\
									\
	for (i = 0; i < sizeof(unit_tests) / sizeof(unit_tests[0]); i++) \
		unit_tests[i]();					\
	printf("%u passed, %u failed\n", unit_passed, unit_failed);	\
	return unit_failed != 0;					\
}

#endif
