#!/usr/bin/env bash
# Import benchmark: N address lines (default 1,000,000; 10 % repeats,
# 1 % not addresses) through qunfa's real import path — a multipart upload to
# ml-addr-add-file, the job, the rows — on SQLite and on PostgreSQL, beside a
# reference measured in the same run on the same file:
#   SQLite:     the sqlite3 CLI's .import into a table with a unique
#               (case-insensitive) index on the address, WAL, synchronous=NORMAL;
#   PostgreSQL: COPY into a table with an index on lower(address) (COPY can't
#               skip duplicates, so that index is not unique).
# Prints rows/s (input lines per second, upload to last row committed), the
# ratio, qunfa's peak RSS, and whether the counts are exact.
#   N=200000 bench/import.sh        a smaller run
#   QUNFA_BENCH_PG=off              SQLite only
#   QUNFA_BENCH_SQLITE=off          PostgreSQL only
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
PG_URL=${QUNFA_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}

# Tools the benchmark uses, from Debian's packages when missing.
. bench/lib.sh
need sqlite3 psql:postgresql-client pg_dump:postgresql-client curl bc
PGDB=qunfa_bench_$$
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${QUNFA_BENCH_PG:-on}" != off ]; then
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS ${PGDB}_ref WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}

FILE=$WORK/addresses.txt
python3 bench/gen_addresses.py "$N" > "$FILE"
read -r EXP_ADDED EXP_INVALID EXP_DUP < <(python3 - "$FILE" <<'EOF'
import sys
seen, invalid, dup = set(), 0, 0
for line in open(sys.argv[1], encoding="utf-8"):
    email = line.split(";", 1)[0]
    if "@" not in email:
        invalid += 1
    elif email.lower() in seen:
        dup += 1
    else:
        seen.add(email.lower())
print(len(seen), invalid, dup)
EOF
)
MD5=$(printf pw | md5sum | cut -c1-32)

# settle [DATABASE_URL]: with PostgreSQL, a checkpoint first, so that no
# timed part pays for writing out the pages an earlier one left dirty.
settle() {
  case ${1:-} in postgres://*) psql "$1" -qc CHECKPOINT >/dev/null ;; esac
}

# qunfa_import LABEL [DATABASE_URL] → prints "seconds peak_rss_kib added invalid duplicate"
qunfa_import() {
  local data=$WORK/$1 port url
  port=$(free_port)
  url="http://127.0.0.1:$port/mm-ms/api/mloperate.php?username=bench&password=$MD5"
  export QUNFA_DATA_DIR=$data QUNFA_LISTEN=127.0.0.1:$port QUNFA_TIMEZONE=UTC QUNFA_LOG=warn
  if [ -n "${2:-}" ]; then export QUNFA_DATABASE_URL=$2; else unset QUNFA_DATABASE_URL; fi
  "$BIN" admin customer add --username bench --password pw >/dev/null
  "$BIN" serve 2>"$data.log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local list
  settle "${2:-}"
  list=$(curl -sf "$url&do=maillist-add" -d subject=bench -d status=enabled | sed -n 's:.*<id>\([0-9]*\)</id>.*:\1:p')
  local t0 t1 line
  t0=$(now)
  curl -sf -F "list_id=$list" -F "file=@$FILE" "$url&do=ml-addr-add-file" >/dev/null
  line=$(import_ended 0.05)
  t1=$(now)
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(echo "$t1 - $t0" | bc -l) $rss $(cut -f8 <<<"$line") $(cut -f9 <<<"$line") $(cut -f10 <<<"$line")"
}

