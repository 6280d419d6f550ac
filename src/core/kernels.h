// Internal: the per-instruction-set kernel tables. Each is defined in its own translation unit
// (kernels_<isa>.cpp) compiled with that instruction set's flags; only distance.cpp, which checks the
// CPU first, may call them. Calling one on a CPU without the instruction set is undefined (SIGILL).
#pragma once

#include "distance.h"

namespace s5v {

const KernelSet &Sse2Kernels() noexcept;   // kernels_sse2.cpp: xsimd::sse2
const KernelSet &Avx2Kernels() noexcept;   // kernels_avx2.cpp: xsimd::fma3<xsimd::avx2>
const KernelSet &Avx512Kernels() noexcept; // kernels_avx512.cpp: xsimd::avx512f, masked tails

} // namespace s5v
