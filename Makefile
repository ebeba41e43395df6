# drf-totp development tasks.
#
#   make test                         run the test suite (SQLite, LocMem cache)
#   make test PYTEST_ARGS="-k lockout -x"
#   make test EXTRAS=postgres DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
#   make demo                         example project on http://127.0.0.1:8000/
#   make clean
#
# The virtualenv lives in $(VENV). It is (re)installed only when pyproject.toml changed
# since the last install, or when EXTRAS asks for an extra that was never installed.
# Extras accumulate: after `make test EXTRAS=postgres,mysql`, a plain `make test`
# reuses that venv as it is.

PYTHON ?= python3
VENV ?= .venv
EXTRAS ?=
PYTEST_ARGS ?=
DEMO_ADDR ?= 127.0.0.1:8000

VENV_PY := $(abspath $(VENV))/bin/python
# Extras installed so far, one a line; its mtime is the time of the last install.
STAMP := $(VENV)/.drf-totp-extras

comma := ,
WANTED_EXTRAS := test $(subst $(comma), ,$(EXTRAS))

.PHONY: all venv test demo clean

all: test

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip

venv: $(VENV_PY)
	@set -e; \
	have=""; \
	if [ -f "$(STAMP)" ]; then have="$$(cat "$(STAMP)")"; fi; \
	need=no; \
	if [ ! -f "$(STAMP)" ] || [ pyproject.toml -nt "$(STAMP)" ]; then need=yes; fi; \
	for e in $(WANTED_EXTRAS); do \
		printf '%s\n' "$$have" | grep -qxF "$$e" || need=yes; \
	done; \
	if [ "$$need" = yes ]; then \
		all="$$(printf '%s\n' $$have $(WANTED_EXTRAS) | sed '/^$$/d' | sort -u)"; \
		spec="$$(printf '%s\n' "$$all" | paste -sd, -)"; \
		echo "Installing -e .[$$spec] into $(VENV)"; \
		"$(VENV_PY)" -m pip install --quiet -e ".[$$spec]"; \
		printf '%s\n' "$$all" > "$(STAMP)"; \
	fi

test: venv
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

demo: venv
	cd example && $(VENV_PY) manage.py migrate --noinput
	cd example && $(VENV_PY) manage.py demo_user
	cd example && $(VENV_PY) manage.py runserver $(DEMO_ADDR)

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache *.egg-info example/db.sqlite3
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
