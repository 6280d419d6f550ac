// CBOR reading and writing on top of libcbor's streaming decoder and encoders.
#include "core/s5/cbor.h"

#include <cbor.h>

#include <cstring>

namespace s5v::s5 {

namespace {

CborToken *Tok(void *ctx) {
	return static_cast<CborToken *>(ctx);
}

void OnUint8(void *c, uint8_t v) {
	*Tok(c) = {CborTokenType::UnsignedInt, v};
}
void OnUint16(void *c, uint16_t v) {
	*Tok(c) = {CborTokenType::UnsignedInt, v};
}
void OnUint32(void *c, uint32_t v) {
	*Tok(c) = {CborTokenType::UnsignedInt, v};
}
void OnUint64(void *c, uint64_t v) {
	*Tok(c) = {CborTokenType::UnsignedInt, v};
}
void OnNeg8(void *c, uint8_t v) {
	*Tok(c) = {CborTokenType::NegativeInt, v};
}
void OnNeg16(void *c, uint16_t v) {
	*Tok(c) = {CborTokenType::NegativeInt, v};
}
void OnNeg32(void *c, uint32_t v) {
	*Tok(c) = {CborTokenType::NegativeInt, v};
}
void OnNeg64(void *c, uint64_t v) {
	*Tok(c) = {CborTokenType::NegativeInt, v};
}
void OnBytes(void *c, cbor_data d, size_t n) {
	*Tok(c) = {CborTokenType::ByteString};
	Tok(c)->bytes = {d, n};
}
void OnBytesStart(void *c) {
	*Tok(c) = {CborTokenType::ByteStringStart};
}
void OnText(void *c, cbor_data d, size_t n) {
	*Tok(c) = {CborTokenType::TextString};
	Tok(c)->bytes = {d, n};
}
void OnTextStart(void *c) {
	*Tok(c) = {CborTokenType::TextStringStart};
}
void OnArray(void *c, size_t n) {
	*Tok(c) = {CborTokenType::ArrayStart, n};
}
void OnIndefArray(void *c) {
	*Tok(c) = {CborTokenType::IndefArrayStart};
}
void OnMap(void *c, size_t n) {
	*Tok(c) = {CborTokenType::MapStart, n};
}
void OnIndefMap(void *c) {
	*Tok(c) = {CborTokenType::IndefMapStart};
}
void OnTag(void *c, uint64_t v) {
	*Tok(c) = {CborTokenType::Tag, v};
}
void OnFloat2(void *c, float v) {
	*Tok(c) = {CborTokenType::Float, 0, v, 2};
}
void OnFloat4(void *c, float v) {
	*Tok(c) = {CborTokenType::Float, 0, v, 4};
}
void OnFloat8(void *c, double v) {
	*Tok(c) = {CborTokenType::Float, 0, v, 8};
}
void OnUndefined(void *c) {
	*Tok(c) = {CborTokenType::Undefined};
}
void OnNull(void *c) {
	*Tok(c) = {CborTokenType::Null};
}
void OnBool(void *c, bool v) {
	*Tok(c) = {CborTokenType::Bool, v ? 1u : 0u};
}
void OnBreak(void *c) {
	*Tok(c) = {CborTokenType::Break};
}

constexpr cbor_callbacks kCallbacks = {
    .uint8 = OnUint8,
    .uint16 = OnUint16,
    .uint32 = OnUint32,
    .uint64 = OnUint64,
    .negint64 = OnNeg64,
    .negint32 = OnNeg32,
    .negint16 = OnNeg16,
    .negint8 = OnNeg8,
    .byte_string_start = OnBytesStart,
    .byte_string = OnBytes,
    .string = OnText,
    .string_start = OnTextStart,
    .indef_array_start = OnIndefArray,
    .array_start = OnArray,
    .indef_map_start = OnIndefMap,
    .map_start = OnMap,
    .tag = OnTag,
    .float2 = OnFloat2,
    .float4 = OnFloat4,
    .float8 = OnFloat8,
    .undefined = OnUndefined,
    .null = OnNull,
    .boolean = OnBool,
    .indef_break = OnBreak,
};

} // namespace

Status CborReader::Next(CborToken *token) noexcept {
	if (offset_ >= data_.size())
		return Status::InvalidInput("cbor: truncated");
	// Sentinel: a callback always overwrites it when libcbor reports success.
	CborToken tok;
	tok.type = CborTokenType::Break;
	tok.value = ~uint64_t{0};
	const uint8_t *p = data_.data() + offset_;
	cbor_decoder_result r = cbor_stream_decode(p, data_.size() - offset_, &kCallbacks, &tok);
	switch (r.status) {
	case CBOR_DECODER_FINISHED:
		break;
	case CBOR_DECODER_NEDATA:
		return Status::InvalidInput("cbor: truncated");
	default:
		return Status::InvalidInput("cbor: malformed item");
	}
	if (r.read == 0 || r.read > data_.size() - offset_)
		return Status::InvalidInput("cbor: malformed item");
	const bool is_string = tok.type == CborTokenType::ByteString || tok.type == CborTokenType::TextString;
	tok.header_size = is_string ? r.read - tok.bytes.size() : r.read;
	offset_ += r.read;
	*token = tok;
	return Status::Ok();
}

size_t CborHeaderSize(uint64_t v) noexcept {
	return v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9;
}

bool CborWriter::Uint(uint64_t v) noexcept {
	size_t n = cbor_encode_uint(v, out_.data() + used_, out_.size() - used_);
	used_ += n;
	return n != 0;
}

bool CborWriter::MapStart(size_t pairs) noexcept {
	size_t n = cbor_encode_map_start(pairs, out_.data() + used_, out_.size() - used_);
	used_ += n;
	return n != 0;
}

bool CborWriter::ArrayStart(size_t items) noexcept {
	size_t n = cbor_encode_array_start(items, out_.data() + used_, out_.size() - used_);
	used_ += n;
	return n != 0;
}

bool CborWriter::BytesInPlace(size_t len, std::span<uint8_t> *dst) noexcept {
	size_t n = cbor_encode_bytestring_start(len, out_.data() + used_, out_.size() - used_);
	if (n == 0 || out_.size() - used_ - n < len)
		return false;
	used_ += n;
	*dst = out_.subspan(used_, len);
	used_ += len;
	return true;
}

bool CborWriter::Bytes(std::span<const uint8_t> b) noexcept {
	std::span<uint8_t> dst;
	if (!BytesInPlace(b.size(), &dst))
		return false;
	if (!b.empty())
		std::memcpy(dst.data(), b.data(), b.size());
	return true;
}

bool CborWriter::Text(std::string_view s) noexcept {
	size_t n = cbor_encode_string_start(s.size(), out_.data() + used_, out_.size() - used_);
	if (n == 0 || out_.size() - used_ - n < s.size())
		return false;
	used_ += n;
	if (!s.empty())
		std::memcpy(out_.data() + used_, s.data(), s.size());
	used_ += s.size();
	return true;
}

} // namespace s5v::s5
