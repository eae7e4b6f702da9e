# clip-similarity: CLIP image-text similarity on KServe.
# `make help` lists the targets; `make run` and `make test` are the two that matter on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(CURDIR)/$(VENV)/bin:$(PATH)

# Model served by `make run`: a model directory, or an open_clip arch + pretrained tag/checkpoint.
MODEL_DIR ?=
ARCH ?=
PRETRAINED ?=
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k gateway -x"`.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch and torchvision in one command, pinned together (other pairs fail to import); the pins are
	# pyproject.toml's, read by scripts/requirements.py.
	$(PY) -m pip install -q $$($(PY) scripts/requirements.py predictor torch torchvision)
	$(PY) -m pip install -q -e '.[predictor,gateway,dev]'
	@touch $@

.PHONY: install
install: $(VENV)/.installed ## Create the virtualenv and install the project with all extras.

.PHONY: tools
tools: ## Fetch helm, kubectl, promtool and docker-compose into .tools/bin.
	@PYTHON=$(PYTHON) scripts/install-tools.sh

##@ Run

.PHONY: run
run: install ## Run both predictors and the gateway locally (:8001, :8002, :8000); Ctrl-C stops all.
	$(PY) scripts/run_stack.py $(if $(MODEL_DIR),--model-dir $(MODEL_DIR)) \
	  $(if $(ARCH),--arch $(ARCH)) $(if $(PRETRAINED),--pretrained $(PRETRAINED))

.PHONY: run-image
run-image: install ## Serve only clip-image on :8001/:9001 (MODEL_DIR=..., default the demo model).
	$(PY) -m predictors.image --model_dir $(or $(MODEL_DIR),models/clip-shapes)

.PHONY: run-text
run-text: install ## Serve only clip-text on :8002/:9002 (MODEL_DIR=..., default the demo model).
	$(PY) -m predictors.text --model_dir $(or $(MODEL_DIR),models/clip-shapes)

# Where `make bundle` writes the engine bundle.
BUNDLE_DIR ?= build/clip-shapes-bundle

.PHONY: bundle
bundle: install ## Write the engine bundle of MODEL_DIR (default the demo model) to BUNDLE_DIR: what the CPU image serves.
	$(PY) -m predictors.bundle --model_dir $(or $(MODEL_DIR),models/clip-shapes) --out $(BUNDLE_DIR)

.PHONY: run-gateway
run-gateway: install ## Serve only the gateway on :8000 (predictors at IMAGE_/TEXT_PREDICTOR_URL).
	$(PY) -m gateway

.PHONY: monitor
monitor: install tools ## Prometheus on 127.0.0.1:9090 scraping `make run`, with the chart's alerts (PROMETHEUS_PORT=9091 to move it).
	$(PY) scripts/monitor.py $(if $(PROMETHEUS_PORT),--port $(PROMETHEUS_PORT))

##@ Performance

.PHONY: bench bench-quick bench-tune bench-client test-bench
bench: install ## Benchmark: real stack vs in-process limit (every engine) vs batching off; writes bench/results/.
	$(PY) -m bench
bench-quick: install ## Benchmark the demo model only, short points; prints the machine and the CPU breakdown.
	$(PY) -m bench --quick
bench-tune: install ## Choose predictor threads and forward workers (interleaved runs; writes bench/results/tune-*).
	$(PY) -m bench.tune --model vit-b-32 --threads 1,2,2/1 --delays 0
	$(PY) -m bench.tune --model vit-b-32 --threads 0/1 --delays 0 --workers 1,2 --concurrency 1,4,32 \
		--name tune-vit-b-32-workers
	$(PY) -m bench.tune --model demo --threads 2/1,1/1 --delays 0 --workers 0 --concurrency 1,4,32 \
		--name tune-demo-threads
	$(PY) -m bench.tune --model vit-b-32 --threads 0/1 --delays 0/0,0/10,0/25 --workers 0 --concurrency 1,32 \
		--name tune-vit-b-32-text-delay
	$(PY) -m bench.tune --model vit-b-32 --threads 0/1,0/2 --delays 0 --workers 0 --concurrency 1,32 \
		--name tune-vit-b-32-text-threads
bench-client: install ## Gateway client CPU per predictor call: httpx's pool vs the aiohttp transport.
	$(PY) -m bench.client
test-bench: install ## The benchmark harness's own test (tiny model).
	$(PY) -m pytest tests/bench $(PYTEST_ARGS)

##@ Reliability

