#!/usr/bin/env bash
# Fault check at full size (the test suite has the small one): an
# import file of SIZE bytes (default 2 GiB) that is one line, streamed to
# ml-addr-add-file. Over QUNFA_IMPORT_MAX (512 MiB by default) it must be
# refused with file_error; under a limit raised above it, the job must end
# with the line counted invalid. Either way qunfa's memory stays flat: it
# prints the peak RSS, the answers and the job's counts.
#   SIZE=$((256<<20)) bench/huge_line.sh       a smaller run
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-$((2 << 30))}
. bench/lib.sh
MD5=$(printf pw | md5sum | cut -c1-32)
# One line of SIZE bytes: an address-like start, then 'a' to the end, no line
# end. On disk: curl reads a file as it sends, but holds standard input whole.
{ printf 'x@'; head -c "$((SIZE - 2))" /dev/zero | tr '\0' a; } >"$WORK/huge.txt"

# try LIMIT → prints the upload's answer status, seconds, the job line, peak RSS
try() {
  local limit=$1 port data pid t0 t1 answer line
  port=$(free_port)
  data=$WORK/data-$limit
  export QUNFA_DATA_DIR=$data QUNFA_LISTEN=127.0.0.1:$port QUNFA_TIMEZONE=UTC QUNFA_LOG=warn QUNFA_IMPORT_MAX=$limit
  "$BIN" admin customer add --username bench --password pw >/dev/null
  "$BIN" serve 2>"$data.log" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local url="http://127.0.0.1:$port/mm-ms/api/mloperate.php?username=bench&password=$MD5"
  curl -sf "$url&do=maillist-add" -d subject=bench -d status=enabled >/dev/null
  t0=$(date +%s.%N)
  answer=$(curl -s -F list_id=1 -F "file=@$WORK/huge.txt" "$url&do=ml-addr-add-file" \
    | sed -n 's:.*<status>\([a-z_]*\)</status>.*:\1:p' || true)
  # A refusal may come before the upload is over: curl then says the
  # connection was reset, after the answer.
  [ -n "$answer" ] || answer="no answer"
  line=none
  if [ "$answer" = success ]; then
    line=$(import_ended 0.5)
    line="state $(cut -f5 <<<"$line"), added $(cut -f8 <<<"$line"), invalid $(cut -f9 <<<"$line")"
  fi
  t1=$(date +%s.%N)
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || answer="$answer (then qunfa stopped answering)"
  printf 'QUNFA_IMPORT_MAX=%-8s upload answered %-12s %6.1f s; job: %s; peak RSS %d MB\n' \
    "$limit" "$answer" "$(echo "$t1 - $t0" | bc -l)" "$line" "$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "one import line of $SIZE bytes, streamed to ml-addr-add-file; qunfa on SQLite"
try 512MiB
try "$(( (SIZE >> 20) + 64 ))MiB"
