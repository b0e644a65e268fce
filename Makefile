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
INSTALL_PROGRAM?=	$(INSTALL) -m 555
PYTHON?=	python3
ZIGCC?=		$(PYTHON) -m ziglang cc
# The version lives in VERSION alone; every build of the daemon gets it.
VERSIONFLAG=	"-DDPINGER_VERSION=\"$$(cat VERSION)\""
SANFLAGS=	-O1 -g -fno-omit-frame-pointer
# Tests include dpinger.c without main(): its threads go unused there.
TESTFLAGS=	$(SANFLAGS) $(WARNFLAGS) -Wno-unused-function \
		-fsanitize=address,undefined -fno-sanitize-recover=all

all: dpinger

dpinger: dpinger.c VERSION
	$(CC) $(CFLAGS) $(WARNFLAGS) $(CPPFLAGS) $(VERSIONFLAG) -o dpinger \
	    dpinger.c $(LDFLAGS) -pthread

# The installed manual page names the version in its footer (.Os).
install: dpinger
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)
	$(INSTALL_PROGRAM) dpinger $(DESTDIR)$(BINDIR)/dpinger
	sed "s/^\.Os$$/.Os dpinger-selfheal $$(cat VERSION)/" dpinger.8 \
	    >$(DESTDIR)$(MANDIR)/dpinger.8
	chmod 444 $(DESTDIR)$(MANDIR)/dpinger.8

# The manual page must lint clean (mandoc exits non-zero on a warning).
man-lint:
	mandoc -Tlint -Wwarning dpinger.8

# patches/: diffs for other people's trees, generated from port/.
# check-patches fails when the committed diff is out of date.
patches:
	sh patches/mkdiff.sh patches/freebsd-ports-net-dpinger-selfheal.diff

check-patches:
	sh patches/mkdiff.sh build/freebsd-ports-net-dpinger-selfheal.diff
	@cmp -s patches/freebsd-ports-net-dpinger-selfheal.diff \
	    build/freebsd-ports-net-dpinger-selfheal.diff || { \
	    echo "patches/freebsd-ports-net-dpinger-selfheal.diff is out of" \
	    "date with port/: run 'make patches' and commit it" >&2; exit 1; }

clean:
	rm -rf dpinger build

# Release files, from the committed tree only (tools/dist.py says how they
# stay byte-identical from run to run).  dist: the source tarball;
# release: build/release/ with it, FreeBSD amd64 and arm64 binaries built
# from it, and SHA256SUMS; distinfo: port/distinfo and the port's
# DISTVERSION for the tarball, then the ports-tree patch (commit first).
dist:
	$(PYTHON) tools/dist.py dist

release:
	$(PYTHON) tools/dist.py release "$(ZIGCC)"

distinfo:
	$(PYTHON) tools/dist.py distinfo
	sh patches/mkdiff.sh patches/freebsd-ports-net-dpinger-selfheal.diff

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

build/dpinger-asan: dpinger.c VERSION
	mkdir -p build
	$(CC) $(SANFLAGS) $(WARNFLAGS) $(VERSIONFLAG) \
	    -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -o build/dpinger-asan dpinger.c -pthread

build/dpinger-tsan: dpinger.c VERSION
	mkdir -p build
	$(CC) $(SANFLAGS) $(WARNFLAGS) $(VERSIONFLAG) -fsanitize=thread \
	    -o build/dpinger-tsan dpinger.c -pthread

# The fault shim (stale raw sockets, for the self-healing tests) and the
# churn benchmark.
shim: build/faultshim.so

build/faultshim.so: tests/shim/faultshim.c
	mkdir -p build
	$(CC) $(CFLAGS) $(WARNFLAGS) -shared -fPIC -o build/faultshim.so \
	    tests/shim/faultshim.c $(LDFLAGS) -ldl -pthread

bench: dpinger
	$(PYTHON) tests/bench/churn.py

# FreeBSD cross builds (14.0, the floor) for every FreeBSD architecture,
# FreeBSD's name:Zig's target, with Zig's bundled FreeBSD headers and libc
# stubs, and the check that the layout the unit tests' fixtures write
# (tests/unit/fbsd_layout.h) is the layout of FreeBSD's headers on each.
# Zig passes powerpc64* a flag of its own that clang then calls unused.
CROSS_TARGETS=	amd64:x86_64-freebsd.14.0 arm64:aarch64-freebsd.14.0 \
		i386:x86-freebsd.14.0 armv7:arm-freebsd.14.0-eabihf \
		powerpc64:powerpc64-freebsd.14.0 \
		powerpc64le:powerpc64le-freebsd.14.0 riscv64:riscv64-freebsd.14.0
CROSSFLAGS=	$(WARNFLAGS) -Wno-unused-command-line-argument

cross: dpinger.c VERSION tests/unit/fbsd_layout.h \
		tests/unit/fbsd_layout_check.c
	mkdir -p build
	for t in $(CROSS_TARGETS); do \
		arch=$${t%%:*}; target=$${t#*:}; \
		$(ZIGCC) -target $$target -O2 $(CROSSFLAGS) $(VERSIONFLAG) \
		    -o build/dpinger-freebsd-$$arch dpinger.c -pthread && \
		$(ZIGCC) -target $$target $(CROSSFLAGS) -c \
		    -o build/fbsd-layout-$$arch.o \
		    tests/unit/fbsd_layout_check.c || exit 1; \
	done

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

.PHONY: all install man-lint patches check-patches clean dist release \
	distinfo demo check unit sanitizers cross shim bench fuzz fuzz-run
