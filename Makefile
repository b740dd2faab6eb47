# Two commands do all set-up on a fresh machine (Python 3.11 + make):
#   make run    the whole system on this machine (AWS emulator + deployed stack + API on :8000)
#   make test   every test: in-process (moto) and end-to-end on the deployed local stack
# Both virtualenvs and the locks (make lock) are for this Python minor: the Lambda functions run on the
# emulator's interpreter, with the zip's compiled wheels.
PYTHON_VERSION := 3.11
PYTHON ?= python$(PYTHON_VERSION)
VENV := .venv
EMU_VENV := .venv-emulator
PY := $(VENV)/bin/python
STAGE ?= prod

.PHONY: run test unit e2e deploy fire logs redrive package bench audit lock clean

# The locks pin every package, transitive ones included, with its hashes: pip installs nothing else, and
# nothing whose file differs from what was locked (--require-hashes).
PIP_INSTALL := --quiet --disable-pip-version-check --require-hashes
CHECK_PYTHON = @command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }; \
	found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	test "$$found" = $(PYTHON_VERSION) || { echo "$(PYTHON) is $$found: the locks are for $(PYTHON_VERSION)"; exit 1; }

# The dev lock holds the runtime lock's packages at its versions (tests/core/test_requirements.py checks it).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_INSTALL) -r requirements-dev.txt
	@touch $@

# The emulator pins its own botocore: it gets its own virtualenv, on the same Python as the app's.
$(EMU_VENV)/.installed: local/requirements-emulator.txt
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(EMU_VENV)
	$(EMU_VENV)/bin/python -m pip install $(PIP_INSTALL) -r local/requirements-emulator.txt
	@touch $@

run: $(VENV)/.installed $(EMU_VENV)/.installed
	$(PY) -m local.stack run

test: $(VENV)/.installed $(EMU_VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -p tests.access_audit tests

unit: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -p tests.access_audit -m "not e2e" tests

e2e: $(VENV)/.installed $(EMU_VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m e2e tests

deploy: $(VENV)/.installed
	$(PY) -m local.stack deploy

fire: $(VENV)/.installed
	$(PY) -m local.stack fire $(FN)

logs: $(VENV)/.installed
	$(PY) -m local.stack logs $(FN)

# A DLQ's messages back to their queue: QUEUE=<queue or its _dlq>; AWS=1 for the real account (SQS move task).
redrive: $(VENV)/.installed
	@test -n "$(QUEUE)" || { echo "usage: make redrive QUEUE=<name> [AWS=1]"; exit 2; }
	$(PY) -m local.redrive $(QUEUE) $(if $(AWS),--aws)

# The deployable artefact for a real account: build/$(STAGE)/package/{sam.json,deployment.zip} (no AWS access
# needed): the generated resources, `chalice package`, then deploy/package.py's own steps (see its docstring).
package: $(VENV)/.installed
	env -u AWS_ENDPOINT_URL $(PY) -m deploy.package --stage $(STAGE) build/$(STAGE)

bench: $(VENV)/.installed
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# The locks against PyPI's known-vulnerability records; needs that service, so it is not part of `make test`.
# --disable-pip: the pinned versions as written, nothing resolved again; --strict: a package it could not check
# fails the audit (rather than passing unchecked). AUDIT_ARGS adds flags, e.g. AUDIT_ARGS="-s osv".
AUDIT_LOCKS := requirements.txt requirements-dev.txt local/requirements-emulator.txt
audit: $(VENV)/.installed
	@status=0; for lock in $(AUDIT_LOCKS); do echo "== $$lock"; \
		$(VENV)/bin/pip-audit --progress-spinner off --strict --disable-pip --require-hashes -r $$lock $(AUDIT_ARGS) \
		|| status=1; done; exit $$status

# The locks again from the .in files (after editing one): pins already in a lock are kept where the .in files
# allow them; UPGRADE=1 moves every pin to the newest release they allow. The runtime lock comes first: the dev
# lock is constrained to it. Universal: one lock, with markers, for every platform.
LOCK = $(VENV)/bin/uv pip compile --quiet --universal --python-version $(PYTHON_VERSION) --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: $(VENV)/.installed
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt
	$(LOCK) local/requirements-emulator.in -o local/requirements-emulator.txt

clean:
	rm -rf build local/.state .pytest_cache
