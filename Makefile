# going: build, run, test, bench, install.  GNU make.
#
#   make                 static release binary, copied to ./going
#   make run             the example services in a temp dir, reloaded live; Ctrl-C ends it
#   make test            cargo build + cargo test, clippy, rustfmt, man page lint
#                        (mandoc at every level, style included; groff -ww)
#   make bench           going against runit, s6, supervisor, tini, dumb-init, catatonit -> BENCH.md (~20 min; QUICK=1 ~6 min)
#   make fuzz            cargo-fuzz on the TOML, going-format and control-socket
#                        parsers, one target after the other, 10 million inputs
#                        each (FUZZ_RUNS=N, or FUZZ_TIME=SECONDS; FUZZ_TARGETS,
#                        FUZZ_MAX_LEN, FUZZ_TIMEOUT, FUZZ_FLAGS); needs nightly,
#                        installs cargo-fuzz; not part of make test
#   make install         PREFIX=/usr/local DESTDIR= ; uses ./going if already built;
#                        sbin/going, the link bin/going, the man pages, and
#                        going.d.example in share/doc/going/examples
#   make uninstall       removes exactly what install put there
#   make clean

PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
RUSTC   ?= rustc
INSTALL ?= install

# The host's own target (x86_64, aarch64...), from `rustc -vV`; a glibc
# host builds for its musl twin (x86_64-unknown-linux-gnu ->
# x86_64-unknown-linux-musl), a musl host (Alpine) for itself.
HOST := $(shell $(RUSTC) -vV 2>/dev/null | sed -n 's/^host: //p')
MUSL := $(subst -linux-gnu,-linux-musl,$(HOST))
GNU  := $(HOST)

