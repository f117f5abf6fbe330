# make run:  create .venv, install DIGITS, start the server on 127.0.0.1:5000
# make test: install what the tests need (Chromium included) and run the whole suite

PYTHON ?= python3.11
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements.txt setup.py
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	@command -v chromium >/dev/null || { \
		echo "installing Debian's Chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	touch $@

run: $(STAMP)
	$(BIN)/python -m digits

test: $(TEST_STAMP)
	$(BIN)/ruff check digits tests bench setup.py
	$(BIN)/ruff format --check digits tests bench setup.py
	$(BIN)/python -m pytest -q -ra

lint: $(TEST_STAMP)
	$(BIN)/ruff check digits tests bench setup.py

format: $(TEST_STAMP)
	$(BIN)/ruff format digits tests bench setup.py
	$(BIN)/ruff check --fix digits tests bench setup.py

bench: $(TEST_STAMP)
	$(BIN)/python bench/create_db.py
	$(BIN)/python bench/responsiveness.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/inference.py

clean:
	rm -rf $(VENV) build *.egg-info
