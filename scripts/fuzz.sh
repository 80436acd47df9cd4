#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of everything that reads
# untrusted input: each target in fuzz/fuzz_targets for SECONDS (default 60,
# or QUNFA_FUZZ_SECS). Fails on any panic, hang (an input taking over 10 s)
# or memory blow-up (over 2 GiB); the failing input is kept in
# fuzz/artifacts/TARGET/ and replays with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none TARGET FILE` in fuzz/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z
# flags cargo-fuzz passes (sanitizer coverage, as on nightly).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-${QUNFA_FUZZ_SECS:-60}}
shift $(($# > 0 ? 1 : 0))
# libFuzzer takes 0 as "no limit": a CI run must end.
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "fuzz: SECONDS must be a whole number above 0, not '$secs'" >&2
  exit 2
fi

# cargo-fuzz, pinned, installed under target/ like the project's other tools.
version=0.13.2
tools=$PWD/target/tools
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qF " $version"; then
  cargo install --quiet --locked cargo-fuzz --version "$version" --root "$tools"
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# No sanitizer: the code under test is safe Rust, where a memory error is
# a panic already, and a build without ASan is faster to build and to run.
build=(--sanitizer none)
# cargo-fuzz has no --locked: the lockfile is checked first, so that a run
# builds what fuzz/Cargo.lock says and leaves the tree as it found it.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build "${build[@]}"

# One target per core at a time (QUNFA_FUZZ_JOBS, default: the cores).
# New inputs go to a scratch directory (libFuzzer writes to the first
# corpus directory given); the committed corpus is only read.
jobs=${QUNFA_FUZZ_JOBS:-$(nproc)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
fuzz() {
  local t=$1
  mkdir "$logs/$t.new"
  cargo fuzz run "${build[@]}" "$t" "$logs/$t.new" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$logs/$t.log" 2>&1
}
echo "fuzz: ${targets[*]}: ${secs}s each, $jobs at a time"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  (fuzz "$t" && echo ok >"$logs/$t.ok") &
done
wait

failed=()
for t in "${targets[@]}"; do
  if [ ! -f "$logs/$t.ok" ]; then
    failed+=("$t")
    tail -n 60 "$logs/$t.log"
  fi
  grep -E '^(Done|stat::new_units_added)' "$logs/$t.log" | sed "s/^/  $t: /" || true
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: no crash, hang or memory blow-up"
