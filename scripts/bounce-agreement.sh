#!/usr/bin/env bash
# Prints how `qunfa bounce classify` agrees with tests/fixtures/bounces/expected.tsv,
# per class, on the development part, the held-out part and the whole folder,
# and lists every disagreement grouped by (expected class → class given).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --locked --test bounce_corpus corpus_agreement_meets_the_bar -- --nocapture "$@"
