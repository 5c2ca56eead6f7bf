#!/usr/bin/env bash
# Stress benchmark (issue #8): `vaultrisk stress --monte-carlo` against the vectorised
# numpy/scipy implementation of the same method (bench/numpy_stress.py: sparse
# positions times a dense scenario table), whole processes, in the same run.
#   bench/stress.sh [ACCOUNTS] [PATHS]   (defaults 100000 10000)
# Prints wall seconds and peak RSS of each, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
VR=${VR:-build/cpu/cli/vaultrisk}
ACCOUNTS=${1:-100000}
PATHS=${2:-10000}
W=bench/out/stress
mkdir -p "$W"
[ -d "$W/book-$ACCOUNTS" ] || "$VR" gen-book --accounts "$ACCOUNTS" --underlyings 3 --seed 1 --out "$W/book-$ACCOUNTS" --quiet
book="$W/book-$ACCOUNTS"
measure() {  # label, command...: wall seconds and peak RSS (MiB) from /usr/bin/time
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/time.txt" "$@" > /dev/null
  read -r secs kib < "$W/time.txt"
  printf '%-10s %8.2f s  peak RSS %7.1f MiB\n' "$label" "$secs" "$((kib / 1024))"
  echo "$secs" > "$W/$label.s"
}
echo "stress: $ACCOUNTS accounts ($(($(wc -l < "$book/positions.csv") - 1)) positions) x $PATHS Monte Carlo paths, 1 day"
measure vaultrisk "$VR" stress --book "$book" --market "$book/market.json" --monte-carlo "$PATHS" --horizon-days 1 \
  --seed 1 --out "$W/vr" --quiet
measure numpy /usr/bin/python3 bench/numpy_stress.py --book "$book" --market "$book/market.json" --monte-carlo "$PATHS" \
  --horizon-days 1 --seed 1 --out "$W/np" --timing
python3 -c "import sys; print(f\"ratio (numpy / vaultrisk, whole process): {float(sys.argv[1]) / float(sys.argv[2]):.2f}x\")" "$(cat "$W/numpy.s")" "$(cat "$W/vaultrisk.s")"
