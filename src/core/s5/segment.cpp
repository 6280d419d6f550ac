// Cold-segment CBOR encoding and its strict decoder.
#include "core/s5/segment.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <new>
#include <string_view>

#include "core/s5/cbor.h"

namespace s5v::s5 {

namespace {

// Map keys, in the order they must appear.
enum SegmentKey : uint64_t {
	kKeyMagic = 0,
	kKeyVersion = 1,
	kKeyDims = 2,
	kKeyMetric = 3,
	kKeyIndexId = 4,
	kKeyListNo = 5,
	kKeySegmentNo = 6,
	kKeyRowCount = 7,
	kKeyVectors = 8,
	kKeyRowIds = 9,
	kKeyCount = 10,
};

constexpr std::string_view kMagic{kSegmentMagic};

bool ValidMetric(uint64_t m) {
	return m >= 1 && m <= 3;
}

uint32_t LoadU32Le(const uint8_t *p) {
	uint32_t v;
	std::memcpy(&v, p, 4);
	if constexpr (std::endian::native == std::endian::big)
		v = __builtin_bswap32(v);
	return v;
}

uint64_t LoadU64Le(const uint8_t *p) {
	uint64_t v;
	std::memcpy(&v, p, 8);
	if constexpr (std::endian::native == std::endian::big)
		v = __builtin_bswap64(v);
	return v;
}

float LoadF32Le(const uint8_t *p) {
	return std::bit_cast<float>(LoadU32Le(p));
}

// Byte sizes of the two arrays, with overflow and limit checks.
Status PayloadSizes(const SegmentHeader &h, const SegmentLimits &limits, uint64_t *vec_bytes, uint64_t *id_bytes) {
	if (h.dims == 0)
		return Status::InvalidInput("segment: dimensions must be positive");
	if (h.dims > limits.max_dims)
		return Status::LimitExceeded("segment: too many dimensions");
	if (h.row_count > limits.max_rows)
		return Status::LimitExceeded("segment: too many rows");
	// max_rows <= 2^32 and max_dims <= 2^16 keep this in range; guard anyway.
	if (h.row_count > (uint64_t{1} << 40) || h.dims > (1u << 20))
		return Status::LimitExceeded("segment: too large");
	*vec_bytes = h.row_count * h.dims * 4;
	*id_bytes = h.row_count * 8;
	return Status::Ok();
}

size_t DocumentSize(const SegmentHeader &h, uint64_t vec_bytes, uint64_t id_bytes) {
	size_t n = CborHeaderSize(kKeyCount);
	n += 1 + CborHeaderSize(kMagic.size()) + kMagic.size();
	n += 1 + CborHeaderSize(kSegmentFormatVersion);
	n += 1 + CborHeaderSize(h.dims);
	n += 1 + CborHeaderSize(static_cast<uint64_t>(h.metric));
	n += 1 + CborHeaderSize(h.index_id.size()) + h.index_id.size();
	n += 1 + CborHeaderSize(h.list_no);
	n += 1 + CborHeaderSize(h.segment_no);
	n += 1 + CborHeaderSize(h.row_count);
	n += 1 + CborHeaderSize(vec_bytes) + vec_bytes;
	n += 1 + CborHeaderSize(id_bytes) + id_bytes;
	return n;
}

// Reads the next token and checks its type and canonical head.
class StrictReader {
public:
	explicit StrictReader(std::span<const uint8_t> data) : reader_(data) {}

	Status Uint(uint64_t max, uint64_t *v) {
		CborToken t;
		S5V_RETURN_IF_ERROR(Read(&t));
		if (t.type != CborTokenType::UnsignedInt)
			return Status::Corrupt("segment: expected an unsigned integer");
		if (t.header_size != CborHeaderSize(t.value))
			return Status::Corrupt("segment: non-canonical integer");
		if (t.value > max)
			return Status::Corrupt("segment: integer out of range");
		*v = t.value;
		return Status::Ok();
	}

	Status Key(uint64_t expected) {
		uint64_t k;
		S5V_RETURN_IF_ERROR(Uint(~uint64_t{0}, &k));
		if (k != expected)
			return Status::Corrupt("segment: unexpected map key");
		return Status::Ok();
	}

	Status String(CborTokenType type, std::span<const uint8_t> *bytes) {
		CborToken t;
		S5V_RETURN_IF_ERROR(Read(&t));
		if (t.type != type)
			return Status::Corrupt(type == CborTokenType::ByteString ? "segment: expected a byte string"
			                                                         : "segment: expected a text string");
		if (t.header_size != CborHeaderSize(t.bytes.size()))
			return Status::Corrupt("segment: non-canonical string length");
		*bytes = t.bytes;
		return Status::Ok();
	}

