// AVX2 + FMA kernels (8 floats per batch). Built with -mavx2 -mfma (Makefile, CMakeLists.txt); only
// distance.cpp calls in, after checking the CPU. Everything else here has internal linkage.
#include "kernels.h"
#include "kernels_simd.h"

namespace s5v {
namespace {

using Avx2 = SimdKernels<xsimd::fma3<xsimd::avx2>>;

constexpr KernelSet kAvx2Kernels{"avx2", Avx2::L2Squared, Avx2::InnerProduct, Avx2::L1, Avx2::CosineParts};

} // namespace

const KernelSet &Avx2Kernels() noexcept {
	return kAvx2Kernels;
}

} // namespace s5v
