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

	// code must hold code_size() bytes. Returns |x - decode(code)| (L2). NaN encodes as 0 (callers reject NaN
	// rows before, as the index does).
	float Encode(const float *x, std::uint8_t *code) const;
	void Decode(const std::uint8_t *code, float *out) const;

	// query.size() must be dim() and finite, else InvalidInput.
	[[nodiscard]] Status Prepare(std::span<const float> query, QuantizedQuery &out) const;
	// Estimated IndexDistance between the prepared query and one code.
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
};

} // namespace s5v
