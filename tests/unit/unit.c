/*
 * Unit tests for the pure parts of dpinger.c: command line (every case of
 * spec/dpinger-compat.md), value syntax, statistics, alarms, packets,
 * output formats and the watcher's decisions.
 */
#define DPINGER_TEST
#include "../../dpinger.c"
#include "unit.h"

#define ARGV(...) ((char *[]){ "dpinger", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "dpinger", __VA_ARGS__ }) / \
    sizeof(char *)))
/* getopt's own message for an unknown option is main's: quiet here. */
#define PARSE(c, err, ...) \
	(opterr = 0, parse_args(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (c), \
	    (err), sizeof(err)))

static void
test_time_syntax(void)
{
	uint64_t v = 99;

	CHECK(parse_time_msec("500", &v) && v == 500);
	CHECK(parse_time_msec("500m", &v) && v == 500);
	CHECK(parse_time_msec("2s", &v) && v == 2000);
	CHECK(parse_time_msec("", &v) && v == 0);
	CHECK(parse_time_msec("0", &v) && v == 0);
	CHECK(!parse_time_msec("-1", &v));
	CHECK(!parse_time_msec("1x", &v));
	CHECK(!parse_time_msec("1ms", &v));
	CHECK(!parse_time_msec("1 ", &v));
	CHECK(!parse_time_msec(" 1", &v));
	CHECK(!parse_time_msec("s", &v));
	CHECK(!parse_time_msec("99999999999999999999999", &v));
	CHECK(!parse_time_msec("99999999999999999999999s", &v));
	CHECK(!parse_time_msec("18446744073709551616", &v));
	CHECK(!parse_time_msec("18446744073709551615", &v));
	/* issue 9: 3000000 s wrapped around a 32-bit millisecond count */
	CHECK(parse_time_msec("3000000s", &v) && v == UINT64_C(3000000000));
	CHECK(parse_time_msec("99999999s", &v) && v == UINT64_C(99999999000));
	/* the edges: 2^32 - 1 seconds, in either unit */
	CHECK(parse_time_msec("4294967295s", &v) &&
	    v == UINT64_C(4294967295000));
	CHECK(parse_time_msec("4294967295000", &v) &&
	    v == UINT64_C(4294967295000));
	CHECK(parse_time_msec("4294967295000m", &v) &&
	    v == UINT64_C(4294967295000));
	CHECK(!parse_time_msec("4294967296s", &v));
	CHECK(!parse_time_msec("4294967295001", &v));
	CHECK(parse_time_msec("4294967296", &v) && v == UINT64_C(4294967296));
	CHECK(parse_time_msec("0s", &v) && v == 0);
	CHECK(parse_time_msec("007", &v) && v == 7);
}

static void
test_percent_and_length(void)
{
	unsigned int pct = 7;
	size_t len = 7;

	CHECK(parse_percent("20", &pct) && pct == 20);
	CHECK(parse_percent("20%", &pct) && pct == 20);
	CHECK(parse_percent("100", &pct) && pct == 100);
	CHECK(parse_percent("0", &pct) && pct == 0);
	CHECK(!parse_percent("101", &pct));
	CHECK(!parse_percent("20%%", &pct));
	CHECK(!parse_percent("-5", &pct));
	CHECK(parse_length("56", &len) && len == 56);
	CHECK(parse_length("56b", &len) && len == 56);
	CHECK(parse_length("2k", &len) && len == 2048);
	CHECK(!parse_length("2m", &len));
	CHECK(!parse_length("k", &len));
	CHECK(!parse_length("-1", &len));
	/* any number is a length; too large is said after parsing */
	CHECK(parse_length("64k", &len) && len == 65536);
	CHECK(parse_length("4194304k", &len) && len == UINT64_C(4294967296));
	CHECK(parse_length("99999999999999999999", &len) && len == SIZE_MAX);
	CHECK(parse_length("99999999999999999k", &len) && len == SIZE_MAX);
	CHECK(!parse_percent("99999999999999999999", &pct));
}

/* Issue 9: every time upstream accepts is accepted and printed in full,
 * never wrapped around 32 bits. */
