# TrialWatch developer commands. The README's test command is `make test`.
SHELL := bash
.DEFAULT_GOAL := help

# Prefix of the resource names `make provision` creates on the emulator.
PREFIX ?= trialwatch

.PHONY: help test coldstart emulator-start emulator-stop emulator-status provision up demo load token tools lint package invoke verify-audit schemathesis fuzz

# Instruction set `make package` builds for: the template's Architecture parameter.
ARCH ?= arm64

help:
	@echo "make demo            the whole system end to end on this machine (local stack)"
	@echo "make test            fmt, clippy, every test; starts and stops its own emulator"
	@echo "make up              local stack: emulator, resources from template.yaml, runner"
	@echo "make up STORE=memory the same stack on the in-memory adapters (no emulator): TrialWatch's own code only"
	@echo "make load [STORES=\"memory emulator\"] [CONCURRENCY=\"16 64\"] [DURATION=15]   HTTP load: req/s, p50/p99/p99.9, errors, server CPU/request"
	@echo "make token ROLE=site_staff TRIAL=t1 PATIENT=p1 SITES=s1,s2   a dev JWT"
	@echo "make emulator-start | emulator-stop | emulator-status   (port TRIALWATCH_EMULATOR_PORT, default 4566)"
	@echo "make provision [PREFIX=trialwatch]   create template.yaml's table/queues/bucket/topics; prints exports"
	@echo "make tools           install the pinned deploy tools into .tools/ (sam, cfn-lint, cargo-lambda, zig, checkov)"
	@echo "make lint            sam validate --lint, cfn-lint and checkov on template.yaml (offline, no credentials)"
	@echo "make package [ARCH=arm64|x86_64]   sam build with cargo-lambda; zips each bootstrap and prints its size"
	@echo "make coldstart [RUNS=11]   release binaries vs hello-world: size, init, first/warm response, peak RSS"
	@echo "make invoke          every function through cargo lambda watch/invoke with events/, on the emulator"
	@echo "make schemathesis [MAX_EXAMPLES=40]   docs/openapi.yaml against the local stack, every role: 0 5xx, 0 schema breaks"
	@echo "make fuzz [FUZZ_MINUTES=1]   each cargo-fuzz target (submission, vitals, fhir, sqs_record) for N minutes"
	@echo "make verify-audit TRIAL=t1 [PREFIX=trialwatch]   recompute a trial's audit chains, check heads and anchors (exit 1 names the break)"
	@echo "                     deployed: add TABLE_NAME=... AUDIT_TABLE_NAME=... AUDIT_ANCHOR_BUCKET=... with real AWS credentials"

test:
	scripts/test.sh

emulator-start:
	scripts/emulator.sh start

emulator-stop:
	scripts/emulator.sh stop

emulator-status:
	scripts/emulator.sh status

# Usage: eval "$(make -s provision)"
provision: emulator-start
	@AWS_ENDPOINT_URL="$$(scripts/emulator.sh url)" \
	AWS_ACCESS_KEY_ID="$${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="$${AWS_SECRET_ACCESS_KEY:-test}" \
	AWS_REGION="$${AWS_REGION:-us-east-1}" \
	cargo run -q -p trialwatch-provision -- "$(PREFIX)"
	@echo "export AWS_ENDPOINT_URL='$$(scripts/emulator.sh url)'"

# Where the stack keeps its data: emulator (default) or memory.
STORE ?= emulator

up:
	TRIALWATCH_STORE="$(STORE)" scripts/up.sh

load:
	scripts/load.sh

demo:
	scripts/demo.sh $(DEMO_ARGS)

token:
	@ROLE="$(ROLE)" TRIAL="$(TRIAL)" PATIENT="$(PATIENT)" SITES="$(SITES)" scripts/token.sh

tools:
	scripts/tools.sh install

lint:
	scripts/lint.sh

package:
	ARCH="$(ARCH)" scripts/package.sh

invoke:
	scripts/invoke.sh

# Hostile load; neither is part of `make test` (a finding becomes a regression test there).
schemathesis:
	scripts/schemathesis.sh

fuzz:
	FUZZ_MINUTES="$(FUZZ_MINUTES)" FUZZ_TARGETS="$(FUZZ_TARGETS)" scripts/fuzz.sh

coldstart:
	RUNS="$(RUNS)" scripts/coldstart.sh

verify-audit:
	@test -n "$(TRIAL)" || { echo "usage: make verify-audit TRIAL=<trialId> [PREFIX=trialwatch]" >&2; exit 2; }
	@scripts/verify-audit.sh "$(TRIAL)" "$(PREFIX)"
