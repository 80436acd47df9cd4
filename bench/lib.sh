# What every benchmark script starts with (sourced, from the repo's root):
# the release build (or the binary QUNFA_BIN names: another build, to
# compare), a work folder and the processes to stop at the end, a free
# port, the time, the end of an import, the Debian tools a benchmark needs.
# need TOOL[:PACKAGE]…: installs from Debian each tool that is missing (the
# package named after the colon, else the tool's own name).
need() {
  local spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null && continue
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${spec#*:}") >/dev/null
  done
}
if [ -n "${QUNFA_BIN:-}" ]; then
  BIN=$QUNFA_BIN
else
  cargo build --release --locked -q
  BIN=$PWD/target/release/qunfa
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# Waits until import job 1 has ended (done or failed), asking every $1
# seconds; prints its line of `qunfa admin import status`.
import_ended() {
  local line
  while :; do
    line=$("$BIN" admin import status --id 1 | sed -n 2p)
    case $(cut -f5 <<<"$line") in done | failed) echo "$line"; return ;; esac
    sleep "$1"
  done
}
# Like import_ended, for a benchmark that needs the addresses: stops it
# when the import failed.
import_done() {
  [ "$(import_ended "$1" | cut -f5)" = done ] || { echo "the import of the addresses failed" >&2; exit 1; }
}
# profiled PID NAME COMMAND…: runs COMMAND; with PROFILE=DIR set, records a
# CPU profile of process PID meanwhile (DIR/NAME.perf.data, with call
# graphs) and writes its report to DIR/NAME.txt.
profiled() {
  local pid=$1 name=$2 perf
  shift 2
  if [ -z "${PROFILE:-}" ]; then "$@"; return; fi
  need perf:linux-perf
  mkdir -p "$PROFILE"
  perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$PROFILE/$name.perf.data" 2>/dev/null &
  perf=$!
  "$@"
  kill -INT "$perf"; wait "$perf" || true
  perf report -q --stdio --no-children --percent-limit 0.5 -i "$PROFILE/$name.perf.data" >"$PROFILE/$name.txt" 2>/dev/null || true
}
