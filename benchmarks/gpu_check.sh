#!/usr/bin/env bash
# One-shot device check of issue 14 item 5 on a lent GPU machine (about 5-7 minutes there).
#
#   1. the CUDA projector tests (tests/latent/test_relative.py -k cuda: values against the CPU's
#      and the bfloat16 bound);
#   2. bench_latent's projection rows (float32 and bfloat16, each against a plain matmul of its
#      dtype) on cuda, then on cpu;
#   3. `relcomm stitch scenarios/mismatch.yaml` with `device: cuda` and with `device: cpu`, each
#      twice in its own fresh RELCOMM_HOME: first fully cold (trains the 4 encoders and 24 heads,
#      encodes, then the matrix, curves, calibration, retrieval, plots), then "cold-ish" (the same
#      cache with its conditions/ folder deleted: the zoo is cached, the test-split curves and the
#      3,840-cell calibration are recomputed) - the measurement issue 14 asks for.
#
# The GPU machine has torch + CUDA but no simpy or pydantic and no Fashion-MNIST, and reaches no
# network. Prepare here once, in the repo root (both folders git-ignored through .git/info/exclude):
#
#   printf '/.whl/\n/.fmnist/\n' >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 simpy==4.1.2
#   mkdir -p .fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .fmnist/      # 30 MB
#
# (versions: those of .venv here; what travels must stay under 64 MiB with the tracked tree), then
# call the device tool's run with carry [".whl", ".fmnist"], timeout_s 600 and the command
#
#   bash benchmarks/gpu_check.sh
#
# Everything it prints is also written to $OUT/gpu_check.log (and the stitch summaries to $OUT).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PY:-python3}

if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$ROOT
else
  export PYTHONPATH=$ROOT
fi
[ -d .fmnist ] && export RELCOMM_DATA=$ROOT/.fmnist
nvidia-smi -L 2>/dev/null
nproc
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.get_num_threads(), 'threads')"

echo "== 1. CUDA projector tests"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/latent/test_relative.py -k "cuda or bfloat16 or float32" 2>&1 | tail -5

echo "== 2. projection vs plain matmul (cuda, then cpu)"
timeout 150 $PY benchmarks/bench_latent.py --projection-only --devices cuda cpu --repeats 5

echo "== 3. cold stitch of scenarios/mismatch.yaml, cuda vs cpu"
stitch() {  # device label
  local dev=$1 label=$2 home=/tmp/gpu-check-home-$1
  local scen=/tmp/gpu-check-mismatch-$dev.yaml
  sed "s/^device: .*/device: $dev/" scenarios/mismatch.yaml > "$scen"
  rm -rf "/tmp/gpu-check-out-$dev-$label"
  local t0 t1
  t0=$(date +%s.%N)
  RELCOMM_HOME=$home timeout 400 $PY -m simulator stitch "$scen" --out "/tmp/gpu-check-out-$dev-$label" \
    > "/tmp/gpu-check-$dev-$label.log" 2>&1
  local rc=$?
  t1=$(date +%s.%N)
  grep -E "cells in|wrote" "/tmp/gpu-check-$dev-$label.log" | sed "s/^/    [$dev $label] /"
  printf 'STITCH %-4s %-9s %7.1f s (rc %d)\n' "$dev" "$label" "$(echo "$t1 - $t0" | bc)" "$rc"
  cp "/tmp/gpu-check-out-$dev-$label/stitch_summary.json" "$OUT/stitch_summary_${dev}_${label}.json" 2>/dev/null
}
for dev in cuda cpu; do
  rm -rf "/tmp/gpu-check-home-$dev"
  stitch "$dev" cold
  rm -rf "/tmp/gpu-check-home-$dev/cache/conditions"
  stitch "$dev" cold-ish
done
cp /tmp/gpu-check-out-cuda-cold-ish/stitching.csv "$OUT/stitching_cuda.csv" 2>/dev/null
cp /tmp/gpu-check-out-cpu-cold-ish/stitching.csv "$OUT/stitching_cpu.csv" 2>/dev/null
# The two devices train their own encoders (the cache keys hold the device), so their accuracies
# differ by training noise, not by a fixed amount: printed for a look, not checked.
$PY - <<'EOF'
import csv
def load(p):
    with open(p) as fh:
        return {tuple(r[c] for c in ("tx", "rx", "method", "anchors", "bits", "mode", "snr_db", "split")): float(r["accuracy"])
                for r in csv.DictReader(fh)}
try:
    a, b = load("/tmp/gpu-check-out-cuda-cold-ish/stitching.csv"), load("/tmp/gpu-check-out-cpu-cold-ish/stitching.csv")
    common = a.keys() & b.keys()
    diffs = sorted(abs(a[k] - b[k]) for k in common)
    print(f"stitching.csv cuda vs cpu: {len(common)} common cells, median |diff| {diffs[len(diffs) // 2]:.4f}, "
          f"max {diffs[-1]:.4f}")
except Exception as exc:  # a failed stitch above already said why
    print("no comparison:", exc)
EOF
