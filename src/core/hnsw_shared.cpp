// SharedGraph: the HNSW graph in one relocatable block of shared memory, and the algorithm's instantiation over it
// (an access type like InMemoryGraph's, with a lock per neighbour list and compare-and-set list changes).
#include "hnsw_shared.h"

#include <atomic>
#include <cstring>
#include <limits>
#include <new>
#include <thread>

#include "hnsw_internal.h"

namespace s5v::hnsw {

namespace {

constexpr std::uint64_t kMagic = 0x5335565348474131ULL; // "S5VSHGA1"
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kNoEntry = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kWriter = 1u << 31;  // entry lock: held exclusively
constexpr std::uint32_t kWaiting = 1u << 30; // entry lock: a writer waits (new readers hold back)

// The block's first bytes. Sizes and offsets are fixed by Init; the fields after `total_bytes` change and are only
// touched through atomics or under the entry lock.
struct Header {
	std::uint64_t magic;
	std::uint32_t version;
	std::uint32_t dim;
	std::uint32_t stride;
	std::uint32_t metric;
	std::uint32_t m;
	std::uint32_t ef_construction;
	std::uint64_t capacity;
	std::uint64_t upper_capacity; // words of the upper-level pool
	std::uint64_t payload_bytes;  // per node, rounded up to 8
	std::uint64_t off_vectors, off_level0, off_upper_index, off_locks, off_levels, off_payload, off_upper;
	std::uint64_t total_bytes;
	alignas(64) std::uint64_t count;      // nodes reserved (may pass capacity by the failed reservations)
	alignas(64) std::uint64_t upper_used; // upper-level words reserved
	std::uint32_t full;                   // set once a reservation failed
	alignas(64) std::uint32_t entry_lock;
	std::uint32_t entry; // node id, kNoEntry when empty
	std::int32_t entry_level;
};

constexpr std::size_t Align64(std::size_t x) {
	return (x + 63) & ~std::size_t{63};
}

template <class T> std::atomic_ref<T> Atomic(T &x) {
	return std::atomic_ref<T>(x);
}

inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	asm volatile("yield");
#endif
}

// Spin a little, then give the CPU away (the machine may have fewer cores than participants).
struct Backoff {
	int spins = 0;
	void Pause() noexcept {
		if (++spins < 64)
			CpuRelax();
		else
			std::this_thread::yield();
	}
};

void LockWord(std::uint32_t &w) noexcept {
	auto a = Atomic(w);
	Backoff b;
	while (a.load(std::memory_order_relaxed) != 0 || a.exchange(1, std::memory_order_acquire) != 0)
		b.Pause();
}

void UnlockWord(std::uint32_t &w) noexcept {
	Atomic(w).store(0, std::memory_order_release);
}

void LockShared(std::uint32_t &w) noexcept {
	auto a = Atomic(w);
	Backoff b;
	while (true) {
		std::uint32_t v = a.load(std::memory_order_relaxed);
		if ((v & (kWriter | kWaiting)) == 0) {
			if (a.compare_exchange_weak(v, v + 1, std::memory_order_acquire, std::memory_order_relaxed))
				return;
			continue;
		}
		b.Pause();
	}
}

void UnlockShared(std::uint32_t &w) noexcept {
	Atomic(w).fetch_sub(1, std::memory_order_release);
}

void LockExclusive(std::uint32_t &w) noexcept {
	auto a = Atomic(w);
	Backoff b;
	while (true) {
		std::uint32_t v = a.load(std::memory_order_relaxed);
		if ((v & ~kWaiting) == 0) {
			if (a.compare_exchange_weak(v, kWriter, std::memory_order_acquire, std::memory_order_relaxed))
				return;
			continue;
		}
		if ((v & kWaiting) == 0)
			a.fetch_or(kWaiting, std::memory_order_relaxed);
		b.Pause();
	}
}

void UnlockExclusive(std::uint32_t &w) noexcept {
	Atomic(w).fetch_and(~kWriter, std::memory_order_release);
}

// Holds the entry lock in the mode it was taken, released on every way out.
class EntryGuard {
public:
	explicit EntryGuard(std::uint32_t &w) : w_(w) {}
	~EntryGuard() { Release(); }
	void Shared() {
		LockShared(w_);
		mode_ = 1;
	}
	void Exclusive() {
		LockExclusive(w_);
		mode_ = 2;
	}
	void Release() {
		if (mode_ == 1)
			UnlockShared(w_);
		else if (mode_ == 2)
			UnlockExclusive(w_);
		mode_ = 0;
	}

private:
	std::uint32_t &w_;
	int mode_ = 0;
};

struct Layout {
	std::size_t stride, cap0, cap_up, payload, upper_words;
	std::size_t off_vectors, off_level0, off_upper_index, off_locks, off_levels, off_payload, off_upper, total;
};

// Every size in 64-bit arithmetic with overflow checks; false when the parameters cannot describe a block.
bool ComputeLayout(std::size_t capacity, std::size_t dim, const Params &params, std::size_t payload_bytes,
                   Layout &out) {
	if (capacity == 0 || capacity >= kNoEntry || dim == 0 || dim > (1u << 20) || params.m < 2 || params.m > 1000 ||
	    payload_bytes > 4096)
		return false;
	Layout l{};
	l.stride = (dim + 15) & ~std::size_t{15};
	l.cap0 = static_cast<std::size_t>(2 * params.m);
	l.cap_up = static_cast<std::size_t>(params.m);
	l.payload = (payload_bytes + 7) & ~std::size_t{7};
	// Expected upper levels a node: 1/(m-1) (levels are geometric with p = 1/m). Twice that, plus room for a few
	// hundred nodes at the top level, so a build of any size runs out of nodes before it runs out of these words.
	const std::size_t per_level = l.cap_up + 1;
	std::size_t upper_nodes = 2 * capacity / static_cast<std::size_t>(params.m - 1) + 256;
	l.upper_words = upper_nodes * per_level + static_cast<std::size_t>(kMaxLevel) * per_level * 64;
	std::size_t at = Align64(sizeof(Header));
	auto put = [&](std::size_t &off, std::size_t count, std::size_t elem) -> bool {
		std::size_t bytes;
		if (__builtin_mul_overflow(count, elem, &bytes))
			return false;
		off = at;
		if (__builtin_add_overflow(at, Align64(bytes), &at))
			return false;
		return true;
	};
	std::size_t vec_floats;
	if (__builtin_mul_overflow(capacity, l.stride, &vec_floats))
		return false;
	if (!put(l.off_vectors, vec_floats, sizeof(float)) || !put(l.off_level0, capacity, (l.cap0 + 1) * 4) ||
	    !put(l.off_upper_index, capacity, 4) || !put(l.off_locks, capacity, 4) || !put(l.off_levels, capacity, 1) ||
	    !put(l.off_payload, capacity, l.payload) || !put(l.off_upper, l.upper_words, 4))
		return false;
	l.total = at;
	out = l;
	return true;
}

using KernelFn = float (*)(const float *, const float *, std::size_t) noexcept;

} // namespace

