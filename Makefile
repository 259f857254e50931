# One entry point for humans and CI:
#   make lab    install into .venv, then JupyterLab on notebooks/ (with the sandbox when no key is set)
#   make test   install everything (the three kernel venvs, Chromium, tmux), lint, type-check, then run
#               the whole test suite (it builds the wheel and runs it in clean venvs: tests/test_package.py)
#   make dist   build the wheel and the sdist into dist/ and check them with twine
SHELL := /bin/bash
PYTHON ?= python3
PORT ?= 8888
LAB_ARGS ?=
PYTEST_ARGS ?=

VENV := .venv
VENV6 := .venv-ipykernel6
VENV_COLAB := .venv-colab
COLAB_PINS := tests/colab/colab-runtime.txt
# Stamps live inside the venvs: deleting a venv also forgets that it was installed.
STAMP := $(VENV)/.installed
STAMP6 := $(VENV6)/.installed
STAMP_COLAB := $(VENV_COLAB)/.installed
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: test lint typecheck dist lab bench clean distclean install venv-python chromium tmux

test: install lint typecheck $(STAMP6) $(STAMP_COLAB) chromium tmux
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

# Seconds, and first: a wrong-way import, a dead name or an unformatted file fails the build.
lint: install
	$(VENV)/bin/ruff check hiapi_notebook tests bench
	$(VENV)/bin/ruff format --check hiapi_notebook tests bench
	$(VENV)/bin/lint-imports --no-cache

# The modules it checks are listed in pyproject.toml ([tool.mypy] files).
typecheck: install
	$(VENV)/bin/mypy

dist: install
	rm -rf dist
	$(VENV)/bin/python -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

lab: install
	PORT="$(PORT)" bash scripts/lab.sh $(LAB_ARGS)

bench: install
	@set -e; for script in bench/*.py; do \
		[ -e "$$script" ] || continue; \
		echo "==> $$script"; $(VENV)/bin/python "$$script"; \
	done

install: $(STAMP) $(LAB_OVERRIDES)

# Debian's python3 ships without ensurepip unless python3-venv is installed.
venv-python:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || bash scripts/apt-install.sh python3-venv

# The test tools are the PEP 735 dependency group "dev", which pip installs from 25.1 on: the venv's
# own pip (whatever ensurepip bundled) is upgraded first.
$(STAMP): pyproject.toml | venv-python
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade 'pip>=25.1'
	$(VENV)/bin/python -m pip install -q -e '.[sandbox]' --group dev
	touch $@

# A second kernel environment: the live-update tests must pass on ipykernel 6 as well as 7.
$(STAMP6): pyproject.toml | venv-python
	test -x $(VENV6)/bin/python || $(PYTHON) -m venv $(VENV6)
	$(VENV6)/bin/python -m pip install -q -e '.[sandbox]' 'ipykernel>=6.29,<7' ipywidgets
	touch $@

# A third: Google Colab's kernel packages exactly as pinned, on Python 3.13 (pyenv's shim may need
# PYENV_VERSION to find it), and the package installed into them without changing a pin
# (tests/test_colab.py checks that, and runs its kernel as Colab's: tests/colab/colab_kernel.py).
$(STAMP_COLAB): pyproject.toml $(COLAB_PINS)
	test -x $(VENV_COLAB)/bin/python || { python3.13 -m venv $(VENV_COLAB) 2>/dev/null \
		|| PYENV_VERSION=$$(pyenv whence python3.13 | tail -n 1) python3.13 -m venv $(VENV_COLAB); }
	$(VENV_COLAB)/bin/python -m pip install -q -r $(COLAB_PINS)
	$(VENV_COLAB)/bin/python -m pip install -q -e '.[sandbox]'
	touch $@

# Keep every cell in the DOM (no virtual scrolling) and the news pop-up away.
$(LAB_OVERRIDES): scripts/lab-overrides.json $(STAMP)
	mkdir -p $(@D)
	cp scripts/lab-overrides.json $@

# Browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
chromium:
	@test -x /usr/bin/chromium || bash scripts/apt-install.sh chromium

# The terminal tests type into terminal IPython inside a tmux pane and read the screen back.
tmux:
	@command -v tmux >/dev/null || bash scripts/apt-install.sh tmux

clean:
	rm -rf test-artifacts .pytest_cache .mypy_cache build dist *.egg-info
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

# Also drop the venvs (the next make reinstalls them).
distclean: clean
	rm -rf $(VENV) $(VENV6) $(VENV_COLAB)
