#!/usr/bin/env bash
# Limits shared by a cluster: one `qunfa serve` and WORKERS (default 3)
# `qunfa worker` processes on one PostgreSQL database send a campaign of N
# recipients (default 2,000) at dest.example through a counting SMTP sink
# (bench/smtp_count.py) under QUNFA_DOMAIN_LIMITS=$LIMIT (default
# dest.example=2/40). Prints messages a second against the limit, the most
# sessions the sink saw at once and the most messages in one second (after
# the first), and what a grant of the database cost the serve process (its
# /metrics: mean time of a booking of start times and of a lease of
# connection slots, and messages a booking covered).
#   LIMIT=dest.example=8/400 bench/limits.sh     another limit
#   QUNFA_BIN=/path/to/qunfa bench/limits.sh     another build (e.g. before a change)
#   QUNFA_BENCH_PG=postgres://user@host:port     another server
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
WORKERS=${WORKERS:-3}
LIMIT=${LIMIT:-dest.example=2/40}
PG=${QUNFA_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
. bench/lib.sh
need curl python3 psql:postgresql-client

DB=qunfa_bench_limits_$$
psql -q "$PG/postgres" -c "CREATE DATABASE $DB"
trap 'cleanup; psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

SINK_PORT=$(free_port)
python3 bench/smtp_count.py "$SINK_PORT" "$N" "$WORK/sink.json" &
SINK=$!
PIDS+=("$SINK")
sleep 0.3

PORT=$(free_port)
export QUNFA_DATABASE_URL=$PG/$DB QUNFA_TIMEZONE=UTC QUNFA_LOG=warn
export QUNFA_SMTP_RELAY=127.0.0.1:$SINK_PORT QUNFA_DOMAIN_LIMITS=$LIMIT QUNFA_DKIM_ED25519=off
export QUNFA_DATA_DIR=$WORK/serve QUNFA_LISTEN=127.0.0.1:$PORT QUNFA_HELO_NAME=serve.bench.test
"$BIN" admin customer add --username shop --password pw >/dev/null
"$BIN" admin service set --username shop --quota "$N" >/dev/null
"$BIN" admin manager add --username boss --password pw >/dev/null
"$BIN" serve 2>"$WORK/serve.log" &
PIDS+=($!)
for i in $(seq "$WORKERS"); do
  QUNFA_DATA_DIR=$WORK/w$i QUNFA_HELO_NAME=w$i.bench.test "$BIN" worker 2>"$WORK/w$i.log" &
  PIDS+=($!)
done
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
MD5=$(printf pw | md5sum | cut -c1-32)
API="http://127.0.0.1:$PORT/mm-ms/api"
curl -sf "$API/bs.php?username=boss&password=$MD5&do=domain-add&user_type=manager&customer_id=1&domain=shop.test" >/dev/null
curl -sf "$API/bs.php?username=shop&password=$MD5&do=mailbox-add&mailbox=news@shop.test&pwd=x" >/dev/null
python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(int(sys.argv[2])):
        f.write(f'reader{i}@dest.example;Reader {i}\n')
" "$WORK/list.txt" "$N"
curl -sf "$API/template.php?username=shop&password=$MD5&do=add-tpl" -F name=news \
  --form-string 'subject=Hello {{ fullname }}' --form-string 'content=<p>Dear {{ fullname }}, our news.</p>' >/dev/null
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=maillist-add" -d subject=readers -d status=enabled >/dev/null
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=ml-addr-add-file" -F list_id=1 -F "file=@$WORK/list.txt" >/dev/null
import_done 0.2

curl -sf "$API/task.php?username=shop&password=$MD5&do=add-task&tpl_id=1&maillist_id=1&send_account=news@shop.test&status=2" >/dev/null
state() { curl -sf "$API/task.php?username=shop&password=$MD5&do=task-list&id=1" | sed -n 's:.*<send_status>\(-\?[0-9]*\)</send_status>.*:\1:p'; }
while [ "$(state)" != 2 ] && [ "$(state)" != 3 ]; do sleep 0.05; done
s0=$(now)
while [ "$(state)" != 3 ]; do sleep 0.1; done
s1=$(now)
wait "$SINK" || true
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics" || true

python3 - "$WORK/sink.json" "$WORK/metrics" "$N" "$LIMIT" "$WORKERS" "$s0" "$s1" <<'PY'
import json, re, sys
sink = json.load(open(sys.argv[1]))
metrics = open(sys.argv[2]).read()
n, limit, workers, s0, s1 = int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
connections, rate = limit.split("=")[1].split("/")
rate = float(rate)
def metric(name, labels):
    m = re.search(re.escape(name) + r"\{" + re.escape(labels) + r"\} ([0-9.e+-]+)", metrics)
    return float(m.group(1)) if m else None
def mean_ms(kind):
    total, count = metric("delivery_grant_seconds_sum", f'kind="{kind}"'), metric("delivery_grant_seconds_count", f'kind="{kind}"')
    return f"{1000 * total / count:.2f} ms ({int(count)})" if count else "-"
group = limit.split("=")[0]
tickets = metric("delivery_grants_total", f'group="{group}",kind="rate"')
bookings = metric("delivery_grant_seconds_count", 'kind="rate"')
per_booking = f"{tickets / bookings:.1f}" if tickets and bookings else "-"
msgs = n / (s1 - s0)
print("| limit | processes | messages | msg/s | of the rate | most sessions at once | most in one second | recipients | a booking of start times (mean, count) | messages a booking | a lease of slots (mean, count) |")
print("| --- | --- | ---: | ---: | ---: | --- | ---: | --- | --- | ---: | --- |")
print(f"| {limit} | 1 serve + {workers} workers | {n} | {msgs:.1f} | {msgs / rate:.2f} | "
      f"{sink['most_sessions']} (limit {connections}) | {sink['busiest_second']} | "
      f"{sink['recipients']} ({sink['repeated']} repeated) | {mean_ms('rate')} | {per_booking} | {mean_ms('connection')} |")
PY
