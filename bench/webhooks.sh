#!/usr/bin/env bash
# Webhook benchmark: events a second from qunfa's dispatcher to a local
# receiver (bench/hook_count.py, 204 to every POST). A campaign of N
# recipients (default 20,000) is sent to Postfix's smtp-sink while the
# receiver is down, so its N `delivered` events wait in the outbox; then
# the receiver starts and the time from its first event to its Nth is
# measured. Beside it, in the same run: the same receiver's own ceiling,
# wrk POSTing the same kind of body to it with 8 connections.
#   N=5000 bench/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
export PATH=$PATH:/usr/sbin
. bench/lib.sh
need smtp-sink:postfix curl python3 wrk

SINK_PORT=$(free_port)
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1000 &
PIDS+=($!)
HOOK_PORT=$(free_port)
PORT=$(free_port)
export QUNFA_DATA_DIR=$WORK/data QUNFA_LISTEN=127.0.0.1:$PORT QUNFA_TIMEZONE=UTC QUNFA_LOG=warn
export QUNFA_SMTP_RELAY=127.0.0.1:$SINK_PORT QUNFA_HELO_NAME=mta.bench.test QUNFA_DOMAIN_LIMITS='*=32/0'
export QUNFA_WEBHOOK_PRIVATE=allow QUNFA_WEBHOOK_RETRY_DELAYS=3s
qunfa_shop "$N"
KEY=$("$BIN" admin api-key add --username shop --name bench)
serve_qunfa
shop_sends
curl -sf "$API/template.php?username=shop&password=$MD5&do=add-tpl" -F name=t -F subject=hi --form-string 'content=<p>Hi {{ fullname }}</p>' >/dev/null
python3 -c "import sys; [print(f'reader{i}@sink.test') for i in range(int(sys.argv[1]))]" "$N" >"$WORK/list.txt"
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=maillist-add" -d subject=readers -d status=enabled >/dev/null
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=ml-addr-add-file" -F list_id=1 -F "file=@$WORK/list.txt" >/dev/null
import_done 0.2
curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/webhooks" \
  -d "{\"url\": \"http://127.0.0.1:$HOOK_PORT/hook\", \"events\": [\"delivered\"]}" >/dev/null
curl -sf "$API/task.php?username=shop&password=$MD5&do=add-task&tpl_id=1&maillist_id=1&send_account=news@shop.test&status=2" >/dev/null
state() { curl -sf "$API/task.php?username=shop&password=$MD5&do=task-list&id=1" | sed -n 's:.*<send_status>\(-\?[0-9]*\)</send_status>.*:\1:p'; }
while [ "$(state)" != 3 ]; do sleep 0.2; done

python3 bench/hook_count.py "$HOOK_PORT" "$N" "$WORK/hook.json" &
HOOK=$!
PIDS+=("$HOOK")
wait "$HOOK"
read -r SECS < <(python3 -c "import json; print(round(json.load(open('$WORK/hook.json'))['seconds'], 2))")
RATE=$(python3 -c "print(round($N / $SECS))")

# The receiver's own ceiling: wrk POSTing a body like qunfa's.
REF_PORT=$(free_port)
python3 bench/hook_count.py "$REF_PORT" 1000000000 "$WORK/ref.json" 2>/dev/null &
PIDS+=($!)
sleep 0.3
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"evt_1","type":"delivered","created_at":"2026-12-04T12:00:00+00:00","data":{"campaign_id":1,"email":"reader1@sink.test"}}'
LUA
REF=$(wrk -t2 -c8 -d5s -s "$WORK/post.lua" "http://127.0.0.1:$REF_PORT/hook" | awk '/Requests\/sec/ {print int($2)}')
echo "webhook events to a local receiver; $N delivered events waiting in the outbox; qunfa on SQLite"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr)"
printf '%-28s %12s | %-28s %12s %8s\n' "qunfa dispatcher" "events/s" "the receiver under wrk -c8" "req/s" "ratio"
printf '%-28s %12s | %-28s %12s %8s\n' "$N events in $SECS s" "$RATE" "" "$REF" "$(python3 -c "print(f'{$RATE / $REF:.2f}')")"
