#!/usr/bin/env bash
# Measure going's memory and idle wake-ups; write BENCH.md.  Run via `make bench`.
#
# For N in 1, 100, 1000 services (each `/bin/sleep 100000`), ROUNDS times:
# start ./going -l stderr -d DIR, wait (polling /proc, with a deadline) until
# going has N children that have exec'd sleep and going itself is asleep,
# then read VmPeak and VmRSS from /proc/PID/status.  With 100 services, also
# count going's context switches over IDLE_SECS seconds.  Stop going with
# SIGTERM and wait for it to exit.  Every process started here is cleaned up
# on any exit (trap).
#
# Environment: GOING (binary, default ./going), ROUNDS (3), COUNTS ("1 100 1000"),
# IDLE_SECS (5), OUT (BENCH.md).  Text of an existing BENCH.md after the line
# "<!-- kept by scripts/bench.sh -->" is carried over to the new one.
set -euo pipefail

cd "$(dirname "$0")/.."
GOING=${GOING:-./going}
ROUNDS=${ROUNDS:-3}
COUNTS=${COUNTS:-1 100 1000}
IDLE_SECS=${IDLE_SECS:-5}
OUT=${OUT:-BENCH.md}
KEEP_MARK='<!-- kept by scripts/bench.sh -->'

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$GOING" ] || die "$GOING not found; run 'make' first"
GOING_SHOWN=$GOING
case $GOING in /*) ;; *) GOING=$PWD/$GOING ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/going-bench.XXXXXX")
gpid=            # the going currently running, if any
gkids=()         # its children, last seen

children_of() {  # pids of the children of $1 (all its threads)
    cat /proc/"$1"/task/*/children 2>/dev/null || true
}

kill_going() {   # stop $gpid for good: TERM, then KILL it and its services
    [ -n "$gpid" ] || return 0
    local k
    mapfile -t gkids < <(children_of "$gpid" | tr ' ' '\n' | grep . || true)
    kill -TERM "$gpid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$gpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$gpid" 2>/dev/null || true
    wait "$gpid" 2>/dev/null || true
    for k in "${gkids[@]}"; do   # each service leads its own process group
        kill -KILL -- "-$k" 2>/dev/null || kill -KILL "$k" 2>/dev/null || true
    done
    gpid=
}

