# Tessera: the two commands are `make run` and `make test`.
.PHONY: run build test lint fmt deps test-deps bench contracts schemathesis test-postgres

CARGO ?= cargo

## Run Tessera locally (installs ffmpeg if missing and possible, builds, starts on SQLite).
run: deps
	$(CARGO) build --release --bin tessera
	./scripts/run.sh

build:
	$(CARGO) build --release --bin tessera

deps:
	./scripts/deps.sh

## Every test: unit tests and black-box tests against a real server, ffmpeg and receivers,
## plus a smoke run of the benchmarks so they cannot rot.
test: test-deps
	$(CARGO) test -p tessera --bench bench -- --smoke
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast && \
		$(CARGO) test -p tessera-webhook --doc; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	$(MAKE) test-postgres
	$(MAKE) schemathesis

## The whole suite again on PostgreSQL (a throwaway server from scripts/postgres.sh), with
## a local S3-compatible server (scripts/s3.sh) for the S3 and multi-node tests.
test-postgres:
	@url=$$(./scripts/postgres.sh start) || exit 1; \
	s3=$$(./scripts/s3.sh start) || { ./scripts/postgres.sh stop; exit 1; }; \
	TESSERA_TEST_DATABASE_URL=$$url TESSERA_REQUIRE_POSTGRES=1 \
	TESSERA_TEST_S3_BUCKET=tessera-test TESSERA_REQUIRE_S3=1 \
	AWS_ENDPOINT_URL=$$s3 AWS_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=tessera-test-key AWS_SECRET_ACCESS_KEY=tessera-test-secret-never-logged \
		$(CARGO) nextest run -p tessera --no-fail-fast; status=$$?; \
	./scripts/s3.sh stop; ./scripts/postgres.sh stop; exit $$status

## Fuzz the live API against its OpenAPI document (bounded examples per operation).
schemathesis:
	$(CARGO) build --bin tessera
	./scripts/schemathesis.sh "$${CARGO_TARGET_DIR:-target}/debug/tessera"

## Regenerate contracts/ (OpenAPI document and TypeScript definitions) after an API change.
contracts:
	$(CARGO) run --quiet --bin tessera -- contracts --out contracts

## Benchmarks against same-machine baselines; writes BENCHMARKS.md.
bench: deps
	$(CARGO) bench -p tessera --bench bench

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

test-deps:
	./scripts/test-deps.sh
