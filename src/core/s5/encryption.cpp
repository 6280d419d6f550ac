// S5 static encryption with libsodium's XChaCha20-Poly1305 (IETF) and the encrypted CID codec.
#include "core/s5/encryption.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "core/s5/multibase.h"

namespace s5v::s5 {

namespace {

static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kEncryptionKeyLen);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kEncryptionTagLen);
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24);

// sodium_init is thread-safe and idempotent; it only fails when no entropy source exists.
bool SodiumReady() {
	static const bool ready = sodium_init() >= 0;
	return ready;
}

// Nonce = chunk index as little-endian, zero-padded to 24 bytes.
void ChunkNonce(uint64_t index, uint8_t nonce[24]) {
	std::memset(nonce, 0, 24);
	for (int i = 0; i < 8; i++)
		nonce[i] = static_cast<uint8_t>(index >> (8 * i));
}

constexpr uint64_t kMaxPlaintext = uint64_t{1} << 40;

} // namespace

Status PaddedSize(uint64_t size, uint64_t *padded) {
	if (size > kMaxPlaintext)
		return Status::LimitExceeded("encryption: blob too large");
	constexpr uint64_t kib = 1024;
	for (int n = 0; n < 53; n++) {
		if (size <= (uint64_t{1} << n) * 80 * kib) {
			const uint64_t block = (uint64_t{1} << n) * 4 * kib;
			*padded = size % block == 0 ? size : size - size % block + block;
			return Status::Ok();
		}
	}
	return Status::LimitExceeded("encryption: blob too large");
}

uint64_t CiphertextSize(uint64_t padded_size, uint8_t chunk_size_log2) noexcept {
	const uint64_t chunk = uint64_t{1} << chunk_size_log2;
	const uint64_t chunks = (padded_size + chunk - 1) / chunk;
	return padded_size + chunks * kEncryptionTagLen;
}

Status EncryptBlob(std::span<const uint8_t> plaintext, std::vector<uint8_t> *ciphertext, EncryptedCid *cid) {
	if (!SodiumReady())
		return Status::Internal("encryption: libsodium failed to initialise");
	EncryptionKey key;
	randombytes_buf(key.data(), key.size());
	Status st = EncryptBlobWithKey(plaintext, key, ciphertext, cid);
	sodium_memzero(key.data(), key.size());
	return st;
}

Status EncryptBlobWithKey(std::span<const uint8_t> plaintext, const EncryptionKey &key,
                          std::vector<uint8_t> *ciphertext, EncryptedCid *cid) {
	if (!SodiumReady())
		return Status::Internal("encryption: libsodium failed to initialise");
	if (plaintext.empty())
		return Status::InvalidInput("encryption: empty blob");
	uint64_t padded;
	S5V_RETURN_IF_ERROR(PaddedSize(plaintext.size(), &padded));
	const uint8_t log2 = kDefaultChunkSizeLog2;
	const size_t chunk = size_t{1} << log2;
	try {
		ciphertext->resize(CiphertextSize(padded, log2));
		std::vector<uint8_t> block(chunk);
		size_t out_pos = 0;
		for (uint64_t offset = 0, index = 0; offset < padded; offset += chunk, index++) {
			const size_t len = static_cast<size_t>(std::min<uint64_t>(chunk, padded - offset));
			// Copy the plaintext part and zero the padding part of this chunk.
			const size_t have = offset < plaintext.size() ? std::min(len, plaintext.size() - offset) : 0;
			if (have)
				std::memcpy(block.data(), plaintext.data() + offset, have);
			std::memset(block.data() + have, 0, len - have);
			uint8_t nonce[24];
			ChunkNonce(index, nonce);
			unsigned long long clen = 0;
			crypto_aead_xchacha20poly1305_ietf_encrypt(ciphertext->data() + out_pos, &clen, block.data(), len, nullptr,
			                                           0, nullptr, nonce, key.data());
			out_pos += clen;
		}
		sodium_memzero(block.data(), block.size());
		if (out_pos != ciphertext->size())
			return Status::Internal("encryption: ciphertext size mismatch");
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("encryption: out of memory");
	}
	cid->chunk_size_log2 = log2;
	cid->encrypted = BlobIdOf(*ciphertext);
	cid->key = key;
	cid->padding = static_cast<uint32_t>(padded - plaintext.size());
	cid->plaintext = BlobIdOf(plaintext);
	return Status::Ok();
}

