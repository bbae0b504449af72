# The project's checks. `make test` is what CI runs (see .ci/run).
PYTHON ?= python

.PHONY: test lint unit notebooks docs

test: lint unit notebooks docs

lint:
	$(PYTHON) -m ruff check .

unit:
	$(PYTHON) -m pytest tests visionkit --doctest-modules --ignore=tests/workers

notebooks:
	VISIONKIT_QUICK=1 $(PYTHON) -m pytest --nbmake --nbmake-timeout=900 -p no:cacheprovider notebooks

docs:
	$(PYTHON) -m mkdocs build --strict --site-dir build/site
