#!/usr/bin/env bash
# The whole test suite, on SQLite and on PostgreSQL, plus the lint gate.
# Everything a fresh machine needs is set up here.
#
#   QUNFA_TEST_PG=off          skip the PostgreSQL half on purpose
#   QUNFA_TEST_PG_URL=URL      a PostgreSQL server (default postgres://postgres@127.0.0.1:5432)
#   QUNFA_LINT=off             skip rustfmt and clippy
#   QUNFA_TEST_PYTHON=PATH     a Python with dkimpy and PyNaCl (default: a virtualenv in target/)
#   QUNFA_TEST_BROWSER=off     skip the console's browser test (tests/console_browser.rs)
#   QUNFA_FUZZ_SECS=N          seconds per fuzz target (default 30 here; scripts/fuzz.sh)
#   QUNFA_FUZZ=off             skip the fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL: start the machine's cluster if it is installed but down.
if [ "${QUNFA_TEST_PG:-on}" != off ] && [ -z "${QUNFA_TEST_PG_URL:-}" ]; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi

# dkimpy (with PyNaCl for Ed25519) verifies DKIM signatures in tests/dkim.rs,
# an implementation independent of ours, and openapi-spec-validator checks
# the JSON API's document in tests/openapi.rs; kept in a virtualenv under
# target/.
if [ -z "${QUNFA_TEST_PYTHON:-}" ]; then
  venv=target/pytools
  if ! "$venv/bin/python" -c 'import dkim, nacl, openapi_spec_validator' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'dkimpy==1.1.8' 'pynacl==1.6.2' 'openapi-spec-validator==0.7.1'
  fi
  export QUNFA_TEST_PYTHON="$PWD/$venv/bin/python"
fi

# Debian's dnsmasq serves the DNS records of tests/domain_check.rs.
if [ ! -x /usr/sbin/dnsmasq ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null
fi

# Debian's SpamAssassin scores what the engine sent (tests/spam_score.rs),
# with its local rules only.
if ! command -v spamassassin >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends spamassassin >/dev/null
fi

# The console's browser test drives Debian's Chromium with playwright-core
# (pinned in tests/e2e/package.json, installed into target/e2e; it never
# downloads a browser of its own).
if [ "${QUNFA_TEST_BROWSER:-on}" != off ]; then
  # A small CJK font, so the Chinese pages render legibly in screenshots.
  if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
  fi
  e2e=target/e2e
  if ! cmp -s tests/e2e/package-lock.json "$e2e/package-lock.json" \
    || [ ! -f "$e2e/node_modules/playwright-core/package.json" ]; then
    mkdir -p "$e2e"
    cp tests/e2e/package.json tests/e2e/package-lock.json "$e2e/"
    npm ci --prefix "$e2e" --no-audit --no-fund --loglevel=error
  fi
fi

if [ "${QUNFA_LINT:-on}" != off ]; then
  cargo fmt --check
  cargo clippy --locked --all-targets -- -D warnings
fi

cargo test --locked "$@"

# Coverage-guided fuzzing, each target for a bounded time (README "Proof:
# faults, attacks, fuzzing"): 30 s rather than the issue's 60, as building
# the instrumented targets on a fresh machine already takes minutes.
if [ "${QUNFA_FUZZ:-on}" != off ]; then
  scripts/fuzz.sh "${QUNFA_FUZZ_SECS:-30}"
fi
