# The two commands a newcomer needs: `make demo` and `make test` (both install what they need).
PY := .venv/bin/python
PACKAGES := shared/crossgen_shared services/matching/crossgen_matching \
	services/sessions/crossgen_sessions services/notifications/crossgen_notifications \
	deploy/local/crossgen_local benchmarks

.PHONY: bootstrap demo test lint schemas bench-matching

bootstrap:
	@bash deploy/local/bootstrap.sh

# constraints.txt again, at the newest versions the manifests allow (then make test, commit).
.PHONY: lock
lock:
	@bash deploy/local/bootstrap.sh --lock

demo: bootstrap
	$(PY) -m crossgen_local.demo $(ARGS)

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy $(PACKAGES)

test: lint
	$(PY) -m pytest

schemas: bootstrap
	$(PY) -m crossgen_shared.schemas
	$(PY) -m crossgen_shared.asyncapi

bench-matching: bootstrap
	$(PY) benchmarks/matching_bench.py

.PHONY: bench-pipeline
bench-pipeline: bootstrap
	$(PY) benchmarks/pipeline_bench.py $(ARGS)

.PHONY: bench-intake
bench-intake: bootstrap
	$(PY) benchmarks/intake_bench.py $(ARGS)

.PHONY: bench-launch
bench-launch: bootstrap
	$(PY) benchmarks/launch_bench.py $(ARGS)

.PHONY: bench-eligibility
bench-eligibility: bootstrap
	$(PY) benchmarks/eligibility_bench.py $(ARGS)

.PHONY: bench-outcomes
bench-outcomes: bootstrap
	$(PY) benchmarks/outcomes_bench.py $(ARGS)

.PHONY: bench-whole-program
bench-whole-program: bootstrap
	$(PY) benchmarks/whole_program_bench.py $(ARGS)

.PHONY: bench-expiry
bench-expiry: bootstrap
	$(PY) benchmarks/expiry_bench.py $(ARGS)

.PHONY: faults
faults: bootstrap
	$(PY) -m crossgen_local.faults --long $(ARGS)
