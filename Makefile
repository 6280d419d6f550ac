# PGXS build of the extension: `make && make install` into the PostgreSQL that pg_config names.
EXTENSION = s5vector
EXTVERSION = 0.1.0
MODULE_big = s5vector

PG_CONFIG ?= pg_config

# Kernels compiled once per instruction set, each with its own flags (chosen at load time).
KERNEL_SRCS = src/core/kernels_sse2.cpp src/core/kernels_avx2.cpp src/core/kernels_avx512.cpp
CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
PG_SRCS = $(sort $(wildcard src/pg/*.cpp))
CORE_OBJS = $(CORE_SRCS:.cpp=.o)
PG_OBJS = $(PG_SRCS:.cpp=.o)

# mk/s5.mk adds the S5 layer (BLAKE3, CIDs, segments, client) and the s5vector-node program.
S5_OBJS =
-include mk/s5.mk

OBJS = $(PG_OBJS) $(CORE_OBJS) $(S5_OBJS)

SQL_PARTS = $(sort $(wildcard src/sql/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
PG_CXXFLAGS = -std=c++20 -Wno-register -Werror -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -fno-omit-frame-pointer
SHLIB_LINK += -lstdc++ -lm

# The bitcode step would compile C++ without our flags.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Per-object flags (PG_CXXFLAGS is frozen by PGXS). No -march=native: dispatch happens at run time.
src/core/kernels_avx2.o: CXXFLAGS += -mavx2 -mfma
src/core/kernels_avx512.o: CXXFLAGS += -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma
$(CORE_OBJS): CXXFLAGS += -fvisibility=hidden
# Core code is ordinary C++: PostgreSQL's -fwrapv etc. do not matter, but its warnings must stay clean.

$(DATA_built): $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

EXTRA_CLEAN += $(DATA_built)

# PGXS does not track header dependencies: rebuild on any header change.
$(PG_OBJS) $(CORE_OBJS): $(wildcard src/pg/*.h src/core/*.h)
