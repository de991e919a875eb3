# Developer / CI entry points. `make test` is what CI runs (.ci/run).
#   make setup      create/update .venv (pinned deps, evf_sam_msgs, editable evf_sam_ros)
#   make test       lint (ruff), the test suite in .venv, then colcon-test (PYTEST_ARGS="..." to override
#                   pytest args)
#   make colcon-test  build both packages with colcon in build/colcon_ws and run `colcon test`
#                   there (COLCON_TESTS="..." to choose the test files; empty: all of them)
#   make test-kilted  the node and replay tests against ROS 2 Kilted's rclpy, in .venv-kilted
#                   (KILTED_TESTS="..." to choose the test files)
#   make demo       run the demo (CHECKPOINT=path optional)
#   make clean      remove build/ (keeps the venvs);  make distclean: also remove .venv and
#                   .venv-kilted
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
# (1..100, from the recipe shell's PID, unless ROS_DOMAIN_ID is set) so parallel runs do not
# see each other. AMENT_PREFIX_PATH (not set by the wheels) makes ament_index find packages in
# the venv's share/. Fast DDS shared memory left by killed processes is removed first
# (scripts/clean_dds_shm.py: a stale port makes a domain lose service answers). $(call ros_env,VENV)
ros_env = $(PYTHON) scripts/clean_dds_shm.py; \
	export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1 \
	AMENT_PREFIX_PATH=$(CURDIR)/$(1) ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( $$$$ % 100 + 1 ))}; \
	echo "ROS_DOMAIN_ID=$$ROS_DOMAIN_ID ($(1))";
ROS_ENV = $(call ros_env,$(VENV))

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

.PHONY: setup test lint colcon-test test-kilted setup-kilted demo clean distclean

setup: $(STAMP)

$(STAMP_DEPS): requirements/base.txt requirements/dev.txt requirements/sam2.txt \
		requirements/constraints.txt
	@test -x $(PY) || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PIP_INSTALL) --upgrade pip setuptools wheel
	$(PIP_INSTALL) -r requirements/dev.txt
# sam2 is an sdist; see requirements/sam2.txt for why no build isolation.
	SAM2_BUILD_CUDA=0 $(PIP_INSTALL) --no-build-isolation --no-deps -r requirements/sam2.txt
	touch $@

$(STAMP_MSGS): $(STAMP_DEPS) scripts/build_interfaces.sh $(MSGS_SRC)
	scripts/build_interfaces.sh $(VENV)
	touch $@

# Editable installs skip setup.py's data_files: provide them as colcon --symlink-install
# would, so ament_index finds evf_sam_ros and its launch/, config/, data/ stay live.
define link_share
mkdir -p $(1)/share/evf_sam_ros $(1)/share/ament_index/resource_index/packages
	touch $(1)/share/ament_index/resource_index/packages/evf_sam_ros
	for f in package.xml launch config data; do rm -rf $(1)/share/evf_sam_ros/$$f; \
		ln -s $(CURDIR)/evf_sam_ros/$$f $(1)/share/evf_sam_ros/$$f; done
endef
$(STAMP): $(STAMP_MSGS) evf_sam_ros/setup.py evf_sam_ros/setup.cfg evf_sam_ros/package.xml Makefile
# compat mode = a .pth entry for evf_sam_ros/. The default (finder) mode lets the project dir
# ./evf_sam_ros shadow the real package as an empty namespace package when the repo root is
# on sys.path (`python -m pytest`, `python -m evf_sam_ros...` from here).
	$(PIP_INSTALL) --no-deps --no-build-isolation --config-settings editable_mode=compat -e evf_sam_ros
	$(call link_share,$(VENV))
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

# ROS 2 Kilted (rclpy 9, Fast DDS 3) beside Jazzy: .venv-kilted holds the same non-ROS pins
# (the lines of constraints.txt not starting with ros-) and Kilted's wheels
# (requirements/kilted.txt, pinned in constraints-kilted.txt), with evf_sam_msgs built by
# Kilted's generators. Not part of `make test`: CI runs it as a step of its own (.ci/run).
KVENV := .venv-kilted
KPY := $(KVENV)/bin/python
KILTED_PINS := build/kilted/constraints-non-ros.txt
KPIP_INSTALL := $(KPY) -m pip install --progress-bar off -c $(KILTED_PINS) \
	-c requirements/constraints-kilted.txt
KSTAMP_DEPS := $(KVENV)/.stamp-deps
KSTAMP := $(KVENV)/.stamp-setup
# The tests that drive rclpy: the interfaces as Kilted built them, the pipeline's messages, the
# node (lifecycle, topics, services, action, track mode) and the replay (bags, live replay over
# DDS, the node/replay differential); not the fleet test: it is ROS-free and needs ray, which
# only .venv has.
KILTED_TESTS ?= evf_sam_ros/test/test_interfaces_built.py evf_sam_ros/test/test_pipeline_parts.py \
	$(filter-out %/test_replay_fleet.py,$(sort $(wildcard evf_sam_ros/test/test_node*.py \
	evf_sam_ros/test/test_replay*.py)))

$(KILTED_PINS): requirements/constraints.txt
	mkdir -p $(@D)
	grep -v '^ros-' $< > $@

$(KSTAMP_DEPS): requirements/base.txt requirements/kilted.txt requirements/sam2.txt \
		requirements/constraints-kilted.txt $(KILTED_PINS)
	@test -x $(KPY) || { echo "==> creating $(KVENV) with $(PYTHON)"; $(PYTHON) -m venv $(KVENV); }
	$(KPIP_INSTALL) --upgrade pip setuptools wheel
	$(KPIP_INSTALL) -r requirements/kilted.txt
	SAM2_BUILD_CUDA=0 $(KPIP_INSTALL) --no-build-isolation --no-deps -r requirements/sam2.txt
	touch $@

$(KSTAMP): $(KSTAMP_DEPS) scripts/build_interfaces.sh $(MSGS_SRC) evf_sam_ros/setup.py \
		evf_sam_ros/setup.cfg evf_sam_ros/package.xml Makefile
	scripts/build_interfaces.sh $(KVENV) kilted
	$(KPIP_INSTALL) --no-deps --no-build-isolation --config-settings editable_mode=compat -e evf_sam_ros
	$(call link_share,$(KVENV))
	$(KPY) -m pip check
	touch $@

setup-kilted: $(KSTAMP)

test-kilted: setup-kilted
	@$(KPY) -c 'import importlib.metadata as m; print("ROS 2 Kilted, rclpy", m.version("ros-rclpy"))'
# A basetemp of its own: /tmp/pytest-of-<user> keeps only the last 3 runs of that user, so on a
# shared machine another run can delete the checkpoints of this one while it runs.
	$(call ros_env,$(KVENV)) $(KPY) -m pytest $(KILTED_TESTS) $(PYTEST_ARGS) \
		--basetemp=$(CURDIR)/build/pytest-kilted

demo: setup
	$(ROS_ENV) $(PY) -m evf_sam_ros.tools.demo $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT))

clean:
	rm -rf build evf_sam_ros/build

distclean: clean
	rm -rf $(VENV) $(KVENV)
