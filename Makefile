# dmail — one non-recursive Makefile.
#
#   make            build every program into bin/ (objects in build/)
#   make asan       the same with AddressSanitizer + UBSan into bin/asan/
#   make check      install missing Debian packages, build both, run every test
#   make run        build and start the suite on ./run/ (unprivileged ports); RESET=1 starts over
#   make format     clang-format every C file in place; make format-check only checks
#   make fuzz       build the libFuzzer targets (clang) and run each FUZZ_SECS seconds
#   make install    the programs, man pages, dmail.conf and the service files under PREFIX
#                   (default /usr/local; DESTDIR honoured); as root without DESTDIR it also
#                   runs scripts/dmail-setup.sh (the dmail user, the spool and its modes)
#   make deb        the Debian package (debhelper) into build/deb/, from a copy of the tree
#
# Several builds can share the tree: O=DIR puts build/ and bin/ under DIR.

.DEFAULT_GOAL := all
O       ?= .
SAN     ?= 0
FUZZ    ?= 0
CC      ?= cc
FUZZ_SECS ?= 600

ifeq ($(FUZZ),1)
# libFuzzer targets (tests/fuzz/): every object instrumented, the fuzzers linked with
# -fsanitize=fuzzer against the same archives the programs use
FUZZ_CC ?= clang
override CC := $(FUZZ_CC)
BUILD   := $(O)/build/fuzz
BIN     := $(O)/build/fuzz/bin
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT     := -O1
else ifeq ($(SAN),1)
BUILD   := $(O)/build/asan
BIN     := $(O)/bin/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
BUILD   := $(O)/build/normal
BIN     := $(O)/bin
SANFLAGS :=
OPT     := -O2
endif

WARN    := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
# common/ is layered, lowest first: lib (runtime), mail, ctl (control), server (the core
# every daemon embeds); scripts/layers.sh checks that no layer includes one above it.
LAYERS  := lib mail ctl server
COMMON_INC := $(LAYERS:%=-Icommon/%)
CFLAGS  += -std=c17 -D_GNU_SOURCE -g $(OPT) $(WARN) $(SANFLAGS) $(COMMON_INC) -fstack-protector-strong
LDFLAGS += $(SANFLAGS)
LIBS    := -luv -lssl -lcrypto -lidn2 -lcares -lcrypt -lspf2 -lz
TESTLIBS := -lcmocka
# a program's own libraries, beside LIBS
dlist_LIBS := -lhttp_parser -lpsl

VERSION := 0.1.0
# V=1 shows the commands
Q := $(if $(filter 1,$(V)),,@)
CFLAGS  += -DDMAIL_VERSION='"$(VERSION)"'