BINDIR  := $(DESTDIR)$(PREFIX)/sbin
USRBIN  := $(DESTDIR)$(PREFIX)/bin
MAN8    := $(DESTDIR)$(PREFIX)/share/man/man8
MAN5    := $(DESTDIR)$(PREFIX)/share/man/man5
EXAMPLES := $(DESTDIR)$(PREFIX)/share/doc/going/examples
EXAMPLE_FILES := $(notdir $(wildcard going.d.example/*))

.PHONY: all run test bench fuzz install uninstall clean

# The release binary, smallest first, copied (then renamed, so a running
# ./going is never overwritten in place) to ./going:
#  1. static musl, with std rebuilt from the toolchain's own rust-src so that
#     a panic is a bare abort: std's backtrace printer (gimli, addr2line,
#     libunwind, about 300 kB that a PID 1 built with panic=abort can never
#     use) is left out.  -Z build-std is unstable, so RUSTC_BOOTSTRAP=1 lets
#     the stable compiler take it; nothing else in the code is unstable.
#     RUSTFLAGS replaces .cargo/config.toml's non-PIE flag: this build is a
#     static PIE (ASLR), with room to spare in the memory budget.  Nothing
#     unwinds after an immediate abort: no unwind tables (.eh_frame, 90 kB
#     of binary, 84 kB of VmPeak).
#  2. if that fails (no rust-src, a toolchain that changed the flag): the
#     plain static musl build with the precompiled std;
#  3. if that fails too: a static glibc build.
SMALL_FLAGS := -Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no
define build
	@if [ -z "$(HOST)" ]; then echo "make: no host target from '$(RUSTC) -vV'" >&2; exit 1; fi
	@if command -v rustup >/dev/null 2>&1; then \
	    rustup target add $(MUSL) >/dev/null 2>&1 || true; \
	    rustup component add rust-src >/dev/null 2>&1 || true; \
	fi
	@if RUSTC_BOOTSTRAP=1 RUSTFLAGS='$(SMALL_FLAGS)' $(CARGO) build --release \
	        --target $(MUSL) --target-dir target/small \
	        -Z build-std=std,panic_abort; then \
	    cp target/small/$(MUSL)/release/going .going.tmp && \
	    echo "make: built static musl binary ./going (std rebuilt, panic = immediate abort)"; \
	elif echo "make: rebuilding std failed; using the precompiled std" >&2 && \
	        $(CARGO) build --release --target $(MUSL); then \
	    cp target/$(MUSL)/release/going .going.tmp && \
	    echo "make: built static musl binary ./going"; \
	else \
	    echo "make: the musl build failed; falling back to a static glibc build" >&2; \
	    RUSTFLAGS='-C target-feature=+crt-static' \
	        $(CARGO) build --release --target $(GNU) && \
	    cp target/$(GNU)/release/going .going.tmp && \
	    echo "make: built static glibc binary ./going (fallback)"; \
	fi
	@mv -f .going.tmp going
endef

all:
	$(build)

# Only when ./going does not exist yet (so `sudo make install` after `make`
# does not rebuild as root).
going:
	$(build)

# The example services in a fresh copy; a background subshell changes the
# copy while going runs (a new hello.toml after ~4 s, steady.toml's env after
# ~8 s), then removes the copy once going has exited.
run: all
	@d=$$(mktemp -d "$${TMPDIR:-/tmp}/going-run.XXXXXX") || exit 1; \
	cp going.d.example/* "$$d"/ || { rm -rf "$$d"; exit 1; }; \
	me=$$$$; \
	echo "make run: services in $$d; hello.toml appears in ~4 s, steady.toml changes in ~8 s, going status at ~11 s; Ctrl-C stops going" >&2; \
	( trap '' INT; \
	  sleep 4; kill -0 $$me 2>/dev/null && { \
	    echo "make run: writing $$d/hello.toml" >&2; \
	    printf '%s\n' '# added by make run while going was running' \
	        'cmd = ["/bin/echo", "hello: a new file, a new service"]' \
	        'restart = "on-failure"' > "$$d/hello.toml"; }; \
	  sleep 4; kill -0 $$me 2>/dev/null && { \
	    echo "make run: changing GREETING in $$d/steady.toml" >&2; \
	    sed 's/^GREETING = .*/GREETING = "changed by make run"/' "$$d/steady.toml" > "$$d/.steady.toml.new" && \
	    mv -f "$$d/.steady.toml.new" "$$d/steady.toml"; }; \
	  sleep 3; kill -0 $$me 2>/dev/null && { \
	    echo "make run: ./going status -d $$d" >&2; \
	    ./going status -d "$$d" >&2; }; \
	  while kill -0 $$me 2>/dev/null; do sleep 1; done; \
	  rm -rf "$$d" ) & \
	exec ./going -l stderr -d "$$d"

# Lints skip with a message when their tool is missing, except under CI
# (CI set in the environment), where a missing tool is an error.
define missing
	if [ -n "$$CI" ]; then echo "make test: $(1) is missing" >&2; exit 1; \
	else echo "make test: $(1) not installed, SKIPPING this check" >&2; fi
endef

test:
	$(CARGO) build
	$(CARGO) test --no-fail-fast
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
	    echo "$(CARGO) clippy --all-targets -- -D warnings"; \
	    $(CARGO) clippy --all-targets -- -D warnings; \
	else $(call missing,cargo clippy); fi
	@if $(CARGO) fmt --version >/dev/null 2>&1; then \
	    echo "$(CARGO) fmt --check"; \
	    $(CARGO) fmt --check; \
	else $(call missing,cargo fmt); fi
	@if command -v mandoc >/dev/null 2>&1; then \
	    echo "mandoc -T lint man/*.[58]"; \
	    out=$$(mandoc -T lint man/*.[58] 2>&1); st=$$?; \
	    if [ -n "$$out" ] || [ $$st -ne 0 ]; then \
	        printf '%s\n' "$$out"; echo "make test: mandoc lint failed" >&2; exit 1; fi; \
	else $(call missing,mandoc); fi
	@if command -v groff >/dev/null 2>&1; then \
	    for p in man/*.[58]; do \
	        echo "groff -man -ww -z $$p"; \
	        out=$$(groff -man -ww -z "$$p" 2>&1); st=$$?; \
	        if [ -n "$$out" ] || [ $$st -ne 0 ]; then \
	            printf '%s\n' "$$out"; echo "make test: groff lint of $$p failed" >&2; exit 1; fi; \
	    done; \
	else $(call missing,groff); fi
	@echo "make test: all checks passed"

bench: all
	scripts/bench.sh

# Knobs of make fuzz (scripts/fuzz.sh says more); empty means its default.
FUZZ_TARGETS ?=
FUZZ_RUNS    ?=
FUZZ_TIME    ?=
FUZZ_MAX_LEN ?=
FUZZ_TIMEOUT ?=
FUZZ_FLAGS   ?=

fuzz:
	CARGO='$(CARGO)' FUZZ_TARGETS='$(FUZZ_TARGETS)' FUZZ_RUNS='$(FUZZ_RUNS)' \
	FUZZ_TIME='$(FUZZ_TIME)' FUZZ_MAX_LEN='$(FUZZ_MAX_LEN)' \
	FUZZ_TIMEOUT='$(FUZZ_TIMEOUT)' FUZZ_FLAGS='$(FUZZ_FLAGS)' scripts/fuzz.sh

# going lives in sbin (it is an init), and a relative link in bin puts it
# on the PATH of users (Debian's has no /usr/sbin) for `going status`.
install: going
	$(INSTALL) -d -m 755 $(BINDIR) $(USRBIN) $(MAN8) $(MAN5) $(EXAMPLES)
	$(INSTALL) -m 755 going $(BINDIR)/going
	ln -sfn ../sbin/going $(USRBIN)/going
	$(INSTALL) -m 644 man/going.8 $(MAN8)/going.8
	$(INSTALL) -m 644 man/going.d.5 $(MAN5)/going.d.5
	$(INSTALL) -m 644 $(addprefix going.d.example/,$(EXAMPLE_FILES)) $(EXAMPLES)/

uninstall:
	rm -f $(BINDIR)/going $(USRBIN)/going $(MAN8)/going.8 $(MAN5)/going.d.5
	rm -f $(addprefix $(EXAMPLES)/,$(EXAMPLE_FILES))
	rmdir $(EXAMPLES) $(DESTDIR)$(PREFIX)/share/doc/going 2>/dev/null || true

clean:
	$(CARGO) clean
	rm -f going .going.tmp
