// S5 CIDs: encoding, strict parsing, conversion between the v1 blob and legacy raw forms.
#include "core/s5/cid.h"

#include <algorithm>

#include "core/s5/multibase.h"

namespace s5v::s5 {

namespace {

void AppendSize(uint64_t size, std::vector<uint8_t> *out) {
	while (size != 0) {
		out->push_back(static_cast<uint8_t>(size & 0xff));
		size >>= 8;
	}
}

std::vector<uint8_t> EncodeWithPrefix(std::initializer_list<uint8_t> prefix, const BlobId &id) {
	std::vector<uint8_t> out(prefix);
	out.reserve(kMaxCidBytes);
	out.insert(out.end(), id.hash.begin(), id.hash.end());
	AppendSize(id.size, &out);
	return out;
}

} // namespace

BlobId BlobIdOf(std::span<const uint8_t> data) noexcept {
	return BlobId{Blake3(data), data.size()};
}

std::vector<uint8_t> EncodeBlobCidBytes(const BlobId &id) {
	return EncodeWithPrefix({kCidTypeBlob, kBlobTypePlaintext, kMultihashBlake3}, id);
}

std::vector<uint8_t> EncodeRawCidBytes(const BlobId &id) {
	return EncodeWithPrefix({kCidTypeRaw, kLegacyMultihashBlake3}, id);
}

std::string BlobCidText(const BlobId &id) {
	return MultibaseEncode(Multibase::Base32, EncodeBlobCidBytes(id));
}

std::string RawCidText(const BlobId &id) {
	return MultibaseEncode(Multibase::Base58btc, EncodeRawCidBytes(id));
}

Status ParseCidBytes(std::span<const uint8_t> bytes, BlobId *out) {
	size_t prefix_len;
	if (bytes.size() >= 3 && bytes[0] == kCidTypeBlob) {
		if (bytes[1] != kBlobTypePlaintext)
			return Status::InvalidInput("cid: not a plaintext blob CID");
		if (bytes[2] != kMultihashBlake3)
			return Status::InvalidInput("cid: unsupported hash type (only BLAKE3)");
		prefix_len = 3;
	} else if (bytes.size() >= 2 && bytes[0] == kCidTypeRaw) {
		if (bytes[1] != kLegacyMultihashBlake3)
			return Status::InvalidInput("cid: unsupported hash type (only BLAKE3)");
		prefix_len = 2;
	} else {
		return Status::InvalidInput("cid: not an S5 blob CID");
	}
	if (bytes.size() < prefix_len + kBlake3HashLen)
		return Status::InvalidInput("cid: truncated hash");
	std::span<const uint8_t> size_bytes = bytes.subspan(prefix_len + kBlake3HashLen);
	if (size_bytes.size() > 8)
		return Status::InvalidInput("cid: size field too long");
	if (!size_bytes.empty() && size_bytes.back() == 0 && size_bytes.size() != 1)
		return Status::InvalidInput("cid: size field not trimmed");
	uint64_t size = 0;
	for (size_t i = size_bytes.size(); i > 0; i--)
		size = (size << 8) | size_bytes[i - 1];
	BlobId id;
	std::copy_n(bytes.begin() + static_cast<ptrdiff_t>(prefix_len), kBlake3HashLen, id.hash.begin());
	id.size = size;
	*out = id;
	return Status::Ok();
}

Status ParseCid(std::string_view text, BlobId *out) {
	if (text.size() > 128)
		return Status::InvalidInput("cid: text too long");
	std::vector<uint8_t> bytes;
	Status st = MultibaseDecode(text, kMaxCidBytes, &bytes);
	if (!st.ok())
		return Status::InvalidInput("cid: " + st.message());
	return ParseCidBytes(bytes, out);
}

Status CidToBlobCidText(std::string_view text, std::string *out) {
	BlobId id;
	S5V_RETURN_IF_ERROR(ParseCid(text, &id));
	*out = BlobCidText(id);
	return Status::Ok();
}

Status CidToRawCidText(std::string_view text, std::string *out) {
	BlobId id;
	S5V_RETURN_IF_ERROR(ParseCid(text, &id));
	*out = RawCidText(id);
	return Status::Ok();
}

} // namespace s5v::s5
