#!/usr/bin/env bash
# The project's GPU check, run on a lent CUDA machine in one call (device tool), from the
# repository root, with the pure-Python wheels the image lacks carried in .whl/:
#   segment-anything, sam2 (built with SAM2_BUILD_CUDA=0), hydra-core, omegaconf,
#   antlr4-python3-runtime, iopath  (make them with: pip wheel --no-deps -w .whl ...)
# Prints: the GPU, the correctness check on tiny checkpoints, then the full-size benchmarks
# (random weights; the hub cannot be reached from there).
set -euo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/evf_sam_ros
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
python3 benchmarks/gpu_correctness.py
if [ -n "${QUICK:-}" ]; then  # QUICK=1: the correctness check and the default configuration only
  python3 benchmarks/model_benchmark.py --random-full evf-sam2 --device cuda --dtype float16 --cuda-graphs \
    --repeats 20 --warmup 3 --sizes 640x480,1280x720
  exit 0
fi
for variant in evf-sam2 evf-sam; do
  for graphs in "" --cuda-graphs; do
    python3 benchmarks/model_benchmark.py --random-full "$variant" --device cuda --dtype float16 $graphs \
      --repeats "${REPEATS:-20}" --warmup 3 --sizes 640x480,1280x720
  done
done
python3 benchmarks/model_benchmark.py --random-full evf-sam2 --device cuda --dtype bfloat16 --cuda-graphs \
  --repeats "${REPEATS:-20}" --warmup 3 --sizes 640x480
