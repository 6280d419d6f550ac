// The S5 side of offload (docs/s5.md): one S5 client per backend built from the s5vector.s5_* settings, the local
// cache of fetched segments, and the verified fetch of a list's remote parts (cache, then one parallel download of
// the misses, decryption, decoding and identity checks). C++ code: returns Status, never raises; call it holding no
// buffer lock, LWLock or critical section (it does network and file I/O).
// Include after the PostgreSQL headers.
#pragma once

#include "core/cancel.h"
#include "core/s5/client.h"
#include "core/s5/encryption.h"
#include "core/s5/segment.h"
#include "core/status.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace s5v::pg {

// Is s5vector.s5_url set?
bool S5Configured() noexcept;

// The backend's client for the current settings (made again when they change). Unavailable when no URL is set.
Status S5ClientForSettings(s5::S5Client **out) noexcept;

// Fetch counters of this backend (s5vector_index_stats shows them).
struct S5FetchCounters {
	int64_t cache_hits = 0;
	int64_t cache_misses = 0;
	int64_t fetched_bytes = 0;
};
extern S5FetchCounters s5_fetch_counters;

// The cache: plaintext segments in $PGDATA/s5vector_cache, one file per blob named by the encrypted blob's hash,
// written to a temporary name and renamed, checked against the plaintext hash of the encrypted CID when read (a file
// that fails is removed), bounded by s5vector.cache_size (least recently used files go first; a hit refreshes the
// file's time). cache_size = 0: no cache.
bool CacheGet(const s5::EncryptedCid &cid, std::vector<uint8_t> *plain) noexcept;
void CachePut(const s5::EncryptedCid &cid, std::span<const uint8_t> plain) noexcept;
// Remove every file of the cache; returns how many.
int64_t CacheReset() noexcept;

// What a remote part must be: its blob, and the segment it must decode to.
struct RemotePartRef {
	s5::EncryptedCid cid;
	uint32_t list = 0;
	uint32_t segment_no = 0;
	uint32_t rows = 0;
	const uint64_t *row_ids = nullptr; // rows heap TIDs as keys (the part page's), the segment must hold the same
	float *dest = nullptr;             // rows * dims floats: where the part's vectors are written (caller's memory)
};

struct SegmentIdentity {
	std::array<uint8_t, 16> index_id{};
	uint32_t dims = 0;
	s5::SegmentMetric metric = s5::SegmentMetric::L2;
};

struct FetchedPart {
	Status status; // Ok: the part's vectors are in its dest
	bool from_cache = false;
};

// Fetch and check every part (cache first, the misses in one DownloadMany) and write its vectors to its dest. One
// result per part; returns Cancelled when the token fired, the client's failure when there is no client, else Ok
// (per-part statuses in *out; a blob the node does not have is Corrupt: a durable page references it). A download
// is checked against its CID by the client (size and BLAKE3), then authenticated chunk by chunk while decrypted,
// decoded and identity-checked; `thorough` adds the plaintext hash (s5vector_verify).
Status FetchRemoteParts(const SegmentIdentity &identity, std::span<const RemotePartRef> parts, bool use_cache,
                        bool thorough, std::vector<FetchedPart> *out, const CancelToken &cancel) noexcept;

} // namespace s5v::pg
