/*
 * libFuzzer harness for rtmsg_parse_netlink(): any bytes, as read from an
 * rtnetlink socket, must parse without reading outside the buffer, and
 * every event returned must be well formed.
 */
#define DPINGER_TEST
#include "../../dpinger.c"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_routing(rtmsg_parse_netlink, false, data, size);
}
