/*
 * libFuzzer harness for the PF_ROUTE parser: any bytes, as read from a
 * PF_ROUTE socket, must parse without reading outside the buffer, and every
 * event returned must be well formed, in each of FreeBSD's layout models.
 * The first byte picks the model (byte / 9 % 4) as well as the event limit
 * (byte % 9, fuzz_routing()).
 */
#define DPINGER_TEST
#include "../../dpinger.c"
#include "fuzz.h"

static const struct bsd_layout models[] = {
	{ 8, false },		/* amd64, arm64, powerpc64le, riscv64 */
	{ 4, false },		/* i386, armv7 */
	{ 8, true },		/* powerpc64 */
	{ 4, true },		/* powerpc (32-bit) */
};
static const struct bsd_layout *model = &models[0];

static size_t
parse_model(const void *buf, size_t len, struct ifev *ev, size_t max)
{
	return rtmsg_parse_bsd_layout(model, buf, len, ev, max);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0)
		model = &models[data[0] / 9 % 4];
	return fuzz_routing(parse_model, true, data, size);
}
