// S5 client per backend, the local segment cache and the verified fetch of remote parts (see s5_glue.h).
extern "C" {
#include "postgres.h"

#include "miscadmin.h"
}

#include "pg/gucs.h"
#include "pg/s5_glue.h"

#include "core/parallel.h"
#include "core/s5/blake3_hash.h"

#include <algorithm>
#include <list>
#include <unordered_map>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace s5v::pg {

S5FetchCounters s5_fetch_counters;

namespace {

std::unique_ptr<s5::S5Client> backend_client;

// Decoded segments of this backend, most recently used first, at most kMemoryCacheBytes of vectors: a warm query
// repeated in a session neither reads nor hashes nor decodes its files again. Entries were checked when they came
// in; a use checks the identity again (list, segment, rows, row ids), since another part page could name the blob.
constexpr size_t kMemoryCacheBytes = size_t{64} << 20;
struct MemEntry {
	s5::Blake3Hash key;
	uint32_t list;
	uint32_t segment_no;
	std::vector<uint64_t> row_ids;
	std::vector<float> vectors;
};
struct HashOf {
	size_t operator()(const s5::Blake3Hash &h) const noexcept {
		size_t v;
		memcpy(&v, h.data(), sizeof(v));
		return v;
	}
};
std::list<MemEntry> mem_lru;
std::unordered_map<s5::Blake3Hash, std::list<MemEntry>::iterator, HashOf> mem_index;
size_t mem_bytes = 0;

bool MemGet(const RemotePartRef &p, size_t floats) {
	auto it = mem_index.find(p.cid.encrypted.hash);
	if (it == mem_index.end())
		return false;
	const MemEntry &e = *it->second;
	if (e.list != p.list || e.segment_no != p.segment_no || e.row_ids.size() != p.rows || e.vectors.size() != floats ||
	    memcmp(e.row_ids.data(), p.row_ids, sizeof(uint64_t) * p.rows) != 0)
		return false;
	memcpy(p.dest, e.vectors.data(), sizeof(float) * floats);
	mem_lru.splice(mem_lru.begin(), mem_lru, it->second);
	return true;
}

void MemPut(const RemotePartRef &p, size_t floats) {
	size_t bytes = floats * sizeof(float) + (size_t)p.rows * sizeof(uint64_t);
	if (bytes > kMemoryCacheBytes / 4 || mem_index.count(p.cid.encrypted.hash))
		return;
	while (mem_bytes + bytes > kMemoryCacheBytes && !mem_lru.empty()) {
		MemEntry &last = mem_lru.back();
		mem_bytes -= last.vectors.size() * sizeof(float) + last.row_ids.size() * sizeof(uint64_t);
		mem_index.erase(last.key);
		mem_lru.pop_back();
	}
	mem_lru.push_front(MemEntry{p.cid.encrypted.hash, p.list, p.segment_no,
	                            std::vector<uint64_t>(p.row_ids, p.row_ids + p.rows),
	                            std::vector<float>(p.dest, p.dest + floats)});
	mem_index[p.cid.encrypted.hash] = mem_lru.begin();
	mem_bytes += bytes;
}

void MemClear() {
	mem_index.clear();
	mem_lru.clear();
	mem_bytes = 0;
}

// A download batch of at least this many bytes is decrypted and decoded on spare CPUs too (ParallelFor): starting
// a thread costs tens of microseconds, a megabyte of segments about a millisecond.
constexpr uint64_t kParallelDecodeBytes = uint64_t{1} << 20;

// Concurrent transfers (and kept-alive connections) of a backend's client.
constexpr int kMaxParallelTransfers = 64;

// The bearer token: s5vector.s5_auth_token, else the first line of s5vector.s5_auth_token_file (read again when the
// file's inode, size or mtime changes; at most 4 kB; a trailing \r and blanks are not part of it).
Status TokenFromSettings(std::string *token) {
	if (s5v_s5_auth_token != nullptr && s5v_s5_auth_token[0] != '\0') {
		*token = s5v_s5_auth_token;
		return Status::Ok();
	}
	token->clear();
	if (s5v_s5_auth_token_file == nullptr || s5v_s5_auth_token_file[0] == '\0')
		return Status::Ok();
	static std::string cached_path, cached_token;
	static struct stat cached_st;
	const char *path = s5v_s5_auth_token_file;
	struct stat st;
	auto unreadable = [&](int err) {
		return Status::Unavailable(std::string("could not read the token file \"") + path +
		                           "\" (s5vector.s5_auth_token_file): " + strerror(err));
	};
	if (stat(path, &st) != 0)
		return unreadable(errno);
	if (cached_path == path && st.st_ino == cached_st.st_ino && st.st_dev == cached_st.st_dev &&
	    st.st_size == cached_st.st_size && st.st_mtim.tv_sec == cached_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == cached_st.st_mtim.tv_nsec) {
		*token = cached_token;
		return Status::Ok();
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return unreadable(errno);
	char buf[4096];
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	int err = errno;
	close(fd);
	if (n < 0)
		return unreadable(err);
	std::string t(buf, (size_t)n);
	t = t.substr(0, t.find('\n'));
	while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t'))
		t.pop_back();
	cached_path = path;
	cached_token = t;
	cached_st = st;
	*token = t;
	return Status::Ok();
}

s5::S5ClientOptions OptionsFromSettings(const std::string &token) {
	s5::S5ClientOptions o;
	o.base_url = s5v_s5_url ? s5v_s5_url : "";
	while (!o.base_url.empty() && o.base_url.back() == '/')
		o.base_url.pop_back();
	o.auth_token = token;
	o.connect_timeout_ms = s5v_s5_connect_timeout_ms;
	o.request_timeout_ms = s5v_s5_timeout_ms;
	o.max_attempts = 1 + s5v_s5_retries;
	o.max_blob_size = uint64_t{1} << 30;
	// A query's remote parts go in one parallel batch (FetchRemoteParts: one DownloadMany); transfers beyond
	// max_parallel wait for a connection, one more round trip each wave. At 1M x 128 with 1000 lists a probe of 8
	// lists is ~40 segments (three waves of the old 16).
	o.max_parallel = kMaxParallelTransfers;
	return o;
}

bool SameOptions(const s5::S5ClientOptions &a, const s5::S5ClientOptions &b) {
	return a.base_url == b.base_url && a.auth_token == b.auth_token && a.connect_timeout_ms == b.connect_timeout_ms &&
	       a.request_timeout_ms == b.request_timeout_ms && a.max_attempts == b.max_attempts;
}

const char kHex[] = "0123456789abcdef";

std::string CacheDir() {
	return std::string(DataDir) + "/s5vector_cache";
}

std::string CachePath(const s5::EncryptedCid &cid) {
	std::string name;
	name.reserve(64 + 4);
	for (uint8_t b : cid.encrypted.hash) {
		name.push_back(kHex[b >> 4]);
		name.push_back(kHex[b & 15]);
	}
	return CacheDir() + "/" + name + ".seg";
}

bool IsCacheFileName(const char *n) {
	size_t len = strlen(n);
	return len == 68 && strcmp(n + 64, ".seg") == 0;
}

bool IsTempFileName(const char *n) {
	return strncmp(n, "tmp.", 4) == 0;
}

uint64_t CacheLimitBytes() {
	return (uint64_t)s5v_cache_size_kb * 1024;
}

// Keep the cache under its limit: when the files pass `limit`, the least recently used go first (mtime, refreshed
// on every hit) until they are down to `target`. Temporary files older than a minute (a backend died mid-write) go
// too. Returns the bytes left. A scan lists the whole directory, so CachePut does not call it on every write.
uint64_t EvictCache(uint64_t limit, uint64_t target) {
	std::string dir = CacheDir();
	DIR *d = opendir(dir.c_str());
	if (d == nullptr)
		return 0;
	struct Entry {
		std::string path;
		time_t mtime;
		uint64_t size;
	};
	std::vector<Entry> files;
	uint64_t total = 0;
	time_t now = time(nullptr);
	for (struct dirent *de; (de = readdir(d)) != nullptr;) {
		bool tmp = IsTempFileName(de->d_name);
		if (!tmp && !IsCacheFileName(de->d_name))
			continue;
		std::string path = dir + "/" + de->d_name;
		struct stat st;
		if (stat(path.c_str(), &st) != 0)
			continue;
		if (tmp) {
			if (now - st.st_mtime > 60)
				(void)unlink(path.c_str());
			continue;
		}
		files.push_back(Entry{std::move(path), st.st_mtime, (uint64_t)st.st_size});
		total += (uint64_t)st.st_size;
	}
	closedir(d);
	if (total <= limit)
		return total;
	std::sort(files.begin(), files.end(), [](const Entry &a, const Entry &b) { return a.mtime < b.mtime; });
	for (const Entry &e : files) {
		if (total <= target)
			break;
		if (unlink(e.path.c_str()) == 0 || errno == ENOENT)
			total -= e.size;
	}
	return total;
}

// When CachePut scans the cache: this backend's estimate of its size (the last scan's total plus what it wrote
// since) passes the limit, or the last scan is kCacheScanSeconds old (other backends' writes are not in the
// estimate). A scan that evicts goes down to 90% of the limit, so a full cache is not listed again on every write.
constexpr time_t kCacheScanSeconds = 10;
uint64_t cache_estimate = 0;
time_t cache_scanned_at = 0;

void MaybeEvictCache(uint64_t limit, uint64_t written) {
	cache_estimate += written;
	time_t now = time(nullptr);
	if (cache_estimate <= limit && now - cache_scanned_at < kCacheScanSeconds)
		return;
	cache_estimate = EvictCache(limit, limit - limit / 10);
	cache_scanned_at = now;
}

bool ReadWholeFile(const std::string &path, uint64_t expect, std::vector<uint8_t> *out, struct stat *st_out) {
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != expect) {
		close(fd);
		return false;
	}
	out->resize(expect);
	uint64_t got = 0;
	while (got < expect) {
		ssize_t n = read(fd, out->data() + got, expect - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return false;
		}
		got += (uint64_t)n;
	}
	// What the file is after the read: a write during it changed ctime, so a memo (CacheGet) cannot match.
	bool ok = fstat(fd, st_out) == 0;
	close(fd);
	return ok;
}

// Cache files this backend has hashed and found right, with what stat said of them after its last use: a file
// whose inode, size, mtime and ctime are still those was not written since (a write, a rename over it or a touch
// changes ctime, which no one can set back), so it is not hashed again. Bounded: emptied when it grows past
// kVerifiedFilesMax entries.
struct FileMemo {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};
constexpr size_t kVerifiedFilesMax = 65536;
std::unordered_map<s5::Blake3Hash, FileMemo, HashOf> verified_files;

bool SameTime(const struct timespec &a, const struct timespec &b) {
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool Unchanged(const FileMemo &m, const struct stat &st) {
	return m.dev == st.st_dev && m.ino == st.st_ino && m.size == st.st_size && SameTime(m.mtime, st.st_mtim) &&
	       SameTime(m.ctime, st.st_ctim);
}

// Decode a plaintext segment and check it is the part asked for; copy its vectors to part.dest.
Status DecodePart(const SegmentIdentity &identity, const RemotePartRef &part, std::span<const uint8_t> plain) {
	s5::SegmentView view;
	S5V_RETURN_IF_ERROR(s5::DecodeSegment(plain, {}, &view));
	S5V_RETURN_IF_ERROR(s5::CheckSegmentIdentity(view.header, identity.index_id, part.list, part.segment_no,
	                                             identity.dims, identity.metric));
	if (view.header.row_count != part.rows)
		return Status::Corrupt("segment holds " + std::to_string(view.header.row_count) + " rows, its part page " +
		                       std::to_string(part.rows));
	for (uint64_t r = 0; r < part.rows; r++)
		if (view.RowId(r) != part.row_ids[r])
			return Status::Corrupt("segment row " + std::to_string(r) + " names another heap row than its part page");
	view.CopyVectors(std::span<float>(part.dest, (size_t)part.rows * identity.dims));
	return Status::Ok();
}

std::string PartName(const RemotePartRef &p) {
	return "segment " + std::to_string(p.segment_no) + " of list " + std::to_string(p.list) + " (blob " +
	       s5::RawCidText(p.cid.encrypted) + ")";
}

} // namespace

bool S5Configured() noexcept {
	return s5v_s5_url != nullptr && s5v_s5_url[0] != '\0';
}

Status S5ClientForSettings(s5::S5Client **out) noexcept {
	*out = nullptr;
	if (!S5Configured())
		return Status::Unavailable("s5vector.s5_url is not set");
	try {
		std::string token;
		S5V_RETURN_IF_ERROR(TokenFromSettings(&token));
		s5::S5ClientOptions o = OptionsFromSettings(token);
		if (backend_client == nullptr || !SameOptions(backend_client->options(), o)) {
			backend_client.reset();
			S5V_RETURN_IF_ERROR(s5::S5Client::Create(o, &backend_client));
		}
		*out = backend_client.get();
		return Status::Ok();
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory creating the S5 client");
	}
}

bool CacheGet(const s5::EncryptedCid &cid, std::vector<uint8_t> *plain) noexcept {
	if (CacheLimitBytes() == 0)
		return false;
	try {
		std::string path = CachePath(cid);
		struct stat st;
		if (!ReadWholeFile(path, cid.plaintext.size, plain, &st))
			return false;
		auto memo = verified_files.find(cid.plaintext.hash);
		bool trusted = memo != verified_files.end() && Unchanged(memo->second, st);
		if (!trusted && s5::Blake3(*plain) != cid.plaintext.hash) {
			// Changed behind our back (or a torn write): never used, removed.
			verified_files.erase(cid.plaintext.hash);
			(void)unlink(path.c_str());
			plain->clear();
			return false;
		}
		(void)utimensat(AT_FDCWD, path.c_str(), nullptr, 0); // recency
		// Remember the file as it is after the touch (what the next read's fstat must find).
		if (stat(path.c_str(), &st) == 0 && (uint64_t)st.st_size == cid.plaintext.size) {
			if (verified_files.size() >= kVerifiedFilesMax)
				verified_files.clear();
			verified_files[cid.plaintext.hash] = FileMemo{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
		}
		return true;
	} catch (...) {
		plain->clear();
		return false;
	}
}

namespace {

bool EnsureCacheDir() {
	std::string dir = CacheDir();
	return mkdir(dir.c_str(), S_IRWXU) == 0 || errno == EEXIST;
}

// A fresh temporary name in the cache directory (this backend's pid and a counter; called on the backend's thread).
std::string NextTempPath() {
	static uint64_t counter = 0;
	return CacheDir() + "/tmp." + std::to_string(MyProcPid) + "." + std::to_string(++counter);
}

// Writes `plain` to a new file at `tmp` (plain POSIX: safe on a ParallelFor worker). False, and no file left, on
// any failure (a full disk: the segment is simply not cached).
bool WriteTempFile(const std::string &tmp, std::span<const uint8_t> plain) noexcept {
	int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0)
		return false;
	size_t done = 0;
	bool ok = true;
	while (done < plain.size()) {
		ssize_t n = write(fd, plain.data() + done, plain.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = false;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) != 0)
		ok = false;
	if (!ok)
		(void)unlink(tmp.c_str());
	return ok;
}

// Renames a written temporary file to the blob's cache file (atomic) and keeps the cache under its limit.
void PublishCacheFile(const std::string &tmp, const s5::EncryptedCid &cid, uint64_t bytes, uint64_t limit) {
	if (rename(tmp.c_str(), CachePath(cid).c_str()) != 0) {
		(void)unlink(tmp.c_str());
		return;
	}
	MaybeEvictCache(limit, bytes);
}

} // namespace

void CachePut(const s5::EncryptedCid &cid, std::span<const uint8_t> plain) noexcept {
	uint64_t limit = CacheLimitBytes();
	if (limit == 0 || plain.size() > limit)
		return;
	try {
		if (!EnsureCacheDir())
			return;
		std::string tmp = NextTempPath();
		if (WriteTempFile(tmp, plain))
			PublishCacheFile(tmp, cid, plain.size(), limit);
	} catch (...) {
	}
}

int64_t CacheReset() noexcept {
	int64_t removed = 0;
	try {
		MemClear();
		verified_files.clear();
		cache_estimate = 0;
		std::string dir = CacheDir();
		DIR *d = opendir(dir.c_str());
		if (d == nullptr)
			return 0;
		for (struct dirent *de; (de = readdir(d)) != nullptr;) {
			if (!IsCacheFileName(de->d_name) && !IsTempFileName(de->d_name))
				continue;
			std::string path = dir + "/" + de->d_name;
			if (unlink(path.c_str()) == 0 && IsCacheFileName(de->d_name))
				removed++;
		}
		closedir(d);
	} catch (...) {
	}
	return removed;
}

Status FetchRemoteParts(const SegmentIdentity &identity, std::span<const RemotePartRef> parts, bool use_cache,
                        bool thorough, std::vector<FetchedPart> *out, const CancelToken &cancel) noexcept {
	try {
		out->clear();
		out->resize(parts.size());
		std::vector<size_t> misses;
		std::vector<uint8_t> plain; // one buffer for every segment of the call
		for (size_t i = 0; i < parts.size(); i++) {
			const size_t floats = (size_t)parts[i].rows * identity.dims;
			if (use_cache && MemGet(parts[i], floats)) {
				(*out)[i].from_cache = true;
				s5_fetch_counters.cache_hits++;
				continue;
			}
			if (use_cache && CacheGet(parts[i].cid, &plain)) {
				FetchedPart &f = (*out)[i];
				f.status = DecodePart(identity, parts[i], plain);
				if (f.status.ok()) {
					f.from_cache = true;
					s5_fetch_counters.cache_hits++;
					MemPut(parts[i], floats);
					continue;
				}
				// Right hash but wrong content: the page's CID names a bad segment; the network copy is the same
				// bytes, so this is the answer (no retry).
				f.status = Status::Corrupt(PartName(parts[i]) + ": " + f.status.message());
				continue;
			}
			misses.push_back(i);
		}
		if (misses.empty())
			return Status::Ok();
		s5::S5Client *client = nullptr;
		Status cs = S5ClientForSettings(&client);
		if (!cs.ok()) {
			for (size_t i : misses)
				(*out)[i].status = cs;
			return cs;
		}
		std::vector<s5::BlobId> ids;
		ids.reserve(misses.size());
		for (size_t i : misses)
			ids.push_back(parts[i].cid.encrypted);
		std::vector<s5::DownloadResult> results;
		Status st = client->DownloadMany(ids, &results, cancel);
		if (st.code() == StatusCode::Cancelled)
			return st;
		// The client checked each answer's size and BLAKE3 against its CID: the decryption does not hash it again.
		s5::DecryptChecks checks;
		checks.ciphertext_hash = false;
		checks.plaintext_hash = thorough;
		struct Job {
			size_t k; // in misses and results
			std::string tmp;
			bool written = false;
			Status status;
		};
		std::vector<Job> jobs;
		jobs.reserve(misses.size());
		uint64_t job_bytes = 0;
		for (size_t k = 0; k < misses.size(); k++) {
			size_t i = misses[k];
			const RemotePartRef &p = parts[i];
			FetchedPart &f = (*out)[i];
			s5_fetch_counters.cache_misses++;
			if (k >= results.size()) {
				f.status = st.ok() ? Status::Internal("missing download result") : st;
				continue;
			}
			if (!results[k].status.ok()) {
				Status rs = ReferencedObject(results[k].status);
				f.status = Status(rs.code(), PartName(p) + ": " + rs.message());
				continue;
			}
			s5_fetch_counters.fetched_bytes += (int64_t)results[k].data.size();
			job_bytes += results[k].data.size();
			jobs.push_back(Job{k, {}, false, {}});
		}
		const uint64_t limit = use_cache ? CacheLimitBytes() : 0;
		const bool to_cache = limit > 0 && EnsureCacheDir();
		if (to_cache)
			for (Job &j : jobs)
				j.tmp = NextTempPath();
		// Decrypt, decode (into each part's dest) and write the cache files on this thread and, for a batch worth
		// it, on spare CPUs too: plain C++ and POSIX only, nothing of PostgreSQL's (the backend's state, memory
		// contexts, errors) is touched there. Renames, counters and the memory cache stay on this thread.
		const unsigned extra = jobs.size() < 2                     ? 0
		                       : s5v_fetch_threads >= 0            ? (unsigned)s5v_fetch_threads
		                       : job_bytes >= kParallelDecodeBytes ? SpareCpus(3)
		                                                           : 0;
		std::vector<std::vector<uint8_t>> plains(1 + extra);
		ParallelFor(jobs.size(), extra, [&](size_t n, unsigned worker) {
			Job &j = jobs[n];
			const RemotePartRef &p = parts[misses[j.k]];
			try {
				std::vector<uint8_t> &plain = plains[worker];
				Status ds = s5::DecryptBlob(results[j.k].data, p.cid, &plain, checks);
				if (ds.ok())
					ds = DecodePart(identity, p, plain);
				if (!ds.ok()) {
					j.status = Status::Corrupt(PartName(p) + ": " + ds.message());
					return;
				}
				std::vector<uint8_t>().swap(results[j.k].data);
				if (to_cache && plain.size() <= limit)
					j.written = WriteTempFile(j.tmp, plain);
			} catch (const std::bad_alloc &) {
				j.status = Status::OutOfMemory("out of memory decoding a segment");
			} catch (...) {
				j.status = Status::Internal("unexpected exception decoding a segment");
			}
		});
		for (const Job &j : jobs) {
			size_t i = misses[j.k];
			(*out)[i].status = j.status;
			if (!j.status.ok())
				continue;
			if (j.written)
				PublishCacheFile(j.tmp, parts[i].cid, parts[i].cid.plaintext.size, limit);
			if (use_cache)
				MemPut(parts[i], (size_t)parts[i].rows * identity.dims);
		}
		return Status::Ok();
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory fetching segments");
	} catch (...) {
		return Status::Internal("unexpected exception fetching segments");
	}
}

} // namespace s5v::pg