struct SharedGraph::View {
	Header *h = nullptr;
	float *vectors = nullptr;
	std::uint32_t *level0 = nullptr;
	std::uint32_t *upper_index = nullptr;
	std::uint32_t *locks = nullptr;
	std::uint8_t *levels = nullptr;
	std::uint8_t *payload = nullptr;
	std::uint32_t *upper = nullptr;
	std::size_t capacity = 0, dim = 0, stride = 0, cap0 = 0, cap_up = 0, payload_bytes = 0, upper_capacity = 0;
	Params params;
	KernelFn kernel = nullptr;
	bool negate = false;

	const float *Vec(NodeId id) const { return vectors + static_cast<std::size_t>(id) * stride; }
	float Dist(const float *a, const float *b) const {
		const float r = kernel(a, b, dim);
		return negate ? -r : r;
	}
	// Nodes whose data Add has written (ids below this); exact once every participant is done.
	std::size_t Size() const {
		const std::uint64_t c = Atomic(h->count).load(std::memory_order_acquire);
		return c < capacity ? static_cast<std::size_t>(c) : capacity;
	}
	bool HasLevel(NodeId id, int level) const {
		return id < capacity && level >= 0 && level <= static_cast<int>(levels[static_cast<std::size_t>(id)]);
	}
	std::size_t Cap(int level) const { return level == 0 ? cap0 : cap_up; }
	std::uint32_t *List(NodeId id, int level) {
		const std::size_t i = static_cast<std::size_t>(id);
		if (level == 0)
			return level0 + i * (cap0 + 1);
		return upper + upper_index[i] + static_cast<std::size_t>(level - 1) * (cap_up + 1);
	}
	const std::uint32_t *List(NodeId id, int level) const { return const_cast<View *>(this)->List(id, level); }
	std::uint32_t &Lock(NodeId id) { return locks[static_cast<std::size_t>(id)]; }
};

