#!/usr/bin/env bash
# API benchmark: p50/p99 latency and requests/s of vendor-API
# reads under CONNS concurrent clients (wrk --latency), on a list of N
# addresses (default 1,000,000) imported through the real path, qunfa on
# SQLite: ml-addr-list page 1 and a deep page (10,000 of 50 rows, or the
# middle of a smaller list), task-list, and track.php overview; the JSON
# API's page of the same list's contacts (/api/v1/lists/1/contacts, 50 a
# page, first and as deep, by cursor) with a key. Beside each,
# in the same run, nginx serving the same answer's bytes as a static file
# (the cost of HTTP itself, the floor no application server goes below).
#   N=200000 D=5s bench/api.sh
# PROFILE=DIR records a CPU profile of qunfa during each of its runs (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
D=${D:-10s}
CONNS=${CONNS:-64}
export PATH=$PATH:/usr/sbin
. bench/lib.sh
need wrk nginx:nginx-light curl python3

PORT=$(free_port)
# The JSON key's rate is lifted: the bench measures the server, not the limit.
export QUNFA_DATA_DIR=$WORK/data QUNFA_LISTEN=127.0.0.1:$PORT QUNFA_TIMEZONE=UTC QUNFA_LOG=warn QUNFA_API_RATE=100000
qunfa_shop 10
KEY=$("$BIN" admin api-key add --username shop --name bench)
serve_qunfa
AUTH="username=shop&password=$MD5"
python3 bench/gen_addresses.py "$N" >"$WORK/list.txt"
curl -sf "$API/mloperate.php?$AUTH&do=maillist-add" -d subject=readers -d status=enabled >/dev/null
curl -sf "$API/mloperate.php?$AUTH&do=ml-addr-add-file" -F list_id=1 -F "file=@$WORK/list.txt" >/dev/null
import_done 0.5
curl -sf "$API/template.php?$AUTH&do=add-tpl" -F name=t -F subject=s --form-string 'content=<a href="https://a.cn/">a</a>' >/dev/null
curl -sf "$API/bs.php?username=boss&password=$MD5&do=domain-add&user_type=manager&customer_id=1&domain=shop.test" >/dev/null
curl -sf "$API/bs.php?$AUTH&do=mailbox-add&mailbox=news@shop.test&pwd=x" >/dev/null
curl -sf "$API/task.php?$AUTH&do=add-task&tpl_id=1&maillist_id=1&send_account=news@shop.test&status=-1&time=2099-01-01%2010:00&track_status=2" | grep -q success

ROWS=$(curl -sf "$API/mloperate.php?$AUTH&do=maillist-detail&id=1" | sed -n 's:.*<count>\([0-9]*\)</count>.*:\1:p')
DEEP=$(( ROWS / 50 < 10000 ? ROWS / 100 : 10000 ))
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx" "$WORK/root"
chmod 755 "$WORK" "$WORK/root"  # nginx workers run as another user
sed -e "s#PORT#$NGINX_PORT#; s#PIDFILE#$WORK/nginx/pid#; s#TMPDIR#$WORK/nginx#g; s#ROOT#$WORK/root#" bench/nginx-static.conf >"$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)
sleep 0.3

# p50 p99 (ms) and requests/s of a wrk run; a second argument is a header.
load() {
  wrk -t2 -c"$CONNS" -d"$D" --latency ${2:+-H "$2"} "$1" >"$WORK/wrk.out" 2>&1
  if grep -q "Non-2xx" "$WORK/wrk.out"; then cat "$WORK/wrk.out" >&2; exit 1; fi
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        sys.exit(f"unreadable latency {v!r} in:\n{t}")
    n, unit = m.groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
total = int(re.search(r"(\d+) requests in", t).group(1))
print(f"{p50:.2f} {p99:.2f} {rps:.0f} {total}")
PY
}
# A qunfa run: p50, p99, requests/s and qunfa's CPU time per request (µs).
qload() {
  local c0 c1 total
  c0=$(cpu_ticks "$SERVE")
  profiled "$SERVE" "api-${name// /-}" load "$@" >"$WORK/q.out"
  c1=$(cpu_ticks "$SERVE")
  read -r Q50 Q99 QRPS total <"$WORK/q.out"
  QCPU=$(( (c1 - c0) * 1000000 / $(getconf CLK_TCK) / total ))
}
echo "API under wrk -t2 -c$CONNS -d$D --latency; list of $ROWS addresses; qunfa on SQLite"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr)"
printf '%-34s %9s %9s %9s %9s | %9s %9s %9s %7s\n' "call" "p50 ms" "p99 ms" "req/s" "CPU µs" "nginx p50" "p99" "req/s" "ratio"
# The row of one call: qunfa's figures (with its CPU time per request),
# nginx's, and qunfa's requests/s as a share of nginx's.
row() {
  printf '%-34s %9s %9s %9s %9s | %9s %9s %9s %7s\n' "$name ($(stat -c %s "$WORK/root/$file") B)" \
    "$Q50" "$Q99" "$QRPS" "$QCPU" "$N50" "$N99" "$NRPS" "$(echo "scale=2; $QRPS / $NRPS" | bc -l)"
  case "$name" in
    *page*) goal "$name of $ROWS addresses, $CONNS clients" "$QRPS req/s, p99 $Q99 ms, $QCPU µs CPU" \
      "nginx, same bytes: $NRPS req/s, p99 $N99 ms" "$(python3 -c "print(f'{$QRPS / $NRPS:.2f}×')")" \
      "≥ 0.25×, p99 ≤ 10 ms" "$QRPS / $NRPS >= 0.25 and $Q99 <= 10" ;;
  esac
}
for spec in "ml-addr-list page 1|do=ml-addr-list&list_id=1&page=1" \
            "ml-addr-list page $DEEP|do=ml-addr-list&list_id=1&page=$DEEP" \
            "task-list|do=task-list" \
            "track overview|do=overview&id=1"; do
  name=${spec%%|*}; q=${spec#*|}
  script=mloperate.php
  case "$q" in do=task-list) script=task.php;; do=overview*) script=track.php;; esac
  url="$API/$script?$AUTH&$q"
  file="$(echo "$name" | tr ' ' '_').xml"
  curl -sf "$url" >"$WORK/root/$file"; chmod 644 "$WORK/root/$file"
  qload "$url"
  read -r N50 N99 NRPS _ < <(load "http://127.0.0.1:$NGINX_PORT/$file")
  row
done
V1="http://127.0.0.1:$PORT/api/v1"
for spec in "JSON contacts page 1|" "JSON contacts page $DEEP|&cursor=$(( (DEEP - 1) * 50 ))"; do
  name=${spec%%|*}; q=${spec#*|}
  url="$V1/lists/1/contacts?limit=50$q"
  file="$(echo "$name" | tr ' ' '_').json"
  curl -sf -H "Authorization: Bearer $KEY" "$url" >"$WORK/root/$file"; chmod 644 "$WORK/root/$file"
  qload "$url" "Authorization: Bearer $KEY"
  read -r N50 N99 NRPS _ < <(load "http://127.0.0.1:$NGINX_PORT/$file")
  row
done
