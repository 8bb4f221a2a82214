#!/usr/bin/env bash
# Set up .venv with the pinned CPU/CUDA torch pair and the suite (idempotent).
# On a GPU cluster, pick your CUDA build instead, e.g.:
#   TORCH_SPEC="torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu128" bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
  echo "install: needs Python >= 3.11 (sweep jobs import their code snapshot through PYTHONSAFEPATH); $PY is $("$PY" --version 2>&1 | head -1). Set PYTHON=python3.11 (or newer)." >&2; exit 2; }
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# Some machines' pip configs name local indexes that may be absent: hide only that warning.
quiet_pip() { "$VENV/bin/pip" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  quiet_pip install -q $TORCH_SPEC
fi
quiet_pip install -q -e ".[dev]"
# FAD-CLAP / CLAP score (the `audio` extra, docs/EVALUATION.md): laion-clap 1.1.7 pins numpy 1.26.4,
# which would downgrade the suite's numpy 2; it runs on numpy 2, so it goes in without its pins,
# plus only what `import laion_clap` and its inference path use (about 240 MB, mostly numba/llvmlite).
quiet_pip install -q --no-deps "laion-clap==1.1.7"
quiet_pip install -q librosa "torchlibrosa==0.1.0" ftfy braceexpand webdataset h5py wget
echo "installed: $("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)') into $VENV"
