#!/usr/bin/env bash
# Prints how `qunfa bounce classify` agrees with ../shared/corpus/bounces/expected.tsv,
# per class and overall, and lists every disagreement (issue 8's quality bar).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --locked --test bounce_corpus corpus_agreement_meets_the_bar -- --nocapture "$@"
