# Two entry points for a fresh machine: `make atlas` builds the site, `make test` runs the tests.
# Both create the virtualenv in .venv and install the package first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

export LITELLM_OFFLINE_MODE := true
export NO_MKDOCS_2_WARNING := 1

.PHONY: atlas test install chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,bench]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## Build the atlas from data/ into site/ (open site/index.html, or run `.venv/bin/atlas serve`).
atlas: install
	$(BIN)/atlas build --data data --out site

## Headless Chromium for the browser tests (Debian package; needs root or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

## Run the whole test suite, browser tests included.
test: install chromium
	$(BIN)/python -m pytest -q

clean:
	rm -rf site site_src/generated .pytest_cache
