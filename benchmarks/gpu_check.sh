#!/usr/bin/env bash
# ganaug's whole GPU path checked and timed in one call on one NVIDIA GPU (written for an H100), inside a
# time budget (BUDGET seconds, default 510: under 9 minutes with the summary), each stage under its own
# `timeout` so one hang costs only that stage:
#   1. onnxruntime-gpu from the wheel parts .whl/onnxruntime_gpu-*.whl.part* (joined with cat, installed with
#      pip --no-index --no-deps --target /tmp/site, put first on PYTHONPATH); skipped, and said so, if absent
#   2. versions and ONNX Runtime providers
#   3. a ganaug evaluator at $EVAL, trained on the GPU if missing
#   4. gpu_bench.py --variant eager   (full-MNIST epochs at the GPU recipe, MFU, class fidelity)
#   5. throughput.py --device cuda    (ORT CUDA fp32/fp16, PyTorch fp32/bf16/CUDA graph, parity, fp16 decision,
#                                      ORT / CUDA-graph ratio, SyntheticMix cost on a training step)
#   6. the GPU-marked tests
#   7. gpu_bench.py --variant compile (the same recipe through torch.compile)
#   8. throughput.py, TensorRT only   (its engine build may be slow: last, on its own)
# Expects: python3 with torch (CUDA), onnx, onnxscript, pytest; no network; MNIST idx files (plain or .gz) under
# $DATA/MNIST/raw (default .carry/data); optionally an evaluator folder at $EVAL (default .carry/evaluator_mnist).
# Writes at most 8 files to $RESULTS (default $OUT, else runs/benchmarks/gpu): gpu_check.log, gpu_check.md
# (the summary, with what was NOT measured and why), gpu_bench_eager.json, gpu_bench_compile.json,
# throughput_gpu.{json,md}, throughput_tensorrt.{json,md}.
#
#   bash benchmarks/gpu_check.sh              # on the GPU machine
#   SMOKE=1 bash benchmarks/gpu_check.sh      # every stage on the CPU with tiny settings (checks the script)
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${BUDGET:-510}
SMOKE=${SMOKE:-0}
PY=${PYTHON:-python3}
DATA=${DATA:-.carry/data}
EVAL=${EVAL:-.carry/evaluator_mnist}
RESULTS=${RESULTS:-${OUT:-runs/benchmarks/gpu}}
WORK=${WORK:-/tmp/ganaug-gpu-check}
rm -rf "$WORK" && mkdir -p "$WORK" "$RESULTS"
LOG="$RESULTS/gpu_check.log"
STAGES="$WORK/stages.tsv"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
: >"$STAGES"

# stage NAME CAP_SECONDS COMMAND...: runs COMMAND under `timeout min(CAP, time left)`, records how it ended.
stage() {
  local name=$1 cap=$2 left t s rc status
  shift 2
  left=$((START + BUDGET - $(date +%s)))
  if [ "$left" -lt 25 ]; then
    printf '%s\tnot run\tno time left in the %ss budget\n' "$name" "$BUDGET" >>"$STAGES"
    echo "== $name: NOT RUN (no time left in the ${BUDGET}s budget)"
    return
  fi
  t=$((cap < left ? cap : left))
  echo "== $name (timeout ${t}s): $*"
  s=$(date +%s)
  timeout -k 10 "$t" "$@"
  rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status="timed out after ${t}s"
  elif [ "$rc" -ne 0 ]; then
    status="failed (exit $rc)"
  else
    status=ok
  fi
  printf '%s\t%s\t%ss\n' "$name" "$status" "$(($(date +%s) - s))" >>"$STAGES"
  echo "== $name: $status in $(($(date +%s) - s))s"
}

