// Internal: the SIMD kernel bodies, written once over an xsimd architecture and instantiated by each
// kernels_<isa>.cpp (and only there). Include it from nowhere else.
//
// ODR: a translation unit compiled with -mavx512f must not emit any out-of-line function that another
// translation unit could also emit, or the linker may keep the AVX-512 copy for everyone (SIGILL on
// older CPUs). Two rules keep that from happening:
//  1. every kernel here has internal linkage (anonymous namespace) and is marked flatten, which inlines
//     every xsimd call into it: from -O1 up no xsimd weak symbol is left in the object at all;
//  2. at -O0 GCC inlines nothing and xsimd's inline functions are emitted as weak symbols, but their
//     names carry the architecture type, and each architecture type is instantiated by exactly one
//     translation unit (sse2 / fma3<avx2> / avx512f; the AVX-512 reduction uses an intrinsic rather than
//     xsimd::hadd, which would instantiate the avx2 types that kernels_avx2.cpp also emits).
// Check: `nm -C src/core/kernels_*.o | grep ' [WVu] '` lists only DW.ref.__gxx_personality_v0 (data)
// when optimised, and at -O0 no symbol appears in two of the objects.
#pragma once

#include <cstddef>

#include <xsimd/xsimd.hpp>

#include "distance.h"

#define S5V_KERNEL [[gnu::flatten]] static

