// The cold-segment format: one segment of a cold inverted list, stored as a versioned CBOR document on S5.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace s5v::s5 {

inline constexpr uint32_t kSegmentFormatVersion = 1;
inline constexpr char kSegmentMagic[] = "s5vector-segment";

enum class SegmentMetric : uint8_t { L2 = 1, InnerProduct = 2, Cosine = 3 };

// Everything a reader checks before trusting a segment: which index and list it belongs to, its shape.
struct SegmentHeader {
	uint32_t dims = 0;
	SegmentMetric metric = SegmentMetric::L2;
	std::array<uint8_t, 16> index_id{}; // identity of the index (a UUID chosen at build, not the relfilenode)
	uint32_t list_no = 0;               // inverted list number
	uint32_t segment_no = 0;            // position of the segment within the list
	uint64_t row_count = 0;

	friend bool operator==(const SegmentHeader &, const SegmentHeader &) = default;
};

struct SegmentLimits {
	uint32_t max_dims = 16000;
	uint64_t max_rows = uint64_t{1} << 24;
	uint64_t max_total_bytes = uint64_t{1} << 30; // whole encoded document
};

// A decoded segment: views into the caller's buffer (valid while it lives). Vectors are little-endian float32,
// row ids little-endian u64 (opaque to the format; the access method stores heap TIDs there).
struct SegmentView {
	SegmentHeader header;
	std::span<const uint8_t> vectors_le; // row_count * dims * 4 bytes
	std::span<const uint8_t> row_ids_le; // row_count * 8 bytes

	float Component(uint64_t row, uint32_t dim) const noexcept;
	uint64_t RowId(uint64_t row) const noexcept;
	// Copies all vectors to host floats; out.size() must be row_count * dims.
	void CopyVectors(std::span<float> out) const noexcept;
};

// Size of the encoded document for a header (lets callers check limits before building rows).
[[nodiscard]] Status EncodedSegmentSize(const SegmentHeader &header, const SegmentLimits &limits, size_t *size);

// Encodes a segment. vectors holds row_count * dims floats (row-major), row_ids row_count ids. Vectors must
// be finite. The encoding is deterministic (same input, same bytes, same CID).
[[nodiscard]] Status EncodeSegment(const SegmentHeader &header, std::span<const float> vectors,
                                   std::span<const uint64_t> row_ids, const SegmentLimits &limits,
                                   std::vector<uint8_t> *out);

// Strict decoder for untrusted bytes: exact map layout (all keys, in order, each once), exact types, canonical
// shortest integer and length heads, definite lengths only, no tags, exact byte-string lengths, finite
// vectors, nothing after the document. Corrupt for malformed input, LimitExceeded beyond limits.
[[nodiscard]] Status DecodeSegment(std::span<const uint8_t> data, const SegmentLimits &limits, SegmentView *out);

// Checks that a decoded segment is the one the caller asked for (index, list, segment number, shape).
[[nodiscard]] Status CheckSegmentIdentity(const SegmentHeader &found, const std::array<uint8_t, 16> &index_id,
                                          uint32_t list_no, uint32_t segment_no, uint32_t dims, SegmentMetric metric);

} // namespace s5v::s5
