# PGXS part of the S5 layer: BLAKE3 (Debian's official C sources), src/core/s5, and the s5vector-node program.
# Included by the top-level Makefile before PGXS; keep `all` the default goal.
.DEFAULT_GOAL := all

S5_BLAKE3_DIR := $(lastword $(sort $(wildcard /usr/share/cargo/registry/blake3-*/c)))
ifeq ($(S5_BLAKE3_DIR),)
$(error BLAKE3 C sources not found: install librust-blake3-dev)
endif

S5_CORE_SRCS = $(sort $(wildcard src/core/s5/*.cpp))
S5_CORE_OBJS = $(S5_CORE_SRCS:.cpp=.o)
S5_BLAKE3_NAMES = blake3 blake3_dispatch blake3_portable blake3_sse2 blake3_sse41 blake3_avx2 blake3_avx512
S5_BLAKE3_OBJS = $(patsubst %,src/core/s5/blake3/%.o,$(S5_BLAKE3_NAMES))
S5_OBJS = $(S5_CORE_OBJS) $(S5_BLAKE3_OBJS)

SHLIB_LINK += -lcurl -lcbor -lsodium

# Core objects: hidden visibility, BLAKE3 header; PG_CXXFLAGS is frozen by PGXS, so per-target flags.
$(S5_CORE_OBJS): CXXFLAGS += -fvisibility=hidden -I$(S5_BLAKE3_DIR)

# One object per BLAKE3 source, each with its instruction-set flags (dispatch happens at run time).
S5_BLAKE3_ISA_blake3_sse2 = -msse2
S5_BLAKE3_ISA_blake3_sse41 = -msse4.1
S5_BLAKE3_ISA_blake3_avx2 = -mavx2
S5_BLAKE3_ISA_blake3_avx512 = -mavx512f -mavx512vl
src/core/s5/blake3/%.o: $(S5_BLAKE3_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_SL) -w -fvisibility=hidden $(S5_BLAKE3_ISA_$*) -c -o $@ $<

# The node: installed into PostgreSQL's bindir beside the extension (PGXS installs SCRIPTS_built there).
S5_NODE_SRCS = $(sort $(wildcard tools/s5vector-node/*.cpp))
S5_NODE_HDRS = $(wildcard tools/s5vector-node/*.h)
S5_NODE_CORE_SRCS = src/core/s5/blake3_hash.cpp src/core/s5/multibase.cpp src/core/s5/cid.cpp
S5_HTTPLIB_CFLAGS := $(shell pkg-config --cflags cpp-httplib 2>/dev/null)
S5_HTTPLIB_LIBS := $(shell pkg-config --libs cpp-httplib 2>/dev/null || echo -lcpp-httplib)
SCRIPTS_built += s5vector-node
EXTRA_CLEAN += s5vector-node src/core/s5/blake3

s5vector-node: $(S5_NODE_SRCS) $(S5_NODE_HDRS) $(S5_NODE_CORE_SRCS) $(S5_BLAKE3_OBJS) $(wildcard src/core/s5/*.h)
	$(CXX) -std=c++20 -O2 -pthread -Wall -Wextra -Isrc -Isrc/core -I$(S5_BLAKE3_DIR) $(S5_HTTPLIB_CFLAGS) \
		-o $@ $(S5_NODE_SRCS) $(S5_NODE_CORE_SRCS) $(S5_BLAKE3_OBJS) $(S5_HTTPLIB_LIBS) -pthread