	Status MapStart(uint64_t *pairs) {
		CborToken t;
		S5V_RETURN_IF_ERROR(Read(&t));
		if (t.type != CborTokenType::MapStart)
			return Status::Corrupt("segment: expected a definite-length map");
		if (t.header_size != CborHeaderSize(t.value))
			return Status::Corrupt("segment: non-canonical map length");
		*pairs = t.value;
		return Status::Ok();
	}

	bool at_end() const { return reader_.at_end(); }

private:
	Status Read(CborToken *t) {
		Status st = reader_.Next(t);
		if (!st.ok())
			return Status::Corrupt("segment: " + st.message());
		return Status::Ok();
	}
	CborReader reader_;
};

} // namespace

float SegmentView::Component(uint64_t row, uint32_t dim) const noexcept {
	return LoadF32Le(vectors_le.data() + (row * header.dims + dim) * 4);
}

uint64_t SegmentView::RowId(uint64_t row) const noexcept {
	return LoadU64Le(row_ids_le.data() + row * 8);
}

void SegmentView::CopyVectors(std::span<float> out) const noexcept {
	const size_t n = std::min(out.size(), vectors_le.size() / 4);
	if constexpr (std::endian::native == std::endian::little) {
		if (n > 0)
			std::memcpy(out.data(), vectors_le.data(), n * 4);
	} else {
		for (size_t i = 0; i < n; i++)
			out[i] = LoadF32Le(vectors_le.data() + i * 4);
	}
}

Status EncodedSegmentSize(const SegmentHeader &header, const SegmentLimits &limits, size_t *size) {
	uint64_t vec_bytes, id_bytes;
	S5V_RETURN_IF_ERROR(PayloadSizes(header, limits, &vec_bytes, &id_bytes));
	size_t n = DocumentSize(header, vec_bytes, id_bytes);
	if (n > limits.max_total_bytes)
		return Status::LimitExceeded("segment: encoded size exceeds the limit");
	*size = n;
	return Status::Ok();
}

Status EncodeSegment(const SegmentHeader &header, std::span<const float> vectors, std::span<const uint64_t> row_ids,
                     const SegmentLimits &limits, std::vector<uint8_t> *out) {
	if (!ValidMetric(static_cast<uint64_t>(header.metric)))
		return Status::InvalidInput("segment: unknown metric");
	size_t total;
	S5V_RETURN_IF_ERROR(EncodedSegmentSize(header, limits, &total));
	if (vectors.size() != header.row_count * header.dims)
		return Status::InvalidInput("segment: vector count does not match rows * dimensions");
	if (row_ids.size() != header.row_count)
		return Status::InvalidInput("segment: row id count does not match rows");
	for (float f : vectors)
		if (!std::isfinite(f))
			return Status::InvalidInput("segment: vectors must be finite");
	try {
		out->resize(total);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("segment: cannot allocate the encoded segment");
	}
	CborWriter w(*out);
	std::span<uint8_t> vec_dst, id_dst;
	bool ok = w.MapStart(kKeyCount) && w.Uint(kKeyMagic) && w.Text(kMagic) && w.Uint(kKeyVersion) &&
	          w.Uint(kSegmentFormatVersion) && w.Uint(kKeyDims) && w.Uint(header.dims) && w.Uint(kKeyMetric) &&
	          w.Uint(static_cast<uint64_t>(header.metric)) && w.Uint(kKeyIndexId) && w.Bytes(header.index_id) &&
	          w.Uint(kKeyListNo) && w.Uint(header.list_no) && w.Uint(kKeySegmentNo) && w.Uint(header.segment_no) &&
	          w.Uint(kKeyRowCount) && w.Uint(header.row_count) && w.Uint(kKeyVectors) &&
	          w.BytesInPlace(vectors.size() * 4, &vec_dst) && w.Uint(kKeyRowIds) &&
	          w.BytesInPlace(row_ids.size() * 8, &id_dst);
	if (!ok || w.size() != total) {
		out->clear();
		return Status::Internal("segment: encoded size mismatch");
	}
	if constexpr (std::endian::native == std::endian::little) {
		if (!vectors.empty())
			std::memcpy(vec_dst.data(), vectors.data(), vec_dst.size());
		if (!row_ids.empty())
			std::memcpy(id_dst.data(), row_ids.data(), id_dst.size());
	} else {
		for (size_t i = 0; i < vectors.size(); i++) {
			uint32_t v = __builtin_bswap32(std::bit_cast<uint32_t>(vectors[i]));
			std::memcpy(vec_dst.data() + i * 4, &v, 4);
		}
		for (size_t i = 0; i < row_ids.size(); i++) {
			uint64_t v = __builtin_bswap64(row_ids[i]);
			std::memcpy(id_dst.data() + i * 8, &v, 8);
		}
	}
	return Status::Ok();
}

Status DecodeSegment(std::span<const uint8_t> data, const SegmentLimits &limits, SegmentView *out) {
	if (data.size() > limits.max_total_bytes)
		return Status::LimitExceeded("segment: document exceeds the size limit");
	StrictReader r(data);
	uint64_t pairs;
	S5V_RETURN_IF_ERROR(r.MapStart(&pairs));
	if (pairs != kKeyCount)
		return Status::Corrupt("segment: wrong number of fields");

	std::span<const uint8_t> magic;
	S5V_RETURN_IF_ERROR(r.Key(kKeyMagic));
	S5V_RETURN_IF_ERROR(r.String(CborTokenType::TextString, &magic));
	if (std::string_view(reinterpret_cast<const char *>(magic.data()), magic.size()) != kMagic)
		return Status::Corrupt("segment: not an s5vector segment");

	uint64_t version, dims, metric, list_no, segment_no, rows;
	S5V_RETURN_IF_ERROR(r.Key(kKeyVersion));
	S5V_RETURN_IF_ERROR(r.Uint(~uint64_t{0}, &version));
	if (version != kSegmentFormatVersion)
		return Status::Corrupt("segment: unsupported format version");
	S5V_RETURN_IF_ERROR(r.Key(kKeyDims));
	S5V_RETURN_IF_ERROR(r.Uint(UINT32_MAX, &dims));
	if (dims == 0)
		return Status::Corrupt("segment: zero dimensions");
	if (dims > limits.max_dims)
		return Status::LimitExceeded("segment: too many dimensions");
	S5V_RETURN_IF_ERROR(r.Key(kKeyMetric));
	S5V_RETURN_IF_ERROR(r.Uint(255, &metric));
	if (!ValidMetric(metric))
		return Status::Corrupt("segment: unknown metric");

	std::span<const uint8_t> index_id;
	S5V_RETURN_IF_ERROR(r.Key(kKeyIndexId));
	S5V_RETURN_IF_ERROR(r.String(CborTokenType::ByteString, &index_id));
	if (index_id.size() != 16)
		return Status::Corrupt("segment: index id must be 16 bytes");

	S5V_RETURN_IF_ERROR(r.Key(kKeyListNo));
	S5V_RETURN_IF_ERROR(r.Uint(UINT32_MAX, &list_no));
	S5V_RETURN_IF_ERROR(r.Key(kKeySegmentNo));
	S5V_RETURN_IF_ERROR(r.Uint(UINT32_MAX, &segment_no));
	S5V_RETURN_IF_ERROR(r.Key(kKeyRowCount));
	S5V_RETURN_IF_ERROR(r.Uint(~uint64_t{0}, &rows));
	if (rows > limits.max_rows)
		return Status::LimitExceeded("segment: too many rows");

	SegmentHeader h;
	h.dims = static_cast<uint32_t>(dims);
	h.metric = static_cast<SegmentMetric>(metric);
	std::memcpy(h.index_id.data(), index_id.data(), 16);
	h.list_no = static_cast<uint32_t>(list_no);
	h.segment_no = static_cast<uint32_t>(segment_no);
	h.row_count = rows;
	uint64_t vec_bytes, id_bytes;
	S5V_RETURN_IF_ERROR(PayloadSizes(h, limits, &vec_bytes, &id_bytes));

	std::span<const uint8_t> vectors, ids;
	S5V_RETURN_IF_ERROR(r.Key(kKeyVectors));
	S5V_RETURN_IF_ERROR(r.String(CborTokenType::ByteString, &vectors));
	if (vectors.size() != vec_bytes)
		return Status::Corrupt("segment: vector data has the wrong length");
	S5V_RETURN_IF_ERROR(r.Key(kKeyRowIds));
	S5V_RETURN_IF_ERROR(r.String(CborTokenType::ByteString, &ids));
	if (ids.size() != id_bytes)
		return Status::Corrupt("segment: row id data has the wrong length");
	if (!r.at_end())
		return Status::Corrupt("segment: trailing bytes after the document");

	for (size_t i = 0; i < vectors.size(); i += 4)
		if (!std::isfinite(LoadF32Le(vectors.data() + i)))
			return Status::Corrupt("segment: non-finite vector component");

	out->header = h;
	out->vectors_le = vectors;
	out->row_ids_le = ids;
	return Status::Ok();
}

Status CheckSegmentIdentity(const SegmentHeader &found, const std::array<uint8_t, 16> &index_id, uint32_t list_no,
                            uint32_t segment_no, uint32_t dims, SegmentMetric metric) {
	if (found.index_id != index_id)
		return Status::Corrupt("segment: belongs to another index");
	if (found.list_no != list_no || found.segment_no != segment_no)
		return Status::Corrupt("segment: belongs to another list or position");
	if (found.dims != dims || found.metric != metric)
		return Status::Corrupt("segment: dimensions or metric do not match the index");
	return Status::Ok();
}

} // namespace s5v::s5
