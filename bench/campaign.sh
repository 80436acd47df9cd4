#!/usr/bin/env bash
# Campaign benchmark: a task of N personalised recipients (default
# 100,000; a 20 KB HTML template with two links, open and click tracking on,
# DKIM RSA-2048) sent by `qunfa serve` on SQLite in relay mode to Postfix's
# smtp-sink; beside it, in the same run and to the same sink,
# `smtp-source -s 8 -d -m N -l 20480`, and the RSA-2048 signatures a second
# the machine makes (`openssl speed`). Prints messages/s of both senders
# (qunfa: from the task's start to its end) with their ratio, and qunfa's
# CPU per message and peak RSS.
#   N=20000 bench/campaign.sh        a shorter run
#   ED25519=on bench/campaign.sh     dual signing (RSA-2048 + Ed25519)
#   PROFILE=DIR bench/campaign.sh    a CPU profile of qunfa while it sends (bench/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ED25519=${ED25519:-off}
export PATH=$PATH:/usr/sbin
. bench/lib.sh
need smtp-sink:postfix curl python3 openssl

SINK_PORT=$(free_port)
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1000 &
PIDS+=($!)
sleep 0.5

t0=$(now)
smtp-source -s 8 -d -m "$N" -l 20480 -f bench@shop.test -t reader@sink.test "127.0.0.1:$SINK_PORT"
t1=$(now)
REF=$(python3 -c "print($N / ($t1 - $t0))")
# Each message needs one RSA-2048 signature: how many this machine's cores
# make a second (OpenSSL, every core) bounds what any DKIM-signing sender can
# send here, whatever else it does.
RSA=$(openssl speed -seconds 3 -multi "$(nproc)" rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $(NF-1)}')

PORT=$(free_port)
export QUNFA_DATA_DIR=$WORK/data QUNFA_LISTEN=127.0.0.1:$PORT QUNFA_TIMEZONE=UTC QUNFA_LOG=warn
export QUNFA_SMTP_RELAY=127.0.0.1:$SINK_PORT QUNFA_HELO_NAME=mta.bench.test QUNFA_DOMAIN_LIMITS='*=32/0' QUNFA_DKIM_ED25519=$ED25519
qunfa_shop "$N"
serve_qunfa
shop_sends
python3 - "$WORK" "$N" <<'EOF'
import sys
work, n = sys.argv[1], int(sys.argv[2])
para = "<p>Dear {{ fullname }}, this is paragraph %d of our spring catalogue, with code {{ var1 }}.</p>\n"
html = "<html><body>\n" + "".join(para % i for i in range(230))
html += '<a href="https://shop.test/sale?from=mail&amp;id=1">Sale</a> <a href="https://shop.test/new">New</a>\n</body></html>\n'
open(f"{work}/template.html", "w").write(html)
with open(f"{work}/list.txt", "w") as f:
    for i in range(n):
        f.write(f"reader{i}@sink.test;Reader {i};CODE{i}\n")
EOF
curl -sf "$API/template.php?username=shop&password=$MD5&do=add-tpl" -F name=spring \
  -F 'subject={{ fullname }}, our spring sale' -F "content=<$WORK/template.html" >/dev/null
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=maillist-add" -d subject=readers -d status=enabled >/dev/null
curl -sf "$API/mloperate.php?username=shop&password=$MD5&do=ml-addr-add-file" -F list_id=1 -F "file=@$WORK/list.txt" >/dev/null
import_done 0.2

# The import's peak apart from the campaign's: the high-water mark starts
# again here (Linux: 5 to clear_refs).
IMPORT_RSS=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVE/status")
echo 5 >"/proc/$SERVE/clear_refs"

curl -sf "$API/task.php?username=shop&password=$MD5&do=add-task&tpl_id=1&maillist_id=1&send_account=news@shop.test&status=2&track_status=2&subs_link=1" >/dev/null
state() { curl -sf "$API/task.php?username=shop&password=$MD5&do=task-list&id=1" | sed -n 's:.*<send_status>\(-\?[0-9]*\)</send_status>.*:\1:p'; }
while [ "$(state)" != 2 ] && [ "$(state)" != 3 ]; do sleep 0.05; done
s0=$(now)
# qunfa's CPU time (user + system, in clock ticks): a figure that holds on a shared machine.
c0=$(cpu_ticks "$SERVE")
sending() { while [ "$(state)" != 3 ]; do sleep 0.2; done; }
profiled "$SERVE" campaign sending
s1=$(now)
c1=$(cpu_ticks "$SERVE")
RATE=$(python3 -c "print($N / ($s1 - $s0))")
RSS=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVE/status")
SENT=$(curl -sf "$API/task.php?username=shop&password=$MD5&do=task-list&id=1" | sed -n 's:.*<send_count>\([0-9]*\)</send_count>.*:\1:p')

echo "campaign of $N recipients, 20 KB HTML, 2 links, open+click tracking, DKIM RSA-2048$([ "$ED25519" = on ] && echo " + Ed25519")"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr)"
printf '%-44s %10s\n' "sender" "msg/s"
printf '%-44s %10.0f\n' "smtp-source -s 8 -d -l 20480" "$REF"
printf '%-44s %10.0f\n' "qunfa campaign (task start to done)" "$RATE"
printf '%-44s %10.0f\n' "RSA-2048 signatures/s (openssl speed -multi $(nproc))" "$RSA"
echo "qunfa CPU: $(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK) / $N * 1e6))") µs per message, \
$(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK) / ($s1 - $s0), 2))") cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio qunfa/smtp-source: $(python3 -c "print(round($RATE / $REF, 2))"); qunfa peak RSS ${RSS} MB sending (${IMPORT_RSS} MB importing the list); sent $SENT of $N"
goal "campaign of $N, 20 KB HTML, tracking, DKIM RSA-2048$([ "$ED25519" = on ] && echo " + Ed25519")" \
  "$(printf '%.0f' "$RATE") msg/s" "RSA-2048 signatures/s on all cores: $(printf '%.0f' "$RSA")" \
  "$(python3 -c "print(round($RATE / $RSA, 2))")" "≥ 0.75 of the signing ceiling" "$RATE / $RSA >= 0.75"
goal "campaign of $N, peak RSS" "$RSS MB sending, $IMPORT_RSS MB importing" "listmonk: 7M recipients in 57 MB (published)" \
  "—" "< 64 MB" "$RSS < 64 and $IMPORT_RSS < 64"
echo "ceiling of any RSA-2048 signing sender here: $(python3 -c "print(round($RSA / $REF, 2))")× smtp-source; \
qunfa reaches $(python3 -c "print(round($RATE / $RSA, 2))") of it"
