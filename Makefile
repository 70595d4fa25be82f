# The template's two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
DEMO_DIR ?= demo
DEMO_SLUG := churn-model

.DEFAULT_GOAL := help
.PHONY: help setup demo test lock clean

help:  ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python  ## Install what baking and the template tests need into .venv
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

demo: setup  ## Bake the default project into demo/ and run its whole pipeline
	rm -rf $(DEMO_DIR)/$(DEMO_SLUG)
	mkdir -p $(DEMO_DIR)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(MAKE) -C $(DEMO_DIR)/$(DEMO_SLUG) setup repro
	@echo
	@echo "Demo project: $(DEMO_DIR)/$(DEMO_SLUG)"
	@echo "  metrics:  $(DEMO_DIR)/$(DEMO_SLUG)/reports/metrics.json (cd there; dvc metrics show)"
	@echo "  plots:    cd $(DEMO_DIR)/$(DEMO_SLUG) && make plots  -> dvc_plots/index.html"
	@echo "  model:    $(DEMO_DIR)/$(DEMO_SLUG)/models/model.ubj"
	@echo "  MLflow:   cd $(DEMO_DIR)/$(DEMO_SLUG) && make mlflow-ui  -> http://127.0.0.1:5000"

test: setup  ## Run every template test (bakes projects and runs their own tests)
	$(BIN)/python -m pytest tests --durations=15

lock: setup  ## Re-resolve the generated project's requirements.lock
	$(BIN)/python scripts/lock.py

clean:  ## Remove the demo and caches
	rm -rf $(DEMO_DIR) .pytest_cache
