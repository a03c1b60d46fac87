# Two entry points: `make repro` (run the DVC pipeline) and `make test` (run the test suite).
# Both create .venv and install the project on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: repro test lint venv bench clean-venv web-assets

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

repro: $(STAMP) web-assets
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro

test: $(STAMP) web-assets
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff on all Python code, mypy on the package and the stages (settings in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src stages tests bench
	$(VENV)/bin/mypy

# vega, vega-lite and vega-embed for an offline `dvc plots show`: fetched from the npm registry into
# .web/ (ignored by git), then inlined into .web/dvc_plots_template.html by web/build_offline_template.py,
# which points .dvc/config.local at it, so every page DVC writes (dvc_plots/ or -o DIR) is self-contained.
# Without npm, .dvc/config's committed web/dvc_plots_template.html loads the same versions from the CDN.
WEB := .web
VEGA_PKGS := vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
web-assets:
	@if [ -s $(WEB)/vega.min.js ] && [ -s $(WEB)/vega-lite.min.js ] && [ -s $(WEB)/vega-embed.min.js ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  mkdir -p $(WEB) && tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent $(VEGA_PKGS) >/dev/null) && \
	  for p in vega vega-lite vega-embed; do \
	    tar -xzOf $$tmp/$$p-[0-9]*.tgz package/build/$$p.min.js > $(WEB)/.$$p.min.js.tmp && \
	    mv $(WEB)/.$$p.min.js.tmp $(WEB)/$$p.min.js || exit 1; \
	  done; rm -rf $$tmp; echo "web-assets: $(VEGA_PKGS) in $(WEB)/"; \
	else echo "web-assets: npm not found; dvc plots show will load vega from the CDN"; exit 0; fi; \
	$(PYTHON) web/build_offline_template.py

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
