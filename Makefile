# SPDX-License-Identifier: GPL-2.0-only
# weft: one non-recursive build. `make help` lists the targets.
# All output goes under $(O) (default build/), mirroring the source tree.

O        ?= build
ARCH     ?= x86
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PKG_CONFIG ?= pkg-config
# Debian's interpreter for the Python tools and checks (docs/dependencies.md);
# not the first python3 in PATH, which may be a version manager's slow shim.
PYTHON   ?= /usr/bin/python3
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s%s\n' "$(1)" "$(2)" "$(if $(filter TEST CHECK,$(1)),  [$$(date +%T)])";
endif

.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := all

# ---------------------------------------------------------------- flags
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -g -D_GNU_SOURCE -MMD -MP \
	-DWEFT_VERSION='"$(VERSION)"' -Ilib -Ibpf -I$(O)/bpf -Iagent -Icni -Imeshctl -Itests/helpers -Itests/consul
CFLAGS   ?= -O2
# The build step of `make test` runs a job per online CPU; the tests run one
# at a time (they share namespaces, cgroups and ports).
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
SANFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

# libcurl is not linked: agent/curl_lazy.c loads it when an HTTP client
# first needs it (its headers come with TEST_PKGS' flags).
AGENT_PKGS   := libbpf json-c yaml-0.1 libmnl libnftnl libseccomp ldns libssl libcrypto
CNI_PKGS     := json-c
MESHCTL_PKGS := json-c libcurl libbpf
TEST_PKGS    := criterion libbpf json-c yaml-0.1 libcurl libmnl libnftnl libseccomp ldns libssl libcrypto

pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkg_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

AGENT_LIBS   := $(call pkg_libs,$(AGENT_PKGS)) -lhttp_parser -lzookeeper_mt -lpthread
CNI_LIBS     := $(call pkg_libs,$(CNI_PKGS))
# weft-cni and weft-cni-install are copied onto / run against hosts that may
# lack json-c: link them statically (Debian's libjson-c.a and libc.a).
STATIC_CNI_LIBS := -static $(shell $(PKG_CONFIG) --static --libs json-c 2>/dev/null)
MESHCTL_LIBS := $(call pkg_libs,$(MESHCTL_PKGS))
TEST_LIBS    := $(call pkg_libs,$(TEST_PKGS)) -lhttp_parser -lzookeeper_mt -lpthread
ALL_CFLAGS   := $(CFLAGS_BASE) $(call pkg_cflags,$(TEST_PKGS))

BPF_CFLAGS := -g -O2 --target=bpf -D__TARGET_ARCH_$(ARCH) -Ibpf -Ibpf/vmlinux/$(ARCH) \
	-Wall -Werror -MMD -MP

