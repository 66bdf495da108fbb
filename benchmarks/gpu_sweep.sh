#!/usr/bin/env bash
# Quality sweep of training recipes on a GPU machine (see benchmarks/quality_sweep.py). Expects the MNIST
# idx files gzipped under $DATA/MNIST/raw and an evaluator folder at $EVAL. Writes to $OUT (or results/).
set -euo pipefail
DATA=${DATA:-.carry/data}; EVAL=${EVAL:-.carry/evaluator_mnist}; OUT=${OUT:-runs/benchmarks/gpu}
for f in "$DATA"/MNIST/raw/*.gz; do [ -f "${f%.gz}" ] || gunzip -kf "$f"; done
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/quality_sweep.py --data-root "$DATA" --evaluator "$EVAL" --out /tmp/sweep --device cuda --threads 1 \
  --at 5,10,20 --per-class 1000 \
  --recipe 'base=amp="off"' \
  --recipe 'd32=amp="off",model.d_width=32' \
  --recipe 'bs128=amp="off",batch_size=128' \
  --recipe 'ls=amp="off",d_label_smoothing=0.1' \
  --recipe 'g96=amp="off",model.g_width=96' \
  --recipe 'z100=amp="off",model.z_dim=100' \
  --recipe 'lb512=batch_size=512,lr_g=5e-4,lr_d=5e-4,_at=20/40/80' \
  --recipe 'lb1024=batch_size=1024,lr_g=1e-3,lr_d=1e-3,_at=30/60/120'
mkdir -p "$OUT"; cp /tmp/sweep/sweep.json /tmp/sweep/sweep.md "$OUT"/
for r in base lb1024; do cp /tmp/sweep/$r/samples.png "$OUT/sweep_${r}_samples.png" || true; done
