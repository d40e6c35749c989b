# meshfs — run `make help` for the targets.
GO        ?= go
BIN       := bin/meshfs
PKGS      := ./...
FUZZTIME  ?= 30s
# The plain-folder mode must keep building there; make test checks it.
CROSS_OS  := darwin windows
# make install puts files where Debian's man-db, bash-completion, zsh and
# fish look for them; DESTDIR stages the tree for a package.
PREFIX    ?= /usr/local
MAN1      := share/man/man1/meshfs.1
BASH_COMP := share/bash-completion/completions/meshfs
# Debian's zsh searches vendor-completions under /usr only; under
# /usr/local it searches site-functions.
ZSH_COMP  := share/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)/_meshfs
FISH_COMP := share/fish/vendor_completions.d/meshfs.fish
INSTALLED := bin/meshfs $(MAN1) $(BASH_COMP) $(ZSH_COMP) $(FISH_COMP)

.PHONY: help build man install uninstall installed-list install-check test unit race integration lint fmt tidy-check check demo bench fuzz soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/meshfs
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/meshfs # auto: stamp the commit when built from a git checkout

man: build ## write the man page to bin/meshfs.1 (read it with man -l bin/meshfs.1)
	$(BIN) man > bin/meshfs.1

# Only when there is no binary yet: 'make build' then 'sudo make install'
# must not need Go on root's PATH.
$(BIN):
	$(MAKE) build

install: $(BIN) ## install the binary, man page and shell completions under $(DESTDIR)$(PREFIX)
	install -d $(addprefix $(DESTDIR)$(PREFIX)/,$(sort $(dir $(INSTALLED))))
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/meshfs
	$(BIN) man > $(DESTDIR)$(PREFIX)/$(MAN1)
	$(BIN) completion bash > $(DESTDIR)$(PREFIX)/$(BASH_COMP)
	$(BIN) completion zsh > $(DESTDIR)$(PREFIX)/$(ZSH_COMP)
	$(BIN) completion fish > $(DESTDIR)$(PREFIX)/$(FISH_COMP)
	chmod 644 $(addprefix $(DESTDIR)$(PREFIX)/,$(MAN1) $(BASH_COMP) $(ZSH_COMP) $(FISH_COMP))

uninstall: ## remove exactly the files install puts under $(DESTDIR)$(PREFIX)
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))

# installed-list prints INSTALLED for the PREFIX given, for install-check.
installed-list:
	@echo $(INSTALLED)

install-check: build ## install into a temporary DESTDIR for each PREFIX, check each file, uninstall, check only those went
	@for p in /usr /usr/local; do \
		d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
		$(MAKE) -s install DESTDIR="$$d" PREFIX=$$p && \
		for f in $$($(MAKE) -s --no-print-directory installed-list PREFIX=$$p); do \
			test -s "$$d$$p/$$f" || { echo "install-check: no $$d$$p/$$f" >&2; exit 1; }; \
		done && \
		"$$d$$p/bin/meshfs" --version >/dev/null && bash -n "$$d$$p/$(BASH_COMP)" && \
		touch "$$d$$p/share/man/man1/other.1" && \
		$(MAKE) -s uninstall DESTDIR="$$d" PREFIX=$$p && \
		left=$$(cd "$$d" && find . -type f) && \
		if [ "$$left" != ".$$p/share/man/man1/other.1" ]; then \
			echo "install-check: PREFIX=$$p: after uninstall, files are: $$left (want only other.1)" >&2; exit 1; \
		fi && \
		rm -rf "$$d" || exit 1; \
	done
	@echo "install-check: make install and uninstall under a DESTDIR, PREFIX /usr and /usr/local: ok"

