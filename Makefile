# Weir's developer commands. `make test` is the README's test command and what
# CI runs: the race detector on the packages where concurrency lives, plain
# `go test` on the rest (including cmd/weir's test of the README's commands).
# The tests run through internal/testsummary, which prints what `go test`
# prints and then lists every skipped test with its reason, so that a test
# skipped for want of an external client (kcat, kafka-python, ...) is seen.
GO ?= go
GOTEST = GO=$(GO) $(GO) run ./internal/testsummary
RACE_PKGS := ./broker/... ./runtime/... ./state/... ./internal/stateengine/...
OTHER_PKGS = $$($(GO) list ./... | grep -v -E '/(broker|runtime|state|internal/stateengine)(/|$$)')
FUZZTIME ?= 20s

.PHONY: test race unit memory test-faults test-browser lint fuzz bench

test: race unit memory

race:
	$(GOTEST) -race -count=1 -timeout 15m $(RACE_PKGS)

unit:
	$(GOTEST) -count=1 -timeout 15m $(OTHER_PKGS)

# The state memory-budget test cannot judge memory under the race
# detector's shadow memory, so it runs here without it.
memory:
	$(GOTEST) -count=1 -timeout 5m -run 'TestMemoryStaysWithinBudget' ./internal/stateengine

# The cluster's long fault tests: weir broker processes SIGKILLed,
# SIGSTOPped for 10 s, fenced after a 9 s session, a corrupt raft table
# refused and the node taken back with --rejoin, replicated partitions'
# leaders killed, a seeded schedule of kills and pauses, clients and the
# orders-per-minute application across leader kills, a transactional copy
# job's member killed (internal/proccluster). `make test` skips them; each
# logs its seed (WEIR_FAULT_SEED=N replays it) and the suite takes about
# six minutes, bounded here at 15.
test-faults:
	WEIR_FAULTS=1 $(GOTEST) -count=1 -timeout 15m -run '^TestFault' ./internal/proccluster

# The console's browser tests: Debian's chromium, headless, driven by
# chromedp, opens each page of `weir console` against in-process brokers
# and an application and checks what it shows (internal/console). They skip
# without chromium (fail with WEIR_REQUIRE_CLIENTS=1), save screenshots
# under WEIR_SCREENSHOTS (default $TMPDIR/weir-console-screenshots) and take
# about a minute, bounded here at 4.
test-browser:
	WEIR_BROWSER=1 $(GOTEST) -count=1 -timeout 4m -run '^TestBrowser' ./internal/console

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	staticcheck ./...

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