namespace s5v {
namespace {

// Per-architecture operations the generic bodies need. By default the n % width elements after the
// last full batch go through a scalar loop and the horizontal sum is xsimd::hadd; AVX-512 overrides
// both (see kernels_avx512.cpp).
template <class Arch> struct DefaultOps {
	static constexpr bool kMaskedTail = false;
	[[gnu::always_inline]] static inline float Sum(const xsimd::batch<float, Arch> &v) noexcept {
		return xsimd::hadd(v);
	}
};

// Four independent accumulators hide the add/FMA latency (4 cycles, 2 per cycle on current cores).
template <class Arch, class Ops = DefaultOps<Arch>> struct SimdKernels {
	using Batch = xsimd::batch<float, Arch>;
	static constexpr std::size_t kWidth = Batch::size;
	static constexpr std::size_t kUnroll = 4;

	S5V_KERNEL float L2Squared(const float *a, const float *b, std::size_t n) noexcept {
		Batch acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
		std::size_t i = 0;
		for (; i + kUnroll * kWidth <= n; i += kUnroll * kWidth) {
			Batch d0 = Batch::load_unaligned(a + i) - Batch::load_unaligned(b + i);
			Batch d1 = Batch::load_unaligned(a + i + kWidth) - Batch::load_unaligned(b + i + kWidth);
			Batch d2 = Batch::load_unaligned(a + i + 2 * kWidth) - Batch::load_unaligned(b + i + 2 * kWidth);
			Batch d3 = Batch::load_unaligned(a + i + 3 * kWidth) - Batch::load_unaligned(b + i + 3 * kWidth);
			acc0 = xsimd::fma(d0, d0, acc0);
			acc1 = xsimd::fma(d1, d1, acc1);
			acc2 = xsimd::fma(d2, d2, acc2);
			acc3 = xsimd::fma(d3, d3, acc3);
		}
		for (; i + kWidth <= n; i += kWidth) {
			Batch d = Batch::load_unaligned(a + i) - Batch::load_unaligned(b + i);
			acc0 = xsimd::fma(d, d, acc0);
		}
		if constexpr (Ops::kMaskedTail) {
			if (i < n) {
				Batch d = Ops::Load(a + i, n - i) - Ops::Load(b + i, n - i);
				acc1 = xsimd::fma(d, d, acc1);
				i = n;
			}
		}
		float sum = Ops::Sum((acc0 + acc1) + (acc2 + acc3));
		for (; i < n; i++) {
			float d = a[i] - b[i];
			sum += d * d;
		}
		return sum;
	}

	S5V_KERNEL float InnerProduct(const float *a, const float *b, std::size_t n) noexcept {
		Batch acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
		std::size_t i = 0;
		for (; i + kUnroll * kWidth <= n; i += kUnroll * kWidth) {
			acc0 = xsimd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), acc0);
			acc1 = xsimd::fma(Batch::load_unaligned(a + i + kWidth), Batch::load_unaligned(b + i + kWidth), acc1);
			acc2 =
			    xsimd::fma(Batch::load_unaligned(a + i + 2 * kWidth), Batch::load_unaligned(b + i + 2 * kWidth), acc2);
			acc3 =
			    xsimd::fma(Batch::load_unaligned(a + i + 3 * kWidth), Batch::load_unaligned(b + i + 3 * kWidth), acc3);
		}
		for (; i + kWidth <= n; i += kWidth)
			acc0 = xsimd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), acc0);
		if constexpr (Ops::kMaskedTail) {
			if (i < n) {
				acc1 = xsimd::fma(Ops::Load(a + i, n - i), Ops::Load(b + i, n - i), acc1);
				i = n;
			}
		}
		float sum = Ops::Sum((acc0 + acc1) + (acc2 + acc3));
		for (; i < n; i++)
			sum += a[i] * b[i];
		return sum;
	}

	S5V_KERNEL float L1(const float *a, const float *b, std::size_t n) noexcept {
		Batch acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
		std::size_t i = 0;
		for (; i + kUnroll * kWidth <= n; i += kUnroll * kWidth) {
			acc0 += xsimd::abs(Batch::load_unaligned(a + i) - Batch::load_unaligned(b + i));
			acc1 += xsimd::abs(Batch::load_unaligned(a + i + kWidth) - Batch::load_unaligned(b + i + kWidth));
			acc2 += xsimd::abs(Batch::load_unaligned(a + i + 2 * kWidth) - Batch::load_unaligned(b + i + 2 * kWidth));
			acc3 += xsimd::abs(Batch::load_unaligned(a + i + 3 * kWidth) - Batch::load_unaligned(b + i + 3 * kWidth));
		}
		for (; i + kWidth <= n; i += kWidth)
			acc0 += xsimd::abs(Batch::load_unaligned(a + i) - Batch::load_unaligned(b + i));
		if constexpr (Ops::kMaskedTail) {
			if (i < n) {
				acc1 += xsimd::abs(Ops::Load(a + i, n - i) - Ops::Load(b + i, n - i));
				i = n;
			}
		}
		float sum = Ops::Sum((acc0 + acc1) + (acc2 + acc3));
		for (; i < n; i++) {
			float d = a[i] - b[i];
			sum += __builtin_fabsf(d); // not std::fabs: no inline library function in ISA code
		}
		return sum;
	}

	// Three sums in one pass; two accumulators each (six live registers) is enough to cover latency
	// because the three chains are independent.
	S5V_KERNEL void CosineParts(const float *a, const float *b, std::size_t n, float *dot, float *norm_a,
	                            float *norm_b) noexcept {
		Batch ab0(0.0f), ab1(0.0f), aa0(0.0f), aa1(0.0f), bb0(0.0f), bb1(0.0f);
		std::size_t i = 0;
		for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
			Batch va0 = Batch::load_unaligned(a + i), vb0 = Batch::load_unaligned(b + i);
			Batch va1 = Batch::load_unaligned(a + i + kWidth), vb1 = Batch::load_unaligned(b + i + kWidth);
			ab0 = xsimd::fma(va0, vb0, ab0);
			aa0 = xsimd::fma(va0, va0, aa0);
			bb0 = xsimd::fma(vb0, vb0, bb0);
			ab1 = xsimd::fma(va1, vb1, ab1);
			aa1 = xsimd::fma(va1, va1, aa1);
			bb1 = xsimd::fma(vb1, vb1, bb1);
		}
		for (; i + kWidth <= n; i += kWidth) {
			Batch va = Batch::load_unaligned(a + i), vb = Batch::load_unaligned(b + i);
			ab0 = xsimd::fma(va, vb, ab0);
			aa0 = xsimd::fma(va, va, aa0);
			bb0 = xsimd::fma(vb, vb, bb0);
		}
		if constexpr (Ops::kMaskedTail) {
			if (i < n) {
				Batch va = Ops::Load(a + i, n - i), vb = Ops::Load(b + i, n - i);
				ab1 = xsimd::fma(va, vb, ab1);
				aa1 = xsimd::fma(va, va, aa1);
				bb1 = xsimd::fma(vb, vb, bb1);
				i = n;
			}
		}
		float sab = Ops::Sum(ab0 + ab1), saa = Ops::Sum(aa0 + aa1), sbb = Ops::Sum(bb0 + bb1);
		for (; i < n; i++) {
			sab += a[i] * b[i];
			saa += a[i] * a[i];
			sbb += b[i] * b[i];
		}
		*dot = sab;
		*norm_a = saa;
		*norm_b = sbb;
	}
};

} // namespace
} // namespace s5v
