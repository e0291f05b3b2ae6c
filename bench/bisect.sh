#!/usr/bin/env bash
# Bisection of Switchyard's per-request cost (issue 12): the shared bench's scenario (a) once per
# variant, each with one feature switched off, beside nginx and a lean forwarder. Run from the
# repository root on a quiet machine:
#   bench/bisect.sh                 # every variant, one bench run each (BENCH_* variables pass through)
#   bench/bisect.sh full lean       # only these variants
#   bench/bisect.sh --smoke         # start each variant and send it 2,000 requests; no measurement
#   bench/bisect.sh --counts        # per variant: bytes allocated, GCs, CPU ms per 10,000 requests
#                                   # (bench/measure.mjs; counts hold on a busy machine, req/s does not)
#   bench/bisect.sh --list          # the variants and their commands
# Variants without a switch are built from a temporary copy of the tree with a patch from
# bench/bisect/ applied; the product itself gets no benchmark-only flags.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bench_run=${BENCH_RUN:-../shared/bench/run}
flags='--log-level warn --admin 127.0.0.1:0'
all=(full no-admin no-forwarding-headers no-accept-batch no-outlier-retry no-latency-records lean)

work=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bisect.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A copy of the working tree's sources with one patch applied, built; prints its cli.js.
patched_build() {
  local name=$1 patch=$2 dir="$work/$1"
  mkdir -p "$dir"
  git ls-files -co --exclude-standard src tsconfig.json package.json | tar -cf - -T - | tar -xf - -C "$dir"
  ln -s "$root/node_modules" "$dir/node_modules"
  (cd "$dir" && patch -s -p1 < "$root/bench/bisect/$patch" && "$root/node_modules/.bin/tsc" -p tsconfig.json) >&2 \
    || { echo "bisect: $name: the patch no longer applies or builds; update bench/bisect/$patch" >&2; return 1; }
  echo "$dir/dist/cli.js"
}

command_for() {
  local cli
  case $1 in
    no-forwarding-headers) cli=$(patched_build "$1" forwarding-headers-off.patch) || return 1 ;;
    no-outlier-retry) cli=$(patched_build "$1" outlier-retry-off.patch) || return 1 ;;
    no-latency-records) cli=$(patched_build "$1" latency-records-off.patch) || return 1 ;;
  esac
  case $1 in
    full) echo "node $root/dist/cli.js $flags" ;;
    no-admin) echo "node $root/dist/cli.js --log-level warn --no-admin" ;;
    no-accept-batch) echo "node $root/dist/cli.js $flags --accept-batch 1" ;;
    no-forwarding-headers | no-outlier-retry | no-latency-records) echo "node $cli $flags" ;;
    lean) echo "node $root/bench/lean-forwarder.mjs" ;;
    *) echo "bisect: unknown variant $1 (one of: ${all[*]})" >&2; return 2 ;;
  esac
}

mode=bench
variants=()
for arg in "$@"; do
  case $arg in
    --smoke) mode=smoke ;;
    --list) mode=list ;;
    --counts) mode=counts ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) variants+=("$arg") ;;
  esac
done
[ ${#variants[@]} -eq 0 ] && variants=("${all[@]}")

npm run build --silent
failed=0
results=()
for variant in "${variants[@]}"; do
  cmd=$(command_for "$variant") || { failed=1; continue; }
  case $mode in
    list) printf '%-24s %s\n' "$variant" "$cmd" ;;
    smoke)
      # Starts the variant behind two nginx backends and checks 2,000 requests all answer 200.
      if out=$(node bench/measure.mjs --what time --requests 2000 --warmup 0 --proxy "$cmd" --label "$variant" --out "$work/smoke-$variant" 2>&1) && grep -q '"failed":0' <<<"$out"; then
        echo "ok    $variant"
      else
        echo "FAIL  $variant: $out" >&2
        failed=1
      fi
      ;;
    counts)
      node bench/measure.mjs --what heap,gc,time --requests "${COUNT_REQUESTS:-10000}" --warmup "${COUNT_WARMUP:-10000}" --proxy "$cmd" --label "$variant" --out "$work/counts-$variant" \
        | sed 's/"load":{[^}]*}[^,]*,//' || failed=1
      ;;
    bench)
      result="results/bisect-$(date -u +%Y%m%dT%H%M%SZ)-$variant.md"
      echo "== $variant: $cmd" >&2
      LB_NAME="$variant" LB_CMD="$cmd" BENCH_SCENARIOS=${BENCH_SCENARIOS:-a} BENCH_PROXIES=${BENCH_PROXIES:-nginx,$variant} \
        BENCH_RESULTS="$result" "$bench_run" || failed=1
      results+=("$result")
      ;;
  esac
done
if [ "$mode" = bench ]; then
  echo "Results (compare each variant's ×nginx and req/s per core within its own run):"
  for r in "${results[@]}"; do echo "  $r"; done
fi
exit $failed
