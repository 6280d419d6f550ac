// S5's static (immutable) blob encryption: XChaCha20-Poly1305 over 256 KiB chunks, and the encrypted CID.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/s5/cid.h"
#include "core/status.h"

namespace s5v::s5 {

inline constexpr uint8_t kCidTypeEncryptedStatic = 0xae;
inline constexpr uint8_t kEncryptionXChaCha20Poly1305 = 0xa6;
inline constexpr uint8_t kDefaultChunkSizeLog2 = 18; // 256 KiB
inline constexpr size_t kEncryptionKeyLen = 32;
inline constexpr size_t kEncryptionTagLen = 16;

using EncryptionKey = std::array<uint8_t, kEncryptionKeyLen>;

// Everything needed to fetch, check and decrypt an encrypted blob. Whoever holds it can read the blob.
struct EncryptedCid {
	uint8_t chunk_size_log2 = kDefaultChunkSizeLog2;
	BlobId encrypted; // the ciphertext blob as stored on S5 (its size is derived, not encoded)
	EncryptionKey key{};
	uint32_t padding = 0; // zero bytes appended to the plaintext before encryption
	BlobId plaintext;     // hash and size of the plaintext, without padding

	friend bool operator==(const EncryptedCid &, const EncryptedCid &) = default;
};

// Padded plaintext size for a blob (S5 "pad blocks": at least 4 KiB, a power of two, about 5% of the size).
[[nodiscard]] Status PaddedSize(uint64_t size, uint64_t *padded);
// Ciphertext size for a padded plaintext size and chunk size.
uint64_t CiphertextSize(uint64_t padded_size, uint8_t chunk_size_log2) noexcept;

// Encrypts with a fresh random key (libsodium), pads, and fills *cid. The ciphertext is an ordinary blob.
[[nodiscard]] Status EncryptBlob(std::span<const uint8_t> plaintext, std::vector<uint8_t> *ciphertext,
                                 EncryptedCid *cid);
// Same with a caller-given key (tests, deterministic re-encryption). Never reuse a key for other content.
[[nodiscard]] Status EncryptBlobWithKey(std::span<const uint8_t> plaintext, const EncryptionKey &key,
                                        std::vector<uint8_t> *ciphertext, EncryptedCid *cid);

// Which hashes DecryptBlob computes besides the chunk authentication (which is always done).
struct DecryptChecks {
	// BLAKE3 of the ciphertext against cid.encrypted.hash (its size is always checked). Off only when the caller has
	// just checked the same bytes (the client verifies every download against its CID).
	bool ciphertext_hash = true;
	// BLAKE3 of the plaintext against cid.plaintext. Every chunk is authenticated under the CID's key and its index
	// (the nonce) and the sizes are checked, so bytes that authenticate are the ones encrypted under that key; the
	// hash adds a check of the CID's own plaintext field (s5vector_verify keeps it on).
	bool plaintext_hash = true;
};

// Checks the ciphertext against cid.encrypted (size and BLAKE3), authenticates and decrypts every chunk,
// strips the padding (which must be zero) and checks the plaintext against cid.plaintext. Corrupt otherwise.
// *plaintext is reused: its capacity is kept, so a caller decrypting many blobs allocates once.
[[nodiscard]] Status DecryptBlob(std::span<const uint8_t> ciphertext, const EncryptedCid &cid,
                                 std::vector<uint8_t> *plaintext, const DecryptChecks &checks = {});

// Binary form: 0xae 0xa6 <log2 chunk> 0x1e <32-byte ciphertext hash> <32-byte key> <padding u32 LE>
// <plaintext raw CID: 0x26 0x1f hash size>. Text form: base58btc ("z...").
std::vector<uint8_t> EncodeEncryptedCidBytes(const EncryptedCid &cid);
std::string EncryptedCidText(const EncryptedCid &cid);
[[nodiscard]] Status ParseEncryptedCidBytes(std::span<const uint8_t> bytes, EncryptedCid *out);
[[nodiscard]] Status ParseEncryptedCid(std::string_view text, EncryptedCid *out);

} // namespace s5v::s5
