# Everything a fresh machine needs: `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLOORS := .venv-floors

.PHONY: test test-floors demo lint typecheck unit ray-tier bench clean

# The dev tools at the versions constraints-dev.txt pins, so a new ruff or mypy release
# cannot fail `make test` on a fresh machine with code nobody changed.
$(STAMP): pyproject.toml constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints-dev.txt -e '.[dev,ray]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# Four workers on the machine's cores: most tests wait on a server or a subprocess, and
# every test must hold on a busy machine anyway (CI shares its cores).
unit: $(STAMP)
	$(BIN)/pytest -q -m "not ray" -n 4 --dist worksteal

# The Ray tier (tests/ray): a 2-node Ray cluster on 127.0.0.1 and `fetch --backend ray`
# killed and resumed; about a minute on 2 quiet cores, 4-6 minutes on 2 cores kept busy,
# under a wall-clock guard so a wedged cluster cannot hang CI. SIGINT first: pytest stops
# and prints what failed (and the cluster is shut down); SIGKILL 30 s later if it is wedged.
ray-tier: $(STAMP)
	timeout -s INT -k 30 600 $(BIN)/pytest -q -m ray tests/ray

test: lint typecheck unit ray-tier

# Proof that the floors in pyproject.toml are true: a second venv with every dependency at
# the lowest version pyproject.toml allows (.ci/floors.py pins them; wheels only, so a
# floor with no wheel for this Python fails here), the dev tools as constraints-dev.txt
# pins them, then the quick tests. The SIGKILL timing tests (-m slow) are left to `make
# test`: what they check does not depend on the versions.
test-floors:
	rm -rf $(FLOORS)
	$(PYTHON) -m venv $(FLOORS)
	$(FLOORS)/bin/python -m pip install --quiet --upgrade pip
	$(FLOORS)/bin/python .ci/floors.py pyproject.toml > $(FLOORS)/constraints-floors.txt
	$(FLOORS)/bin/python -m pip install --quiet --only-binary :all: \
		-c constraints-dev.txt -c $(FLOORS)/constraints-floors.txt -e '.[dev]'
	$(FLOORS)/bin/pytest -q -x -m "not slow" -n 4 --dist worksteal -p no:cacheprovider \
		tests/http tests/io tests/engine

demo: $(STAMP)  ## the main job on the built-in demo site (examples/hybrid.py: the engine alone)
	$(BIN)/conveyor demo

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints-dev.txt -e '.[dev,bench]'
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) $(FLOORS) build dist .pytest_cache .mypy_cache .ruff_cache
