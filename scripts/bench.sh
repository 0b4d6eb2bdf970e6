#!/usr/bin/env bash
# `make bench`: going against its peers (issue 6); writes BENCH.md.
#
# The work is done by bench/bench.py (Python 3 standard library only): it
# installs the peers from Debian packages when missing (tini, tini-static,
# dumb-init, catatonit, runit, s6, supervisor; with a policy-rc.d that keeps
# their daemons from starting), builds the stamp helper bench/stamp.c and
# the floor reference bench/floor.c with `cc -O2 -static` into
# target/bench/, runs every scenario for going and each peer, and writes
# BENCH.md (text after the line
# "<!-- kept by scripts/bench.sh -->" is carried over).  About 20 minutes
# at the defaults; QUICK=1 about 6.
#
# Environment (see the top of bench/bench.py for all of them):
#   GOING (./going), OUT (BENCH.md), SCENARIOS (memory,respawn,crash,reload,
#   startup,container,scale,leak), PEERS (runit,s6,supervisor,tini,
#   tini-static,dumb-init,catatonit,floor), ROUNDS (every scenario), QUICK=1,
#   NO_INSTALL=1, IDLE_SECS (10), CRASH_SECS (30), LEAK_COUNT (10000), ...
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "bench: python3 is needed" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || echo "bench: not root: peers cannot be installed, PID namespaces (unshare) will fail" >&2
exec python3 bench/bench.py "$@"
