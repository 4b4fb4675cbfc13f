# Two commands on a fresh machine:  make devnet  (start a local devnet)  and  make test.
# Each creates the virtual environment .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: devnet test test-long bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

devnet: $(STAMP)
	$(VENV)/bin/rollup devnet $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The long mode: every fuzz and property test at full size.
test-long: $(STAMP)
	ROLLUP_LONG=1 $(PY) -m pytest $(PYTEST_ARGS)

# What CI runs before the tests: ruff, then mypy (pyproject.toml configures both).
lint: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[lint]"
	$(VENV)/bin/ruff check rollup challengers tests bench
	$(VENV)/bin/mypy rollup challengers tests bench

clean:
	rm -rf $(VENV) .devnet .pytest_cache .hypothesis .ruff_cache .mypy_cache
