#!/usr/bin/env bash
# Stage what a device call needs and the GPU machine lacks into .gpu_stage/ (git-ignored),
# which the call carries (carry: [".gpu_stage"]); nothing there can reach a package registry.
#   .gpu_stage/wheels/    pure-Python wheels: segment-anything, sam2 (built with
#                         SAM2_BUILD_CUDA=0), hydra-core, omegaconf, antlr4-python3-runtime,
#                         iopath (ours and the official code); torchscale, fairscale (the
#                         official BEiT-3). Versions as in requirements/constraints.txt.
#   .gpu_stage/EVF-SAM/   the official code (model/ and inference.py of hustvl/EVF-SAM) and
#                         COMMIT, from a local git copy of the public repository.
#   .gpu_stage/onnx_wheels/  onnx, onnxscript, onnx-ir, ml-dtypes for the tensorrt step.
# Usage: benchmarks/stage_device.sh [GIT_DIR of hustvl/EVF-SAM]
#        (default: $EVF_SAM_OFFICIAL_GIT, else /work/.mirror/hustvl+EVF-SAM/repo)
# The machine's image has torch, torchvision, transformers, timm and OpenCV already.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-${EVF_SAM_OFFICIAL_GIT:-/work/.mirror/hustvl+EVF-SAM/repo}}
PY=${PYTHON:-.venv/bin/python}
STAGE=.gpu_stage
rm -rf "$STAGE"
mkdir -p "$STAGE/wheels" "$STAGE/EVF-SAM"
SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$STAGE/wheels" \
  segment-anything==1.0 sam2==1.1.0 hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 \
  iopath==0.1.10 torchscale==0.2.0 fairscale==0.4.13
# onnx + onnxscript for the tensorrt step (binary wheels for this Python; installed there
# separately, so a mismatch only skips that step). TensorRT itself is too large to carry.
"$PY" -m pip download -q --no-deps -d "$STAGE/onnx_wheels" onnx==1.23.2 onnxscript==0.7.2 \
  onnx-ir==1.1.0 ml-dtypes==0.7.0 || echo "onnx wheels not staged: the tensorrt step will skip"
git --git-dir="$SRC" archive HEAD LICENSE inference.py model | tar -x -C "$STAGE/EVF-SAM"
echo "hustvl/EVF-SAM $(git --git-dir="$SRC" rev-parse --short HEAD) ($(git --git-dir="$SRC" log -1 --format=%cs HEAD))" \
  > "$STAGE/EVF-SAM/COMMIT"
rm -rf "$STAGE/EVF-SAM/model/EfficientSAM" "$STAGE/EVF-SAM/model/unilm/beit3/get_started"
du -sh "$STAGE"; ls "$STAGE/wheels"; cat "$STAGE/EVF-SAM/COMMIT"
