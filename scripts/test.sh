#!/usr/bin/env bash
# The README's test command: set up (idempotent), start the real local services the tests use, run pytest.
#  - a one-node SLURM cluster on localhost (Debian's slurm-wlm + munge) when run as root;
#  - Debian's chromium for the report's headless-browser test.
# Without root, SLURM/browser tests skip with a clear reason. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if ! command -v chromium >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; browser test will skip"
  fi
  if [ -f scripts/slurm_local.sh ]; then
    bash scripts/slurm_local.sh start || echo "warning: local SLURM did not start; SLURM tests will skip"
  fi
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
