#!/usr/bin/env bash
# Build evf_sam_msgs and evf_sam_ros with colcon in a fresh workspace, as the README's robot
# section does (this repository's files copied to src/evf_sam_ros_repo), run `colcon test` on
# evf_sam_ros there and check `colcon test-result`. Part of `make test` (and so CI).
#   usage: scripts/colcon_test.sh [VENV] [TEST_FILE...]      (default: .venv, all tests)
# TEST_FILE: paths relative to evf_sam_ros/ (e.g. test/test_node.py), to run a subset.
# Env: COLCON_WS (default build/colcon_ws; removed and remade), PYTEST_ARGS (extra pytest args).
# colcon runs from the venv's Python: colcon writes the interpreter that runs it into the
# installed scripts (install/evf_sam_ros/lib/evf_sam_ros/*), and torch must import there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ARG="${1:-.venv}"
shift || true
case "${VENV_ARG}" in /*) VENV="${VENV_ARG}" ;; *) VENV="${ROOT}/${VENV_ARG}" ;; esac
PY="${VENV}/bin/python"
WS="${COLCON_WS:-${ROOT}/build/colcon_ws}"
die() { echo "colcon_test.sh: ERROR: $*" >&2; exit 1; }

[ -x "${PY}" ] || die "no Python at ${PY}: make setup first"
git -C "${ROOT}" rev-parse --git-dir >/dev/null 2>&1 ||
  die "${ROOT} is not a git checkout: the workspace gets the files git knows (a clone's)"
"${PY}" -c 'import colcon_core' 2>/dev/null ||
  die "colcon is not installed in ${VENV} (requirements/dev.txt: colcon-common-extensions)"
[ -n "${ROS_AUTOMATIC_DISCOVERY_RANGE:-}" ] && [ -n "${ROS_DOMAIN_ID:-}" ] ||
  die "set ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a ROS_DOMAIN_ID (the Makefile's ROS_ENV)"
export ROS_LOCALHOST_ONLY=1
# The ROS underlay is the venv (the ROS 2 wheels), as /opt/ros/jazzy is on a robot.
export AMENT_PREFIX_PATH="${VENV}" CMAKE_PREFIX_PATH="${VENV}" VIRTUAL_ENV="${VENV}"
export PATH="${VENV}/bin:${PATH}"

echo "==> colcon workspace ${WS}: the repository's files in src/evf_sam_ros_repo"
rm -rf "${WS}"
mkdir -p "${WS}/src/evf_sam_ros_repo"
# Tracked and untracked-but-not-ignored files (no .venv, build/ or demo output), as a clone has.
(cd "${ROOT}" && git ls-files -z --cached --others --exclude-standard) |
  "${PY}" -c '
import shutil, sys
from pathlib import Path
root, dest = Path(sys.argv[1]), Path(sys.argv[2])
for name in sys.stdin.buffer.read().decode().split("\0"):
    if name and (root / name).is_file():  # a tracked file deleted in the work tree is skipped
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
' "${ROOT}" "${WS}/src/evf_sam_ros_repo"

cd "${WS}"
echo "==> colcon build"
"${PY}" -m colcon build --packages-select evf_sam_msgs evf_sam_ros

echo "==> colcon test (evf_sam_ros${*:+: $*})"
# colcon passes --pytest-args on to pytest; a leading space keeps argparse from reading one that
# starts with '-' as a colcon option. colcon test exits 0 when tests fail: test-result decides.
pytest_args=()
read -r -a extra <<< "${PYTEST_ARGS:-}"
for arg in "$@" "${extra[@]}"; do pytest_args+=(" ${arg}"); done
"${PY}" -m colcon test --packages-select evf_sam_ros --event-handlers console_direct+ \
  --pytest-args "${pytest_args[@]}"

echo "==> colcon test-result"
set +e
summary="$("${PY}" -m colcon test-result --test-result-base build/evf_sam_ros --verbose)"
status=$?
set -e
echo "${summary}"
read -r tests errors failures skipped < <(echo "${summary}" |
  sed -nE 's/^Summary: ([0-9]+) tests, ([0-9]+) errors, ([0-9]+) failures, ([0-9]+) skipped$/\1 \2 \3 \4/p')
[ "${status}" -eq 0 ] && [ -n "${tests:-}" ] || die "colcon test-result: failures (above)"
[ "${tests}" -gt 0 ] || die "colcon test ran no test"
[ "${skipped}" -eq 0 ] || die "colcon test skipped ${skipped} test(s): the installed layout was not fully checked"
echo "colcon: $((tests - errors - failures)) passed, $((errors + failures)) failed"