namespace internal {

// The access type of the algorithm templates over a SharedGraph view. Lists are copied out under their lock;
// changes are compare-and-set under it. EntryPoint/SetEntryPoint read and write the header: the caller holds the
// entry lock (InsertConcurrent).
struct SharedAccess {
	explicit SharedAccess(SharedGraph::View *v) : g(v) {}

	SharedGraph::View *g;
	DenseVisited visited;
	Scratch scratch;
	std::vector<std::uint32_t> nbuf;

	std::size_t VisitedCapacity() const { return g->Size(); }

	Status EntryPoint(NodeId &node, int &level) {
		const std::uint32_t e = g->h->entry;
		node = e == kNoEntry ? kNoNode : static_cast<NodeId>(e);
		level = e == kNoEntry ? -1 : g->h->entry_level;
		return Status::Ok();
	}

	template <class F> Status ForEachNeighbor(NodeId node, int level, F &&f) {
		if (!g->HasLevel(node, level)) [[unlikely]]
			return Status::Ok();
		if (nbuf.size() < g->cap0) [[unlikely]]
			nbuf.resize(g->cap0);
		const std::uint32_t *list = g->List(node, level);
		std::uint32_t &lock = g->Lock(node);
		LockWord(lock);
		const std::uint32_t n = list[0];
		std::memcpy(nbuf.data(), list + 1, sizeof(std::uint32_t) * n);
		UnlockWord(lock);
		for (std::uint32_t i = 0; i < n; ++i)
			f(static_cast<NodeId>(nbuf[i]));
		return Status::Ok();
	}

	Status Distances(const float *q, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass) {
		return ArenaDistances(g, q, ids, n, out, pass, [](NodeId) { return true; });
	}

	Status StoredDistances(NodeId from, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass) {
		return Distances(g->Vec(from), ids, n, out, pass);
	}

	Status NearerThanAll(const Cand &e, const std::vector<Cand> &kept, bool &good) {
		return ArenaNearerThanAll(g, e, kept, good);
	}

	template <class Id> Status WriteList(NodeId node, int level, const Id *ids, std::size_t n) {
		if (!g->HasLevel(node, level) || n > g->Cap(level))
			return Status::Internal("hnsw neighbour list out of bounds");
		std::uint32_t *list = g->List(node, level);
		std::uint32_t &lock = g->Lock(node);
		LockWord(lock);
		list[0] = static_cast<std::uint32_t>(n);
		for (std::size_t i = 0; i < n; ++i)
			list[i + 1] = static_cast<std::uint32_t>(IdOf(ids[i]));
		UnlockWord(lock);
		return Status::Ok();
	}
	static NodeId IdOf(NodeId id) { return id; }
	static NodeId IdOf(const Cand &c) { return c.id; }