# ---------------------------------------------------------------- sources
LIB_SRCS     := $(wildcard lib/*.c)
AGENT_SRCS   := $(filter-out agent/main.c,$(wildcard agent/*.c agent/*/*.c))
CNI_SRCS     := $(filter-out cni/main.c,$(wildcard cni/*.c))
MESHCTL_SRCS := $(filter-out meshctl/main.c,$(wildcard meshctl/*.c))
BPF_SRCS     := $(wildcard bpf/*.bpf.c)
UNIT_SRCS    := $(wildcard tests/unit/*.c)
TBPF_SRCS    := $(wildcard tests/bpf/*.c)
INTEG_SRCS   := $(wildcard tests/integration/*.c)
NFT_SRCS     := $(wildcard tests/nft/*.c)
PROXY_TEST_SRCS := $(wildcard tests/proxy/*.c)
HELPER_SRCS  := $(wildcard tests/helpers/*.c)
# The fake Kubernetes API server's C side (unit, integration, bench-registry).
K8S_FAKE_SRCS := $(wildcard tests/k8s-apiserver/*.c)
# The fake Consul's C side (unit tests of the Consul backend).
CONSUL_FAKE_SRCS := $(wildcard tests/consul/*.c)
# What the fake API server and the real etcd/ZooKeeper servers build on.
PROC_HELPERS := tests/helpers/proc.c tests/helpers/curl_body.c
# The registry unit tests run real etcd and ZooKeeper servers (no root needed).
UNIT_HELPERS := tests/helpers/etcd_server.c tests/helpers/zk_server.c tests/helpers/promtext.c \
	$(PROC_HELPERS)

BPF_OBJS := $(patsubst %.bpf.c,$(O)/%.bpf.o,$(BPF_SRCS))
SKELS    := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.skel.h,$(BPF_SRCS))
# Keep BPF objects: they are intermediates of the skeletons, but rebuilding them
# on every skeleton build wastes a clang run.
.SECONDARY: $(BPF_OBJS)

obj  = $(patsubst %.c,$(O)/obj/%.o,$(1))
sobj = $(patsubst %.c,$(O)/san/obj/%.o,$(1))

BINS := $(O)/weft-agent $(O)/weft-cni $(O)/meshctl $(O)/weft-cni-install
SAN_BINS := $(O)/san/weft-agent $(O)/san/weft-cni $(O)/san/meshctl
UNIT_BIN  := $(O)/tests/weft-unit
TBPF_BIN  := $(O)/tests/weft-test-bpf
INTEG_BIN := $(O)/tests/weft-integration
NFT_BIN   := $(O)/tests/weft-test-nft
PROXY_TEST_BIN := $(O)/tests/weft-test-proxy
HTTP_DIFF_BIN := $(O)/tests/weft-http-frame

# ---------------------------------------------------------------- targets
.PHONY: all deps test test-unit test-bpf test-nft test-proxy test-integration test-hold soak test-containerd test-upgrade-long check-layers \
	manifests check-manifests \
	image check-image demo bench bench-registry bench-publish-cpu bench-mtls-handshake readme install clean \
	vmlinux format help check-root fuzz fuzz-build test-fuzz fuzz-short test-http-diff

all: $(BINS) ## build the agent, the CNI plugin, its installer and meshctl

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

deps: ## install the Debian packages the build and tests need (only missing ones)
	$(Q)scripts/deps.sh

# ---- BPF pipeline: object -> skeleton. Nothing is loaded at build time.
$(O)/bpf/%.bpf.o: bpf/%.bpf.c
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The skeleton embeds the object libbpf opens at run time. bpftool's linker
# (libbpf's, as libbpf-bootstrap uses it) writes it first: code, maps, BTF
# and BTF.ext, without the DWARF that nothing at run time reads (700 of
# redirect.bpf.o's 790 KiB; each page of it libbpf's parse touches is the
# agent's resident memory).
$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen object $(O)/bpf/$*.linked.o $<
	$(Q)$(BPFTOOL) gen skeleton $(O)/bpf/$*.linked.o name mesh_$* > $@

# Objects of agent/datapath include the skeletons; -MMD cannot see generated
# headers on a clean build, so name them explicitly.
$(call obj,$(filter agent/datapath/%,$(AGENT_SRCS))) $(call sobj,$(filter agent/datapath/%,$(AGENT_SRCS))): $(SKELS)
$(call obj,$(TBPF_SRCS)) $(call sobj,$(TBPF_SRCS)): $(SKELS)

# ---- userspace
$(O)/obj/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(CFLAGS) -c $< -o $@

$(O)/san/obj/%.o: %.c
	$(call msg,CC-SAN,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(SANFLAGS) -c $< -o $@

$(O)/weft-agent: $(call obj,agent/main.c $(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(AGENT_LIBS) -o $@
$(O)/san/weft-agent: $(call sobj,agent/main.c $(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SANFLAGS) $^ $(AGENT_LIBS) -o $@

$(O)/weft-cni: $(call obj,cni/main.c $(CNI_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(STATIC_CNI_LIBS) -o $@
$(O)/san/weft-cni: $(call sobj,cni/main.c $(CNI_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SANFLAGS) $^ $(CNI_LIBS) -o $@

# The CNI config installer (agent/cni_install.c) as its own static binary.
$(O)/weft-cni-install: $(call obj,cni-install/main.c agent/cni_install.c $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(STATIC_CNI_LIBS) -o $@

$(O)/meshctl: $(call obj,meshctl/main.c $(MESHCTL_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(MESHCTL_LIBS) -o $@
$(O)/san/meshctl: $(call sobj,meshctl/main.c $(MESHCTL_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SANFLAGS) $^ $(MESHCTL_LIBS) -o $@

# ---- tests: unit tests link the sanitized modules (no main.o) into one binary.
$(UNIT_BIN): $(call sobj,$(UNIT_SRCS) $(K8S_FAKE_SRCS) $(CONSUL_FAKE_SRCS) $(UNIT_HELPERS) $(AGENT_SRCS) $(CNI_SRCS) $(MESHCTL_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(SANFLAGS) $^ $(TEST_LIBS) -o $@
$(TBPF_BIN): $(call sobj,$(TBPF_SRCS) $(HELPER_SRCS) $(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(SANFLAGS) $^ $(TEST_LIBS) -o $@
# cni/sysctl.c: the plugin's half of the return path, tested beside the agent's.
$(NFT_BIN): $(call sobj,$(NFT_SRCS) $(HELPER_SRCS) $(AGENT_SRCS) cni/sysctl.c $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(SANFLAGS) $^ $(TEST_LIBS) -o $@
$(PROXY_TEST_BIN): $(call sobj,$(PROXY_TEST_SRCS) $(HELPER_SRCS) $(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(SANFLAGS) $^ $(TEST_LIBS) -o $@
# The suites read capture back from the kernel the way the agent does.
INTEG_AGENT_SRCS := agent/datapath/nft.c agent/datapath/nft_nl.c agent/datapath/nft_read.c \
	agent/datapath/retpath.c agent/netns.c agent/cgroup.c
$(INTEG_BIN): $(call sobj,$(INTEG_SRCS) $(HELPER_SRCS) $(K8S_FAKE_SRCS) $(CONSUL_FAKE_SRCS) \
	$(INTEG_AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(SANFLAGS) $^ $(TEST_LIBS) -o $@

# Criterion's own summary line ("Synthesis: Tested: N | Passing: ...") is the result.
# Tests never skip: a missing privilege or kernel feature fails the test with
# the reason (tests/helpers/require.h).
CRITERION_FLAGS ?= --verbose=0
test: deps ## install deps, build, run every test tier
	$(Q)$(MAKE) --no-print-directory -j$(BUILD_JOBS) all $(SAN_BINS) $(UNIT_BIN) $(TBPF_BIN) $(NFT_BIN) \
		$(PROXY_TEST_BIN) $(INTEG_BIN) $(FUZZ_BINS) $(HTTP_DIFF_BIN)
	$(Q)$(MAKE) --no-print-directory check-layers check-manifests check-image test-unit test-fuzz \
		fuzz-short test-http-diff \
		test-bpf test-nft test-proxy test-integration test-containerd

# ---- fuzzing: libFuzzer targets, one per parser fed from outside the agent
# (tests/fuzz/fuzz_<target>.c, seeds in tests/fuzz/corpus/<target>/, an
# optional dictionary tests/fuzz/<target>.dict). They need clang's libFuzzer,
# so they have their own object set under $(O)/fuzz/; the main build stays gcc.
# The modules go into one archive: a target that #includes a .c file to reach
# its static parser defines that file's symbols itself, and the linker then
# leaves the archive's copy out.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS    := $(patsubst %,$(O)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_LIB     := $(O)/fuzz/libweft.a
fobj = $(patsubst %.c,$(O)/fuzz/obj/%.o,$(1))
.SECONDARY: $(call fobj,$(FUZZ_SRCS))

$(O)/fuzz/obj/%.o: %.c
	$(call msg,CC-FUZZ,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@
$(call fobj,$(filter agent/datapath/%,$(AGENT_SRCS))): $(SKELS)

$(FUZZ_LIB): $(call fobj,$(AGENT_SRCS) $(CNI_SRCS) $(LIB_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/fuzz/fuzz_%: $(O)/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(call msg,LINK,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ $(AGENT_LIBS) -o $@

fuzz-build: $(FUZZ_BINS) ## build the libFuzzer targets ($(O)/fuzz/fuzz_*)

# Each target over its checked-in corpus once: the regression run of `make test`.
test-fuzz: $(FUZZ_BINS) ## run every fuzz target over its corpus (no mutation, seconds)
	$(call msg,TEST,fuzz)
	$(Q)tests/fuzz/run.sh regress $(O) $(FUZZ_NAMES)

# ---- the differential framing test: proxy/http.c (included by the harness,
# as the fuzz target does, linked against the sanitized modules' archive)
# against h11, Debian's python3-h11, over the HTTP fuzz corpus. Debian's own
# python3 runs it: the package installs for that interpreter.
HTTP_DIFF_LIB := $(O)/san/libweft.a
$(HTTP_DIFF_LIB): $(call sobj,$(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(HTTP_DIFF_BIN): $(call sobj,tests/http_diff/weft_frame.c) $(HTTP_DIFF_LIB)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(SANFLAGS) $^ $(TEST_LIBS) -o $@

test-http-diff: $(HTTP_DIFF_BIN) ## weft's HTTP framing against h11 over the fuzz corpus (seconds)
	$(call msg,TEST,http-diff)
	$(Q)$(PYTHON) tests/http_diff/run.py $(HTTP_DIFF_BIN) tests/fuzz/corpus/proxy_http

fuzz: $(FUZZ_BINS) ## fuzz each target for FUZZ_SECONDS (default 60); new inputs in $(O)/fuzz/corpus/
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh run $(O) $(FUZZ_NAMES)

# The short run of every target that `make test` (and so CI) makes: a few
# seconds of mutation each, from the checked-in seeds and what earlier runs
# of this build tree found; any crash, leak or sanitizer report fails it.
FUZZ_SHORT_SECONDS ?= 6
fuzz-short: $(FUZZ_BINS) ## fuzz each target for FUZZ_SHORT_SECONDS (default 6; part of make test)
	$(call msg,TEST,fuzz (short run))
	$(Q)FUZZ_SECONDS=$(FUZZ_SHORT_SECONDS) FUZZ_JOBS=$(BUILD_JOBS) tests/fuzz/run.sh run $(O) $(FUZZ_NAMES)

# ---- what users apply: one file from the parts, the image the recipe builds.
IMAGE ?= ghcr.io/weft-mesh/weft:$(VERSION)
MANIFEST_PARTS := $(sort $(wildcard manifests/parts/*.yaml))
UNINSTALL_PARTS := $(sort $(wildcard manifests/parts/uninstall/*.yaml))

manifests: ## regenerate manifests/weft.yaml and weft-uninstall.yaml from manifests/parts/
	$(Q)scripts/gen-manifests.sh $(IMAGE) $(MANIFEST_PARTS) > manifests/weft.yaml
	$(Q)scripts/gen-manifests.sh $(IMAGE) $(UNINSTALL_PARTS) > manifests/weft-uninstall.yaml

check-manifests: ## the shipped manifests are up to date and pass the API server's schema and rules
	$(call msg,CHECK,manifests)
	@mkdir -p $(O)/manifests
	$(Q)scripts/gen-manifests.sh $(IMAGE) $(MANIFEST_PARTS) > $(O)/manifests/weft.yaml
	$(Q)scripts/gen-manifests.sh $(IMAGE) $(UNINSTALL_PARTS) > $(O)/manifests/weft-uninstall.yaml
	$(Q)for f in weft.yaml weft-uninstall.yaml; do diff -u manifests/$$f $(O)/manifests/$$f || \
		{ echo "manifests/$$f is out of date: run 'make manifests'" >&2; exit 1; }; done
	$(Q)$(PYTHON) tests/manifests/test_manifests.py

IMAGE_TAR := $(O)/weft-image.tar
image: $(BINS) ## build the container image as an OCI layout tar, $(O)/weft-image.tar (nothing downloaded)
	$(Q)scripts/build-image.sh $(O) $(IMAGE) $(IMAGE_TAR)

check-image: image ## the image layout is valid: digests, config, entrypoint, static weft-cni
	$(call msg,CHECK,image)
	$(Q)$(PYTHON) tests/manifests/test_image.py $(IMAGE_TAR) $(IMAGE)

check-layers: all ## the module rule of docs/architecture.md: includes along the flow, no call circles
	$(call msg,CHECK,layers)
	$(Q)$(PYTHON) scripts/check-layers.py --objects $(O)/obj

# Most unit tests wait on a server (etcd, ZooKeeper, the fake API and
# Consul servers) rather than compute, so more of them than CPUs run at once.
UNIT_JOBS ?= 4
test-unit: $(UNIT_BIN) $(O)/san/weft-cni $(O)/weft-cni-install ## unit tests (no root)
	$(call msg,TEST,unit)
	$(Q)WEFT_BUILD=$(abspath $(O)) scripts/run-tests.sh $(UNIT_BIN) $(CRITERION_FLAGS) --jobs $(UNIT_JOBS)

test-bpf: $(TBPF_BIN) check-root ## load and exercise every BPF program (root)
	$(call msg,TEST,bpf)
	$(Q)scripts/run-tests.sh $(TBPF_BIN) $(CRITERION_FLAGS) --jobs 1

test-nft: $(NFT_BIN) check-root ## the nft capture mode in test namespaces, read back over netlink (root)
	$(call msg,TEST,nft)
	$(Q)scripts/run-tests.sh $(NFT_BIN) $(CRITERION_FLAGS) --jobs 1

test-proxy: $(PROXY_TEST_BIN) check-root ## the proxy's inbound side in-process, in test namespaces (root)
	$(call msg,TEST,proxy)
	$(Q)scripts/run-tests.sh $(PROXY_TEST_BIN) $(CRITERION_FLAGS) --jobs 1

# The suites of capture, the relay, resilience, fairness, strict HTTP, inbound
# capture, enrolment, the ways around capture (bypass), the pods' lifecycle,
# upgrades (hand-over, drain, kill -9), fail-open and mutual TLS (one node, two nodes) run once per capture mode (the same tests: tests/helpers/env.h tenv_mode());
# the rest (registries, meshctl, modes) do not depend on the mode, or switch
# modes themselves, and run once.
MODE_SUITES := @(capture|relay|resilience|fairness|http_strict|inbound|lifecycle|enrol|bypass|sandbox|upgrade|names|mtls_transport|mtls_nodes|failopen|dns|publish)/*
# Hand-overs and kill -9 restarts per upgrade test: a few in `make test`, the
# issue's 20 in `make test-upgrade-long` (docs/testing.md).
UPGRADE_ROUNDS ?= 4
UPGRADE_ROUNDS_LONG ?= 20
# The two modes' runs go side by side (scripts/run-modes.sh says why that is
# safe; docs/testing.md, "Where the time goes"); INTEG_PARALLEL=0 runs them
# one after the other.
INTEG_PARALLEL ?= 1
# The sockmap fast path's suite (eBPF mode only: nft mode refuses the
# option) runs after them, alone, as `make test-fastpath` does; it was out
# of make test while its 16 MiB stream was cut short in some runs, until the
# verdict dropped a FIN's empty skb (docs/datapath.md, the fast path's
# section).
test-integration: $(INTEG_BIN) $(SAN_BINS) check-root ## namespaces, real BPF and nft, real clients (root)
	$(call msg,TEST,integration (ebpf mode))
	$(Q)WEFT_UPGRADE_ROUNDS=$(UPGRADE_ROUNDS) WEFT_BUILD=$(abspath $(O)) \
		scripts/run-modes.sh $(INTEG_PARALLEL) $(INTEG_BIN) '!(hold|soak|fastpath)/*' '$(MODE_SUITES)' \
		$(CRITERION_FLAGS)
	$(Q)$(MAKE) --no-print-directory test-fastpath

test-fastpath: $(INTEG_BIN) $(SAN_BINS) check-root ## the opt-in sockmap fast path's suite alone, eBPF mode (part of test-integration) (root)
	$(call msg,TEST,integration (sockmap fast path))
	$(Q)WEFT_TEST_MODE=ebpf WEFT_BUILD=$(abspath $(O)) \
		scripts/run-tests.sh $(INTEG_BIN) $(CRITERION_FLAGS) --jobs 1 --filter 'fastpath/*'

# The upgrade suite with the full 20 hand-overs and 20 kill -9 restarts, in
# both capture modes (about 5 min), with 1,000 idle connections passed at each
# hand-over besides the streams (docs/lifecycle.md).
UPGRADE_IDLE_CONNS_LONG ?= 1000
test-upgrade-long: $(INTEG_BIN) $(SAN_BINS) check-root ## 20 hand-overs and 20 kill -9 under load, both modes (root)
	$(Q)for m in ebpf nft; do \
		echo "  TEST     upgrade x$(UPGRADE_ROUNDS_LONG) ($$m mode)"; \
		WEFT_TEST_MODE=$$m WEFT_UPGRADE_ROUNDS=$(UPGRADE_ROUNDS_LONG) \
		WEFT_UPGRADE_IDLE_CONNS=$(UPGRADE_IDLE_CONNS_LONG) WEFT_BUILD=$(abspath $(O)) \
		scripts/run-tests.sh $(INTEG_BIN) $(CRITERION_FLAGS) --jobs 1 --filter 'upgrade/*' \
		|| exit 1; \
	done

# Idle connections held by the thousand (tests/integration/test_hold.c, about
# a minute): descriptors and resident memory per connection, printed. The
# optimised agent, so the memory figures are not the sanitizer's.
test-hold: $(INTEG_BIN) $(SAN_BINS) $(O)/weft-agent check-root ## 4,000 idle opaque and 10,000 idle HTTP connections through the agent: fds and memory each (root)
	$(call msg,TEST,hold)
	$(Q)WEFT_TEST_MODE=ebpf WEFT_BUILD=$(abspath $(O)) WEFT_AGENT=$(abspath $(O))/weft-agent \
		scripts/run-tests.sh $(INTEG_BIN) $(CRITERION_FLAGS) --jobs 1 --filter 'hold/*'

# The soak (tests/integration/test_soak.c, issue 13): the sanitizer build of
# the agent for SOAK_SECONDS under load, endpoint churn, etcd and ZooKeeper
# restarts and pods enrolled and removed; no leak, no unexpected client
# error, flat heap, memory and descriptors. Not part of `make test` (10 minutes).
# WEFT_TEST_MODE=nft runs it in nft mode.
SOAK_SECONDS ?= 600
soak: $(INTEG_BIN) $(SAN_BINS) check-root ## SOAK_SECONDS (600) of load, churn and registry restarts under ASan: 0 leaks, 0 errors, flat heap, RSS and fds (root)
	$(call msg,TEST,soak ($(SOAK_SECONDS) s, $(or $(WEFT_TEST_MODE),ebpf) mode))
	$(Q)WEFT_TEST_MODE=$(or $(WEFT_TEST_MODE),ebpf) WEFT_SOAK_SECONDS=$(SOAK_SECONDS) \
		WEFT_BUILD=$(abspath $(O)) \
		scripts/run-tests.sh $(INTEG_BIN) $(CRITERION_FLAGS) --jobs 1 --filter 'soak/*'

# The real container runtime: containerd, runc and the CNI plugins from Debian
# in their own namespaces, the real installer, agent and image (about 2 min).
test-containerd: $(BINS) $(O)/san/weft-agent image check-root ## containerd + ctr run --cni + weft, the image under containerd (root)
	$(call msg,TEST,containerd)
	$(Q)tests/containerd/run.sh $(O)

check-root:
	@if [ "$$(id -u)" != 0 ]; then echo "error: this target needs root (BPF, namespaces, cgroups)" >&2; exit 1; fi
	@scripts/sweep-test-leftovers.sh

demo: deps ## build, then show the mesh working in network namespaces (root)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)WEFT_BUILD=$(abspath $(O)) MODE=$(MODE) demo/demo.sh

bench: ## measure direct vs weft vs HAProxy in namespaces, write bench/results/ (root, ~45 min; BENCH_ONLY=mtls: the mutual TLS rows alone, ~14 min; BENCH_ONLY=dns: the DNS rows, ~6 min)
	$(Q)scripts/deps.sh bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)WEFT_BUILD=$(abspath $(O)) bench/run.sh

BENCH_REG_BIN := $(O)/bench/weft-bench-registry
$(BENCH_REG_BIN): $(call obj,bench/registry.c $(K8S_FAKE_SRCS) $(PROC_HELPERS) $(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ $(AGENT_LIBS) -o $@

bench-registry: $(BENCH_REG_BIN) ## the Kubernetes registry with 10,000 services / 100,000 endpoints: sync time, memory, propagation (no root)
	$(Q)bench/registry.sh $(BENCH_REG_BIN)

BENCH_PUB_BIN := $(O)/bench/weft-bench-publish-cpu
$(BENCH_PUB_BIN): $(call obj,bench/publish_cpu.c $(AGENT_SRCS) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ $(AGENT_LIBS) -o $@

bench-publish-cpu: $(BENCH_PUB_BIN) ## the loop's instructions for a 10,000-Service sync, change and removal, by callgrind (no root, ~1 min)
	$(Q)bench/publish_cpu.sh $(BENCH_PUB_BIN)

BENCH_TLS_BIN := $(O)/bench/weft-bench-mtls-handshake
$(BENCH_TLS_BIN): $(call obj,bench/mtls_handshake.c $(filter agent/identity/%,$(AGENT_SRCS)) $(LIB_SRCS))
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ $(AGENT_LIBS) -o $@

bench-mtls-handshake: $(BENCH_TLS_BIN) ## CPU per mTLS handshake pair and heap per idle SSL, in-process (no root, seconds)
	$(Q)d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /O=weft-bench/CN=ca \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
		-keyout "$$d/ca.key" -out "$$d/ca.pem" 2>/dev/null && \
	$(BENCH_TLS_BIN) "$$d/ca.pem" "$$d/ca.key" $(BENCH_TLS_PAIRS)

readme: all ## refresh the README's copy of weft-agent --help
	$(Q)WEFT_BUILD=$(O) scripts/update-readme-options.sh

install: all ## install binaries under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/cni
	install -m 0755 $(O)/weft-agent $(O)/meshctl $(O)/weft-cni-install $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(O)/weft-cni $(DESTDIR)$(PREFIX)/libexec/cni/weft-cni

vmlinux: ## regenerate the vendored vmlinux.h from the running kernel's BTF
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux/$(ARCH)/vmlinux.h

format: ## clang-format every C source in place
	clang-format -i $(wildcard bpf/*.c bpf/*.h bpf/lib/*.h lib/*.[ch] agent/*.[ch] agent/*/*.[ch] \
		cni/*.[ch] meshctl/*.[ch] tests/*/*.[ch])

clean: ## remove build output
	rm -rf $(O)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
