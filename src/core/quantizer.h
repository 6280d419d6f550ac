// 8-bit scalar quantization for a fast first pass over many rows (cold list rows, codes kept with the hot
// tier's neighbour lists), followed by exact re-ranking of the best candidates.
//
// Per dimension d the quantizer holds lo[d] and step[d] = (hi[d] - lo[d]) / 255, trained as the minimum and
// maximum of a sample. A value x encodes to round((x - lo) / step) clamped to 0..255 and decodes to
// lo + step * code. Distances are asymmetric: the query stays float and is compared with the decoded row,
// computed from the codes directly (no decoded copy):
//   L2:     sum ((q - lo) - step * c)^2            (two FMAs a dimension)
//   IP/cos: -(q . lo + sum (q * step) * c)         (one FMA a dimension; cosine expects normalised vectors)
//   L1:     sum |(q - lo) - step * c|
// The estimate is IndexDistance of the query and the decoded row. Error bounds (for rows inside the trained
// range, where every coordinate is off by at most step / 2):
//   L2:  |sqrt(estimate) - |q - x|| <= RowErrorBound() = 0.5 * |step|   (triangle inequality)
//   IP:  |estimate - (-q . x)| <= QuantizedQuery::dot_error_bound = 0.5 * sum |q * step|
//   L1:  |estimate - |q - x|_1| <= 0.5 * sum step
// Encode reports a row's own reconstruction error |x - decode(code)|, which also covers rows outside the range
// (clamped); a caller may store it to keep the L2 bound exact for such rows.
//
// AVX2 + FMA kernels (a target attribute, chosen once when the active kernel set is avx2 or avx512), else
// plain loops. Codes are dim bytes; no alignment needed.
//
// BinaryQuantizer (below) is the RaBitQ-style alternative: one bit a dimension plus 12 bytes a row, with an
// estimated distance and a per-row error bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "distance.h"
#include "status.h"

namespace s5v {

// A query prepared for one quantizer: what the distance loop needs, computed once per query.
struct QuantizedQuery {
	Metric metric = Metric::L2;
	std::vector<float> a;         // L2/L1: q - lo; IP/cosine: q * step
	float constant = 0.0f;        // IP/cosine: q . lo
	float dot_error_bound = 0.0f; // IP/cosine: 0.5 * sum |q * step|
	float l1_error_bound = 0.0f;  // L1: 0.5 * sum step
	float norm = 0.0f;            // |q| (IP/cosine lower bounds)
	float max_norm = 0.0f;        // the quantizer's MaxDecodedNorm() (rounding margin of IP/cosine bounds)
};

class ScalarQuantizer {
public:
	ScalarQuantizer() = default;

	// Per-dimension min and max of n rows (n * dim floats), all finite, else InvalidInput.
	[[nodiscard]] Status Train(std::span<const float> rows, std::size_t n, std::size_t dim, Metric metric);
	// Rebuild from stored parameters (e.g. read from a page): lo and step of equal size, finite, step >= 0.
	[[nodiscard]] Status Load(Metric metric, std::span<const float> lo, std::span<const float> step);

	std::size_t dim() const { return lo_.size(); }
	std::size_t code_size() const { return lo_.size(); } // bytes a row
	Metric metric() const { return metric_; }
	std::span<const float> lo() const { return lo_; }
	std::span<const float> step() const { return step_; }
	// 0.5 * |step|: the L2 error of a decoded row inside the trained range.
	float RowErrorBound() const { return row_error_bound_; }
	// The largest norm a decoded row can have (every coordinate at whichever end of its range is farther from 0).
	float MaxDecodedNorm() const { return max_norm_; }

	// code must hold code_size() bytes. Returns |x - decode(code)| (L2). NaN encodes as 0 (callers reject NaN
	// rows before, as the index does).
	float Encode(const float *x, std::uint8_t *code) const;
	void Decode(const std::uint8_t *code, float *out) const;
	// The error of `code` as a code of x for `metric`'s lower bounds (LowerBound): |x - decode(code)|_1 for L1, the
	// L2 norm otherwise, computed in double and rounded up, so that it is never below the true error. Valid for any
	// finite x, clamped coordinates included.
	float RowError(const float *x, const std::uint8_t *code, Metric metric) const;
	// Encode and RowError in one pass over x (what an append stores): the same code and the same error.
	float EncodeWithError(const float *x, std::uint8_t *code, Metric metric) const;
	// A lower bound of the exact IndexDistance between the prepared query and a row x, from the estimate of x's
	// code (Distances) and the row's RowError: L2 (sqrt(estimate) - error)^2, IP/cosine estimate - |q| error
	// (Cauchy-Schwarz), L1 estimate - error; lowered by a margin that covers the float rounding of both the
	// estimate and the exact distance kernels (a relative 2e-4 of the terms' magnitude), so that a row's exact
	// distance as IndexDistance computes it is never below it.
	static float LowerBound(const QuantizedQuery &q, float estimate, float row_error);