	Status SetNeighborIds(NodeId node, int level, const NodeId *ids, std::size_t n) {
		return WriteList(node, level, ids, n);
	}
	Status SetNeighborCands(NodeId node, int level, const Cand *c, std::size_t n) {
		return WriteList(node, level, c, n);
	}
	Status SetEntryPoint(NodeId node, int level) {
		g->h->entry = node == kNoNode ? kNoEntry : static_cast<std::uint32_t>(node);
		g->h->entry_level = node == kNoNode ? -1 : level;
		return Status::Ok();
	}
	Status CasNeighborIds(NodeId node, int level, const NodeId *expected, std::size_t n_expected, const NodeId *desired,
	                      std::size_t n_desired, bool &applied) {
		applied = false;
		if (!g->HasLevel(node, level) || n_desired > g->Cap(level))
			return Status::Internal("hnsw neighbour list out of bounds");
		std::uint32_t *list = g->List(node, level);
		std::uint32_t &lock = g->Lock(node);
		LockWord(lock);
		bool same = list[0] == n_expected;
		for (std::size_t i = 0; same && i < n_expected; ++i)
			same = list[i + 1] == static_cast<std::uint32_t>(expected[i]);
		if (same) {
			list[0] = static_cast<std::uint32_t>(n_desired);
			for (std::size_t i = 0; i < n_desired; ++i)
				list[i + 1] = static_cast<std::uint32_t>(desired[i]);
		}
		UnlockWord(lock);
		applied = same;
		return Status::Ok();
	}
	Status VectorOf(NodeId node, std::vector<float> &out) {
		out.assign(g->Vec(node), g->Vec(node) + g->dim);
		return Status::Ok();
	}
};

} // namespace internal

std::size_t SharedGraph::BytesFor(std::size_t capacity, std::size_t dim, const Params &params,
                                  std::size_t payload_bytes) noexcept {
	Layout l;
	return ComputeLayout(capacity, dim, params, payload_bytes, l) ? l.total : 0;
}

Status SharedGraph::Init(void *base, std::size_t bytes, std::size_t capacity, std::size_t dim, Metric metric,
                         const Params &params, std::size_t payload_bytes) noexcept {
	Layout l;
	if (base == nullptr || (reinterpret_cast<std::uintptr_t>(base) & 63) != 0)
		return Status::InvalidInput("shared hnsw graph needs a 64-byte aligned block");
	if (params.ef_construction < 1)
		return Status::InvalidInput("hnsw ef_construction must be at least 1");
	if (!ComputeLayout(capacity, dim, params, payload_bytes, l))
		return Status::InvalidInput("shared hnsw graph parameters out of range");
	if (bytes < l.total)
		return Status::InvalidInput("shared hnsw graph block too small");
	Header *h = static_cast<Header *>(base);
	std::memset(h, 0, sizeof(Header));
	h->magic = kMagic;
	h->version = kVersion;
	h->dim = static_cast<std::uint32_t>(dim);
	h->stride = static_cast<std::uint32_t>(l.stride);
	h->metric = static_cast<std::uint32_t>(metric);
	h->m = static_cast<std::uint32_t>(params.m);
	h->ef_construction = static_cast<std::uint32_t>(params.ef_construction);
	h->capacity = capacity;
	h->upper_capacity = l.upper_words;
	h->payload_bytes = l.payload;
	h->off_vectors = l.off_vectors;
	h->off_level0 = l.off_level0;
	h->off_upper_index = l.off_upper_index;
	h->off_locks = l.off_locks;
	h->off_levels = l.off_levels;
	h->off_payload = l.off_payload;
	h->off_upper = l.off_upper;
	h->total_bytes = l.total;
	h->entry = kNoEntry;
	h->entry_level = -1;
	// Node locks start released; everything else of a node is written by Add before the node can be reached.
	std::memset(static_cast<char *>(base) + l.off_locks, 0, capacity * sizeof(std::uint32_t));
	return Status::Ok();
}

