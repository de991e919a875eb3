#!/usr/bin/env bash
# The project's GPU check: one device call (under 8 minutes), one report.
#   here, once:  bash benchmarks/stage_device.sh      # wheels + official code into .gpu_stage/ (ignored)
#   device call: run(command="bash benchmarks/gpu_check.sh", carry=[".gpu_stage"], timeout_s=540)
#   CPU smoke run of every step here (small models, few frames; the official step needs
#   transformers, timm, torchscale, fairscale, opencv on PYTHONPATH, else it says so and skips):
#                bash benchmarks/gpu_check.sh --device cpu --quick
# Steps run in priority order; each gets at most what is left of BUDGET_S (430 s on CUDA)
# and a step that cannot start in time is listed as skipped. Rows (JSON lines) go to
# $OUT/gpu_check_rows.jsonl (or /tmp), the report (benchmarks/gpu_table.py) to stdout and
# $OUT/gpu_check_report.md. QUICK=1: evf-sam2 fp16 only. To add a benchmark, add one `step`
# line; it only has to print JSON rows with a "table" key.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
SMALL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --quick) SMALL=--quick; shift ;;
    *) echo "usage: $0 [--device cuda|cpu] [--quick]" >&2; exit 2 ;;
  esac
done
export PYTHONUNBUFFERED=1
START=$(date +%s)
WORK=${OUT:-/tmp}
ROWS=$WORK/gpu_check_rows.jsonl
DUMPS=$(mktemp -d)
CACHE=$(mktemp -d)          # compile cache: empty for the cold start, then shared by later steps
CKPT=$(mktemp -d)/checkpoint
: > "$ROWS"
if [ "$DEVICE" = cuda ]; then
  PY=python3
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_stage/wheels/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/evf_sam_ros
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  REPEATS=${REPEATS:-15}; WARMUP=2; DTYPES=float16,bfloat16,float32; SIZES=640x480,1280x720
  BUDGET_S=${BUDGET_S:-430}
else  # a smoke run: every step once, small models, one timed frame
  PY=${PY:-.venv/bin/python}
  REPEATS=${REPEATS:-1}; WARMUP=0; DTYPES=float32; SIZES=640x480
  BUDGET_S=${BUDGET_S:-2400}
fi
[ -n "${QUICK:-}" ] && DTYPES=float16
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
# step MIN_S NAME CMD...: run CMD with a timeout of what is left if at least MIN_S are left.
step() {
  local need=$1 name=$2; shift 2
  local rest; rest=$(left)
  if [ "$rest" -lt "$need" ]; then
    echo "{\"table\": \"skipped\", \"step\": \"$name\", \"why\": \"${rest} s of the budget left, needs ${need}\"}" >> "$ROWS"
    echo "== $name: skipped (${rest} s left)"; return
  fi
  echo "== $name (up to ${rest} s)"
  local t0; t0=$(date +%s)
  timeout --kill-after=10 "$rest" "$@" | tee -a "$ROWS"
  local rc=${PIPESTATUS[0]}
  echo "{\"table\": \"step\", \"step\": \"$name\", \"exit\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}" >> "$ROWS"
}
suite() {  # suite VARIANT MODE MIN_S: one gpu_suite.py process, its dtypes within what is left
  local rest; rest=$(left)
  step "$3" "suite $1 $2" $PY benchmarks/gpu_suite.py --variant "$1" --mode "$2" --device "$DEVICE" $SMALL \
    --dtypes "$DTYPES" --sizes "$SIZES" --repeats "$REPEATS" --warmup "$WARMUP" --budget-s $(( rest * 2 / 3 )) \
    --compile-cache-dir "$CACHE" --dump-dir "$DUMPS"
}
official() {  # official VARIANT MIN_S
  if ! $PY -c "import transformers, timm, torchscale, fairscale, cv2" 2>/dev/null; then
    echo "{\"table\": \"skipped\", \"step\": \"official $1\", \"why\": \"transformers/timm/torchscale/fairscale/cv2 not importable\"}" >> "$ROWS"
    return
  fi
  step "$2" "official $1" $PY benchmarks/official_benchmark.py --variant "$1" --device "$DEVICE" $SMALL \
    --sizes "$SIZES" --repeats "$REPEATS" --warmup "$WARMUP" --dump-dir "$DUMPS"
}
startup() {  # startup LABEL MIN_S ARGS...: process start -> first result, as a node configures
  local label=$1 need=$2; shift 2
  step "$need" "start $label" $PY benchmarks/start_check.py --variant evf-sam2 --checkpoint "$CKPT" \
    --device "$DEVICE" $SMALL --label "$label" --t0 "$(date +%s.%N)" "$@"
}

if [ "$DEVICE" = cuda ] && [ -z "${QUICK:-}" ]; then
  step 60 correctness $PY benchmarks/gpu_correctness.py
fi
suite evf-sam2 graphs 40
suite evf-sam2 eager 40
official evf-sam2 30
step 30 "write checkpoint" $PY benchmarks/start_check.py --write-checkpoint "$CKPT" --variant evf-sam2 \
  --device "$DEVICE" $SMALL
if [ "$DEVICE" = cuda ]; then
  startup "default (graphs)" 30
  startup "compile, cold cache" 100 --compile --cache-dir "$CACHE"
  startup "compile, warm cache" 40 --compile --cache-dir "$CACHE"
  suite evf-sam2 compile 90
else
  startup "default (eager)" 30 --no-graphs
fi
if [ -z "${QUICK:-}" ]; then
  suite evf-sam graphs 60
  suite evf-sam eager 60
  [ "$DEVICE" = cuda ] && official evf-sam 40
  [ "$DEVICE" = cuda ] && suite evf-sam compile 120
fi
step 60 "device vs exact preprocessing" $PY benchmarks/preprocess_agreement.py --device "$DEVICE" $SMALL \
  --dtype float32 --sizes "$SIZES"
step 60 "tracker" $PY benchmarks/track_benchmark.py --device "$DEVICE"    # one line per benchmark
# TensorRT fp16 engines (export + engine build + timing + IoU vs torch fp32 + track mode per
# frame, 1 and 2 targets; CPU: onnxruntime).
# onnx/onnxscript come from .gpu_stage/onnx_wheels; TensorRT must be on the machine already.
if [ "$DEVICE" = cuda ] && ls .gpu_stage/onnx_wheels/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_stage/onnx_wheels/*.whl \
    || echo "onnx wheels did not install; the tensorrt step will say what is missing"
fi
step 240 "tensorrt evf-sam2" $PY benchmarks/trt_benchmark.py --variant evf-sam2 --device "$DEVICE" $SMALL \
  --sizes "$SIZES" --repeats "$REPEATS" --warmup "$WARMUP"

$PY benchmarks/gpu_table.py "$ROWS" --dump-dir "$DUMPS" | tee "$WORK/gpu_check_report.md"
echo "total $(( $(date +%s) - START )) s of a ${BUDGET_S} s budget"
