// AVX-512 kernels (16 floats per batch). Built with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2
// -mfma (Makefile, CMakeLists.txt); only distance.cpp calls in, after checking the CPU for all of them.
// Everything else here has internal linkage.
#include <immintrin.h>

#include "kernels.h"
#include "kernels_simd.h"

namespace s5v {
namespace {

// The last n % 16 elements in one masked load: lanes past the end read as zero and are never touched
// in memory (masked-off lanes do not fault), which adds nothing to any of the sums.
struct MaskedTail {
	static constexpr bool kMasked = true;
	[[gnu::always_inline]] static inline xsimd::batch<float, xsimd::avx512f> Load(const float *p,
	                                                                             std::size_t count) noexcept {
		const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u); // count in [1, 15]
		return _mm512_maskz_loadu_ps(mask, p);
	}
};

using Avx512 = SimdKernels<xsimd::avx512f, MaskedTail>;

constexpr KernelSet kAvx512Kernels{"avx512", Avx512::L2Squared, Avx512::InnerProduct, Avx512::L1,
                                   Avx512::CosineParts};

} // namespace

const KernelSet &Avx512Kernels() noexcept {
	return kAvx512Kernels;
}

} // namespace s5v
