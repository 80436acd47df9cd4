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
# goal WORK QUNFA REFERENCE RATIO TARGET CONDITION: a line of the table of
# goals bench/run prints at its end (written to $GOALS when it is set);
# CONDITION is a Python expression that says whether TARGET is met.
goal() {
  local met
  met=$(python3 -c "print('met' if ($6) else 'NOT MET')")
  [ -z "${GOALS:-}" ] || printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5" "$met" >>"$GOALS"
}
# cpu_ticks PID: the CPU time process PID has used, user and system, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
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
# qunfa_shop QUOTA: the customer shop (password pw) with QUOTA credits and
# the manager boss, in the database the QUNFA_* settings name.
qunfa_shop() {
  "$BIN" admin customer add --username shop --password pw >/dev/null
  "$BIN" admin service set --username shop --quota "$1" >/dev/null
  "$BIN" admin manager add --username boss --password pw >/dev/null
}
# serve_qunfa: `qunfa serve` on $PORT, waited for until it answers; sets
# SERVE (its pid), MD5 (of the password pw) and API (the vendor API's URL).
serve_qunfa() {
  "$BIN" serve 2>>"$WORK/serve.log" &
  SERVE=$!
  PIDS+=("$SERVE")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  MD5=$(printf pw | md5sum | cut -c1-32)
  API="http://127.0.0.1:$PORT/mm-ms/api"
}
# shop_sends: the manager gives shop the domain shop.test; shop adds the
# mailbox news@shop.test to send from.
shop_sends() {
  curl -sf "$API/bs.php?username=boss&password=$MD5&do=domain-add&user_type=manager&customer_id=1&domain=shop.test" >/dev/null
  curl -sf "$API/bs.php?username=shop&password=$MD5&do=mailbox-add&mailbox=news@shop.test&pwd=x" >/dev/null
}
