#!/usr/bin/env bash
# VmPeak and VmRSS of going supervising 100 services, after one `going
# status` and one `going status --json` (the figures the issues and the
# README quote):
#   scripts/memory.sh [BINARY] [plain|logs|sched]
# plain: `sleep` services; logs: each writes a line a second to a `log`
# file; sched: each has a `[schedule]`, half of them from a template.
# Builds nothing: run `make` first. Leaves nothing behind.
set -eu
bin=${1:-./going}
mode=${2:-plain}
n=100
d=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$d"' EXIT
mkdir "$d/svc" "$d/logs"
for i in $(seq 1 $n); do
    case $mode in
    plain) printf 'cmd = ["/bin/sleep", "100000"]\n' ;;
    logs) printf 'cmd = ["/bin/sh", "-c", "while :; do echo line; sleep 1; done"]\nlog = "%s/logs/s%d.log"\n' "$d" "$i" ;;
    sched)
        if [ $((i % 2)) = 0 ]; then printf 'template = "nap"\n[vars]\nsecs = "10000%d"\n' "$i"
        else printf 'cmd = ["/bin/sleep", "10000%d"]\n[schedule]\nweek-days = "all"\n' "$i"; fi ;;
    *) echo "memory.sh: mode is plain, logs or sched" >&2; exit 2 ;;
    esac > "$d/svc/s$i.toml"
done
printf 'cmd = ["/bin/sleep", "{{ secs }}"]\n[schedule]\nweek-days = "all"\n' > "$d/svc/nap.template"
"$bin" -l stderr -s "$d/sock" -d "$d/svc" 2>"$d/log" &
pid=$!
sleep 3
mem() { grep -E 'VmPeak|VmRSS' "/proc/$pid/status" | tr -s ' \n' ' '; }
echo "$mode, $n services, running: $("$bin" status -s "$d/sock" | grep -c ' running ')"
echo "after status:        $(mem)"
"$bin" status --json -s "$d/sock" >/dev/null
echo "after status --json: $(mem)"
