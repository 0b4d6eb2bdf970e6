#!/bin/sh
# make fuzz: runs the cargo-fuzz targets of fuzz/ one after the other and
# prints how many inputs each ran. Installs cargo-fuzz when it is missing
# and needs a nightly toolchain (libFuzzer); seeds fuzz/corpus/ first.
#
# Environment (the Makefile passes its variables of the same names):
#   FUZZ_TARGETS   which targets, in order (default: all three)
#   FUZZ_RUNS      inputs per target (default 10000000 unless FUZZ_TIME is set)
#   FUZZ_TIME      seconds per target; with FUZZ_RUNS too, whichever comes first
#   FUZZ_MAX_LEN   the largest input libFuzzer makes (default 8192 bytes for
#                  the service files, 4608 for control requests: past the
#                  4096 limit, and the target is slow on long inputs)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (10)
#   FUZZ_FLAGS     more libFuzzer flags, e.g. -seed=1
#   FUZZ_NICE      command prefix for the runs (default: nice -n 10)
#   CARGO          cargo (default: cargo)
#   ASAN_OPTIONS   default malloc_context_size=0:quarantine_size_mb=0: no
#                  stack a malloc and no use-after-free quarantine, which
#                  safe Rust has little use for; twice the speed, 1/10 the
#                  memory (set it to anything, even empty, to change that)
set -u

cd "$(dirname "$0")/.." || exit 1
CARGO=${CARGO:-cargo}
TARGETS=${FUZZ_TARGETS:-toml going_format control_request}
RUNS=${FUZZ_RUNS:-}
TIME=${FUZZ_TIME:-}
TIMEOUT=${FUZZ_TIMEOUT:-10}
FLAGS=${FUZZ_FLAGS:-}
NICE=${FUZZ_NICE-nice -n 10}
ASAN_OPTIONS=${ASAN_OPTIONS-malloc_context_size=0:quarantine_size_mb=0}
export ASAN_OPTIONS
[ -z "$RUNS" ] && [ -z "$TIME" ] && RUNS=10000000

say() { echo "make fuzz: $*" >&2; }

if ! $CARGO fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    $CARGO install cargo-fuzz --locked || { say "could not install cargo-fuzz"; exit 1; }
fi
if ! $CARGO +nightly --version >/dev/null 2>&1; then
    say "installing the nightly toolchain (rustup toolchain install nightly)"
    if ! command -v rustup >/dev/null 2>&1 ||
        ! rustup toolchain install nightly --profile minimal; then
        say "cargo-fuzz needs a nightly Rust toolchain (libFuzzer, sanitizers), and none could be"
        say "installed; install one with 'rustup toolchain install nightly' and run make fuzz again"
        exit 1
    fi
fi
command -v python3 >/dev/null 2>&1 || { say "python3 is needed to seed the corpus"; exit 1; }
python3 scripts/fuzz-seeds.py || exit 1

say "building the fuzz targets (cargo +nightly fuzz build)"
$CARGO +nightly fuzz build || { say "cargo fuzz build failed"; exit 1; }

limit=""
[ -n "$RUNS" ] && limit="-runs=$RUNS"
[ -n "$TIME" ] && limit="$limit -max_total_time=$TIME"
mkdir -p fuzz/logs
summary=fuzz/logs/summary.txt
: > "$summary"
failed=""
for target in $TARGETS; do
    case $target in
        toml) dict=fuzz/toml.dict max_len=8192 ;;
        going_format) dict=fuzz/going.dict max_len=8192 ;;
        control_request) dict=fuzz/control.dict max_len=4608 ;;
        *) say "unknown target $target"; exit 1 ;;
    esac
    log=fuzz/logs/$target.log
    say "$target: $limit (log in $log)"
    start=$(date +%s)
    # One process, one worker: the other targets wait their turn.
    $NICE $CARGO +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -dict="$dict" -max_len="${FUZZ_MAX_LEN:-$max_len}" -timeout="$TIMEOUT" \
        -print_final_stats=1 $limit $FLAGS > "$log" 2>&1
    status=$?
    took=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
    final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    cov=$(echo "$final" | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1, ft \2/p')
    rate=$(echo "$final" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')
    if [ "$status" -eq 0 ] && [ -n "$runs" ]; then
        line="$target: ${runs} runs in ${took} s (${rate:-?} exec/s; ${cov:-cov ?})"
    else
        line="$target: FAILED (exit status $status) after ${took} s; see $log and fuzz/artifacts/$target/"
        failed="$failed $target"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" >&2
    fi
    say "$line"
    echo "$line" >> "$summary"
done
echo "make fuzz: summary ($summary):" >&2
cat "$summary" >&2
if [ -n "$failed" ]; then
    say "failed:$failed"
    exit 1
fi
