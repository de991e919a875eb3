# Developer / CI entry points. `make test` is what CI runs (.ci/run).
#   make setup      create/update .venv (pinned deps, evf_sam_msgs, editable evf_sam_ros)
#   make test       lint (ruff), the test suite in .venv, then colcon-test (PYTEST_ARGS="..." to override
#                   pytest args)
#   make colcon-test  build both packages with colcon in build/colcon_ws and run `colcon test`
#                   there (COLCON_TESTS="..." to choose the test files; empty: all of them)
#   make demo       run the demo (CHECKPOINT=path optional)
#   make clean      remove build/ (keeps .venv);  make distclean: also remove .venv
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install --progress-bar off -c requirements/constraints.txt
PYTEST_ARGS ?= -ra --timeout=900

# Every process that may touch rclpy: localhost-only discovery and a DDS domain of its own
# (1..100, from the recipe shell's PID) so parallel runs do not see each other.
# AMENT_PREFIX_PATH (not set by the wheels) makes ament_index find packages in .venv/share.
ROS_ENV = export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1 \
	AMENT_PREFIX_PATH=$(CURDIR)/$(VENV) ROS_DOMAIN_ID=$$(( $$$$ % 100 + 1 )); \
	echo "ROS_DOMAIN_ID=$$ROS_DOMAIN_ID";

# Setup is three stamps so that editing a .msg or setup.py does not redo the pip installs.
STAMP_DEPS := $(VENV)/.stamp-deps
STAMP_MSGS := $(VENV)/.stamp-msgs
STAMP := $(VENV)/.stamp-setup
MSGS_SRC := $(shell find evf_sam_msgs -type f)

# What `colcon test` runs in the workspace: the tests that prove the installed layout (node and
# tools from lib/evf_sam_ros/, launch/config/data from share/, package.xml against the imports,
# README found from a workspace, launch precedence) plus the node's main behaviour over DDS. The
# whole suite already ran against the same code in .venv just before.
COLCON_TESTS ?= test/test_install_layout.py test/test_config_launch.py test/test_readme.py \
	test/test_package_deps.py test/test_interfaces_built.py test/test_node.py

.PHONY: setup test lint colcon-test demo clean distclean

setup: $(STAMP)

$(STAMP_DEPS): requirements/dev.txt requirements/sam2.txt requirements/constraints.txt
	@test -x $(PY) || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PIP_INSTALL) --upgrade pip setuptools wheel
	$(PIP_INSTALL) -r requirements/dev.txt
# sam2 is an sdist; see requirements/sam2.txt for why no build isolation.
	SAM2_BUILD_CUDA=0 $(PIP_INSTALL) --no-build-isolation --no-deps -r requirements/sam2.txt
	touch $@

$(STAMP_MSGS): $(STAMP_DEPS) scripts/build_interfaces.sh $(MSGS_SRC)
	scripts/build_interfaces.sh $(VENV)
	touch $@

SHARE := $(VENV)/share/evf_sam_ros
$(STAMP): $(STAMP_MSGS) evf_sam_ros/setup.py evf_sam_ros/setup.cfg evf_sam_ros/package.xml Makefile
# compat mode = a .pth entry for evf_sam_ros/. The default (finder) mode lets the project dir
# ./evf_sam_ros shadow the real package as an empty namespace package when the repo root is
# on sys.path (`python -m pytest`, `python -m evf_sam_ros...` from here).
	$(PIP_INSTALL) --no-deps --no-build-isolation --config-settings editable_mode=compat -e evf_sam_ros
# Editable installs skip setup.py's data_files: provide them as colcon --symlink-install
# would, so ament_index finds evf_sam_ros and its launch/, config/, data/ stay live.
	mkdir -p $(SHARE) $(VENV)/share/ament_index/resource_index/packages
	touch $(VENV)/share/ament_index/resource_index/packages/evf_sam_ros
	for f in package.xml launch config data; do rm -rf $(SHARE)/$$f; ln -s $(CURDIR)/evf_sam_ros/$$f $(SHARE)/$$f; done
	$(PIP) check
	touch $@

test: setup lint
	$(ROS_ENV) $(PY) -m pytest evf_sam_ros/test $(PYTEST_ARGS)
	$(MAKE) --no-print-directory colcon-test

# House style (ruff.toml: 99 columns, single quotes, sorted imports, pep257 docstrings).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

colcon-test: setup
	$(ROS_ENV) PYTEST_ARGS="$(PYTEST_ARGS)" scripts/colcon_test.sh $(VENV) $(COLCON_TESTS)

demo: setup
	$(ROS_ENV) $(PY) -m evf_sam_ros.tools.demo $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT))

clean:
	rm -rf build evf_sam_ros/build

distclean: clean
	rm -rf $(VENV)
