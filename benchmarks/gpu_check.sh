#!/usr/bin/env bash
# One run that checks and times ganaug's whole GPU path on one NVIDIA GPU (written for an H100), in
# well under 10 minutes: the GPU-marked tests, full-MNIST training epochs of the large-batch recipe with
# its class fidelity, the ONNX export (parity checked on the way), and generation at large batches on
# every available path. Expects: python3 with torch, onnx(script) and pytest (onnxruntime may be CPU-only),
# no network, MNIST idx files (plain or .gz) under $DATA/MNIST/raw and an evaluator folder at $EVAL
# (`ganaug evaluator train` makes one; it is trained here if $EVAL is missing).
# Results: $RESULTS/gpu_bench.{json,md} and $RESULTS/gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-.carry/data}; EVAL=${EVAL:-.carry/evaluator_mnist}; RESULTS=${RESULTS:-${OUT:-benchmarks/results/gpu}}
mkdir -p "$RESULTS"; LOG="$RESULTS/gpu_check.log"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for f in "$DATA"/MNIST/raw/*.gz; do [ -e "$f" ] && { [ -f "${f%.gz}" ] || gunzip -kf "$f"; }; done
{
  echo "== machine"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import sys, torch, onnxruntime as o; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'onnxruntime', o.__version__, o.get_available_providers())"
  echo "== GPU-marked tests"; timeout 180 python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tail -4
  if [ ! -f "$EVAL/evaluator.json" ]; then
    echo "== evaluator"; timeout 120 python3 -m ganaug evaluator train --data-root "$DATA" --out "$EVAL" --device cuda 2>&1 | tail -2
  fi
  echo "== training, export, fidelity, generation"
  timeout 420 python3 benchmarks/gpu_bench.py --data-root "$DATA" --evaluator "$EVAL" --out-dir "$RESULTS" "$@"
} 2>&1 | tee "$LOG"
