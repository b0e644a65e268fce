/*
 * Shared by the fuzz harnesses, which include ../../dpinger.c first.
 * FUZZ_SELFTEST=1 in the environment makes an input starting with "CRASH"
 * abort, so tests/test_fuzz.py can prove that a crash is caught;
 * FUZZ_DUMP=1 prints what the parser returned for each input, so it can
 * prove that the seeds reach the parser as the messages they are.
 */
#ifndef FUZZ_H
#define FUZZ_H

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint8_t *
fuzz_copy(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size > 0 ? size : 1);

	if (copy == NULL)
		abort();
	if (size > 0)
		memcpy(copy, data, size);
	if (size >= 5 && memcmp(data, "CRASH", 5) == 0 &&
	    getenv("FUZZ_SELFTEST") != NULL)
		abort();
	return copy;
}

static bool
fuzz_dump(void)
{
	static int dump = -1;

	if (dump < 0)
		dump = getenv("FUZZ_DUMP") != NULL;
	return dump != 0;
}

/* What every parser promises about the events it returns. */
static void
fuzz_check_events(const struct ifev *ev, size_t n, size_t max, bool kame)
{
	size_t i;

	if (n > max)
		abort();
	for (i = 0; i < n; i++) {
		if (ev[i].kind < IFEV_ADDR_ADD || ev[i].kind > IFEV_OVERFLOW)
			abort();
		if (memchr(ev[i].ifname, '\0', sizeof(ev[i].ifname)) == NULL)
			abort();
		if ((ev[i].kind == IFEV_ADDR_ADD ||
		    ev[i].kind == IFEV_ADDR_DEL) &&
		    ev[i].family != AF_INET && ev[i].family != AF_INET6)
			abort();
		/* PF_ROUTE: KAME scope words are cleared from link-local
		 * addresses */
		if (kame && ev[i].kind <= IFEV_ADDR_DEL && ev[i].family == AF_INET6 &&
		    ev[i].addr.v6.s6_addr[0] == 0xfe &&
		    (ev[i].addr.v6.s6_addr[1] & 0xc0) == 0x80 &&
		    (ev[i].addr.v6.s6_addr[2] | ev[i].addr.v6.s6_addr[3]) != 0)
			abort();
		if (fuzz_dump()) {
			char text[INET6_ADDRSTRLEN] = "-";

			if (ev[i].kind <= IFEV_ADDR_DEL)
				inet_ntop(ev[i].family, &ev[i].addr, text,
				    sizeof(text));
			fprintf(stderr, "event kind=%d index=%u addr=%s "
			    "name=%s up=%d tentative=%d\n", (int)ev[i].kind,
			    ev[i].ifindex, text, ev[i].ifname,
			    (int)ev[i].link_up, (int)ev[i].tentative);
		}
	}
	if (fuzz_dump())
		fprintf(stderr, "events %zu\n", n);
}

/*
 * The body of a routing-message harness: the first byte bounds the events
 * (so `max` is exercised too), the rest is what recv() returned, passed as
 * an exact-size heap copy so that ASan sees any read past the end.
 */
static int
fuzz_routing(size_t (*parse)(const void *, size_t, struct ifev *, size_t),
    bool kame, const uint8_t *data, size_t size)
{
	struct ifev ev[8];
	uint8_t *copy;
	size_t n, max;

	if (size < 1)
		return 0;
	max = data[0] % 9;
	copy = fuzz_copy(data + 1, size - 1);
	n = parse(copy, size - 1, ev, max);
	fuzz_check_events(ev, n, max, kame);
	free(copy);
	return 0;
}

#endif
