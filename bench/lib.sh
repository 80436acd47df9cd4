# What every benchmark script starts with (sourced, from the repo's root):
# the release build, a work folder and the processes to stop at the end,
# a free port, the time.
cargo build --release --locked -q
BIN=$PWD/target/release/qunfa
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
