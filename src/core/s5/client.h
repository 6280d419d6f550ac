// S5 client over libcurl: verified upload, download, ranged download, parallel downloads, delete.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/s5/cid.h"
#include "core/status.h"

namespace s5v::s5 {

struct S5ClientOptions {
	std::string base_url;   // e.g. "http://127.0.0.1:5050" or "https://portal.example"; no trailing path
	std::string auth_token; // sent as "Authorization: Bearer <token>" when not empty
	long connect_timeout_ms = 5000;
	long request_timeout_ms = 60000; // per attempt, whole transfer
	int max_attempts = 4;            // attempts for transient failures (connection, timeout, 5xx, 408, 429)
	int max_corrupt_attempts = 2;    // attempts when the node answers with bytes that fail verification
	long backoff_initial_ms = 50;    // doubled after each failed attempt, with jitter
	long backoff_max_ms = 2000;
	uint64_t max_blob_size = uint64_t{256} << 20; // larger uploads/downloads are refused (LimitExceeded)
	int max_parallel = 16;                        // concurrent transfers in DownloadMany
	// When a node answers a ranged request with 206, the bytes cannot be checked against the CID (BLAKE3
	// of the whole blob). false: fetch and verify the whole blob instead. true: return the range unverified.
	bool allow_unverified_ranges = false;
};

struct DownloadResult {
	Status status;
	std::vector<uint8_t> data; // empty unless status is OK
};

// One client per backend or thread: not thread-safe, but several may exist. Uses a curl multi handle (its
// connection cache keeps connections to the node open between calls), no signals, no threads.
class S5Client {
public:
	// Validates the options and initialises libcurl once per process (curl_global_init is not thread-safe:
	// the first Create must not race with other threads starting libcurl).
	[[nodiscard]] static Status Create(const S5ClientOptions &options, std::unique_ptr<S5Client> *out);
	~S5Client();
	S5Client(const S5Client &) = delete;
	S5Client &operator=(const S5Client &) = delete;

	// Uploads bytes (raw POST /s5/upload). The CID the node returns must equal the local one (else Corrupt).
	[[nodiscard]] Status Upload(std::span<const uint8_t> data, BlobId *id, const CancelToken &cancel);

	// GET /s5/download/<cid>. Size and BLAKE3 are verified before *out is touched.
	[[nodiscard]] Status Download(const BlobId &id, std::vector<uint8_t> *out, const CancelToken &cancel);

	// Bytes [offset, offset + length) of a blob via GET /<cid> with a Range header. A 200 answer (whole blob)
	// is verified then sliced; for a 206 see S5ClientOptions::allow_unverified_ranges. *verified says which.
	[[nodiscard]] Status DownloadRange(const BlobId &id, uint64_t offset, uint64_t length, std::vector<uint8_t> *out,
	                                   bool *verified, const CancelToken &cancel);

	// Downloads several blobs concurrently (up to max_parallel); one result per id, in order. Returns the first
	// failure (or Cancelled); per-blob statuses are in *results.
	[[nodiscard]] Status DownloadMany(std::span<const BlobId> ids, std::vector<DownloadResult> *results,
	                                  const CancelToken &cancel);

	// DELETE /s5/delete/<cid> (unpin). NotFound when the node does not have it.
	[[nodiscard]] Status Delete(const BlobId &id, const CancelToken &cancel);

	// GET /s5/version: the node's answer body.
	[[nodiscard]] Status Version(std::string *out, const CancelToken &cancel);

	const S5ClientOptions &options() const { return options_; }

	struct Transfer; // implementation detail (client.cpp)

private:
	explicit S5Client(const S5ClientOptions &options);
	Status Run(std::span<Transfer *> transfers, const CancelToken &cancel);
	Status Prepare(Transfer *t);

	S5ClientOptions options_;
	void *multi_ = nullptr; // CURLM*
	uint64_t rng_state_;
};

} // namespace s5v::s5
