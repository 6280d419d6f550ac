// Content-addressed blob store on disk for s5vector-node: one file per blob, named by its BLAKE3 hash.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "core/s5/blake3_hash.h"
#include "core/s5/cid.h"
#include "core/status.h"

namespace s5v::node {

class BlobStore;

// An upload being streamed to a temporary file while it is hashed; removed unless committed.
class BlobWriter {
public:
	BlobWriter() = default;
	BlobWriter(const BlobWriter &) = delete;
	BlobWriter &operator=(const BlobWriter &) = delete;
	~BlobWriter() { Abort(); }

	[[nodiscard]] s5v::Status Append(const char *data, size_t n);
	uint64_t size() const { return size_; }
	void Abort();

private:
	friend class BlobStore;
	int fd_ = -1;
	std::string tmp_;
	s5::Blake3Hasher hasher_;
	uint64_t size_ = 0;
};

class BlobStore {
public:
	// Creates DIR/blobs and DIR/tmp if needed; leftovers in tmp from a crash are removed.
	[[nodiscard]] s5v::Status Open(const std::string &dir);
	// Starts a streamed write (a fresh temporary file).
	[[nodiscard]] s5v::Status Begin(BlobWriter *w);
	// Finishes it atomically (fsync, rename, fsync of the directory); idempotent for a blob already stored.
	[[nodiscard]] s5v::Status Commit(BlobWriter *w, s5::BlobId *id);
	// Stores bytes in one call (Begin, Append, Commit).
	[[nodiscard]] s5v::Status Put(const std::string &bytes, s5::BlobId *id);
	// Opens a stored blob for reading (the caller closes *fd). NotFound unless a blob with this hash and
	// exactly this size is stored.
	[[nodiscard]] s5v::Status OpenBlob(const s5::BlobId &id, int *fd) const;
	[[nodiscard]] bool Has(const s5::BlobId &id) const;
	[[nodiscard]] s5v::Status Remove(const s5::BlobId &id);

private:
	std::string PathOf(const s5::BlobId &id) const;
	std::string dir_;
	mutable std::mutex tmp_mutex_;
	unsigned long long tmp_counter_ = 0;
};

} // namespace s5v::node
