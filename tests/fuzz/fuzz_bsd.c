/*
 * libFuzzer harness for rtmsg_parse_bsd(): any bytes, as read from a
 * PF_ROUTE socket, must parse without reading outside the buffer, and every
 * event returned must be well formed.
 */
#define DPINGER_TEST
#include "../../dpinger.c"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ifev ev[8];
	uint8_t *copy;
	size_t n, max;

	if (size < 1)
		return 0;
	/* The first byte bounds the events, so `max` is exercised too. */
	max = data[0] % 9;
	/* An exact-size heap copy: ASan sees any read past the end. */
	copy = fuzz_copy(data + 1, size - 1);
	n = rtmsg_parse_bsd(copy, size - 1, ev, max);
	fuzz_check_events(ev, n, max, true);
	free(copy);
	return 0;
}
