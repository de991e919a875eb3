#!/usr/bin/env bash
# Build and install the evf_sam_msgs interface package (ament_cmake + rosidl) into a venv
# that holds one ROS 2 distro's wheels, using plain cmake: Jazzy (.venv, requirements/dev.txt)
# or Kilted (.venv-kilted, requirements/kilted.txt; `make test-kilted`).
#   usage: scripts/build_interfaces.sh [VENV] [DISTRO]     (default: .venv jazzy)
# Env: BUILD_JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ARG="${1:-.venv}"
DISTRO="${2:-jazzy}"
STEP="start"
trap 'echo "build_interfaces.sh: FAILED during step: ${STEP}" >&2' ERR
die() { echo "build_interfaces.sh: ERROR: $*" >&2; exit 1; }
step() { STEP="$*"; echo "==> ${STEP}"; }

case "${DISTRO}" in
  jazzy) REQUIREMENTS=requirements/dev.txt; BUILD="${ROOT}/build/evf_sam_msgs" ;;
  kilted) REQUIREMENTS=requirements/kilted.txt; BUILD="${ROOT}/build/evf_sam_msgs-kilted" ;;
  *) die "unknown ROS distro '${DISTRO}': use jazzy or kilted" ;;
esac

step "check prerequisites"
case "${VENV_ARG}" in /*) VENV="${VENV_ARG}" ;; *) VENV="${ROOT}/${VENV_ARG}" ;; esac
PY="${VENV}/bin/python"
[ -x "${PY}" ] || die "no Python at ${PY}: create the venv first (make setup)"
command -v cmake >/dev/null || die "cmake not found (Debian: apt-get install cmake)"
command -v g++ >/dev/null || die "g++ not found (Debian: apt-get install g++)"
GENERATORS="ros-${DISTRO}-rosidl-default-generators"
[ -f "${VENV}/share/rosidl_default_generators/package.xml" ] &&
  "${PY}" -c "import importlib.metadata as m; m.version('${GENERATORS}')" 2>/dev/null ||
  die "${GENERATORS} is not installed in ${VENV} (pip install -r ${REQUIREMENTS})"

# Every process that may touch rclpy stays on this host.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1
# Behave as if the venv were activated; ament/rosidl find packages via AMENT_PREFIX_PATH.
export VIRTUAL_ENV="${VENV}" PATH="${VENV}/bin:${PATH}" AMENT_PREFIX_PATH="${VENV}"

step "rewrite the wheels' hard-coded Python/numpy include paths in ${VENV}/share"
# The wheels' exported CMake files name the wheel builder's paths
# (/opt/python/cp311-cp311/include/python3.11, .../site-packages/numpy/_core/include).
# Only files still holding /opt/python are touched, so re-runs change nothing.
PY_INC="$("${PY}" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NP_INC="$("${PY}" -c 'import numpy; print(numpy.get_include())')" ||
  die "numpy is not importable in ${VENV}"
[ -f "${PY_INC}/Python.h" ] || die "Python.h not found in ${PY_INC} (need the Python dev headers)"
{ grep -rlZ --include='*.cmake' '/opt/python/' "${VENV}/share" || true; } |
  xargs -0 -r sed -i -E \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+t?/lib/python3\.[0-9]+t?/site-packages/numpy/_?core/include#${NP_INC}#g" \
    -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+t?/include/python3\.[0-9]+t?#${PY_INC}#g"
if grep -rq --include='*.cmake' '/opt/python/' "${VENV}/share"; then
  die "unexpected /opt/python paths left in ${VENV}/share/**/*.cmake: $(grep -rl --include='*.cmake' '/opt/python/' "${VENV}/share" | head -3)"
fi

# A build dir configured for another venv would keep stale cached paths: start over.
if [ -f "${BUILD}/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_INSTALL_PREFIX:PATH=${VENV}" "${BUILD}/CMakeCache.txt"; then
  echo "    (build dir was configured for another prefix; removing it)"
  rm -rf "${BUILD}"
fi

step "configure evf_sam_msgs"
cmake -S "${ROOT}/evf_sam_msgs" -B "${BUILD}" \
  -DCMAKE_PREFIX_PATH="${VENV}" -DCMAKE_INSTALL_PREFIX="${VENV}" \
  -DPython3_EXECUTABLE="${PY}" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release

step "build evf_sam_msgs"
cmake --build "${BUILD}" -j "${BUILD_JOBS:-2}"

step "install evf_sam_msgs into ${VENV}"
cmake --install "${BUILD}"

step "verify evf_sam_msgs imports in ${VENV}"
# Run from / so the source dir ./evf_sam_msgs cannot shadow the installed package.
(cd / && "${PY}" -c "from evf_sam_msgs.msg import Segmentation; from evf_sam_msgs.srv import Segment; from evf_sam_msgs.action import FindTarget; print('evf_sam_msgs OK:', Segmentation.__module__)")
echo "==> evf_sam_msgs built (ROS 2 ${DISTRO}) and installed into ${VENV}"