static void
test_limits(void)
{
	struct config c;
	char err[256], line[1024];

	CHECK_EQ_INT(PARSE(&c, err, "-s", "60s", "-t", "3000000s",
	    "192.0.2.1"), PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK(strstr(line, "  time_period 3000000000ms  ") != NULL);
	CHECK_EQ_INT(PARSE(&c, err, "-A", "500000000", "192.0.2.1"),
	    PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK(strstr(line, "  alert_interval 500000000ms  ") != NULL);
	CHECK(strstr(line, "  alarm_hold 5000000000ms  ") != NULL);
	/* the largest values, and the defaults derived from them */
	CHECK_EQ_INT(PARSE(&c, err, "-s", "2000000000s", "-t", "4294967295s",
	    "-A", "4294967295s", "-D", "4294967295s", "-r", "4294967295s",
	    "192.0.2.1"), PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK_EQ_STR(line, "send_interval 2000000000000ms  "
	    "loss_interval 8000000000000ms  time_period 4294967295000ms  "
	    "report_interval 4294967295000ms  data_len 0  "
	    "alert_interval 4294967295000ms  "
	    "latency_alarm 4294967295000ms  loss_alarm 0%  "
	    "alarm_hold 42949672950000ms  dest_addr 192.0.2.1  "
	    "bind_addr (none)  identifier \"\"");
	CHECK_EQ_INT(c.slot_count, 2);
	CHECK(c.silence_msec == UINT64_C(16000000000000));
	CHECK_EQ_INT(PARSE(&c, err, "-H", "4294967295s", "-W", "4294967295s",
	    "192.0.2.1"), PARSE_OK);
	CHECK(c.hold_interval_msec == UINT64_C(4294967295000));
	CHECK(c.silence_msec == UINT64_C(4294967295000));
	/* one more is a clear error, not a wrapped value */
	CHECK_EQ_INT(PARSE(&c, err, "-t", "4294967296s", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid averaging time period 4294967296s");
	CHECK_EQ_INT(PARSE(&c, err, "-H", "4294967295001", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid alarm hold interval 4294967295001");
	/* 2 x send + loss in 64 bits: no wrap makes it pass */
	CHECK_EQ_INT(PARSE(&c, err, "-s", "4294967295s", "-l",
	    "4294967295s", "-t", "4294967295s", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "the time period must be greater than twice the "
	    "send interval plus the loss interval");
	/* a huge data length is "too large", as upstream says */
	CHECK_EQ_INT(PARSE(&c, err, "-d", "99999999999999999999",
	    "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "data length too large for IPv4 - maximum is "
	    "65507 bytes");
	CHECK_EQ_INT(PARSE(&c, err, "-d", "4294967296", "2001:db8::1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "data length too large for IPv6 - maximum is "
	    "65527 bytes");
}

static void
test_defaults(void)
{
	struct config c;
	char err[256];

	CHECK_EQ_INT(PARSE(&c, err, "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(c.send_interval_msec, 500);
	CHECK_EQ_INT(c.loss_interval_msec, 2000);
	CHECK_EQ_INT(c.time_period_msec, 60000);
	CHECK_EQ_INT(c.report_interval_msec, 1000);
	CHECK_EQ_INT(c.alert_interval_msec, 1000);
	CHECK_EQ_INT(c.hold_interval_msec, 10000);
	CHECK_EQ_INT(c.data_len, 0);
	CHECK_EQ_INT(c.slot_count, 120);
	CHECK_EQ_INT(c.seq_limit, 61440);
	CHECK_EQ_INT(c.fail_count, 3);
	CHECK_EQ_INT(c.silence_msec, 10000);
	CHECK(c.heal);
	CHECK(!c.foreground);
	CHECK_EQ_STR(c.identifier, "");
	CHECK_EQ_INT(c.dest.family, AF_INET);
}

static void
test_pfsense_command_line(void)
{
	struct config c;
	char err[256], line[1024];

	CHECK_EQ_INT(PARSE(&c, err, "-S", "-r", "0", "-i", "WAN_DHCP", "-B",
	    "192.0.2.10", "-p", "/var/run/x.pid", "-u", "/var/run/x.sock",
	    "-C", "/etc/rc.gateway_alarm", "-d", "1", "-s", "500", "-l",
	    "2000", "-t", "60000", "-A", "1000", "-D", "500", "-L", "20",
	    "8.8.8.8"), PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK_EQ_STR(line, "send_interval 500ms  loss_interval 2000ms  "
	    "time_period 60000ms  report_interval 0ms  data_len 1  "
	    "alert_interval 1000ms  latency_alarm 500ms  loss_alarm 20%  "
	    "alarm_hold 10000ms  dest_addr 8.8.8.8  bind_addr 192.0.2.10  "
	    "identifier \"WAN_DHCP \"");
	CHECK(c.use_syslog);
	CHECK_EQ_INT(c.silence_msec, 10000);

	/* OPNsense: seconds suffix, foreground. */
	CHECK_EQ_INT(PARSE(&c, err, "-f", "-S", "-r", "0", "-i", "GW", "-B",
	    "192.0.2.10", "-p", "/tmp/p", "-u", "/tmp/s", "-s", "1s", "-l",
	    "4s", "-t", "60s", "-d", "1", "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(c.send_interval_msec, 1000);
	CHECK_EQ_INT(c.loss_interval_msec, 4000);
	CHECK_EQ_INT(c.silence_msec, 10000);
	format_startup(line, sizeof(line), &c);
	CHECK(strstr(line, "alarm_hold 10000ms  dest_addr 192.0.2.1  "
	    "bind_addr 192.0.2.10  identifier \"GW \"") != NULL);

	CHECK_EQ_INT(PARSE(&c, err, "fe80::1%eth0"), PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK(strstr(line, "dest_addr fe80::1%eth0  bind_addr (none)  "
	    "identifier \"\"") != NULL);
}

static void
test_flag_errors(void)
{
	struct config c;
	char err[256];

	CHECK_EQ_INT(PARSE(&c, err, "-s", "0", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid send interval 0");
	CHECK_EQ_INT(PARSE(&c, err, "-s", "x", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid send interval x");
	CHECK_EQ_INT(PARSE(&c, err, "-l", "", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid loss interval ");
	CHECK_EQ_INT(PARSE(&c, err, "-t", "-5", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid averaging time period -5");
	CHECK_EQ_INT(PARSE(&c, err, "-r", "1q", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid report interval 1q");
	CHECK_EQ_INT(PARSE(&c, err, "-d", "1z", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid data length 1z");
	CHECK_EQ_INT(PARSE(&c, err, "-A", "0", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid alert interval 0");
	CHECK_EQ_INT(PARSE(&c, err, "-D", "a", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid latency alarm threshold a");
	CHECK_EQ_INT(PARSE(&c, err, "-L", "101", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid loss alarm threshold 101");
	CHECK_EQ_INT(PARSE(&c, err, "-H", "1h", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid alarm hold interval 1h");
	CHECK_EQ_INT(PARSE(&c, err, "-F", "x", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid send failure count x");
	CHECK_EQ_INT(PARSE(&c, err, "-W", "1y", "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid silence interval 1y");
	CHECK_EQ_INT(PARSE(&c, err, "-i",
	    "123456789012345678901234567890123456789012345678901234567890123",
	    "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "identifier argument too large (max 63 bytes)");
	CHECK_EQ_INT(PARSE(&c, err, "-i",
	    "12345678901234567890123456789012345678901234567890123456789012",
	    "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(strlen(c.identifier), 63);
	CHECK_EQ_INT(PARSE(&c, err, "-h", "192.0.2.1"), PARSE_USAGE);
	/* -V needs nothing else, and wins over what follows it */
	CHECK_EQ_INT(PARSE(&c, err, "-V"), PARSE_VERSION);
	CHECK_EQ_INT(PARSE(&c, err, "-V", "-s", "x", "192.0.2.1"),
	    PARSE_VERSION);
	CHECK_EQ_INT(PARSE(&c, err, "-q", "192.0.2.1"), PARSE_USAGE);
	CHECK_EQ_INT(PARSE(&c, err, "-s"), PARSE_USAGE);
	/* the last option of a kind wins */
	CHECK_EQ_INT(PARSE(&c, err, "-s", "100", "-s", "200", "192.0.2.1"),
	    PARSE_OK);
	CHECK_EQ_INT(c.send_interval_msec, 200);
	CHECK_EQ_INT(PARSE(&c, err, "-X", "192.0.2.1"), PARSE_OK);
	CHECK(!c.heal);
}

/* Where an error goes (syslog once -S is parsed), -i "", -C's limit. */
static void
test_parse_upstream_details(void)
{
	static char long_cmd[ALERT_CMD_MAX + 2];
	struct config c;
	char err[256];

	CHECK_EQ_INT(PARSE(&c, err, "-S", "-t", "-5", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK(c.use_syslog);
	CHECK_EQ_INT(PARSE(&c, err, "-t", "-5", "-S", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK(!c.use_syslog);
	CHECK_EQ_INT(PARSE(&c, err, "-S", "-r", "0", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "no activity enabled");
	CHECK(c.use_syslog);
	/* -i "": upstream's identifier is then a lone space. */
	CHECK_EQ_INT(PARSE(&c, err, "-i", "", "192.0.2.1"), PARSE_OK);
	CHECK_EQ_STR(c.identifier, " ");
	memset(long_cmd, 'x', ALERT_CMD_MAX);
	CHECK_EQ_INT(PARSE(&c, err, "-C", long_cmd, "192.0.2.1"), PARSE_OK);
	long_cmd[ALERT_CMD_MAX] = 'x';
	CHECK_EQ_INT(PARSE(&c, err, "-C", long_cmd, "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "alert command too long (max 65536 bytes)");
}

/* Validation happens in upstream's order: each case breaks two rules and
 * must report the earlier one. */
static void
test_validation_order(void)
{
	struct config c;
	char err[256];

	CHECK_EQ_INT(PARSE(&c, err, "-f"), PARSE_USAGE_ERROR);
	CHECK_EQ_STR(err, "incorrect number of parameters");
	CHECK_EQ_INT(PARSE(&c, err, "192.0.2.1", "192.0.2.2"),
	    PARSE_USAGE_ERROR);
	CHECK_EQ_INT(PARSE(&c, err, "-r", "0", "bogus"), PARSE_ERROR);
	CHECK_EQ_STR(err, "no activity enabled");
	CHECK_EQ_INT(PARSE(&c, err, "-r", "0", "-C", "x", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "no activity enabled");
	CHECK_EQ_INT(PARSE(&c, err, "-r", "0", "-L", "20", "192.0.2.1"),
	    PARSE_OK);
	CHECK_EQ_INT(PARSE(&c, err, "-r", "0", "-u", "/tmp/s", "192.0.2.1"),
	    PARSE_OK);
	CHECK_EQ_INT(PARSE(&c, err, "-t", "1000", "-s", "500", "bogus"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "the time period must be greater than twice the "
	    "send interval plus the loss interval");
	/* -l counts only when given: 1001 > 2 x 500 */
	CHECK_EQ_INT(PARSE(&c, err, "-t", "1001", "-s", "500", "192.0.2.1"),
	    PARSE_OK);
	CHECK_EQ_INT(c.loss_interval_msec, 2000);
	CHECK_EQ_INT(PARSE(&c, err, "-t", "1001", "-s", "500", "-l", "1",
	    "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_INT(PARSE(&c, err, "-t", "1002", "-s", "500", "-l", "1",
	    "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(PARSE(&c, err, "-t", "65536", "-s", "1", "bogus"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "the ratio of time period to send interval cannot "
	    "exceed 65535:1");
	CHECK_EQ_INT(PARSE(&c, err, "-t", "65535", "-s", "1", "192.0.2.1"),
	    PARSE_OK);
	CHECK_EQ_INT(c.slot_count, 65535);
	CHECK_EQ_INT(c.seq_limit, 65535);
	CHECK_EQ_INT(PARSE(&c, err, "-B", "bogus", "bogus"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid destination IP address bogus");
	CHECK_EQ_INT(PARSE(&c, err, "-B", "bogus", "-d", "70000",
	    "192.0.2.1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid bind IP address bogus");
	CHECK_EQ_INT(PARSE(&c, err, "-B", "2001:db8::1", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid bind IP address 2001:db8::1");
	CHECK_EQ_INT(PARSE(&c, err, "-d", "65508", "192.0.2.1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "data length too large for IPv4 - maximum is "
	    "65507 bytes");
	CHECK_EQ_INT(PARSE(&c, err, "-d", "65507", "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(PARSE(&c, err, "-d", "65528", "2001:db8::1"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "data length too large for IPv6 - maximum is "
	    "65527 bytes");
	CHECK_EQ_INT(PARSE(&c, err, "-d", "65527", "2001:db8::1"), PARSE_OK);
	/* a host name is not an address: no DNS */
	CHECK_EQ_INT(PARSE(&c, err, "localhost"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid destination IP address localhost");
	CHECK_EQ_INT(PARSE(&c, err, "192.0.2.1%eth0"), PARSE_ERROR);
	CHECK_EQ_INT(PARSE(&c, err, "fe80::1%"), PARSE_ERROR);
	CHECK_EQ_INT(PARSE(&c, err, "fe80::1%abcdefghijklmnopq"),
	    PARSE_ERROR);
}

static void
test_addresses(void)
{
	struct addr_spec a;
	struct sockaddr_storage ss;
	socklen_t len;

	CHECK(parse_addr("fe80::1%lo", &a));
	CHECK_EQ_INT(a.family, AF_INET6);
	CHECK_EQ_STR(a.scope, "lo");
	CHECK_EQ_INT(addr_sockaddr(&a, &ss, &len), 0);
	CHECK_EQ_INT(((struct sockaddr_in6 *)&ss)->sin6_scope_id,
	    if_nametoindex("lo"));
	CHECK(parse_addr("fe80::1%7", &a));
	CHECK_EQ_INT(addr_sockaddr(&a, &ss, &len), 0);
	CHECK_EQ_INT(((struct sockaddr_in6 *)&ss)->sin6_scope_id, 7);
	CHECK(parse_addr("fe80::1%nosuchif0", &a));
	CHECK_EQ_INT(addr_sockaddr(&a, &ss, &len), ENXIO);
	CHECK(parse_addr("192.0.2.1", &a));
	CHECK_EQ_INT(addr_sockaddr(&a, &ss, &len), 0);
	CHECK_EQ_INT(len, sizeof(struct sockaddr_in));
	CHECK(!parse_addr("", &a));
	CHECK(!parse_addr("%lo", &a));
	CHECK(!parse_addr("192.0.2.1 ", &a));
	CHECK(!parse_addr("192.0.2.256", &a));
	CHECK(!parse_addr("2001:db8::1::2", &a));
	CHECK(!parse_addr("192.0.2.1%lo", &a));
}

/* Issue 9: what getaddrinfo(AI_NUMERICHOST) accepts is accepted, and
 * every address prints in getnameinfo's numeric form. */
static void
test_address_forms(void)
{
	struct config c;
	struct addr_spec a;
	char err[256], line[1024], lo[IF_NAMESIZE + 8];

	CHECK(parse_addr("2001:DB8::1", &a));
	CHECK_EQ_STR(a.text, "2001:db8::1");
	CHECK_EQ_STR(a.arg, "2001:DB8::1");
	CHECK(parse_addr("2001:0db8:0000::0001", &a));
	CHECK_EQ_STR(a.text, "2001:db8::1");
	CHECK(parse_addr("10.1", &a));
	CHECK_EQ_STR(a.text, "10.0.0.1");
	CHECK(parse_addr("1.2.3", &a));
	CHECK_EQ_STR(a.text, "1.2.0.3");
	CHECK(parse_addr("192.0.2.001", &a));
	CHECK_EQ_STR(a.text, "192.0.2.1");
	CHECK(parse_addr("::FFFF:192.0.2.1", &a));
	CHECK_EQ_STR(a.text, "::ffff:192.0.2.1");
	/* a numeric scope prints as the interface's name, as upstream */
	snprintf(lo, sizeof(lo), "fe80::1%%%u", if_nametoindex("lo"));
	CHECK(parse_addr(lo, &a));
	CHECK_EQ_STR(a.text, "fe80::1%lo");
	CHECK_EQ_STR(a.scope, lo + strlen("fe80::1%"));	/* kept as given */
	CHECK(parse_addr("FE80::1%lo", &a));
	CHECK_EQ_STR(a.text, "fe80::1%lo");
	/* an interface that is not there (yet): its name as given */
	CHECK(parse_addr("FE80::0:1%nosuchif0", &a));
	CHECK_EQ_STR(a.text, "fe80::1%nosuchif0");
	/* link-local without a scope can never be reached or bound */
	CHECK(!parse_addr("fe80::1", &a));
	CHECK(!parse_addr("FE80::2", &a));
	CHECK(!parse_addr("ff02::1", &a));
	CHECK(parse_addr("ff02::1%lo", &a));
	CHECK_EQ_INT(PARSE(&c, err, "fe80::1"), PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid destination IP address fe80::1");
	CHECK_EQ_INT(PARSE(&c, err, "-B", "fe80::2", "fe80::1%lo"),
	    PARSE_ERROR);
	CHECK_EQ_STR(err, "invalid bind IP address fe80::2");
	CHECK_EQ_INT(PARSE(&c, err, "-B", "fe80::2%lo", "fe80::1%lo"),
	    PARSE_OK);
	/* the start-up line prints the parsed forms */
	CHECK_EQ_INT(PARSE(&c, err, "-B", "2001:DB8::2", "-i", "GW",
	    "2001:DB8:0::1"), PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK(strstr(line, "  dest_addr 2001:db8::1  bind_addr 2001:db8::2  "
	    "identifier \"GW \"") != NULL);
	CHECK_EQ_INT(PARSE(&c, err, "-B", "192.0.2.010", "10.1"), PARSE_OK);
	format_startup(line, sizeof(line), &c);
	CHECK(strstr(line, "  dest_addr 10.0.0.1  bind_addr 192.0.2.8  ")
	    != NULL);
}

static void
test_seq_limit(void)
{
	unsigned int slots;

	for (slots = 1; slots <= MAX_SLOTS; slots += slots < 300 ? 1 : 997) {
		unsigned int limit = seq_limit_for(slots);

		CHECK(limit % slots == 0);
		CHECK(limit <= SEQ_SPACE);
		CHECK(limit * 2 > SEQ_SPACE || limit == slots);
	}
	CHECK_EQ_INT(seq_limit_for(1), 65536);
	CHECK_EQ_INT(seq_limit_for(3), 3 * 16384);
}

static void
test_stats(void)
{
	struct slot s[6];
	struct stats st;

	memset(s, 0, sizeof(s));
	stats_compute(s, 6, 10000000, 2000000, &st);
	CHECK(st.avg_usec == 0 && st.stddev_usec == 0 && st.loss_pct == 0);

	/* 1000 and 3000: average 2000, deviation 1000 */
	s[0] = (struct slot){ 1000000, 1000, 0, true };
	s[1] = (struct slot){ 1500000, 3000, 1, true };
	/* lost: unanswered, older than 2 s */
	s[2] = (struct slot){ 2000000, 0, 2, false };
	/* pending: unanswered, younger than the loss interval */
	s[3] = (struct slot){ 9000000, 0, 3, false };
	stats_compute(s, 6, 10000000, 2000000, &st);
	CHECK_EQ_INT(st.answered, 2);
	CHECK_EQ_INT(st.lost, 1);
	CHECK_EQ_INT(st.avg_usec, 2000);
	CHECK_EQ_INT(st.stddev_usec, 1000);
	CHECK_EQ_INT(st.loss_pct, 33);	/* floor of 100/3 */
	/* exactly the loss interval old: not yet lost */
	s[3].sent_usec = 8000000;
	stats_compute(s, 6, 10000000, 2000000, &st);
	CHECK_EQ_INT(st.lost, 1);
	s[3].sent_usec = 7999999;
	stats_compute(s, 6, 10000000, 2000000, &st);
	CHECK_EQ_INT(st.lost, 2);
	CHECK_EQ_INT(st.loss_pct, 50);
	/* all lost */
	memset(s, 0, sizeof(s));
	s[4] = (struct slot){ 1, 0, 4, false };
	stats_compute(s, 6, 10000000, 2000000, &st);
	CHECK(st.avg_usec == 0 && st.stddev_usec == 0 && st.loss_pct == 100);
	/* integer square root, floor */
	CHECK_EQ_INT(isqrt64(0), 0);
	CHECK_EQ_INT(isqrt64(15), 3);
	CHECK_EQ_INT(isqrt64(16), 4);
	CHECK_EQ_INT(isqrt64(UINT64_MAX), 4294967295ULL);
}

static void
test_report_format(void)
{
	struct stats st = { 1520, 310, 0, 0, 0 };
	char line[128];

	CHECK_EQ_INT(format_report(line, sizeof(line), "WAN_DHCP ", &st), 20);
	CHECK_EQ_STR(line, "WAN_DHCP 1520 310 0\n");
	st.loss_pct = 100;
	format_report(line, sizeof(line), "", &st);
	CHECK_EQ_STR(line, "1520 310 100\n");
}

/* One check; -1 without an event, else the flag the command gets. */
static int
alarm_check(struct alarm_state *as, const struct stats *st,
    const struct config *c)
{
	bool flag;

	if (!alarm_update(as, st, c, &flag))
		return -1;
	return flag ? 1 : 0;
}

static void
test_alarms(void)
{
	struct config c;
	struct alarm_state as = { 0, 0 };
	struct stats ok = { 1000, 0, 0, 0, 0 }, lossy = { 1000, 0, 25, 0, 0 };
	struct stats slow = { 600000, 0, 0, 0, 0 };
	struct stats slow_lossy = { 600000, 0, 25, 0, 0 };
	char err[256];
	int i;

	CHECK_EQ_INT(PARSE(&c, err, "-A", "1000", "-H", "2500", "-D", "500",
	    "-L", "20", "192.0.2.1"), PARSE_OK);
	/* N = ceil(2500 / 1000) = 3 */
	CHECK_EQ_INT(alarm_hold_checks(&c), 3);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), 1);
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), -1);
	/* Cleared on the 3rd good check in a row, not after it. */
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), 0);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	/* A bad check restarts the count. */
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), 1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), -1);
	for (i = 0; i < 2; i++)
		CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), 0);
	CHECK(as.latency_hold == 0 && as.loss_hold == 0);

	/* The spec's sequence: latency high, then loss too, then latency
	 * recovers while loss stays high, then loss recovers: four events,
	 * flags 1, 1, 1, 0. */
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), 1);
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &slow_lossy, &c), 1);
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), 1);
	CHECK(as.latency_hold == 0 && as.loss_hold == 3);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), 0);
	/* Both raised in one check, both cleared in one check: one event
	 * each time. */
	CHECK_EQ_INT(alarm_check(&as, &slow_lossy, &c), 1);
	for (i = 0; i < 2; i++)
		CHECK_EQ_INT(alarm_check(&as, &ok, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), 0);

	/* Values equal to the thresholds are not above them. */
	lossy.loss_pct = 20;
	slow.avg_usec = 500000;
	memset(&as, 0, sizeof(as));
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), -1);
	slow.avg_usec = 500001;
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), 1);

	/* A hold shorter than one check is one check: cleared on the
	 * first good one.  The default hold is 10 checks. */
	CHECK_EQ_INT(PARSE(&c, err, "-A", "1000", "-H", "1", "-D", "500",
	    "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(alarm_hold_checks(&c), 1);
	memset(&as, 0, sizeof(as));
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), 1);
	CHECK_EQ_INT(alarm_check(&as, &ok, &c), 0);
	CHECK_EQ_INT(PARSE(&c, err, "-A", "300", "-D", "500", "192.0.2.1"),
	    PARSE_OK);
	CHECK_EQ_INT(alarm_hold_checks(&c), 10);
	CHECK_EQ_INT(PARSE(&c, err, "-A", "300", "-H", "1000", "-D", "500",
	    "192.0.2.1"), PARSE_OK);
	CHECK_EQ_INT(alarm_hold_checks(&c), 4);
	/* The longest hold over the shortest interval: past 2^32 checks. */
	CHECK_EQ_INT(PARSE(&c, err, "-A", "1", "-H", "4294967295s", "-D", "500",
	    "192.0.2.1"), PARSE_OK);
	CHECK(alarm_hold_checks(&c) == UINT64_C(4294967295000));

	/* No thresholds: never. */
	CHECK_EQ_INT(PARSE(&c, err, "-u", "/tmp/s", "192.0.2.1"), PARSE_OK);
	lossy.loss_pct = 100;
	memset(&as, 0, sizeof(as));
	CHECK_EQ_INT(alarm_check(&as, &lossy, &c), -1);
	CHECK_EQ_INT(alarm_check(&as, &slow, &c), -1);
}

/* Periodic threads skip what a stall missed instead of bursting. */
static void
test_next_deadline(void)
{
	uint64_t now = now_usec(), next;

	/* On time: one interval on. */
	CHECK_EQ_INT(next_deadline(now + 1000000, 200000), now + 1200000);
	/* 3 s late with 200 ms ticks: the next tick still ahead on the same
	 * grid, within one interval, not 15 ticks in the past. */
	next = next_deadline(now - 3000000, 200000);
	CHECK(next > now && next <= now_usec() + 200000);
	CHECK_EQ_INT((next - (now - 3000000)) % 200000, 0);
}

static void
test_icmp(void)
{
	uint8_t pkt[64], reply[64];
	uint16_t id = 0, seq = 0;
	size_t len;

	len = icmp_build_echo(AF_INET, pkt, 8, 0x1234, 0xbeef);
	CHECK_EQ_INT(len, 16);
	CHECK_EQ_INT(pkt[0], 8);
	CHECK_EQ_INT(pkt[4], 0x12);
	CHECK_EQ_INT(pkt[5], 0x34);
	CHECK_EQ_INT(pkt[6], 0xbe);
	CHECK_EQ_INT(pkt[7], 0xef);
	/* a correct checksum sums to zero */
	CHECK_EQ_INT(icmp_checksum(pkt, len), 0);
	/* RFC 1071's example words */
	{
		const uint8_t words[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5,
		    0xf6, 0xf7 };

		CHECK_EQ_INT(ntohs(icmp_checksum(words, 8)), 0x220d);
	}
	len = icmp_build_echo(AF_INET6, pkt, 0, 7, 9);
	CHECK_EQ_INT(len, 8);
	CHECK_EQ_INT(pkt[0], 128);

	/* IPv4 reply behind a 20-byte and a 24-byte header */
	memset(reply, 0, sizeof(reply));
	reply[0] = 0x45;
	reply[20] = 0;
	reply[24] = 0x12;
	reply[25] = 0x34;
	reply[26] = 0x00;
	reply[27] = 0x05;
	CHECK_EQ_INT(icmp_parse_reply(AF_INET, reply, 28, &id, &seq), 1);
	CHECK(id == 0x1234 && seq == 5);
	CHECK_EQ_INT(icmp_parse_reply(AF_INET, reply, 27, &id, &seq), 0);
	reply[20] = 8;	/* a request is not a reply */
	CHECK_EQ_INT(icmp_parse_reply(AF_INET, reply, 28, &id, &seq), 0);
	memmove(reply + 4, reply, 28);
	reply[0] = 0x46;
	reply[24] = 0;
	CHECK_EQ_INT(icmp_parse_reply(AF_INET, reply, 32, &id, &seq), 1);
	reply[0] = 0x4f;	/* header longer than the packet */
	CHECK_EQ_INT(icmp_parse_reply(AF_INET, reply, 32, &id, &seq), 0);
	reply[0] = 0x44;	/* header shorter than legal */
	CHECK_EQ_INT(icmp_parse_reply(AF_INET, reply, 32, &id, &seq), 0);
	/* IPv6: no IP header */
	memset(reply, 0, sizeof(reply));
	reply[0] = 129;
	reply[7] = 3;
	CHECK_EQ_INT(icmp_parse_reply(AF_INET6, reply, 8, &id, &seq), 1);
	CHECK(seq == 3);
	CHECK_EQ_INT(icmp_parse_reply(AF_INET6, reply, 7, &id, &seq), 0);
	reply[1] = 1;	/* a code other than 0 */
	CHECK_EQ_INT(icmp_parse_reply(AF_INET6, reply, 8, &id, &seq), 0);
}

/* The watcher's decisions, fed events by hand. */
static void
test_watch_decisions(void)
{
	unsigned int lo = if_nametoindex("lo");
	struct watch_state ws = { true, lo, true, TRIG_NONE };
	struct ifev ev;
	char err[256];

	CHECK_EQ_INT(PARSE(&cfg, err, "-B", "192.0.2.2", "192.0.2.1"),
	    PARSE_OK);
	memset(&ev, 0, sizeof(ev));
	ev.kind = IFEV_ADDR_ADD;
	ev.family = AF_INET;
	ev.ifindex = lo;
	inet_pton(AF_INET, "192.0.2.2", &ev.addr.v4);
	/* present already, same interface: a refresh */
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	ev.kind = IFEV_ADDR_DEL;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	CHECK(!ws.addr_present);
	ev.kind = IFEV_ADDR_ADD;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_ADDR_RETURNED);
	/* moved to an interface that does not exist: its link is not up */
	ev.ifindex = 54321;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	/* ... and back on lo, which is up */
	ev.ifindex = lo;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_ADDR_RETURNED);
	/* other addresses do not concern us */
	inet_pton(AF_INET, "192.0.2.3", &ev.addr.v4);
	ws.addr_present = false;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	/* link down: the return waits for the link */
	inet_pton(AF_INET, "192.0.2.2", &ev.addr.v4);
	ws.link_up = false;
	ws.ifindex = 6;
	ev.ifindex = 6;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	memset(&ev, 0, sizeof(ev));
	ev.kind = IFEV_LINK;
	ev.ifindex = 6;
	ev.link_up = true;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_ADDR_RETURNED);
	/* flags change while up: nothing */
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	ev.link_up = false;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	ev.link_up = true;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_LINK_UP);
	/* other interfaces' links do not concern us */
	ev.ifindex = 9;
	ev.link_up = false;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	ev.link_up = true;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	ev.kind = IFEV_OVERFLOW;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_RESYNC);

	/* tentative IPv6 is not bindable yet; interface re-created */
	CHECK_EQ_INT(PARSE(&cfg, err, "-B", "fe80::2%lo", "fe80::1%lo"),
	    PARSE_OK);
	ws = (struct watch_state){ true, 1, true, TRIG_NONE };
	memset(&ev, 0, sizeof(ev));
	ev.kind = IFEV_IF_DEPART;
	ev.ifindex = 1;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	CHECK(!ws.addr_present && !ws.link_up);
	ev.kind = IFEV_LINK;
	ev.ifindex = 77;
	ev.link_up = true;
	snprintf(ev.ifname, sizeof(ev.ifname), "lo");
	/* new index, but the bind address is not there yet */
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	CHECK_EQ_INT(ws.ifindex, 77);
	memset(&ev, 0, sizeof(ev));
	ev.kind = IFEV_ADDR_ADD;
	ev.family = AF_INET6;
	ev.ifindex = if_nametoindex("lo");
	inet_pton(AF_INET6, "fe80::2", &ev.addr.v6);
	ev.tentative = true;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	ev.tentative = false;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_ADDR_RETURNED);
	/* same address on an interface that is not our scope */
	ws.addr_present = false;
	ev.ifindex = 12345;
	CHECK_EQ_INT(watch_apply(&ws, &ev), TRIG_NONE);
	memset(&cfg, 0, sizeof(cfg));
}

static void
test_error_classes(void)
{
	CHECK(errno_is_transient(EINTR));
	CHECK(errno_is_transient(EAGAIN));
	CHECK(errno_is_transient(ENOBUFS));
	CHECK(!errno_is_transient(EHOSTUNREACH));
	CHECK(!errno_is_transient(ENETDOWN));
	CHECK(!errno_is_transient(EPERM));
	CHECK(errno_is_missing(EADDRNOTAVAIL));
	CHECK(errno_is_missing(ENODEV));
	CHECK(!errno_is_missing(EACCES));
}

/* A rebind's identifier is never our own pid's nor another live
 * process's pid-derived one. */
static void
test_fresh_echo_id(void)
{
	uint16_t own = (uint16_t)(getpid() & 0xffff);
	long limit = pid_limit();
	int i;

	CHECK(limit >= getpid() && limit <= (1L << 22));
	CHECK(echo_id_of_live_pid(own, limit));
	CHECK(echo_id_of_live_pid((uint16_t)(getppid() & 0xffff), limit));
	for (i = 0; i < 200; i++) {
		uint16_t id = fresh_echo_id(own);

		CHECK(id != own && id != 0);
		CHECK(!echo_id_of_live_pid(id, limit));
	}
}

#if defined(WATCH_NETLINK)
/* An address message as Linux lays it out: ifaddrmsg, then up to three
 * attributes (type 0 ends the list early). */
static size_t
nl_addr_msg(uint8_t *buf, uint16_t type, int family,
    const uint16_t attr_types[3], const char *const attr_addrs[3])
{
	size_t alen = family == AF_INET ? 4 : 16, off;
	struct nlmsghdr nh;
	struct ifaddrmsg ifa;
	int i;

	memset(buf, 0, 256);
	memset(&ifa, 0, sizeof(ifa));
	ifa.ifa_family = (uint8_t)family;
	ifa.ifa_index = 7;
	memcpy(buf + NLMSG_HDRLEN, &ifa, sizeof(ifa));
	off = NLMSG_LENGTH(sizeof(ifa));
	for (i = 0; i < 3 && attr_types[i] != 0; i++) {
		struct rtattr rta;
		size_t dlen = attr_types[i] == IFA_FLAGS ? 4 : alen;

		rta.rta_type = attr_types[i];
		rta.rta_len = (unsigned short)RTA_LENGTH(dlen);
		memcpy(buf + off, &rta, sizeof(rta));
		if (attr_types[i] != IFA_FLAGS)
			CHECK(inet_pton(family, attr_addrs[i],
			    buf + off + RTA_LENGTH(0)) == 1);
		off += RTA_ALIGN(rta.rta_len);
	}
	memset(&nh, 0, sizeof(nh));
	nh.nlmsg_len = (uint32_t)off;
	nh.nlmsg_type = type;
	memcpy(buf, &nh, sizeof(nh));
	return off;
}

/* Whether the watcher's socket filter for bind lets a message through:
 * the program runs in the kernel on a datagram socket pair. */
static int
filter_passes(int family, const char *bind, const uint8_t *msg, size_t len)
{
	struct sock_filter prog[WATCH_FILTER_MAX];
	struct sock_fprog fprog;
	uint8_t addr[16], got[256];
	int sv[2], passed;

	if (inet_pton(family, bind, addr) != 1 ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
		return -1;
	fprog.len = (unsigned short)watch_filter_build(family, addr, prog);
	fprog.filter = prog;
	if (setsockopt(sv[1], SOL_SOCKET, SO_ATTACH_FILTER, &fprog,
	    sizeof(fprog)) != 0 || send(sv[0], msg, len, 0) != (ssize_t)len) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	passed = recv(sv[1], got, sizeof(got), MSG_DONTWAIT) == (ssize_t)len;
	close(sv[0]);
	close(sv[1]);
	return passed;
}

static void
test_watch_filter(void)
{
	static const struct {
		int		family;
		uint16_t	type;
		uint16_t	attrs[3];
		const char	*addrs[3];
		int		passes;
	} cases[] = {
		/* IPv4: IFA_ADDRESS, IFA_LOCAL */
		{ AF_INET, RTM_NEWADDR, { IFA_ADDRESS, IFA_LOCAL, 0 },
		    { "192.0.2.2", "192.0.2.2", NULL }, 1 },
		{ AF_INET, RTM_DELADDR, { IFA_ADDRESS, IFA_LOCAL, 0 },
		    { "192.0.2.2", "192.0.2.2", NULL }, 1 },
		{ AF_INET, RTM_NEWADDR, { IFA_ADDRESS, IFA_LOCAL, 0 },
		    { "192.0.2.9", "192.0.2.9", NULL }, 0 },
		{ AF_INET, RTM_DELADDR, { IFA_ADDRESS, IFA_LOCAL, 0 },
		    { "198.51.100.2", "198.51.100.2", NULL }, 0 },
		/* point-to-point (PPPoE): the peer first, ours second */
		{ AF_INET, RTM_NEWADDR, { IFA_ADDRESS, IFA_LOCAL, 0 },
		    { "198.51.100.1", "192.0.2.2", NULL }, 1 },
		/* IPv6: IFA_ADDRESS alone, then IFA_FLAGS */
		{ AF_INET6, RTM_NEWADDR, { IFA_ADDRESS, IFA_FLAGS, 0 },
		    { "fe80::2", NULL, NULL }, 1 },
		{ AF_INET6, RTM_NEWADDR, { IFA_ADDRESS, IFA_FLAGS, 0 },
		    { "fe80::3", NULL, NULL }, 0 },
		{ AF_INET6, RTM_DELADDR, { IFA_ADDRESS, 0, 0 },
		    { "2001:db8::2", NULL, NULL }, 0 },
		{ AF_INET6, RTM_NEWADDR, { IFA_ADDRESS, 0, 0 },
		    { "fe80::2", NULL, NULL }, 1 },
		/* IPv6 with a peer: IFA_LOCAL (ours), IFA_ADDRESS (peer) */
		{ AF_INET6, RTM_NEWADDR, { IFA_LOCAL, IFA_ADDRESS, 0 },
		    { "fe80::2", "fe80::1", NULL }, 1 },
		{ AF_INET6, RTM_NEWADDR, { IFA_LOCAL, IFA_ADDRESS, 0 },
		    { "fe80::5", "fe80::6", NULL }, 0 },
		/* a layout the filter does not know passes */
		{ AF_INET6, RTM_NEWADDR, { IFA_FLAGS, IFA_ADDRESS, 0 },
		    { NULL, "fe80::9", NULL }, 1 },
		{ AF_INET, RTM_NEWADDR, { IFA_FLAGS, IFA_LOCAL, 0 },
		    { NULL, "192.0.2.9", NULL }, 1 },
		/* link messages always pass */
		{ AF_INET6, RTM_NEWLINK, { 0, 0, 0 }, { NULL, NULL, NULL }, 1 },
		{ AF_INET6, RTM_DELLINK, { 0, 0, 0 }, { NULL, NULL, NULL }, 1 },
	};
	uint8_t msg[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = nl_addr_msg(msg, cases[i].type, cases[i].family,
		    cases[i].attrs, cases[i].addrs);
		const char *bind = cases[i].family == AF_INET ? "192.0.2.2" :
		    "fe80::2";
		int passes = filter_passes(cases[i].family, bind, msg, len);

		if (passes != cases[i].passes)
			fprintf(stderr, "watch filter case %zu\n", i);
		CHECK_EQ_INT(passes, cases[i].passes);
	}
}
#else
static void
test_watch_filter(void)
{
	printf("SKIPPED: watch filter: no netlink here\n");
}
#endif

UNIT_MAIN(test_time_syntax, test_percent_and_length, test_limits,
    test_address_forms, test_defaults,
    test_pfsense_command_line, test_flag_errors, test_validation_order,
    test_addresses, test_seq_limit, test_stats, test_report_format,
    test_parse_upstream_details, test_alarms, test_next_deadline, test_icmp,
    test_watch_decisions, test_error_classes,
    test_fresh_echo_id, test_watch_filter)
