# dpinger, self-healing.  GNU make and BSD make (bmake) both read this file
# unchanged: no conditionals, no pattern rules, no $(shell ...), and every
# recipe names its inputs explicitly instead of using $<.

CC?=		cc
CFLAGS?=	-O2 -g
WARNFLAGS=	-Wall -Wextra -Werror
PREFIX?=	/usr/local
BINDIR?=	$(PREFIX)/bin
MANDIR?=	$(PREFIX)/share/man/man8
INSTALL?=	install
PYTHON?=	python3
ZIGCC?=		$(PYTHON) -m ziglang cc
SANFLAGS=	-O1 -g -fno-omit-frame-pointer
# Tests include dpinger.c without main(): its threads go unused there.
TESTFLAGS=	$(SANFLAGS) $(WARNFLAGS) -Wno-unused-function \
		-fsanitize=address,undefined -fno-sanitize-recover=all

all: dpinger

dpinger: dpinger.c
	$(CC) $(CFLAGS) $(WARNFLAGS) $(CPPFLAGS) -o dpinger dpinger.c \
	    $(LDFLAGS) -pthread

install: dpinger
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)
	$(INSTALL) -m 555 dpinger $(DESTDIR)$(BINDIR)/dpinger
	$(INSTALL) -m 444 dpinger.8 $(DESTDIR)$(MANDIR)/dpinger.8

# The manual page must lint clean (mandoc exits non-zero on a warning).
man-lint:
	mandoc -Tlint -Wwarning dpinger.8

# patches/: diffs for other people's trees, generated from port/.
# check-patches fails when the committed diff is out of date.
patches:
	sh patches/mkdiff.sh patches/freebsd-ports-net-dpinger.diff

check-patches:
	sh patches/mkdiff.sh build/freebsd-ports-net-dpinger.diff
	@cmp -s patches/freebsd-ports-net-dpinger.diff \
	    build/freebsd-ports-net-dpinger.diff || { \
	    echo "patches/freebsd-ports-net-dpinger.diff is out of date" \
	    "with port/: run 'make patches' and commit it" >&2; exit 1; }

clean:
	rm -rf dpinger build

# The README's two commands.
demo: dpinger
	sh tests/demo.sh

check:
	sh tests/run

# Pieces of the test suite, each usable on its own.
unit: build/unit build/unit-rtsock

build/unit: dpinger.c tests/unit/unit.c tests/unit/unit.h
	mkdir -p build
	$(CC) $(TESTFLAGS) -o build/unit tests/unit/unit.c -pthread

build/unit-rtsock: dpinger.c tests/unit/rtsock.c tests/unit/unit.h \
		tests/unit/fbsd_layout.h
	mkdir -p build
	$(CC) $(TESTFLAGS) -o build/unit-rtsock tests/unit/rtsock.c -pthread

sanitizers: build/dpinger-asan build/dpinger-tsan

build/dpinger-asan: dpinger.c
	mkdir -p build
	$(CC) $(SANFLAGS) $(WARNFLAGS) -fsanitize=address,undefined \
	    -fno-sanitize-recover=all -o build/dpinger-asan dpinger.c -pthread

build/dpinger-tsan: dpinger.c
	mkdir -p build
	$(CC) $(SANFLAGS) $(WARNFLAGS) -fsanitize=thread \
	    -o build/dpinger-tsan dpinger.c -pthread

# The fault shim (stale raw sockets, for the self-healing tests) and the
# benchmarks (churn; scaling, unrelated ICMP and accuracy).
shim: build/faultshim.so

build/faultshim.so: tests/shim/faultshim.c
	mkdir -p build
	$(CC) $(CFLAGS) $(WARNFLAGS) -shared -fPIC -o build/faultshim.so \
	    tests/shim/faultshim.c $(LDFLAGS) -ldl -pthread

bench: dpinger
	$(PYTHON) tests/bench/churn.py
	$(PYTHON) tests/bench/scaling.py

# FreeBSD cross builds (14.0, the floor) with Zig's bundled FreeBSD headers
# and libc stubs, and the check that the layout the unit tests' fixtures
# write (tests/unit/fbsd_layout.h) is the layout of FreeBSD's headers.
cross: dpinger.c tests/unit/fbsd_layout.h tests/unit/fbsd_layout_check.c
	mkdir -p build
	$(ZIGCC) -target x86_64-freebsd.14.0 -O2 $(WARNFLAGS) \
	    -o build/dpinger-freebsd-amd64 dpinger.c -pthread
	$(ZIGCC) -target aarch64-freebsd.14.0 -O2 $(WARNFLAGS) \
	    -o build/dpinger-freebsd-arm64 dpinger.c -pthread
	$(ZIGCC) -target x86_64-freebsd.14.0 $(WARNFLAGS) -c \
	    -o build/fbsd-layout-amd64.o tests/unit/fbsd_layout_check.c
	$(ZIGCC) -target aarch64-freebsd.14.0 $(WARNFLAGS) -c \
	    -o build/fbsd-layout-arm64.o tests/unit/fbsd_layout_check.c

# libFuzzer harnesses (clang) for the routing-message and ICMP parsers.
# fuzz-run gives each FUZZ_SECONDS on build/corpus-NAME, which starts as a
# copy of tests/fuzz/corpus/NAME and keeps what the fuzzer finds.
FUZZCC?=	clang
FUZZ_SECONDS?=	20
FUZZFLAGS=	$(SANFLAGS) $(WARNFLAGS) -Wno-unused-function \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

fuzz: build/fuzz-bsd build/fuzz-netlink build/fuzz-icmp

build/fuzz-bsd: dpinger.c tests/fuzz/fuzz.h tests/fuzz/fuzz_bsd.c
	mkdir -p build
	$(FUZZCC) $(FUZZFLAGS) -o build/fuzz-bsd tests/fuzz/fuzz_bsd.c -pthread

build/fuzz-netlink: dpinger.c tests/fuzz/fuzz.h tests/fuzz/fuzz_netlink.c
	mkdir -p build
	$(FUZZCC) $(FUZZFLAGS) -o build/fuzz-netlink \
	    tests/fuzz/fuzz_netlink.c -pthread

build/fuzz-icmp: dpinger.c tests/fuzz/fuzz.h tests/fuzz/fuzz_icmp.c
	mkdir -p build
	$(FUZZCC) $(FUZZFLAGS) -o build/fuzz-icmp tests/fuzz/fuzz_icmp.c \
	    -pthread

fuzz-run: fuzz
	for name in bsd netlink icmp; do \
		mkdir -p build/corpus-$$name build/crashes && \
		cp tests/fuzz/corpus/$$name/* build/corpus-$$name/ && \
		build/fuzz-$$name -max_total_time=$(FUZZ_SECONDS) \
		    -artifact_prefix=build/crashes/$$name- \
		    build/corpus-$$name || exit 1; \
	done

.PHONY: all install man-lint patches check-patches clean demo check unit sanitizers cross shim bench fuzz fuzz-run
