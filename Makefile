# Two commands do all set-up on a fresh machine (Python 3.11 + make):
#   make run    the whole system on this machine (AWS emulator + deployed stack + API on :8000)
#   make test   every test: in-process (moto) and end-to-end on the deployed local stack
PYTHON ?= python3.11
VENV := .venv
EMU_VENV := .venv-emulator
PY := $(VENV)/bin/python
STAGE ?= prod

.PHONY: run test unit e2e deploy fire logs redrive package bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The emulator pins its own botocore: it gets its own virtualenv, on the same Python as the app's
# (the Lambda functions run on the emulator's interpreter, with the zip's compiled wheels).
$(EMU_VENV)/.installed: local/requirements-emulator.txt
	$(PYTHON) -m venv $(EMU_VENV)
	$(EMU_VENV)/bin/pip install --quiet --disable-pip-version-check -r local/requirements-emulator.txt
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

# The deployable artefact for a real account: build/$(STAGE)/sam.json + deployment.zip (no AWS access needed).
package: $(VENV)/.installed
	mkdir -p build/$(STAGE)
	env -u AWS_ENDPOINT_URL $(PY) -m chalicelib.infra --stage $(STAGE) > build/$(STAGE)/resources.json
	env -u AWS_ENDPOINT_URL AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package \
		--stage $(STAGE) --merge-template build/$(STAGE)/resources.json build/$(STAGE)/package
	$(PY) -m tools.bytecode build/$(STAGE)/package

bench: $(VENV)/.installed
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf build local/.state .pytest_cache
