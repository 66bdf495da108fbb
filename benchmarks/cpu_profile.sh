#!/usr/bin/env bash
# The committed cpu-profile report, on a 2-core machine: two single-threaded shards share one cache (two
# 2-thread processes on 2 cores stall each other), then an unsharded pass finds every cell cached and writes the
# report.
# Interrupted? Run it again: every finished GAN and classifier is cached and reused.
#   DATA=../shared/data EVAL=/path/to/evaluator FULL_GAN=runs/mnist PYTHON=.venv/bin/python bash benchmarks/cpu_profile.sh
# EVAL (optional): an evaluator folder, for each GAN's class fidelity. FULL_GAN (optional): a finished run on the
# whole MNIST training split (the README recipe) for CAS; without it the profile trains its own.
set -euo pipefail
PY=${PYTHON:-python}
DATA=${DATA:?set DATA to the folder holding MNIST/raw}
args=(--profile cpu --data-root "$DATA" --threads 1)
[ -n "${EVAL:-}" ] && args+=(--evaluator "$EVAL")
[ -n "${FULL_GAN:-}" ] && args+=(--full-gan "$FULL_GAN")
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p runs/downstream
"$PY" -m benchmarks.downstream "${args[@]}" --shard 0/2 > runs/downstream/cpu_shard0.log 2>&1 & a=$!
"$PY" -m benchmarks.downstream "${args[@]}" --shard 1/2 > runs/downstream/cpu_shard1.log 2>&1 & b=$!
wait $a
wait $b
"$PY" -m benchmarks.downstream "${args[@]}"
