# Two entry points; each sets itself up (apt packages, virtualenv) first.
#   make conformance   the conformance suite on the embedded lab (OVN installed here)
#   make check         the project's own tests, then the conformance suite
PYTEST = .venv/bin/python -m pytest -p no:cacheprovider
ARGS ?=

.PHONY: setup conformance check bench

setup:
	@bash ci/setup.sh

conformance: setup
	$(PYTEST) conformance --ovn-topology=lab $(ARGS)

check: setup
	$(PYTEST) tests $(ARGS)
	$(PYTEST) conformance --ovn-topology=lab -n 2 $(ARGS)

bench: setup
	.venv/bin/python ci/bench_lab.py
	.venv/bin/python ci/bench_suite.py