SharedGraph::SharedGraph(void *base, std::size_t bytes) noexcept : view_(nullptr) {
	Header *h = static_cast<Header *>(base);
	if (base == nullptr || bytes < sizeof(Header) || h->magic != kMagic || h->version != kVersion) {
		status_ = Status::InvalidInput("not a shared hnsw graph block");
		return;
	}
	Params p{static_cast<int>(h->m), static_cast<int>(h->ef_construction)};
	Layout l;
	if (!ComputeLayout(h->capacity, h->dim, p, h->payload_bytes, l) || l.total != h->total_bytes || bytes < l.total ||
	    l.off_vectors != h->off_vectors || l.off_upper != h->off_upper || l.payload != h->payload_bytes ||
	    (h->metric < 1 || h->metric > 4)) {
		status_ = Status::Corrupt("shared hnsw graph header does not match its layout");
		return;
	}
	View *v = new (std::nothrow) View;
	if (v == nullptr) {
		status_ = Status::OutOfMemory("out of memory attaching a shared hnsw graph");
		return;
	}
	char *b = static_cast<char *>(base);
	v->h = h;
	v->vectors = reinterpret_cast<float *>(b + h->off_vectors);
	v->level0 = reinterpret_cast<std::uint32_t *>(b + h->off_level0);
	v->upper_index = reinterpret_cast<std::uint32_t *>(b + h->off_upper_index);
	v->locks = reinterpret_cast<std::uint32_t *>(b + h->off_locks);
	v->levels = reinterpret_cast<std::uint8_t *>(b + h->off_levels);
	v->payload = reinterpret_cast<std::uint8_t *>(b + h->off_payload);
	v->upper = reinterpret_cast<std::uint32_t *>(b + h->off_upper);
	v->capacity = h->capacity;
	v->dim = h->dim;
	v->stride = h->stride;
	v->cap0 = l.cap0;
	v->cap_up = l.cap_up;
	v->payload_bytes = h->payload_bytes;
	v->upper_capacity = h->upper_capacity;
	v->params = p;
	const KernelSet &ks = ActiveKernels();
	switch (static_cast<Metric>(h->metric)) {
	case Metric::L2:
		v->kernel = ks.l2_squared;
		break;
	case Metric::L1:
		v->kernel = ks.l1;
		break;
	case Metric::InnerProduct:
	case Metric::Cosine:
	default:
		v->kernel = ks.inner_product;
		v->negate = true;
		break;
	}
	view_ = v;
}

SharedGraph::~SharedGraph() {
	delete access_;
	delete view_;
}

Status SharedGraph::status() const {
	return status_;
}

