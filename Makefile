# harmony-appliance: the two entry points are `make localnet` and `make test`.
CARGO ?= cargo
BIN := target/debug/harmony-appliance
# Extra arguments for localnet, e.g. `make localnet ARGS="--reset --block-time-ms 1000"`.
ARGS ?=

.PHONY: deps peers build localnet test fmt-check module-graph clippy unit cuda-check bench fuzz contracts \
	observability clean \
	package package-check

deps:
	@scripts/ensure-deps.sh

build: deps
	$(CARGO) build -p appliance --bin harmony-appliance

## Start a 4-node local network with embedded defaults (Ctrl-C stops it; re-run resumes).
localnet: build
	$(BIN) localnet $(ARGS)

## Python peers for the interop tests (py_ecc, chiavdf from PyPI) in .venv; re-installed
## when requirements/peers.txt changes. Tests find the interpreter at .venv/bin/python.
peers: .venv/.peers-stamp

.venv/.peers-stamp: requirements/peers.txt
	python3 -m venv .venv
	.venv/bin/pip install -q -r requirements/peers.txt
	touch $@

## The whole suite: format, lints, every test, the alert rules and dashboards, the package.
test: deps fmt-check module-graph clippy peers unit cuda-check observability package-check

fmt-check:
	$(CARGO) fmt --all -- --check

## No import circles between modules inside a crate, no unexplained file over 800 lines.
module-graph:
	python3 scripts/module_graph.py

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

## accel's `cuda` feature on a machine without a GPU or toolkit: PTX from the nvcc wheel, a
## stub driver library (scripts/cuda-toolchain.sh); the GPU tests print why they skip.
cuda-check:
	eval "$$(scripts/cuda-toolchain.sh)" && \
	$(CARGO) clippy -p accel --features cuda --all-targets -- -D warnings && \
	LD_LIBRARY_PATH="$$ACCEL_CUDA_STUB_LIB" $(CARGO) test -p accel --features cuda

## Alert rules (and their promtool unit tests), the Prometheus config and the Grafana
## dashboards; needs promtool (Debian: prometheus). See deploy/grafana/README.md.
observability:
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml
	python3 scripts/observability.py check

## Benchmarks (criterion and the finality-latency histogram); results go in benches/README.md.
bench: deps peers
	$(CARGO) build --release -p appliance --bin harmony-appliance
	$(CARGO) bench -p benches

## Fuzz what arrives from outside (not part of CI; needs nightly and `cargo install
## cargo-fuzz`): each target for FUZZ_SECONDS, corpora in fuzz/corpus and accel/fuzz/corpus.
FUZZ_SECONDS ?= 600
fuzz:
	cd fuzz && for t in message block transactions economics frame rpc_params; do \
		cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done
	cd accel/fuzz && cargo +nightly fuzz run point_decoders -- -max_total_time=$(FUZZ_SECONDS)

## Debian package of the debug binary into target/debian/ (deploy/debian/build-deb.sh; for a
## release package run the script with target/release/harmony-appliance).
DEB_VERSION = $(shell sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB = target/debian/harmony-appliance_$(DEB_VERSION)_$(DEB_ARCH).deb
package: build
	deploy/debian/build-deb.sh $(BIN) target/debian

## Check that package: contents, unit hardening score, maintainer scripts in a fake root.
package-check: package
	deploy/debian/test-deb.sh $(DEB)

## Rebuild contracts/build/*.json from contracts/*.sol with the pinned npm solc (needs node/npm).
contracts:
	scripts/build_contracts.sh

clean:
	$(CARGO) clean
