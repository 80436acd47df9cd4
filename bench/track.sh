#!/usr/bin/env bash
# Tracking benchmark: wrk loads qunfa's open pixel and click
# redirect (the links of R really delivered messages, rotated) on loopback,
# beside nginx serving a 43-byte GIF (empty_gif, bench/nginx-pixel.conf) in
# the same run with the same wrk settings. Prints requests/s of each and
# the ratio, then checks that every hit was recorded: the hits qunfa
# counted in 3.1 equal the hits its edge queued (/metrics), and are at
# least the requests wrk completed (at most CONNS more: requests in flight
# when wrk stopped still reach the server).
#   D=10s R=200 CONNS=64 bench/track.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=${D:-10s}
R=${R:-200}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
export PATH=$PATH:/usr/sbin
. bench/lib.sh
need wrk nginx:nginx-light curl python3
# requests/s and completed requests of a wrk run: "RATE COUNT"
load() {
  wrk -t"$THREADS" -c"$CONNS" -d"$D" -s "$WORK/rotate.lua" "$1" >"$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out"; exit 1; }
  if grep -q "Non-2xx or 3xx" "$WORK/wrk.out"; then cat "$WORK/wrk.out"; echo "wrk saw errors" >&2; exit 1; fi
  awk '/Requests\/sec/ {rate=$2} / requests in / {count=$1} END {print rate, count}' "$WORK/wrk.out"
}

# nginx
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
sed -e "s#PORT#$NGINX_PORT#; s#PIDFILE#$WORK/nginx/pid#; s#TMPDIR#$WORK/nginx#g" bench/nginx-pixel.conf >"$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)

# qunfa, with R delivered messages whose links are loaded.
SMTP_PORT=$(free_port)
mkdir -p "$WORK/mail"
python3 bench/smtp_keep.py "$SMTP_PORT" "$WORK/mail" &
PIDS+=($!)
PORT=$(free_port)
export QUNFA_DATA_DIR=$WORK/data QUNFA_LISTEN=127.0.0.1:$PORT QUNFA_TIMEZONE=UTC QUNFA_LOG=warn
export QUNFA_SMTP_RELAY=127.0.0.1:$SMTP_PORT QUNFA_HELO_NAME=mta.bench.test QUNFA_SCANNER_WINDOW=0s
qunfa_shop "$R"
serve_qunfa
shop_sends
curl -sf "$API/template.php?username=shop&password=$MD5&do=add-tpl" -F name=t -F subject=hello \
  -F encoding=quoted-printable --form-string 'content=<p>Hi</p><a href="https://shop.test/sale?a=1&amp;b=2">Sale</a>' >/dev/null
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=maillist-add" -d subject=readers -d status=enabled >/dev/null
python3 -c "import sys; print('\n'.join(f'reader{i}@sink.test' for i in range($R)))" >"$WORK/list.txt"
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=ml-addr-add" --data-urlencode "ml_addr@$WORK/list.txt" -d list_id=1 >/dev/null
curl -sf "$API/task.php?username=shop&password=$MD5&do=add-task&tpl_id=1&maillist_id=1&send_account=news@shop.test&status=2&track_status=2&subs_link=1" >/dev/null
state() { curl -sf "$API/task.php?username=shop&password=$MD5&do=task-list&id=1" | sed -n 's:.*<send_status>\(-\?[0-9]*\)</send_status>.*:\1:p'; }
while [ "$(state)" != 3 ]; do sleep 0.2; done
# The paths of the pixels and click links of the delivered messages.
python3 - "$WORK" <<'PY'
import email, glob, re, sys
work = sys.argv[1]
opens, clicks = [], []
for name in glob.glob(f"{work}/mail/*.eml"):
    msg = email.message_from_binary_file(open(name, "rb"))
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()
            opens += re.findall(r"http://[^/\"]+(/t/o/[0-9a-v]+)", html)
            clicks += re.findall(r"http://[^/\"]+(/t/c/[0-9a-v]+)", html)
for kind, paths in (("open", opens), ("click", clicks)):
    with open(f"{work}/{kind}.lua", "w") as f:
        f.write("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n")
        f.write("n = 0\nrequest = function()\n  n = n % #paths + 1\n  return wrk.format(nil, paths[n])\nend\n")
print(len(opens), "pixels,", len(clicks), "links", file=sys.stderr)
PY
echo 'request = function() return wrk.format(nil, "/pixel.gif") end' >"$WORK/rotate.lua"
read -r NGINX_RATE _ < <(load "http://127.0.0.1:$NGINX_PORT")
cp "$WORK/open.lua" "$WORK/rotate.lua"
read -r OPEN_RATE OPEN_COUNT < <(profiled "$SERVE" pixel load "http://127.0.0.1:$PORT")
cp "$WORK/click.lua" "$WORK/rotate.lua"
read -r CLICK_RATE CLICK_COUNT < <(profiled "$SERVE" click load "http://127.0.0.1:$PORT")
RSS=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVE/status")

# Every hit recorded: stop qunfa gracefully (the writer drains its queue),
# start it again and read 3.1.
QUEUED=$(curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^tracking_hits_total/ {print $2}')
kill -TERM "$SERVE"; wait "$SERVE" || true
serve_qunfa
OVERVIEW=$(curl -sf "$API/track.php?username=shop&password=$MD5&do=overview&id=1")
OPENS=$(sed -n 's:.*<open_total>\([0-9]*\)</open_total>.*:\1:p' <<<"$OVERVIEW" | head -1)
CLICKS=$(sed -n 's:.*<click_total>\([0-9]*\)</click_total>.*:\1:p' <<<"$OVERVIEW" | head -1)

echo "wrk -t$THREADS -c$CONNS -d$D on loopback; $R delivered messages' links rotated"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr)"
printf '%-40s %12s\n' "server" "requests/s"
printf '%-40s %12.0f\n' "nginx empty_gif (43-byte GIF)" "$NGINX_RATE"
printf '%-40s %12.0f  (ratio %s)\n' "qunfa open pixel" "$OPEN_RATE" "$(python3 -c "print(round($OPEN_RATE / $NGINX_RATE, 2))")"
printf '%-40s %12.0f  (ratio %s)\n' "qunfa click redirect" "$CLICK_RATE" "$(python3 -c "print(round($CLICK_RATE / $NGINX_RATE, 2))")"
echo "qunfa peak RSS ${RSS} MB"
echo "hits: wrk completed $OPEN_COUNT opens + $CLICK_COUNT clicks; qunfa queued ${QUEUED:-?}; recorded $OPENS opens + $CLICKS clicks"
TOTAL=$((OPENS + CLICKS)); WRK=$((OPEN_COUNT + CLICK_COUNT))
if [ "$TOTAL" != "${QUEUED%.*}" ] || [ "$TOTAL" -lt "$WRK" ] || [ "$TOTAL" -gt $((WRK + 2 * CONNS)) ]; then
  echo "HITS LOST OR INVENTED" >&2; exit 1
fi
echo "no hit lost"
goal "open pixel, $CONNS clients" "$(printf '%.0f' "$OPEN_RATE") req/s, no hit lost" \
  "nginx empty_gif: $(printf '%.0f' "$NGINX_RATE") req/s" "$(python3 -c "print(f'{$OPEN_RATE / $NGINX_RATE:.2f}×')")" \
  "≥ 0.8×, no hit lost" "$OPEN_RATE / $NGINX_RATE >= 0.8"