test: build install-check ## the whole suite: vet, staticcheck, macOS and Windows builds, unit, fuzz corpora, FUSE, CLI scripts and multi-process integration, with -race
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@for os in $(CROSS_OS); do \
		echo "GOOS=$$os: build, vet, staticcheck and link the test binaries"; \
		GOOS=$$os $(GO) build $(PKGS) && GOOS=$$os $(GO) vet $(PKGS) && \
		GOOS=$$os $$($(GO) tool -n staticcheck) $(PKGS) && \
		GOOS=$$os $(GO) test -c -o bin/test-$$os/ $(PKGS) >/dev/null && rm -rf bin/test-$$os || exit 1; \
	done
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	GOMAXPROCS=1 $(GO) test -count=1 -timeout 10m ./fs/

unit: ## fast unit tests only (skips the long multi-process cases)
	$(GO) test -short -count=1 $(PKGS)

race: ## unit tests under the race detector
	$(GO) test -race -short -count=1 $(PKGS)

integration: build ## multi-process tests with real mounts, one package at a time
	$(GO) test -race -count=1 -timeout 15m -p 1 ./integration/ ./cmd/...

lint: ## go vet and staticcheck
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fmt: ## list files gofmt would change
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "$$out"; exit 1; fi

tidy-check: ## go.mod and go.sum are tidy
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

check: fmt tidy-check lint test ## everything CI could ask for

demo: build ## a three-node mesh on 127.0.0.1: cp, echo, cat, then tear down (root)
	bash integration/demo.sh $(BIN)

bench: build ## throughput, chat latency and memory as one table (MESHFS_BENCH_MB=1024), idle CPU of 100 plain-folder members over 60 s (MESHFS_IDLE_MEMBERS, MESHFS_IDLE_SECONDS), a 200 MiB file to four members over a 100 Mbit/s uplink and a 100 MiB file from two holders (root), a 10 GiB file between two engines (MESHFS_BENCH_BIG_GB), the partial mesh of 1000 in-process members over an in-memory transport (MESHFS_SIM), then the hot-path Go benchmarks
	$(GO) test -c -o bin/integration.test ./integration/
	@# Every step runs; a missed target fails the target at the end.
	@fail=0; \
	(cd integration && MESHFS_BENCH=1 ../bin/integration.test -test.run '^TestBench$$' -test.timeout 30m) || fail=1; \
	(cd integration && MESHFS_BENCH=1 ../bin/integration.test -test.run '^TestChatBench$$' -test.timeout 30m) || fail=1; \
	(cd integration && MESHFS_BENCH=1 ../bin/integration.test -test.run '^TestIdleBench$$' -test.timeout 30m) || fail=1; \
	(cd integration && MESHFS_BENCH=1 ../bin/integration.test -test.run '^TestFanOutBench$$' -test.timeout 30m) || fail=1; \
	(cd integration && MESHFS_BENCH=1 ../bin/integration.test -test.run '^TestFanOutMemoryBench$$' -test.timeout 30m) || fail=1; \
	(cd integration && MESHFS_BENCH=1 ../bin/integration.test -test.run '^TestSwarmBench$$' -test.timeout 30m) || fail=1; \
	MESHFS_SCALE=40 $(GO) test -count=1 -v -run '^TestScale$$' ./mesh/ | grep '^scale:' || fail=1; \
	MESHFS_SIM=$${MESHFS_SIM:-1000} $(GO) test -count=1 -v -timeout 30m -run '^TestOverlaySimulation$$' ./mesh/ | grep '^sim:' || fail=1; \
	MESHFS_BENCH=1 $(GO) test -count=1 -v -timeout 30m -run '^TestBigFileBench$$' ./sync/ | grep '^bigfile:' || fail=1; \
	$(GO) test -run '^$$' -bench . -benchmem ./mesh/ ./sync/ || fail=1; \
	exit $$fail

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in ./mesh/ ./sync/; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

SOAK_NODES ?= 50

soak: ## an in-process mesh of SOAK_NODES nodes on 127.0.0.1: time to full mesh, heap per peer
	MESHFS_SOAK=1 MESHFS_SOAK_NODES=$(SOAK_NODES) $(GO) test -count=1 -run '^TestSoakFullMesh$$' -v -timeout 30m ./mesh/

clean: ## remove build output
	rm -rf bin
