// S5 blob identifiers: the v1 blob CID (0x5b 0x82 0x1e ...) and the legacy raw CID (0x26 0x1f ...) portals use.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/s5/blake3_hash.h"
#include "core/status.h"

namespace s5v::s5 {

// What names a blob: its BLAKE3 hash and its size. Both CID forms carry exactly this.
struct BlobId {
	Blake3Hash hash{};
	uint64_t size = 0;

	friend bool operator==(const BlobId &, const BlobId &) = default;
};

inline constexpr uint8_t kCidTypeBlob = 0x5b;           // S5 blob CID magic byte
inline constexpr uint8_t kBlobTypePlaintext = 0x82;     // plaintext blob
inline constexpr uint8_t kCidTypeRaw = 0x26;            // legacy S5 raw CID
inline constexpr uint8_t kMultihashBlake3 = 0x1e;       // multihash code used by S5 for BLAKE3
inline constexpr uint8_t kLegacyMultihashBlake3 = 0x1f; // legacy (raw CID) multihash byte for BLAKE3
inline constexpr size_t kMaxCidBytes = 3 + kBlake3HashLen + 8;

// Identifier of the given bytes.
BlobId BlobIdOf(std::span<const uint8_t> data) noexcept;

// Binary forms. The size is little-endian with trailing zero bytes trimmed (size 0 has no size byte).
std::vector<uint8_t> EncodeBlobCidBytes(const BlobId &id);
std::vector<uint8_t> EncodeRawCidBytes(const BlobId &id);

// Text forms: v1 blob CID in base32 ("blobb..."), legacy raw CID in base58btc ("z...", what portals return).
std::string BlobCidText(const BlobId &id);
std::string RawCidText(const BlobId &id);

// Strict parsers for untrusted input. Accept either CID form (v1 blob 0x5b 0x82 0x1e, legacy raw 0x26 0x1f);
// reject other hash types, a size field longer than 8 bytes or with a trailing zero byte (non-canonical; a
// single 0x00 byte for size 0 is accepted, as s5.js and lib5 write it), and any trailing data.
[[nodiscard]] Status ParseCidBytes(std::span<const uint8_t> bytes, BlobId *out);
// Text: multibase 'f', 'b', 'z' or 'u' (see MultibaseDecode), at most 128 characters.
[[nodiscard]] Status ParseCid(std::string_view text, BlobId *out);

// Converts between the two text forms (any accepted input form to the wanted canonical output form).
[[nodiscard]] Status CidToBlobCidText(std::string_view text, std::string *out);
[[nodiscard]] Status CidToRawCidText(std::string_view text, std::string *out);

} // namespace s5v::s5