	// query.size() must be dim() and finite, else InvalidInput.
	[[nodiscard]] Status Prepare(std::span<const float> query, QuantizedQuery &out) const;
	// Estimated IndexDistance between the prepared query and one code. A query not prepared by this quantizer
	// (other dimensions) gives NaN.
	float Distance(const QuantizedQuery &q, const std::uint8_t *code) const;
	// The same for `count` codes `stride` bytes apart (stride >= code_size(); packed list rows carry other
	// fields between codes), into out[0..count).
	void Distances(const QuantizedQuery &q, const std::uint8_t *codes, std::size_t count, std::size_t stride,
	               float *out) const;

private:
	void Finish();

	Metric metric_ = Metric::L2;
	std::vector<float> lo_, step_, inv_step_;
	float row_error_bound_ = 0.0f;
	float max_norm_ = 0.0f;
};

// RaBitQ-style 1-bit codes (after Gao and Long, SIGMOD 2024), for a first pass that reads D / 8 + 12 bytes a row.
// A row x is coded relative to a centroid c (its list's; or none = the origin): o = x - c is rotated by a fixed
// random orthogonal map R (three rounds of random sign flips and a normalised Walsh-Hadamard transform, on
// vectors zero-padded to D = the next power of two >= dim) and one sign bit is kept per coordinate, the unit
// vector xb = sign(R o) / sqrt(D). Per row two floats are kept: f1 = |o| / a and f2 = |o| sqrt(1 - a^2) / a,
// where a = <xb, R o / |o|> (about 0.8). For a vector v (the query minus c for L2, the query itself for inner
// product and cosine), <v, o> is estimated as f1 <xb, R v>, which RaBitQ shows is unbiased, with
//   |estimate - <v, o>| <= f2 |v| eps0 / sqrt(D - 1)   with high probability,
// the bound of the paper for a uniformly random rotation (the randomised Hadamard rotation is its usual
// practical stand-in). The error is close to normal with standard deviation f2 |v| / sqrt(D - 1), so eps0 is a
// number of standard deviations: the default 3 fails for about 0.3% of pairs (the unit test measures it); the
// paper's 1.9 fails for about 5%. Then
//   L2:     |q - x|^2 = |o|^2 + |q - c|^2 - 2 <q - c, o>
//   IP/cos: -<q, x> = -<q, c> - <q, o>              (L1 is not supported: InvalidInput)
// Estimate gives the estimated IndexDistance and a lower bound (estimate minus the error bound), so a scan can
// re-rank exactly every row whose lower bound is below its current k-th exact distance.
// Code layout (code_size() = D / 8 + 12 bytes, no alignment): D / 8 bytes of bits (bit i of byte j is coordinate
// 8j + i), then f1, f2 and |o|^2 as native floats.
struct BinaryQuery {
	Metric metric = Metric::L2;
	std::vector<float> lut;   // D / 8 tables of 256 partial sums of R v, one per code byte
	float sum = 0.0f;         // sum of the coordinates of R v
	float norm = 0.0f;        // |v|
	float constant = 0.0f;    // L2: |q - c|^2; IP/cosine: <q, c>
	float bound_scale = 0.0f; // |v| eps0 / sqrt(D - 1)
	float eps0 = 0.0f;
};

class BinaryQuantizer {
public:
	// dim >= 1; metric L2, InnerProduct or Cosine; the rotation is drawn from `seed` (store it to rebuild).
	[[nodiscard]] Status Init(std::size_t dim, Metric metric, std::uint64_t seed);

	std::size_t dim() const { return dim_; }
	std::size_t padded_dim() const { return padded_; }
	std::size_t code_size() const { return padded_ / 8 + 12; }
	Metric metric() const { return metric_; }

	// R v for a dim-float v, into padded_dim() floats (for tests; Encode and Prepare use it).
	void Rotate(const float *v, float *out) const;

	// Code of row x relative to `centroid` (dim floats, or empty = the origin); code holds code_size() bytes.
	// `scratch` is reused between calls. Non-finite input is InvalidInput.
	[[nodiscard]] Status Encode(std::span<const float> x, std::span<const float> centroid, std::uint8_t *code,
	                            std::vector<float> &scratch) const;
	// The query for the rows coded against `centroid` (the same span as for Encode; empty = the origin); eps0
	// (> 0) sets the width of the error interval in standard deviations.
	[[nodiscard]] Status Prepare(std::span<const float> query, std::span<const float> centroid, BinaryQuery &out,
	                             float eps0 = 3.0f) const;
	// Estimated IndexDistance of `count` codes `stride` bytes apart into estimate[]; when `lower` is not null,
	// the lower ends of their error intervals too. A query not prepared by this quantizer gives NaN.
	void Estimate(const BinaryQuery &q, const std::uint8_t *codes, std::size_t count, std::size_t stride,
	              float *estimate, float *lower) const;

private:
	Metric metric_ = Metric::L2;
	std::size_t dim_ = 0, padded_ = 0;
	std::vector<float> signs_; // 3 * padded_: the sign flips of the three rounds
};

} // namespace s5v