SOAK_SECONDS ?= 300

.PHONY: soak
soak: install ## Soak the local stack for SOAK_SECONDS (300) at concurrency 16; report under results/soak/.
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) scripts/soak.py

##@ Demo model

.PHONY: demo-model demo-samples demo-eval
demo-model: install ## Retrain the demo CLIP into models/clip-shapes (~2.5 min on 2 free cores).
	$(PY) -m demo.train --out models/clip-shapes
demo-samples: install ## Redraw samples/ (deterministic).
	$(PY) -m demo.samples
demo-eval: install ## Held-out zero-shot accuracy of the demo model (plain and after JPEG).
	$(PY) -m demo.evaluate --model-dir models/clip-shapes --per-class 50 --seed 1

##@ Images

# Tags, base image and torch variant of `make images`; see scripts/build-images.sh. Without a registry,
# `scripts/base-image.sh` builds a local base: PYTHON_IMAGE=localhost/python:3.11-slim-bookworm.
PREDICTOR_IMAGE ?= clip-similarity/predictor:dev
PREDICTOR_CPU_IMAGE ?= clip-similarity/predictor-cpu:dev
GATEWAY_IMAGE ?= clip-similarity/gateway:dev
PYTHON_IMAGE ?= python:3.11-slim-bookworm
TORCH_INDEX_URL ?=
export PREDICTOR_IMAGE PREDICTOR_CPU_IMAGE GATEWAY_IMAGE PYTHON_IMAGE TORCH_INDEX_URL

.PHONY: images test-images
images: ## Build the images with podman: predictor, predictor-cpu (no torch), gateway (PYTHON_IMAGE=..., TORCH_INDEX_URL=...).
	scripts/build-images.sh
test-images: install tools images ## Build the images, run them as the chart runs pods, and bring up docker-compose.yml.
	$(PY) -m pytest tests/images $(PYTEST_ARGS)

##@ Kubernetes

.PHONY: dashboard
dashboard: ## Regenerate the Grafana dashboard JSON from helm/clip-similarity/dashboards/dashboard.py.
	$(PY) helm/clip-similarity/dashboards/dashboard.py

.PHONY: manifests
manifests: tools dashboard ## Regenerate the dashboard, then manifests/ (plain YAML) from the chart's defaults.
	scripts/render-manifests.sh

.PHONY: rules
rules: tools ## Regenerate prometheus/rules.yml from the chart's PrometheusRule.
	scripts/render-rules.sh

.PHONY: chart-lint
chart-lint: tools ## helm lint --strict the chart with each ci/*-values.yaml.
	for f in "" helm/clip-similarity/ci/*-values.yaml; do \
	  $(TOOLS_BIN)/helm lint --strict helm/clip-similarity --set monitoring.forceApiVersions=true $${f:+-f $$f} || exit 1; done

.PHONY: compose-config
compose-config: tools ## Validate docker-compose.yml.
	$(TOOLS_BIN)/docker-compose -f docker-compose.yml config -q

.PHONY: kind-up
kind-up: ## kind cluster + images + cert-manager + KServe (Standard) + the chart (CPU values).
	scripts/kind-up.sh

.PHONY: kind-smoke
kind-smoke: ## Port-forward the gateway on kind, POST /compare/, run helm test.
	scripts/kind-smoke.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	scripts/kind-down.sh

##@ Development

.PHONY: test
test: install tools ## Run the whole test suite (installs what it needs first).
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: install ## Unit and in-process tests: no test that starts a process (under 2 minutes).
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

.PHONY: test-predictors test-gateway test-deploy test-e2e
test-predictors: install ## Predictor tests only.
	$(PY) -m pytest tests/predictors $(PYTEST_ARGS)
test-gateway: install ## Gateway tests only.
	$(PY) -m pytest tests/gateway $(PYTEST_ARGS)
test-deploy: install tools ## Chart, manifests, images, alerts and dashboard tests only.
	$(PY) -m pytest tests/deploy $(PYTEST_ARGS)
test-e2e: install ## The whole system through its real processes, and `make run` itself.
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: docs
docs: tools ## Rewrite the generated sections of docs/ and README.md (flags, settings, metrics, alerts, layout).
	$(PY) scripts/gen_docs.py

.PHONY: lint
lint: install ## ruff and mypy.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: fmt
fmt: install ## Format and auto-fix with ruff.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: clean
clean: ## Remove caches (keeps the virtualenv and tools).
	rm -rf .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
