// SSE2 kernels (4 floats per batch). Built without extra flags: SSE2 is the x86-64 baseline.
#include "kernels.h"
#include "kernels_simd.h"

namespace s5v {
namespace {

using Sse2 = SimdKernels<xsimd::sse2>;

constexpr KernelSet kSse2Kernels{"sse2", Sse2::L2Squared, Sse2::InnerProduct, Sse2::L1, Sse2::CosineParts};

} // namespace

const KernelSet &Sse2Kernels() noexcept {
	return kSse2Kernels;
}

} // namespace s5v
