// AVX-512 kernels (16 floats per batch). Built with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2
// -mfma (Makefile, CMakeLists.txt); only distance.cpp calls in, after checking the CPU for all of them.
// Everything else here has internal linkage.
#include <immintrin.h>

#include "kernels.h"
#include "kernels_simd.h"

namespace s5v {
namespace {

struct Avx512Ops {
	using Batch = xsimd::batch<float, xsimd::avx512f>;

	// The last n % 16 elements in one masked load: lanes past the end read as zero and are never
	// touched in memory (masked-off lanes do not fault), which adds nothing to any of the sums.
	static constexpr bool kMaskedTail = true;
	[[gnu::always_inline]] static inline Batch Load(const float *p, std::size_t count) noexcept {
		const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u); // count in [1, 15]
		return _mm512_maskz_loadu_ps(mask, p);
	}

	// Not xsimd::hadd: for avx512f it instantiates xsimd's avx2 types, which kernels_avx2.cpp also
	// instantiates (see the ODR note in kernels_simd.h). Not _mm512_reduce_add_ps either: GCC 12 warns
	// (-Wuninitialized, GCC bug 105593) on the _mm*_undefined_* inside it and inside the casts. The
	// zero-masked forms below avoid the undefined-register idiom and cost the same.
	[[gnu::always_inline]] static inline float Sum(const Batch &v) noexcept {
		__m512 x = v;
		x = _mm512_add_ps(x, _mm512_maskz_shuffle_f32x4(0xFFFF, x, x, _MM_SHUFFLE(1, 0, 3, 2))); // 256-bit halves
		x = _mm512_add_ps(x, _mm512_maskz_shuffle_f32x4(0xFFFF, x, x, _MM_SHUFFLE(2, 3, 0, 1))); // 128-bit lanes
		__m128 y = _mm512_maskz_extractf32x4_ps(0xF, x, 0);
		y = _mm_add_ps(y, _mm_movehl_ps(y, y));
		y = _mm_add_ss(y, _mm_shuffle_ps(y, y, 1));
		return _mm_cvtss_f32(y);
	}
};

using Avx512 = SimdKernels<xsimd::avx512f, Avx512Ops>;

constexpr KernelSet kAvx512Kernels{"avx512", Avx512::L2Squared, Avx512::InnerProduct, Avx512::L1, Avx512::CosineParts};

} // namespace

const KernelSet &Avx512Kernels() noexcept {
	return kAvx512Kernels;
}

} // namespace s5v
