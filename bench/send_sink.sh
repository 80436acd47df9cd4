#!/usr/bin/env bash
# Delivery benchmark (SMTP out): N pre-built messages of SIZE bytes
# (default 100,000 of 20 KB) through qunfa's delivery::Mailer in relay mode,
# CONCURRENCY at a time (default 16), to Postfix's smtp-sink; beside it, in the
# same run and to the same sink, Postfix's own smtp-source (8 sessions,
# connections kept, the same number and size of messages). Prints messages/s
# of both and their ratio, and qunfa's peak RSS.
#   N=20000 bench/send_sink.sh          a shorter run
#   CONCURRENCY=8 bench/send_sink.sh
# The lead's full campaign benchmark (render, DKIM, tracking) builds on this.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
CONCURRENCY=${CONCURRENCY:-16}
SIZE=${SIZE:-20480}
export PATH=$PATH:/usr/sbin

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix) >/dev/null
fi

cargo build --release --locked -q --example send_sink
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
smtp-sink -u nobody "127.0.0.1:$PORT" 1000 &
SINK=$!
trap 'kill $SINK 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

now() { date +%s.%N; }
start=$(now)
smtp-source -s 8 -d -m "$N" -l "$SIZE" -f bench@shop.test -t reader@sink.test "127.0.0.1:$PORT"
end=$(now)
ref_rate=$(python3 -c "print(round($N / ($end - $start)))")

# One line: qunfa N seconds rate details
read -r _ _ secs rate details < <(target/release/examples/send_sink "127.0.0.1:$PORT" "$N" "$CONCURRENCY" "$SIZE")

printf '%-34s %10s %10s\n' "sender ($N messages of $SIZE bytes)" "seconds" "msg/s"
printf '%-34s %10.2f %10s\n' "smtp-source -s 8 -d" "$(python3 -c "print($end - $start)")" "$ref_rate"
printf '%-34s %10.2f %10s\n' "qunfa delivery (relay, c=$CONCURRENCY)" "$secs" "$rate"
echo "ratio qunfa/smtp-source: $(python3 -c "print(round($rate / $ref_rate, 2))")"
echo "qunfa: $details"
