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

# --- Documentation and the version matrix ---------------------------------------------------
#
#   make docs                         the site in docs/ into build/site (mkdocs build --strict)
#   make matrix                       the test suite on the oldest and the newest supported
#                                     Django x DRF pair, with nox (noxfile.py; SQLite)
#   make matrix NOX_ARGS="-s lint typecheck"    other nox sessions (`.venv/bin/nox -l` lists them)
#
# Both use $(VENV): docs installs the `docs` extra into it; matrix installs nox and uv into it,
# and nox makes its own virtualenvs under build/nox.

NOX_SPEC ?= nox[uv]>=2026.10.20,<2027
NOX_ARGS ?= -t oldest newest

.PHONY: docs matrix

docs:
	$(MAKE) venv EXTRAS="$(if $(EXTRAS),$(EXTRAS)$(comma))docs"
	$(VENV_PY) -m mkdocs build --strict --site-dir build/site

matrix: $(VENV_PY)
	$(VENV_PY) -m pip install --quiet "$(NOX_SPEC)"
	$(VENV_PY) -m nox $(NOX_ARGS)

# --- Translations ------------------------------------------------------------------------------
#
#   make messages                     re-extract the strings of drf_totp/ into its catalogs
#                                     (drf_totp/locale/*/LC_MESSAGES/django.po; new strings
#                                     arrive untranslated) and compile each to django.mo
#   make messages LOCALES="de es fr it"   also start an Italian catalog
#
# Both the .po and the .mo files are committed. Needs GNU gettext (msgmerge, msgfmt, xgettext).

LOCALES ?= de es fr

.PHONY: messages

messages: venv
	cd drf_totp && DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH="$(CURDIR)" \
		$(VENV_PY) -m django makemessages $(addprefix -l ,$(LOCALES)) --add-location file
	cd drf_totp && DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH="$(CURDIR)" \
		$(VENV_PY) -m django compilemessages

# --- Benchmark ---------------------------------------------------------------------------------
#
#   make bench                        bench/run.py: SQLite, PostgreSQL, then PostgreSQL with
#                                     1,000,000 devices; a table, JSON in build/bench/results
#   make bench BENCH_ARGS=--quick     a short smoke run
#   make bench BENCH_ARGS="--db sqlite --no-scale"
#
# Installs the `bench` extra (gunicorn, psycopg, py-spy) into $(VENV). Needs wrk (Debian:
# apt-get install wrk) and, for PostgreSQL, postgres@127.0.0.1 allowed to create databases
# (it drops and creates only drf_totp_bench*). Loads 127.0.0.1 only.

BENCH_ARGS ?=

.PHONY: bench

bench:
	$(MAKE) venv EXTRAS="$(if $(EXTRAS),$(EXTRAS)$(comma))bench"
	$(VENV_PY) bench/run.py $(BENCH_ARGS)