cleanup() {
    local st=$?
    trap - EXIT INT TERM
    kill_going
    rm -rf "$work"
    exit "$st"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

status_kb() {    # status_kb PID FIELD -> value in kB
    awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status
}
ctxt() {         # voluntary + nonvoluntary context switches of PID
    awk '$1 == "voluntary_ctxt_switches:" || $1 == "nonvoluntary_ctxt_switches:" { s += $2 }
         END { print s }' /proc/"$1"/status
}
running_sleeps() { # how many children of $1 have exec'd sleep
    local kids k files=()
    kids=$(children_of "$1")
    for k in $kids; do files+=("$k/comm"); done
    [ "${#files[@]}" -gt 0 ] || { echo 0; return; }
    (cd /proc && cat "${files[@]}" 2>/dev/null) | grep -c '^sleep$' || true
}
pstate() {       # the state letter of PID (R, S, Z, ...), empty if gone
    awk '{ sub(/^.*\) /, ""); print $1 }' /proc/"$1"/stat 2>/dev/null || true
}

make_dir() {     # make_dir N -> path of a directory with N services
    local n=$1 d i
    d=$work/svc-$n
    mkdir -p "$d"
    for ((i = 0; i < n; i++)); do
        printf 'cmd = ["/bin/sleep", "100000"]\nstop-timeout = "1s"\n' >"$d/s$i.toml"
    done
    echo "$d"
}

# One measurement; sets m_peak, m_rss, m_wake (empty unless N = 100).
measure() {
    local n=$1 round=$2 dir=$3 log deadline have c0 c1 rc stable st leftover
    log=$work/going-$n-$round.log
    "$GOING" -l stderr -d "$dir" 2>"$log" &
    gpid=$!
    deadline=$((SECONDS + 30 + n / 10))
    have=0
    while :; do
        kill -0 "$gpid" 2>/dev/null || { tail -n 20 "$log" >&2; die "going exited early (N=$n)"; }
        have=$(running_sleeps "$gpid")
        [ "$have" -ge "$n" ] && break
        [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$log" >&2; die "only $have of $n services running after $((30 + n / 10)) s"; }
        sleep 0.05
    done
    # Let going finish handling the last exec confirmations: asleep in poll
    # on 5 consecutive samples.
    stable=0
    while [ "$stable" -lt 5 ]; do
        if [ "$(pstate "$gpid")" = S ]; then stable=$((stable + 1)); else stable=0; fi
        [ "$SECONDS" -lt "$deadline" ] || die "going (N=$n) never went idle"
        sleep 0.02
    done
    [ "$(running_sleeps "$gpid")" -eq "$n" ] || die "more or fewer than $n services running"
    m_peak=$(status_kb "$gpid" VmPeak)
    m_rss=$(status_kb "$gpid" VmRSS)
    m_wake=
    if [ "$n" -eq 100 ]; then
        c0=$(ctxt "$gpid")
        sleep "$IDLE_SECS"     # the observation window, not a wait for readiness
        c1=$(ctxt "$gpid")
        m_wake=$((c1 - c0))
    fi
    kill -TERM "$gpid"
    deadline=$((SECONDS + 30))
    while st=$(pstate "$gpid") && [ -n "$st" ] && [ "$st" != Z ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "going (N=$n) did not exit within 30 s of SIGTERM"
        sleep 0.05
    done
    rc=0; wait "$gpid" || rc=$?
    gpid=
    [ "$rc" -eq 0 ] || echo "bench: warning: going (N=$n) exited with status $rc after SIGTERM" >&2
    leftover=$(pgrep -f "^/bin/sleep 100000\$" | wc -l || true)
    [ "$leftover" -eq 0 ] || echo "bench: warning: $leftover services still running after going exited (N=$n)" >&2
}

stats() {        # median and min-max of the arguments: "MED|MIN–MAX"
    local sorted n
    sorted=($(printf '%s\n' "$@" | sort -n))
    n=${#sorted[@]}
    echo "${sorted[n / 2]}|${sorted[0]}–${sorted[n - 1]}"
}

declare -A peaks rsss
wakes=()
for n in $COUNTS; do
    dir=$(make_dir "$n")
    for ((r = 1; r <= ROUNDS; r++)); do
        measure "$n" "$r" "$dir"
        echo "bench: N=$n round $r: VmPeak $m_peak kB, VmRSS $m_rss kB${m_wake:+, $m_wake wake-ups in ${IDLE_SECS}s}" >&2
        peaks[$n]+="$m_peak "
        rsss[$n]+="$m_rss "
        [ -z "$m_wake" ] || wakes+=("$m_wake")
    done
done

# --- container init: going -- sleep vs tini-static -- sleep, as PID 1 ------
# Both run as PID 1 of a new PID namespace (unshare), the way a container
# runtime starts them, with no service directory; figures of the init itself.
if ! command -v tini-static >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "bench: installing tini (for tini-static)" >&2
    apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends tini >/dev/null 2>&1 ||
        { apt-get -q update >/dev/null 2>&1 &&
          apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends tini >/dev/null 2>&1; } || true
fi
init_pid=
measure_init() {   # measure_init NAME CMD... ; sets i_peak, i_rss
    local name=$1 upid deadline kid
    shift
    unshare --pid --fork --mount-proc "$@" >/dev/null 2>&1 &
    upid=$!
    gpid=$upid   # so that cleanup stops it on error
    deadline=$((SECONDS + 10))
    init_pid=
    while :; do
        kid=$(children_of "$upid" | awk '{print $1}')
        if [ -n "$kid" ] && [ "$(children_of "$kid" | wc -w)" -ge 1 ] &&
            [ "$(cat /proc/"$(children_of "$kid" | awk '{print $1}')"/comm 2>/dev/null)" = sleep ]; then
            init_pid=$kid
            break
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "$name never started sleep"
        sleep 0.02
    done
    sleep 0.2   # let the init settle into its wait before reading its status
    i_peak=$(status_kb "$init_pid" VmPeak)
    i_rss=$(status_kb "$init_pid" VmRSS)
    kill -KILL "$init_pid" 2>/dev/null || true
    wait "$upid" 2>/dev/null || true
    gpid=
}
declare -A ipeaks irsss
inits=(going)
command -v tini-static >/dev/null 2>&1 && inits+=(tini-static)
empty=$work/empty
mkdir -p "$empty"
for init in "${inits[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
        case $init in
            going) measure_init going "$GOING" -l stderr -d "$empty" -- sleep 1000 ;;
            tini-static) measure_init tini-static "$(command -v tini-static)" -- sleep 1000 ;;
        esac
        echo "bench: $init -- sleep 1000 round $r: VmPeak $i_peak kB, VmRSS $i_rss kB" >&2
        ipeaks[$init]+="$i_peak "
        irsss[$init]+="$i_rss "
    done
done

# --- BENCH.md -------------------------------------------------------------
size=$(stat -c %s "$GOING")
kind="unknown build"
if [ -f target/x86_64-unknown-linux-musl/release/going ] &&
    cmp -s "$GOING" target/x86_64-unknown-linux-musl/release/going; then
    kind="static musl release build"
elif [ -f target/x86_64-unknown-linux-gnu/release/going ] &&
    cmp -s "$GOING" target/x86_64-unknown-linux-gnu/release/going; then
    kind="static glibc release build (musl fallback)"
fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
kept=
if [ -f "$OUT" ] && grep -qxF "$KEEP_MARK" "$OUT"; then
    kept=$(awk -v m="$KEEP_MARK" 'f || $0 == m { f = 1; print }' "$OUT")
fi

{
    echo "# going memory benchmark"
    echo
    echo "- Date: $(date -u)"
    echo "- Machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
    echo "- Binary: \`$GOING_SHOWN\`, $size bytes ($(( (size + 512) / 1024 )) kB), $kind"
    echo "- Rerun: \`make bench\` (scripts/bench.sh; ROUNDS, COUNTS, IDLE_SECS override the defaults)"
    echo
    echo "Each service is \`cmd = [\"/bin/sleep\", \"100000\"]\`. going runs with"
    echo "\`-l stderr -d DIR\` (log to a file); figures are read from /proc/PID/status"
    echo "once going has N children that have exec'd sleep and is idle in poll."
    echo "$ROUNDS rounds each; median and min–max."
    echo
    echo "| services | VmPeak kB (median, min–max) | VmRSS kB (median, min–max) |"
    echo "|---:|---:|---:|"
    for n in $COUNTS; do
        IFS='|' read -r pm pr <<<"$(stats ${peaks[$n]})"
        IFS='|' read -r rm rr <<<"$(stats ${rsss[$n]})"
        echo "| $n | $pm ($pr) | $rm ($rr) |"
    done
    echo
    if [ "${#wakes[@]}" -gt 0 ]; then
        IFS='|' read -r wm wr <<<"$(stats "${wakes[@]}")"
        echo "| idle | wake-ups in ${IDLE_SECS} s with 100 services (median, min–max) |"
        echo "|---|---:|"
        echo "| voluntary + nonvoluntary context switches of going | $wm ($wr) |"
        echo
    fi
    if [ -n "${peaks[100]:-}" ]; then
        IFS='|' read -r pm pr <<<"$(stats ${peaks[100]})"
        if [ "${pr#*–}" -le 1024 ]; then verdict=met; else verdict="NOT met"; fi
        echo "Issue 2 target, VmPeak ≤ 1024 kB with 100 services: $verdict (highest of $ROUNDS rounds: ${pr#*–} kB)."
        echo
    fi
    echo "## Container init: \`INIT -- sleep 1000\` as PID 1"
    echo
    echo "Each init runs as PID 1 of a new PID namespace (\`unshare --pid --fork"
    echo "--mount-proc\`), going with an empty service directory; figures of the"
    echo "init process itself, $ROUNDS rounds."
    echo
    echo "| init | VmPeak kB (median, min–max) | VmRSS kB (median, min–max) |"
    echo "|---|---:|---:|"
    for init in "${inits[@]}"; do
        IFS='|' read -r pm pr <<<"$(stats ${ipeaks[$init]})"
        IFS='|' read -r rm rr <<<"$(stats ${irsss[$init]})"
        echo "| $init | $pm ($pr) | $rm ($rr) |"
    done
    command -v tini-static >/dev/null 2>&1 || echo "(tini-static could not be installed: not measured)"
    echo
    if [ -n "$kept" ]; then
        echo "$kept"
    fi
} >"$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
echo "bench: wrote $OUT" >&2
cat "$OUT"