COMMON_SRC   := $(foreach l,$(LAYERS),$(wildcard common/$(l)/*.c))
COMMON_OBJ   := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBDMAIL     := $(BUILD)/libdmail.a

# Each program directory: main.c holds main(); everything else is also linked into
# the unit tests through lib<prog>.a.
PROGS        := dsmtp sendmail dpop tellsmtp tellpop dwatch dlist
define prog_rules
$(1)_SRC  := $$(wildcard $(1)/*.c)
$(1)_LIBOBJ := $$(filter-out $$(BUILD)/$(1)/main.o,$$($(1)_SRC:%.c=$$(BUILD)/%.o))
# the directory too: a source moved away (git mv) must leave the archive, not linger in it
$$(BUILD)/lib$(1).a: $$($(1)_LIBOBJ) $(1)
	@mkdir -p $$(@D)
	$$(Q)rm -f $$@ && ar rcs $$@ $$(filter %.o,$$^)
$$(BIN)/$(1): $$(BUILD)/$(1)/main.o $$(BUILD)/lib$(1).a $$(LIBDMAIL)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS) $$($(1)_LIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rules,$(p))))

PROG_BINS    := $(foreach p,$(PROGS),$(if $(wildcard $(p)/main.c),$(BIN)/$(p)))
# sendmail is also mailq and newaliases
ALIASES      := $(if $(wildcard sendmail/main.c),$(BIN)/mailq $(BIN)/newaliases)

UNIT_SRC     := $(wildcard tests/unit/test_*.c)
UNIT_BINS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)
# tests/unit/*.c other than test_*.c: helpers some tests share, linked as an archive
UNIT_HELP_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
UNIT_HELP    := $(BUILD)/libunithelp.a
PROG_LIBS    := $(foreach p,$(PROGS),$(if $(wildcard $(p)/*.c),$(BUILD)/lib$(p).a))

.PHONY: all progs asan check unit it run format format-check deps clean bench fuzz fuzz-build \
        install deb
all: $(PROG_BINS) $(ALIASES) $(UNIT_BINS)
# the programs alone (what make install and the Debian package need: no cmocka)
progs: $(PROG_BINS) $(ALIASES)

$(BIN)/mailq $(BIN)/newaliases: $(BIN)/sendmail
	ln -sf sendmail $@

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIBDMAIL): $(COMMON_OBJ) $(LAYERS:%=common/%)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(UNIT_HELP): $(UNIT_HELP_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/unit/%: $(BUILD)/tests/unit/%.o $(UNIT_HELP) $(PROG_LIBS) $(LIBDMAIL)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(dlist_LIBS) $(TESTLIBS)

FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(O)/build/fuzz/%)
$(O)/build/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(PROG_LIBS) $(LIBDMAIL)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(dlist_LIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

asan:
	@$(MAKE) --no-print-directory SAN=1 all

# Unit tests of one build (SAN=0 or 1).
unit: all
	@scripts/run-unit.sh $(BUILD)/unit

# Integration tests of one build (SAN=0 or 1); make check runs both builds' side by side
# (scripts/it-both.sh).
it: all
	@scripts/run-it.sh $(BIN)

deps:
	@scripts/deps.sh

# make fuzz [FUZZ_SECS=600]: every target over a scratch copy of tests/fuzz/corpus/NAME
fuzz-build:
ifeq ($(FUZZ),1)
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
else
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
endif

fuzz: fuzz-build
	@scripts/fuzz.sh $(O)/build/fuzz $(FUZZ_SECS)

check: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory SAN=1 unit
	@scripts/it-both.sh
	@$(MAKE) --no-print-directory fuzz FUZZ_SECS=5
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory bench QUICK=1; \
	else echo "check: make bench QUICK=1 skipped: it needs root (Postfix and Dovecot start as root)"; fi

run: all
	@RESET=$(RESET) scripts/run.sh $(BIN)

# make bench [QUICK=1] [BENCH_ARGS="--only smtp --pairs 5"]: see bench/README.md
bench: all
	@QUICK=$(QUICK) scripts/bench.sh $(BIN) $(BENCH_ARGS)

FMT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find common dsmtp sendmail tests -name '*.[ch]')
format:
	clang-format -i $(FMT_FILES)

format-check:
	@scripts/layers.sh $(LAYERS)
	@if [ -n "$(strip $(FMT_FILES))" ]; then clang-format --dry-run -Werror $(FMT_FILES); fi
	@echo "format-check: clean"

clean:
	rm -rf $(O)/build $(O)/bin

# --- make install [PREFIX=/usr/local] [DESTDIR=] -------------------------------------
# Debian's and Postfix's layout: the servers and tools in sbin, sendmail in sbin with
# mailq and newaliases in bin (and /usr/lib/sendmail when PREFIX is /usr). sendmail is
# set-group-ID to the run_as group (sendmail(8)); dmail-setup sets that when it can, and
# the Debian package does it with dpkg-statoverride. The programs look for
# /etc/dmail/dmail.conf by default: with another sysconfdir, set DMAIL_CONF or use -c.
PREFIX     ?= /usr/local
sysconfdir ?= /etc
SBINDIR    := $(PREFIX)/sbin
BINDIR     := $(PREFIX)/bin
MANDIR     := $(PREFIX)/share/man
DATADIR    := $(PREFIX)/share/dmail
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(sysconfdir)/systemd/system)
INITDIR    ?= $(sysconfdir)/init.d
INSTALL    ?= install
SERVERS    := dsmtp dpop dwatch dlist tellsmtp tellpop
# the paths the service files name, for this PREFIX and sysconfdir
FIXPATHS   := sed -e 's,/usr/sbin/,$(SBINDIR)/,g' -e 's,/etc/dmail/,$(sysconfdir)/dmail/,g'

install: progs
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR) $(DESTDIR)$(sysconfdir)/dmail \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(INITDIR)
	$(INSTALL) -m 0755 $(SERVERS:%=$(BIN)/%) $(BIN)/sendmail $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0755 scripts/dmail-setup.sh $(DESTDIR)$(SBINDIR)/dmail-setup
	ln -sf ../sbin/sendmail $(DESTDIR)$(BINDIR)/mailq
	ln -sf ../sbin/sendmail $(DESTDIR)$(BINDIR)/newaliases
	@# /usr/lib/sendmail, where old programs look, only for the system's own MTA
	if [ "$(PREFIX)" = /usr ]; then $(INSTALL) -d $(DESTDIR)/usr/lib && \
	    ln -sf ../sbin/sendmail $(DESTDIR)/usr/lib/sendmail; fi
	$(INSTALL) -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	ln -sf sendmail.8 $(DESTDIR)$(MANDIR)/man8/mailq.8
	ln -sf sendmail.8 $(DESTDIR)$(MANDIR)/man8/newaliases.8
	$(INSTALL) -m 0644 conf/dmail.conf.sample $(DESTDIR)$(DATADIR)/
	$(INSTALL) -m 0644 conf/lists.dat.sample $(DESTDIR)$(DATADIR)/
	$(INSTALL) -m 0644 conf/authent-users.py $(DESTDIR)$(DATADIR)/
	@# an existing dmail.conf is the administrator's: never overwritten
	@if [ -e $(DESTDIR)$(sysconfdir)/dmail/dmail.conf ]; then \
	    echo "install: $(DESTDIR)$(sysconfdir)/dmail/dmail.conf exists, left alone"; \
	else $(INSTALL) -m 0640 conf/dmail.conf.sample $(DESTDIR)$(sysconfdir)/dmail/dmail.conf; fi
	$(FIXPATHS) conf/dmail.service > $(DESTDIR)$(UNITDIR)/dmail.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/dmail.service
	$(FIXPATHS) conf/dmail.init > $(DESTDIR)$(INITDIR)/dmail
	chmod 0755 $(DESTDIR)$(INITDIR)/dmail
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	    echo "install: $(SBINDIR)/dmail-setup -c $(sysconfdir)/dmail/dmail.conf -s $(SBINDIR)/sendmail"; \
	    $(SBINDIR)/dmail-setup -c $(sysconfdir)/dmail/dmail.conf -s $(SBINDIR)/sendmail; \
	else echo "install: now run (as root) $(SBINDIR)/dmail-setup -s $(SBINDIR)/sendmail"; fi

# --- make deb: dpkg-buildpackage on a copy of the tree, so the checkout stays clean ----
DEBDIR := $(O)/build/deb
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
	    { echo "deb: needs dpkg-dev and debhelper (make deps as root)" >&2; exit 1; }
	rm -rf $(DEBDIR) && mkdir -p $(DEBDIR)/dmail-$(VERSION)
	tar -cf - --exclude=./.git --exclude=./build --exclude=./bin --exclude=./run \
	    --exclude=__pycache__ --exclude=.pytest_cache . | tar -C $(DEBDIR)/dmail-$(VERSION) -xf -
	cd $(DEBDIR)/dmail-$(VERSION) && dpkg-buildpackage -b -us -uc
	@ls $(DEBDIR)/*.deb
	@if command -v lintian >/dev/null; then lintian $(DEBDIR)/*.deb; fi
.SECONDARY:
