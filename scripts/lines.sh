#!/usr/bin/env bash
# The lines of src/ outside tests (every line but the `#[cfg(test)]` items:
# the attribute at column 0 and the item after it, to its closing `}` at
# column 0), split into blank, comment-only and code lines; with -f, per
# file. "Code" is the count issue 13 quoted (7,043 at 2b060a4).
#   scripts/lines.sh [-f] [DIR]
set -eu
per_file=
if [ "${1:-}" = -f ]; then per_file=1; shift; fi
cd "${1:-.}"
for f in $(find src -name '*.rs' | sort); do
    awk '
      skip == 2 { if ($0 ~ /^}/) skip = 0; next }
      skip == 1 { skip = ($0 ~ /\{ *$/ && $0 !~ /^ /) ? 2 : 0; next }
      /^#\[cfg\(test\)\]/ { skip = 1; next }
      { t++; s = $0; gsub(/^[ \t]+/, "", s)
        if (s == "") b++; else if (s ~ /^\/\//) c++; else k++ }
      END { print t + 0, b + 0, c + 0, k + 0, FILENAME }' "$f"
done | awk -v per_file="$per_file" '
    per_file { printf "%6d %6d  %s\n", $1, $4, $5 }
    { t += $1; b += $2; c += $3; k += $4 }
    END { printf "lines %d, blank %d, comment %d, code %d\n", t, b, c, k }'
