/*
 * libFuzzer harness for icmp_parse_reply(): the first input byte picks the
 * family (even: AF_INET with its IP header, odd: AF_INET6), the rest is
 * the datagram.  A reply it accepts must carry the identifier and sequence
 * it reports, at the offsets the family implies.
 */
#define DPINGER_TEST
#include "../../dpinger.c"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	uint16_t id = 0, seq = 0;
	size_t len, icmp;
	int family, r;

	if (size < 1)
		return 0;
	family = data[0] & 1 ? AF_INET6 : AF_INET;
	len = size - 1;
	/* An exact-size heap copy: ASan sees any read past the end. */
	copy = fuzz_copy(data + 1, len);
	r = icmp_parse_reply(family, copy, len, &id, &seq);
	if (r != 0 && r != 1)
		abort();
	if (r == 1) {
		icmp = family == AF_INET ? (size_t)(copy[0] & 0x0f) * 4 : 0;
		if (icmp + ICMP_HEADER_LEN > len ||
		    copy[icmp] != (family == AF_INET ? ICMP4_ECHO_REPLY :
		    ICMP6_ECHO_REPLY) || copy[icmp + 1] != 0 ||
		    id != (copy[icmp + 4] << 8 | copy[icmp + 5]) ||
		    seq != (copy[icmp + 6] << 8 | copy[icmp + 7]))
			abort();
	}
	if (fuzz_dump())
		fprintf(stderr, "reply %d id=%u seq=%u\n", r, id, seq);
	free(copy);
	return 0;
}