install_ort() {
  # Either wheel parts (.whl/onnxruntime_gpu-*.whl.part*) or parts of an xz tar of the installed package tree
  # (.whl/*/ort.tar.xz.part*, with ort.tar.xz.sha256 beside one of them): xz packs the wheel 20% smaller,
  # which saves one 64 MiB transfer.
  local parts first whl sum
  parts=$(ls .whl/*/ort.tar.xz.part* 2>/dev/null | sort -t. -k4 -V)
  if [ -n "$parts" ]; then
    mkdir -p /tmp/site
    # shellcheck disable=SC2086 # the part names have no spaces (checked by the glob above)
    cat $parts >/tmp/ort.tar.xz
    sum=$(sha256sum /tmp/ort.tar.xz | cut -d' ' -f1)
    xz -d </tmp/ort.tar.xz | tar x -C /tmp/site
    if [ -f /tmp/site/onnxruntime/__init__.py ] && grep -q "$sum" .whl/*/ort.tar.xz.sha256; then
      export PYTHONPATH=/tmp/site:$PWD
      printf 'onnxruntime-gpu install\tok\t%s parts, sha256 %s\n' "$(echo "$parts" | wc -l)" "${sum:0:16}" >>"$STAGES"
    else
      printf 'onnxruntime-gpu install\tfailed\tparts %s, sha256 %s\n' "$(echo $parts)" "${sum:0:16}" >>"$STAGES"
    fi
    return
  fi
  parts=$(ls .whl/onnxruntime_gpu-*.whl.part* 2>/dev/null | sort -V)
  if [ -z "$parts" ]; then
    echo "no .whl/onnxruntime_gpu-*.whl.part* here: onnxruntime-gpu not installed (ORT CUDA/TensorRT will say why not measured)"
    printf 'onnxruntime-gpu install\tnot run\tno wheel parts at .whl/onnxruntime_gpu-*.whl.part*\n' >>"$STAGES"
    return
  fi
  first=$(echo "$parts" | head -1)
  whl="/tmp/$(basename "${first%.part*}")"
  # shellcheck disable=SC2086 # the part names have no spaces (checked by the glob above)
  cat $parts >"$whl"
  echo "joined $(echo "$parts" | wc -l) parts into $whl ($(du -h "$whl" | cut -f1), sha256 $(sha256sum "$whl" | cut -c1-16)...)"
  if timeout 180 "$PY" -m pip install -q --no-index --no-deps --upgrade --target /tmp/site "$whl"; then
    export PYTHONPATH=/tmp/site:$PWD
    printf 'onnxruntime-gpu install\tok\t%s\n' "$(basename "$whl")" >>"$STAGES"
  else
    printf 'onnxruntime-gpu install\tfailed\tpip install --target /tmp/site %s\n' "$(basename "$whl")" >>"$STAGES"
  fi
}

if [ "$SMOKE" = 1 ]; then  # tiny CPU settings: the script's every path, not its figures
  EVAL="$WORK/evaluator"
  EVAL_TRAIN=(--dataset digits --epochs 1 --device cpu)
  BENCH=(--device cpu --dataset digits --epochs 2 --batch-size 64 --per-class 20)
  TP=(--suite gpu --device cpu --quick --threads 1 --mix-batches 64)
  TRT=(--suite gpu --device cpu --quick --threads 1 --no-mix)
else
  EVAL_TRAIN=(--data-root "$DATA" --device cuda)
  BENCH=(--data-root "$DATA")
  TP=(--device cuda --repeats 5 --min-time 0.2 --mix-batches 64,256,1024 --mix-steps 64)
  TRT=(--device cuda --repeats 3 --min-time 0.2 --batch-sizes 4096,16384 --no-mix)
  for f in "$DATA"/MNIST/raw/*.gz; do [ -e "$f" ] && { [ -f "${f%.gz}" ] || gunzip -kf "$f"; }; done
fi

{
  echo "== ganaug gpu_check $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(date -u +%FT%TZ), budget ${BUDGET}s, smoke=$SMOKE"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  install_ort
  stage versions 60 "$PY" -c "import sys, torch, onnxruntime as o; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(), '| onnxruntime', o.__version__, 'from', o.__file__, o.get_available_providers())"
  if [ ! -f "$EVAL/evaluator.json" ]; then
    stage "evaluator (train)" 120 "$PY" -m ganaug evaluator train "${EVAL_TRAIN[@]}" --out "$EVAL" --overwrite --quiet
  else
    printf 'evaluator (train)\tnot needed\t%s exists\n' "$EVAL" >>"$STAGES"
  fi
  stage "gpu_bench eager" 150 "$PY" benchmarks/gpu_bench.py "${BENCH[@]}" --evaluator "$EVAL" --variant eager --run-dir "$WORK/runs" --out-dir "$RESULTS"
  MODEL=()
  [ -f "$WORK/runs/eager/checkpoint.pt" ] && MODEL=(--model "$WORK/runs/eager")
  stage "throughput (ORT CUDA, PyTorch, SyntheticMix)" 150 "$PY" benchmarks/throughput.py "${TP[@]}" "${MODEL[@]}" --gpu-backends ort,torch --name throughput_gpu --out-dir "$RESULTS"
  stage "GPU-marked tests" 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests
  stage "gpu_bench compile" 200 "$PY" benchmarks/gpu_bench.py "${BENCH[@]}" --evaluator "$EVAL" --variant compile --run-dir "$WORK/runs" --out-dir "$RESULTS"
  stage "throughput (TensorRT)" 120 "$PY" benchmarks/throughput.py "${TRT[@]}" "${MODEL[@]}" --gpu-backends tensorrt --name throughput_tensorrt --out-dir "$RESULTS"
  echo "== summary ($(($(date +%s) - START))s so far)"
  timeout 60 "$PY" benchmarks/gpu_bench.py --check-summary "$RESULTS" --stages "$STAGES"
  echo "== done in $(($(date +%s) - START))s; files in $RESULTS:"
  ls -l "$RESULTS"
} 2>&1 | tee "$LOG"