Status SharedGraph::Add(const float *vec, int level, const void *payload, NodeId &out) noexcept {
	out = kNoNode;
	if (view_ == nullptr)
		return status_;
	View &g = *view_;
	if (vec == nullptr || level < 0 || level > kMaxLevel)
		return Status::InvalidInput("shared hnsw add needs a vector and a level in 0..15");
	// Upper-level words first, then the node: a failed reservation of either leaves no half-written node.
	std::uint64_t upper_at = 0;
	const std::uint64_t words = static_cast<std::uint64_t>(level) * (g.cap_up + 1);
	if (words > 0) {
		upper_at = Atomic(g.h->upper_used).fetch_add(words, std::memory_order_relaxed);
		if (upper_at + words > g.upper_capacity) {
			Atomic(g.h->full).store(1, std::memory_order_relaxed);
			return Status::LimitExceeded("shared hnsw graph is full (upper levels)");
		}
	}
	const std::uint64_t id = Atomic(g.h->count).fetch_add(1, std::memory_order_relaxed);
	if (id >= g.capacity) {
		Atomic(g.h->full).store(1, std::memory_order_relaxed);
		return Status::LimitExceeded("shared hnsw graph is full");
	}
	const std::size_t i = static_cast<std::size_t>(id);
	float *dst = g.vectors + i * g.stride;
	std::memcpy(dst, vec, sizeof(float) * g.dim);
	std::memset(dst + g.dim, 0, sizeof(float) * (g.stride - g.dim));
	g.levels[i] = static_cast<std::uint8_t>(level);
	g.upper_index[i] = static_cast<std::uint32_t>(upper_at);
	g.level0[i * (g.cap0 + 1)] = 0;
	for (int l = 1; l <= level; ++l)
		g.List(id, l)[0] = 0;
	if (g.payload_bytes > 0) {
		if (payload != nullptr)
			std::memcpy(g.payload + i * g.payload_bytes, payload, g.payload_bytes);
		else
			std::memset(g.payload + i * g.payload_bytes, 0, g.payload_bytes);
	}
	out = static_cast<NodeId>(id);
	return Status::Ok();
}

Status SharedGraph::InsertConcurrent(NodeId node, const CancelToken &cancel) noexcept {
	if (view_ == nullptr)
		return status_;
	View &g = *view_;
	if (node >= g.Size())
		return Status::InvalidInput("hnsw node is not in the graph");
	const int level = g.levels[static_cast<std::size_t>(node)];
	try {
		if (access_ == nullptr)
			access_ = new internal::SharedAccess(view_);
		EntryGuard lock(g.h->entry_lock);
		lock.Shared();
		// Entry fields change only under the exclusive lock.
		if (g.h->entry == kNoEntry || level > g.h->entry_level) {
			lock.Release();
			lock.Exclusive();
		}
		return internal::LinkNode(*access_, node, level, g.Vec(node), g.params, cancel, internal::LinkMode::Insert);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in hnsw insert");
	} catch (...) {
		return Status::Internal("unexpected exception in hnsw insert");
	}
}

bool SharedGraph::full() const noexcept {
	return view_ != nullptr && Atomic(view_->h->full).load(std::memory_order_relaxed) != 0;
}

std::size_t SharedGraph::size() const noexcept {
	return view_ == nullptr ? 0 : view_->Size();
}
std::size_t SharedGraph::capacity() const noexcept {
	return view_ == nullptr ? 0 : view_->capacity;
}
std::size_t SharedGraph::dim() const noexcept {
	return view_ == nullptr ? 0 : view_->dim;
}
int SharedGraph::level(NodeId node) const noexcept {
	return view_ != nullptr && node < view_->Size() ? static_cast<int>(view_->levels[static_cast<std::size_t>(node)])
	                                                : -1;
}
const float *SharedGraph::vector_data(NodeId node) const noexcept {
	return view_ != nullptr && node < view_->Size() ? view_->Vec(node) : nullptr;
}
const void *SharedGraph::payload(NodeId node) const noexcept {
	if (view_ == nullptr || node >= view_->Size() || view_->payload_bytes == 0)
		return nullptr;
	return view_->payload + static_cast<std::size_t>(node) * view_->payload_bytes;
}
std::span<const std::uint32_t> SharedGraph::neighbor_ids(NodeId node, int level) const noexcept {
	if (view_ == nullptr || node >= view_->Size() || !view_->HasLevel(node, level))
		return {};
	const std::uint32_t *list = view_->List(node, level);
	return {list + 1, list[0]};
}
const Params &SharedGraph::params() const noexcept {
	static const Params none{};
	return view_ == nullptr ? none : view_->params;
}

Status SharedGraph::EntryPoint(NodeId &node, int &level) {
	if (view_ == nullptr)
		return status_;
	EntryGuard lock(view_->h->entry_lock);
	lock.Shared();
	const std::uint32_t e = view_->h->entry;
	node = e == kNoEntry ? kNoNode : static_cast<NodeId>(e);
	level = e == kNoEntry ? -1 : view_->h->entry_level;
	return Status::Ok();
}

