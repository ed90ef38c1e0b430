# Palisade's build. `make test` is what CI runs (.ci/run); `make demo`
# evaluates the example policy against sample manifests.

GO        ?= go
BIN       := bin
OPA       := $(GO) tool opa
STATICCHECK := $(GO) tool staticcheck
# Fuzzing is bounded so that `make test` stays well inside CI's budget
# (about 20 s here). A count, not a duration: a duration races Go's fuzz
# coordinator into a spurious "context deadline exceeded" failure
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME  ?= 150000x
# The handler and layer fuzzers run a whole review or signature check per
# input: fewer inputs for about the same time.
FUZZTIME_SLOW ?= 10000x
# FuzzEvaluators decides each input four times with two evaluators.
FUZZTIME_EVAL ?= 1000x
# The tests decide every admission, continuous and verification decision
# with both evaluators, irvm and OPA's topdown, and fail on any
# difference (bundles.EvaluatorCheck): the whole suite is a differential
# test of the IR evaluator. The built binaries the end-to-end tests start
# inherit it.
EVALUATOR_CHECK ?= PALISADE_EVALUATOR=check
# Rego coverage floor (percent) enforced by `make test`.
REGO_COVERAGE ?= 90

.PHONY: all build test test-go test-rego test-policies fuzz generate verify lint demo demo-down demo-offline bench bench-admission bench-sensor clean

all: build

build:
	$(GO) build -o $(BIN)/palisade ./cmd/palisade

test: cluster-bins helm-bin cosign-bin gitea-bin vm-image lint test-go test-rego test-policies fuzz

test-go:
	$(EVALUATOR_CHECK) $(GO) test -count=1 ./...

# Unit tests of the Rego library with coverage; fails under REGO_COVERAGE.
test-rego:
	$(OPA) test --coverage --threshold $(REGO_COVERAGE) rego/palisade > $(BIN)/rego-coverage.json || \
		{ $(OPA) test rego/palisade; echo "rego coverage below $(REGO_COVERAGE)%:"; grep -o '"coverage": [0-9.]*' $(BIN)/rego-coverage.json | tail -1; exit 1; }
	@printf 'rego: %s tests pass, ' "$$($(OPA) test rego/palisade | grep -o 'PASS: [0-9]*/[0-9]*')"; \
		grep -o '"coverage": [0-9.]*' $(BIN)/rego-coverage.json | tail -1

# The example repository's own PolicyTests, through the real CLI.
test-policies: build
	$(BIN)/palisade test policies-example

fuzz:
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s
	$(GO) test ./admission -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME_SLOW) -fuzzminimizetime 1s
	$(GO) test ./admission -run '^$$' -fuzz '^FuzzDecodeReview$$' -fuzztime $(FUZZTIME_SLOW) -fuzzminimizetime 1s
	$(GO) test ./internal/jsonast -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s
	$(GO) test ./imageverify -run '^$$' -fuzz '^FuzzLayer$$' -fuzztime $(FUZZTIME_SLOW) -fuzzminimizetime 1s
	$(GO) test ./sensor/match -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME_SLOW) -fuzzminimizetime 1s
	$(GO) test ./bundles -run '^$$' -fuzz '^FuzzEvaluators$$' -fuzztime $(FUZZTIME_EVAL) -fuzzminimizetime 1s

generate: manifests
	$(GO) generate ./...

# verify fails when generated files or formatting are not committed.
verify: generate
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	@git diff --exit-code || { echo "generated files differ from the commit: run make generate"; exit 1; }

lint:
	@mkdir -p $(BIN)
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@test -z "$$($(OPA) fmt --list rego/palisade)" || { $(OPA) fmt --list rego/palisade; echo "opa fmt: files above need formatting"; exit 1; }
	$(OPA) check --strict rego/palisade

# demo: the live system on a local kube-apiserver (hack/demo.sh); it
# keeps running until `make demo-down`. demo-offline: the same policy
# evaluated without a cluster.
demo:
	bash hack/demo.sh

demo-down:
	bash hack/demo-down.sh

demo-offline: build
	$(BIN)/palisade validate policies-example
	$(BIN)/palisade test policies-example
	@echo
	@echo "== admission decisions for policies-example/samples (cluster prod) =="
	@$(BIN)/palisade eval policies-example --cluster prod -f policies-example/samples/ ; \
		code=$$?; echo; echo "palisade eval exit code: $$code (1 = some object denied)"; test $$code -le 1

bench:
	$(GO) test ./bundles -run '^$$' -bench Decision -benchmem -cpu 1
	$(GO) test ./reconciler -run '^$$' -bench ThousandFiles -benchtime 3x
	$(GO) test ./test/e2e -run '^$$' -bench PushToClient -benchtime 1x

# Admission load benchmark (bench/admission): Palisade, a no-op webhook
# and opa run --server at 200, 1000 and 2000 req/s, Palisade and the
# no-op taking turns for 3 rounds. Short by default (about a minute);
# the full run is `make bench-admission BENCH_DURATION=5s` (about 3).
BENCH_DURATION ?= 2s
bench-admission:
	$(GO) run ./bench/admission -duration $(BENCH_DURATION)

# Node runtime sensor benchmark (bench/sensor): spawn and open loops in a
# runc container with no sensor, the sensor, and the sensor with 100 rules;
# ring buffer events/s and drops; native matcher vs Rego per event. Needs
# root, runc and busybox-static (hack/install-runtime-deps.sh). About a
# minute; flags through SENSOR_BENCH_FLAGS (e.g. -rounds 9).
SENSOR_BENCH_FLAGS ?=
bench-sensor:
	$(GO) run ./bench/sensor $(SENSOR_BENCH_FLAGS)

# kube-apiserver, kubectl and etcd for test/cluster and hack/cluster-up.sh,
# built from the Go module proxy into $HOME/.cache/palisade (about 8
# minutes the first time, nothing when cached).
.PHONY: cluster-bins
cluster-bins:
	bash hack/build-k8s.sh

# helm for deploy/'s tests and `make manifests`, built from the Go module
# proxy into $HOME/.cache/palisade (about 2 minutes the first time,
# nothing when cached).
.PHONY: helm-bin manifests
helm-bin:
	bash hack/build-helm.sh

# cosign for imageverify's interoperability test, built from the Go module
# proxy into the cache (about 8 minutes cold, once per version).
.PHONY: cosign-bin
cosign-bin:
	bash hack/build-cosign.sh

# Gitea for learning's pull-request tests (test/gitea), built from the Go
# module proxy with cgo (SQLite) into the cache (about 5 minutes cold,
# once per version).
.PHONY: gitea-bin
gitea-bin:
	bash hack/build-gitea.sh

# Debian 12's kernel and busybox-static for test/vm's QEMU guests, fetched
# with apt-get download into the cache (seconds; nothing when cached).
.PHONY: vm-image
vm-image:
	bash hack/build-vm.sh

# deploy/manifests/palisade.yaml: the Helm chart rendered with its default
# values (deploy/render-manifests.sh). Part of `make generate`, so `make
# verify` fails when the committed file is stale.
manifests: helm-bin
	bash deploy/render-manifests.sh > deploy/manifests/palisade.yaml.tmp
	mv deploy/manifests/palisade.yaml.tmp deploy/manifests/palisade.yaml

clean:
	rm -rf $(BIN)