sqlite_reference() {
  local db=$WORK/reference.db t0 t1
  {
    echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    echo "CREATE TABLE t (email TEXT NOT NULL COLLATE NOCASE UNIQUE ON CONFLICT IGNORE, name TEXT,"
    echo " v1 TEXT, v2 TEXT, v3 TEXT, v4 TEXT, v5 TEXT, v6 TEXT, v7 TEXT, v8 TEXT, v9 TEXT, v10 TEXT);"
    echo ".separator ;"
  } | sqlite3 "$db" >/dev/null
  t0=$(now)
  sqlite3 "$db" ".separator ;" ".import $FILE t" 2>/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

pg_reference() {
  local db=${PGDB}_ref t0 t1
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $db" >/dev/null
  settle "$PG_URL/$db"
  psql "$PG_URL/$db" -qc "CREATE TABLE t (email text, name text, v1 text, v2 text, v3 text, v4 text, v5 text,
      v6 text, v7 text, v8 text, v9 text, v10 text); CREATE INDEX ON t (lower(email));" >/dev/null
  t0=$(now)
  psql "$PG_URL/$db" -qc "\\copy t FROM '$FILE' WITH (FORMAT csv, DELIMITER ';')" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

# own_floor: the addresses qunfa stored, COPYed by psql into an empty copy
# of qunfa's own table (its columns, its three indexes) beside the
# reference's: what writing those rows costs PostgreSQL alone, without the
# upload, the parsing and the duplicate checks.
own_floor() {
  local db=${PGDB}_ref t0 t1 cols
  cols="customer_id, list_id, created_at, address, address_key, fullname, var1, var2, var3, var4, var5"
  cols+=", var6, var7, var8, var9, var10, sex, birthday, phone, area"
  psql "$PG_URL/$PGDB" -qc "\\copy (SELECT $cols FROM addresses ORDER BY id) TO '$WORK/rows.txt'" >/dev/null
  pg_dump --schema-only -t addresses "$PG_URL/$PGDB" | psql -q "$PG_URL/$db" >/dev/null
  settle "$PG_URL/$db"
  t0=$(now)
  psql "$PG_URL/$db" -qc "\\copy addresses ($cols) FROM '$WORK/rows.txt'" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

rate() { printf '%.0f' "$(echo "$N / $1" | bc -l)"; }
row() { printf '%-34s %14s %14s %8s  %s\n' "$@"; }
exact() { [ "$1 $2 $3" = "$EXP_ADDED $EXP_INVALID $EXP_DUP" ] && echo exact || echo "WRONG: $1 $2 $3, expected $EXP_ADDED $EXP_INVALID $EXP_DUP"; }

echo "import of $N lines ($(du -m "$FILE" | cut -f1) MB; expected added $EXP_ADDED, invalid $EXP_INVALID, duplicate $EXP_DUP)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -sr)"
row "benchmark" "qunfa rows/s" "ref rows/s" "ratio" "notes"

if [ "${QUNFA_BENCH_SQLITE:-on}" != off ]; then
  read -r q_s q_rss q_added q_invalid q_dup < <(qunfa_import sqlite)
  r_s=$(sqlite_reference)
  row "import, SQLite" "$(rate "$q_s")" "$(rate "$r_s")" "$(printf '%.2f' "$(echo "$r_s / $q_s" | bc -l)")" \
    "ref: sqlite3 .import; peak RSS $((q_rss / 1024)) MB; counts $(exact "$q_added" "$q_invalid" "$q_dup")"
fi

if [ "${QUNFA_BENCH_PG:-on}" != off ]; then
  psql "$PG_URL/postgres" -qc "CREATE DATABASE $PGDB" >/dev/null
  read -r q_s q_rss q_added q_invalid q_dup < <(qunfa_import postgres "$PG_URL/$PGDB")
  r_s=$(pg_reference)
  f_s=$(own_floor)
  row "import, PostgreSQL" "$(rate "$q_s")" "$(rate "$r_s")" "$(printf '%.2f' "$(echo "$r_s / $q_s" | bc -l)")" \
    "ref: COPY; peak RSS $((q_rss / 1024)) MB; counts $(exact "$q_added" "$q_invalid" "$q_dup")"
  row "  COPY of qunfa's rows, own table" "" "$(rate "$f_s")" "$(printf '%.2f' "$(echo "$f_s / $q_s" | bc -l)")" \
    "the rows qunfa stored, into its table and indexes by psql alone"
  goal "import of $N lines, PostgreSQL" "$(rate "$q_s") rows/s" "COPY into a table with the same unique key: $(rate "$r_s") rows/s" \
    "$(printf '%.2f' "$(echo "$r_s / $q_s" | bc -l)")×" "≥ 0.8×" "$r_s / $q_s >= 0.8"
fi