Status DecryptBlob(std::span<const uint8_t> ciphertext, const EncryptedCid &cid, std::vector<uint8_t> *plaintext,
                   const DecryptChecks &checks) {
	if (!SodiumReady())
		return Status::Internal("encryption: libsodium failed to initialise");
	if (cid.chunk_size_log2 < 10 || cid.chunk_size_log2 > 24)
		return Status::InvalidInput("encryption: unsupported chunk size");
	const uint64_t padded = cid.plaintext.size + cid.padding;
	if (cid.plaintext.size > kMaxPlaintext)
		return Status::LimitExceeded("encryption: blob too large");
	if (ciphertext.size() != cid.encrypted.size || ciphertext.size() != CiphertextSize(padded, cid.chunk_size_log2))
		return Status::Corrupt("encryption: ciphertext has the wrong size");
	if (checks.ciphertext_hash && Blake3(ciphertext) != cid.encrypted.hash)
		return Status::Corrupt("encryption: ciphertext hash mismatch");
	const size_t chunk = size_t{1} << cid.chunk_size_log2;
	try {
		std::vector<uint8_t> &out = *plaintext;
		out.resize(padded);
		auto fail = [&](const char *why) {
			sodium_memzero(out.data(), out.size());
			out.clear();
			return Status::Corrupt(why);
		};
		size_t in_pos = 0;
		for (uint64_t offset = 0, index = 0; offset < padded; offset += chunk, index++) {
			const size_t len = static_cast<size_t>(std::min<uint64_t>(chunk, padded - offset));
			uint8_t nonce[24];
			ChunkNonce(index, nonce);
			unsigned long long mlen = 0;
			if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data() + offset, &mlen, nullptr,
			                                               ciphertext.data() + in_pos, len + kEncryptionTagLen, nullptr,
			                                               0, nonce, cid.key.data()) != 0 ||
			    mlen != len)
				return fail("encryption: chunk failed authentication");
			in_pos += len + kEncryptionTagLen;
		}
		for (uint64_t i = cid.plaintext.size; i < padded; i++)
			if (out[i] != 0)
				return fail("encryption: non-zero padding");
		out.resize(cid.plaintext.size);
		if (checks.plaintext_hash && BlobIdOf(out) != cid.plaintext)
			return fail("encryption: plaintext hash mismatch");
	} catch (const std::bad_alloc &) {
		plaintext->clear();
		return Status::OutOfMemory("encryption: out of memory");
	}
	return Status::Ok();
}

std::vector<uint8_t> EncodeEncryptedCidBytes(const EncryptedCid &cid) {
	const std::vector<uint8_t> plain = EncodeRawCidBytes(cid.plaintext);
	std::vector<uint8_t> out(4 + kBlake3HashLen + kEncryptionKeyLen + 4 + plain.size());
	out[0] = kCidTypeEncryptedStatic;
	out[1] = kEncryptionXChaCha20Poly1305;
	out[2] = cid.chunk_size_log2;
	out[3] = kMultihashBlake3;
	size_t at = 4;
	std::memcpy(out.data() + at, cid.encrypted.hash.data(), kBlake3HashLen);
	at += kBlake3HashLen;
	std::memcpy(out.data() + at, cid.key.data(), kEncryptionKeyLen);
	at += kEncryptionKeyLen;
	for (int i = 0; i < 4; i++)
		out[at++] = static_cast<uint8_t>(cid.padding >> (8 * i));
	std::memcpy(out.data() + at, plain.data(), plain.size());
	return out;
}

std::string EncryptedCidText(const EncryptedCid &cid) {
	return MultibaseEncode(Multibase::Base58btc, EncodeEncryptedCidBytes(cid));
}

Status ParseEncryptedCidBytes(std::span<const uint8_t> bytes, EncryptedCid *out) {
	constexpr size_t kFixed = 4 + kBlake3HashLen + kEncryptionKeyLen + 4;
	if (bytes.size() < kFixed)
		return Status::InvalidInput("encrypted cid: truncated");
	if (bytes[0] != kCidTypeEncryptedStatic)
		return Status::InvalidInput("encrypted cid: not an encrypted blob CID");
	if (bytes[1] != kEncryptionXChaCha20Poly1305)
		return Status::InvalidInput("encrypted cid: unsupported cipher");
	if (bytes[2] < 10 || bytes[2] > 24)
		return Status::InvalidInput("encrypted cid: unsupported chunk size");
	if (bytes[3] != kMultihashBlake3)
		return Status::InvalidInput("encrypted cid: unsupported hash");
	EncryptedCid cid;
	cid.chunk_size_log2 = bytes[2];
	std::copy_n(bytes.begin() + 4, kBlake3HashLen, cid.encrypted.hash.begin());
	std::copy_n(bytes.begin() + 4 + kBlake3HashLen, kEncryptionKeyLen, cid.key.begin());
	const size_t pad_at = 4 + kBlake3HashLen + kEncryptionKeyLen;
	for (int i = 0; i < 4; i++)
		cid.padding |= static_cast<uint32_t>(bytes[pad_at + i]) << (8 * i);
	S5V_RETURN_IF_ERROR(ParseCidBytes(bytes.subspan(kFixed), &cid.plaintext));
	if (cid.plaintext.size == 0)
		return Status::InvalidInput("encrypted cid: empty plaintext");
	if (cid.plaintext.size > kMaxPlaintext)
		return Status::InvalidInput("encrypted cid: plaintext too large");
	uint64_t padded;
	S5V_RETURN_IF_ERROR(PaddedSize(cid.plaintext.size, &padded));
	// Our encoder always pads to the pad block; accept any padding that keeps sizes sane.
	if (cid.padding > padded)
		return Status::InvalidInput("encrypted cid: padding out of range");
	cid.encrypted.size = CiphertextSize(cid.plaintext.size + cid.padding, cid.chunk_size_log2);
	*out = cid;
	return Status::Ok();
}

Status ParseEncryptedCid(std::string_view text, EncryptedCid *out) {
	if (text.size() > 256)
		return Status::InvalidInput("encrypted cid: text too long");
	std::vector<uint8_t> bytes;
	Status st = MultibaseDecode(text, 160, &bytes);
	if (!st.ok())
		return Status::InvalidInput("encrypted cid: " + st.message());
	return ParseEncryptedCidBytes(bytes, out);
}

} // namespace s5v::s5