Status SharedGraph::Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
                              std::span<std::uint8_t> pass) {
	if (view_ == nullptr)
		return status_;
	if (out.size() < nodes.size() || (!pass.empty() && pass.size() < nodes.size()))
		return Status::InvalidInput("distance output too small");
	const std::size_t n = view_->Size();
	for (std::size_t i = 0; i < nodes.size(); ++i) {
		if (nodes[i] >= n)
			return Status::InvalidInput("hnsw node is not in the graph");
		out[i] = view_->Dist(query, view_->Vec(nodes[i]));
		if (!pass.empty())
			pass[i] = 1;
	}
	return Status::Ok();
}

Status SharedGraph::Neighbors(NodeId node, int level, std::vector<NodeId> &out) {
	out.clear();
	if (view_ == nullptr)
		return status_;
	if (node >= view_->Size() || !view_->HasLevel(node, level))
		return Status::Ok();
	try {
		const std::uint32_t *list = view_->List(node, level);
		std::uint32_t &lock = view_->Lock(node);
		out.reserve(view_->Cap(level));
		LockWord(lock);
		out.assign(list + 1, list + 1 + list[0]);
		UnlockWord(lock);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory reading hnsw neighbours");
	}
	return Status::Ok();
}

Status SharedGraph::Vector(NodeId node, std::vector<float> &out) {
	if (view_ == nullptr)
		return status_;
	if (node >= view_->Size())
		return Status::InvalidInput("hnsw node is not in the graph");
	try {
		out.assign(view_->Vec(node), view_->Vec(node) + view_->dim);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory copying a vector");
	}
	return Status::Ok();
}

Status SharedGraph::SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) {
	if (view_ == nullptr)
		return status_;
	const std::size_t n = view_->Size();
	if (node >= n || !view_->HasLevel(node, level))
		return Status::InvalidInput("hnsw node has no such level");
	if (neighbors.size() > view_->Cap(level))
		return Status::InvalidInput("too many hnsw neighbours");
	for (NodeId x : neighbors)
		if (x >= n)
			return Status::InvalidInput("hnsw neighbour is not in the graph");
	internal::SharedAccess a(view_);
	return a.SetNeighborIds(node, level, neighbors.data(), neighbors.size());
}

Status SharedGraph::SetEntryPoint(NodeId node, int level) {
	if (view_ == nullptr)
		return status_;
	if (node != kNoNode && (node >= view_->Size() || level < 0 || level > kMaxLevel))
		return Status::InvalidInput("hnsw entry point is not in the graph");
	EntryGuard lock(view_->h->entry_lock);
	lock.Exclusive();
	view_->h->entry = node == kNoNode ? kNoEntry : static_cast<std::uint32_t>(node);
	view_->h->entry_level = node == kNoNode ? -1 : level;
	return Status::Ok();
}

Status SharedGraph::CompareAndSetNeighbors(NodeId node, int level, std::span<const NodeId> expected,
                                           std::span<const NodeId> desired, bool &applied) {
	applied = false;
	if (view_ == nullptr)
		return status_;
	const std::size_t n = view_->Size();
	if (node >= n || !view_->HasLevel(node, level))
		return Status::InvalidInput("hnsw node has no such level");
	if (desired.size() > view_->Cap(level))
		return Status::InvalidInput("too many hnsw neighbours");
	for (NodeId x : desired)
		if (x >= n)
			return Status::InvalidInput("hnsw neighbour is not in the graph");
	try {
		internal::SharedAccess a(view_);
		return a.CasNeighborIds(node, level, expected.data(), expected.size(), desired.data(), desired.size(), applied);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in hnsw list update");
	}
}

} // namespace s5v::hnsw
