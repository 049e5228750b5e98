# Two entry points; each sets itself up (apt packages, virtualenv) first.
#   make conformance   the conformance suite on the embedded lab (OVN installed here)
#   make check         the project's own tests, then the conformance suite on the
#                      embedded lab and on a container cluster (ci/check.sh)
#   make check-fresh   the same as a fresh machine sees it (what CI runs)
#   make bench, make matrix   benchmarks; the suite over several OVN releases
PYTEST = .venv/bin/python -m pytest -p no:cacheprovider
ARGS ?=

.PHONY: setup conformance check check-fresh check-fmn bench matrix nightly

setup:
	@bash ci/setup.sh

conformance: setup
	$(PYTEST) conformance --ovn-topology=lab $(ARGS)

check:
	bash ci/check.sh $(ARGS)

# `make check` as a fresh machine runs it (what CI does): in a clean clone of
# HEAD (a new virtualenv), with a private, empty container storage and no pip
# cache (ci/fresh.sh); each phase's time is appended to ci/check-times.txt
check-fresh:
	clone=$$(mktemp -d /tmp/ovnlb-fresh-clone.XXXXXX) && trap 'rm -rf "$$clone"' EXIT && \
	chmod 755 "$$clone" && git clone -q . "$$clone" && \
	OVNLB_TIMES_DIR=$(CURDIR)/ci bash "$$clone/.ci/run"

# The fake-multinode backend on the project's stand-in cluster, both modes
check-fmn: setup
	bash ci/check-fmn.sh

bench: setup
	.venv/bin/python ci/bench_lab.py
	.venv/bin/python ci/bench_suite.py

# Pass/fail matrix over OVN releases: this machine's, and Debian trixie's and
# sid's installed into root filesystems under .roots/ (debootstrap, ~50 s each);
# then the upgrade paths between them (and one downgrade, shown as such).
SUITES ?= trixie sid
UPGRADES ?= host:.roots/trixie host:.roots/sid .roots/trixie:.roots/sid .roots/sid:.roots/trixie
matrix: setup
	for s in $(SUITES); do bash ci/make-root.sh $$s $(CURDIR)/.roots/$$s; done
	.venv/bin/python ci/matrix.py --out matrix host $(addprefix .roots/,$(SUITES)) \
		$(addprefix --upgrade ,$(UPGRADES)) -- -n 2

# The same installations into one artifacts folder (nightly/): per installation
# JUnit, report and evidence, then the matrix page (ci/nightly)
nightly: setup
	for s in $(SUITES); do bash ci/make-root.sh $$s $(CURDIR)/.roots/$$s; done
	.venv/bin/python ci/nightly --out nightly host $(addprefix root:.roots/,$(SUITES)) \
		$(addprefix upgrade:,$(UPGRADES)) -- -n 2
