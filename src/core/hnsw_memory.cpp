// InMemoryGraph: the graph in RAM (index build, unit tests), and the devirtualised instantiation of the algorithm
// over it. Vectors are stored contiguously with a 64-byte aligned stride; neighbour lists are fixed-capacity uint32
// arrays ([count, ids...]; level 0 holds 2m, upper levels m).
// Vectors are stored as given: for cosine the caller normalises before Add (the glue does), as IndexDistance
// for cosine is -dot.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>

#include <immintrin.h>

#include "hnsw.h"
#include "hnsw_internal.h"

namespace s5v::hnsw {

namespace {

// Minimal 64-byte aligned allocator so each vector starts on a cache line.
template <class T> struct AlignedAllocator {
	using value_type = T;
	AlignedAllocator() = default;
	template <class U> AlignedAllocator(const AlignedAllocator<U> &) noexcept {}
	T *allocate(std::size_t n) {
		if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
			throw std::bad_alloc();
		return static_cast<T *>(::operator new (n * sizeof(T), std::align_val_t{64}));
	}
	void deallocate(T *p, std::size_t) noexcept { ::operator delete (p, std::align_val_t{64}); }
	template <class U> bool operator==(const AlignedAllocator<U> &) const noexcept { return true; }
};

using KernelFn = float (*)(const float *, const float *, std::size_t) noexcept;

// Build copies in IEEE half precision (see Impl::half): the build's distances read half the bytes of a float
// vector. A float query against a half vector, on AVX2 + FMA + F16C; only used when the CPU has them.
#if defined(__x86_64__)
#define S5V_HALF_TARGET __attribute__((target("avx2,fma,f16c")))
S5V_HALF_TARGET inline float HorizontalSum(__m256 v) noexcept {
	const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
S5V_HALF_TARGET float HalfL2(const float *q, const std::uint16_t *h, std::size_t n) noexcept {
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	std::size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i)));
		const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i + 8)));
		const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), x0);
		const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), x1);
		a0 = _mm256_fmadd_ps(d0, d0, a0);
		a1 = _mm256_fmadd_ps(d1, d1, a1);
	}
	float sum = HorizontalSum(_mm256_add_ps(a0, a1));
	for (; i < n; ++i) {
		const float d = q[i] - _cvtsh_ss(h[i]);
		sum += d * d;
	}
	return sum;
}
S5V_HALF_TARGET float HalfDot(const float *q, const std::uint16_t *h, std::size_t n) noexcept {
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	std::size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i)));
		const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i + 8)));
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x0, a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), x1, a1);
	}
	float sum = HorizontalSum(_mm256_add_ps(a0, a1));
	for (; i < n; ++i)
		sum += q[i] * _cvtsh_ss(h[i]);
	return sum;
}
S5V_HALF_TARGET void ToHalf(const float *x, std::uint16_t *h, std::size_t n) noexcept {
	std::size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128(reinterpret_cast<__m128i *>(h + i),
		                 _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	for (; i < n; ++i)
		h[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
S5V_HALF_TARGET void FromHalf(const std::uint16_t *h, float *x, std::size_t n) noexcept {
	std::size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i))));
	for (; i < n; ++i)
		x[i] = _cvtsh_ss(h[i]);
}
bool CpuHasHalf() noexcept {
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
#else
float HalfL2(const float *, const std::uint16_t *, std::size_t) noexcept {
	return 0.0f;
}
float HalfDot(const float *, const std::uint16_t *, std::size_t) noexcept {
	return 0.0f;
}
void ToHalf(const float *, std::uint16_t *, std::size_t) noexcept {}
void FromHalf(const std::uint16_t *, float *, std::size_t) noexcept {}
bool CpuHasHalf() noexcept {
	return false;
}
#endif

// Half copies pay off where a vector is several cache lines and the build's distances wait on memory (784-d:
// 3 KB a float vector); below this the float kernels are as fast.
constexpr std::size_t kHalfMinDim = 256;
// A vector is kept in half precision only if that keeps its distances close: no component beyond the half range
// (65504), and not a vector whose components are all so small that half precision's 10-bit mantissa has run out of
// exponent (below 2^-14 it loses bits). One that does not qualify turns half copies off for the whole graph.
bool HalfRepresentable(const float *x, std::size_t n) noexcept {
	float top = 0.0f;
	for (std::size_t i = 0; i < n; ++i) {
		const float a = std::fabs(x[i]);
		if (!(a <= 60000.0f))
			return false; // too large, or NaN
		top = std::max(top, a);
	}
	return top == 0.0f || top >= 1.0f / 1024.0f;
}

} // namespace

struct InMemoryGraph::Impl {
	std::size_t dim;
	std::size_t stride; // floats per stored vector (dim rounded up to 16)
	Metric metric;
	Params params;
	std::size_t cap0;   // 2m
	std::size_t cap_up; // m
	KernelFn kernel;
	bool negate; // inner product / cosine: distance is -dot

	std::vector<float, AlignedAllocator<float>> vectors;
	std::vector<std::uint32_t> level0; // per node: [count, 2m ids]
	std::vector<std::uint8_t> levels;
	std::vector<std::uint8_t> deleted;
	std::vector<std::unique_ptr<std::uint32_t[]>> upper; // per node: level * [count, m ids], or null
	std::size_t upper_words = 0;
	std::size_t count = 0;
	NodeId entry = kNoNode;
	int entry_level = -1;
	// Build distances on half-precision copies (L2, inner product, cosine; dim >= kHalfMinDim; CPU with F16C):
	// Insert's searches, heuristic and back-links read half the bytes. The float vectors stay the stored ones (the
	// pages are written from them) and searches of a built graph use them. Turned off (and freed) for good by the
	// first vector that half precision cannot represent closely (HalfRepresentable).
	bool half = false;
	std::vector<std::uint16_t, AlignedAllocator<std::uint16_t>> halves;
	std::vector<NodeId> view_buf;                  // neighbors_view conversion buffer
	std::unique_ptr<internal::MemoryAccess> build; // scratch reused by every insert

	Impl(std::size_t d, Metric m, const Params &p) : dim(d), metric(m), params(p) {
		if (params.m < 2)
			params.m = 2;
		stride = (dim + 15) & ~std::size_t{15};
		if (stride == 0)
			stride = 16;
		cap0 = static_cast<std::size_t>(2 * params.m);
		cap_up = static_cast<std::size_t>(params.m);
		const KernelSet &ks = ActiveKernels();
		switch (metric) {
		case Metric::L2:
			kernel = ks.l2_squared;
			negate = false;
			break;
		case Metric::L1:
			kernel = ks.l1;
			negate = false;
			break;
		case Metric::InnerProduct:
		case Metric::Cosine:
		default:
			kernel = ks.inner_product;
			negate = true;
			break;
		}
		half = metric != Metric::L1 && dim >= kHalfMinDim && CpuHasHalf();
	}

	const float *Vec(NodeId id) const { return vectors.data() + static_cast<std::size_t>(id) * stride; }
	float Dist(const float *a, const float *b) const {
		const float r = kernel(a, b, dim);
		return negate ? -r : r;
	}
	const std::uint16_t *Half(NodeId id) const { return halves.data() + static_cast<std::size_t>(id) * stride; }
	float HalfDist(const float *a, const std::uint16_t *b) const {
		return negate ? -HalfDot(a, b, dim) : HalfL2(a, b, dim);
	}
	void DropHalves() {
		half = false;
		std::vector<std::uint16_t, AlignedAllocator<std::uint16_t>>().swap(halves);
	}
	std::uint32_t *List(NodeId id, int level) {
		if (level == 0)
			return level0.data() + static_cast<std::size_t>(id) * (cap0 + 1);
		return upper[static_cast<std::size_t>(id)].get() + static_cast<std::size_t>(level - 1) * (cap_up + 1);
	}
	bool HasLevel(NodeId id, int level) const {
		return id < count && level >= 0 && level <= static_cast<int>(levels[static_cast<std::size_t>(id)]);
	}
	std::size_t Cap(int level) const { return level == 0 ? cap0 : cap_up; }
};

namespace internal {

// The devirtualised access: direct array reads, kernel pointer, dense visited table.
struct MemoryAccess {
	explicit MemoryAccess(InMemoryGraph::Impl *impl, bool for_build = false) : g(impl), build(for_build) {}
	static InMemoryGraph::Impl *ImplOf(InMemoryGraph &graph) { return graph.impl_; }

	InMemoryGraph::Impl *g;
	bool build; // Insert/Repair: distances on the half copies when the graph has them
	DenseVisited visited;
	Scratch scratch;
	std::vector<float> from_half, e_half; // a half copy widened to float (StoredDistances, NearerThanAll)

	bool UseHalf() const { return build && g->half; }

	std::size_t VisitedCapacity() const { return g->count; }

	Status EntryPoint(NodeId &node, int &level) {
		node = g->entry;
		level = g->entry_level;
		return Status::Ok();
	}

	template <class F> Status ForEachNeighbor(NodeId node, int level, F &&f) {
		if (!g->HasLevel(node, level)) [[unlikely]]
			return Status::Ok();
		const std::uint32_t *list = g->List(node, level);
		const std::uint32_t n = list[0];
		for (std::uint32_t i = 1; i <= n; ++i)
			f(static_cast<NodeId>(list[i]));
		return Status::Ok();
	}

	Status Distances(const float *q, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass) {
		if (!UseHalf())
			return ArenaDistances(g, q, ids, n, out, pass,
			                      [this](NodeId id) { return !g->deleted[static_cast<std::size_t>(id)]; });
		const std::size_t lines = g->stride / 32; // 64-byte lines of a half copy
		for (std::size_t i = 0; i < n; ++i) {
			if (i + 1 < n) {
				const char *next = reinterpret_cast<const char *>(g->Half(ids[i + 1]));
				for (std::size_t k = 0; k < lines; ++k)
					__builtin_prefetch(next + 64 * k);
			}
			out[i] = g->HalfDist(q, g->Half(ids[i]));
			if (pass != nullptr)
				pass[i] = g->deleted[static_cast<std::size_t>(ids[i])] ? 0 : 1;
		}
		return Status::Ok();
	}

	Status StoredDistances(NodeId from, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass) {
		if (!UseHalf())
			return Distances(g->Vec(from), ids, n, out, pass);
		from_half.resize(g->dim);
		FromHalf(g->Half(from), from_half.data(), g->dim);
		return Distances(from_half.data(), ids, n, out, pass);
	}

	Status NearerThanAll(const Cand &e, const std::vector<Cand> &kept, bool &good) {
		if (!UseHalf())
			return ArenaNearerThanAll(g, e, kept, good);
		e_half.resize(g->dim);
		FromHalf(g->Half(e.id), e_half.data(), g->dim);
		good = true;
		for (const Cand &k : kept) {
			if (g->HalfDist(e_half.data(), g->Half(k.id)) <= e.d) {
				good = false;
				break;
			}
		}
		return Status::Ok();
	}

	Status SetNeighborIds(NodeId node, int level, const NodeId *ids, std::size_t n) {
		if (!g->HasLevel(node, level) || n > g->Cap(level))
			return Status::Internal("hnsw neighbour list out of bounds");
		std::uint32_t *list = g->List(node, level);
		list[0] = static_cast<std::uint32_t>(n);
		for (std::size_t i = 0; i < n; ++i)
			list[i + 1] = static_cast<std::uint32_t>(ids[i]);
		return Status::Ok();
	}
	Status SetNeighborCands(NodeId node, int level, const Cand *c, std::size_t n) {
		if (!g->HasLevel(node, level) || n > g->Cap(level))
			return Status::Internal("hnsw neighbour list out of bounds");
		std::uint32_t *list = g->List(node, level);
		list[0] = static_cast<std::uint32_t>(n);
		for (std::size_t i = 0; i < n; ++i)
			list[i + 1] = static_cast<std::uint32_t>(c[i].id);
		return Status::Ok();
	}
	Status SetEntryPoint(NodeId node, int level) {
		g->entry = node;
		g->entry_level = level;
		return Status::Ok();
	}
	// One writer: the list is what the caller just read.
	Status CasNeighborIds(NodeId node, int level, const NodeId *, std::size_t, const NodeId *desired,
	                      std::size_t n_desired, bool &applied) {
		applied = true;
		return SetNeighborIds(node, level, desired, n_desired);
	}
	Status VectorOf(NodeId node, std::vector<float> &out) {
		out.assign(g->Vec(node), g->Vec(node) + g->dim);
		return Status::Ok();
	}
};

Status MemoryLink(InMemoryGraph &graph, NodeId node, int level, const float *vec, std::size_t dim, const Params &p,
                  const CancelToken &cancel, LinkMode mode) {
	auto *g = MemoryAccess::ImplOf(graph);
	if (dim != g->dim)
		return Status::InvalidInput("vector dimensions do not match the graph");
	if (p.m > g->params.m)
		return Status::InvalidInput("hnsw m is larger than the graph's list capacity");
	if (node >= g->count || level > static_cast<int>(g->levels[static_cast<std::size_t>(node)]))
		return Status::InvalidInput("hnsw node is not in the graph");
	if (!g->build)
		g->build = std::make_unique<MemoryAccess>(g, true);
	return LinkNode(*g->build, node, level, vec, p, cancel, mode);
}

Status MemoryRepairLocal(InMemoryGraph &graph, NodeId node, int level, const float *vec, const Params &p,
                         bool &sparse) {
	auto *g = MemoryAccess::ImplOf(graph);
	if (node >= g->count || level > static_cast<int>(g->levels[static_cast<std::size_t>(node)]))
		return Status::InvalidInput("hnsw node is not in the graph");
	if (!g->build)
		g->build = std::make_unique<MemoryAccess>(g, true);
	return RepairLocalT(*g->build, node, level, vec, p, sparse);
}

std::unique_ptr<SearchEngine> MakeMemorySearchEngine(InMemoryGraph &graph, std::size_t dim, const CancelToken &cancel) {
	return std::make_unique<SearchEngineT<MemoryAccess>>(dim, cancel, MemoryAccess::ImplOf(graph));
}

} // namespace internal

InMemoryGraph::InMemoryGraph(std::size_t dim, Metric metric, const Params &params)
    : impl_(new Impl(dim, metric, params)) {}

InMemoryGraph::~InMemoryGraph() {
	delete impl_;
}

NodeId InMemoryGraph::Add(const float *vec, int level) {
	Impl &g = *impl_;
	if (vec == nullptr || level < 0 || level > kMaxLevel || g.count >= std::numeric_limits<std::uint32_t>::max() - 1)
		return kNoNode;
	try {
		const std::size_t id = g.count;
		// Grow every array before writing any, so a failed allocation leaves the graph unchanged.
		auto grow = [](auto &v, std::size_t need) {
			if (v.capacity() < need)
				v.reserve(std::max(need, v.capacity() * 2));
		};
		if (g.half && !HalfRepresentable(vec, g.dim))
			g.DropHalves();
		grow(g.vectors, (id + 1) * g.stride);
		if (g.half)
			grow(g.halves, (id + 1) * g.stride);
		grow(g.level0, (id + 1) * (g.cap0 + 1));
		grow(g.levels, id + 1);
		grow(g.deleted, id + 1);
		grow(g.upper, id + 1);
		std::unique_ptr<std::uint32_t[]> up;
		const std::size_t up_words = static_cast<std::size_t>(level) * (g.cap_up + 1);
		if (level > 0) {
			up.reset(new std::uint32_t[up_words]);
			for (int l = 0; l < level; ++l)
				up[static_cast<std::size_t>(l) * (g.cap_up + 1)] = 0;
		}
		g.vectors.resize((id + 1) * g.stride, 0.0f);
		std::copy(vec, vec + g.dim, g.vectors.data() + id * g.stride);
		if (g.half) {
			g.halves.resize((id + 1) * g.stride, 0);
			ToHalf(vec, g.halves.data() + id * g.stride, g.dim);
		}
		g.level0.resize((id + 1) * (g.cap0 + 1), 0);
		g.levels.push_back(static_cast<std::uint8_t>(level));
		g.deleted.push_back(0);
		g.upper.push_back(std::move(up));
		g.upper_words += up_words;
		g.count = id + 1;
		return static_cast<NodeId>(id);
	} catch (...) {
		return kNoNode;
	}
}

Status InMemoryGraph::AddAndInsert(const float *vec, std::uint64_t random_bits, const CancelToken &cancel,
                                   NodeId &out) {
	out = kNoNode;
	const int level = RandomLevel(impl_->params.m, random_bits);
	const NodeId id = Add(vec, level);
	if (id == kNoNode)
		return vec == nullptr ? Status::InvalidInput("hnsw insert needs a vector")
		                      : Status::OutOfMemory("out of memory adding a node to the hnsw graph");
	out = id;
	try {
		return internal::MemoryLink(*this, id, level, vec, impl_->dim, impl_->params, cancel,
		                            internal::LinkMode::Insert);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in hnsw insert");
	} catch (...) {
		return Status::Internal("unexpected exception in hnsw insert");
	}
}

std::size_t InMemoryGraph::size() const {
	return impl_->count;
}
std::size_t InMemoryGraph::dim() const {
	return impl_->dim;
}
int InMemoryGraph::level(NodeId node) const {
	return node < impl_->count ? static_cast<int>(impl_->levels[static_cast<std::size_t>(node)]) : -1;
}
const float *InMemoryGraph::vector_data(NodeId node) const {
	return node < impl_->count ? impl_->Vec(node) : nullptr;
}

std::span<const NodeId> InMemoryGraph::neighbors_view(NodeId node, int level) const {
	Impl &g = *impl_;
	g.view_buf.clear();
	if (!g.HasLevel(node, level))
		return {};
	const std::uint32_t *list = g.List(node, level);
	try {
		g.view_buf.assign(list + 1, list + 1 + list[0]);
	} catch (...) {
		return {};
	}
	return g.view_buf;
}

std::span<const std::uint32_t> InMemoryGraph::neighbor_ids(NodeId node, int level) const {
	Impl &g = *impl_;
	if (!g.HasLevel(node, level))
		return {};
	const std::uint32_t *list = g.List(node, level);
	return {list + 1, list[0]};
}

std::size_t InMemoryGraph::memory_bytes() const {
	const Impl &g = *impl_;
	return g.vectors.capacity() * sizeof(float) + g.halves.capacity() * sizeof(std::uint16_t) +
	       g.level0.capacity() * sizeof(std::uint32_t) + g.levels.capacity() + g.deleted.capacity() +
	       g.upper.capacity() * sizeof(void *) + g.upper_words * sizeof(std::uint32_t) + sizeof(Impl);
}

std::size_t InMemoryGraph::build_copy_bytes() const {
	return impl_->halves.capacity() * sizeof(std::uint16_t);
}

void InMemoryGraph::DropBuildCopies() {
	impl_->DropHalves();
}

void InMemoryGraph::MarkDeleted(NodeId node) {
	if (node < impl_->count)
		impl_->deleted[static_cast<std::size_t>(node)] = 1;
}

bool InMemoryGraph::deleted(NodeId node) const {
	return node < impl_->count && impl_->deleted[static_cast<std::size_t>(node)] != 0;
}

Metric InMemoryGraph::metric() const {
	return impl_->metric;
}
const Params &InMemoryGraph::params() const {
	return impl_->params;
}

Status InMemoryGraph::EntryPoint(NodeId &node, int &level) {
	node = impl_->entry;
	level = impl_->entry_level;
	return Status::Ok();
}

Status InMemoryGraph::Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
                                std::span<std::uint8_t> pass) {
	Impl &g = *impl_;
	if (out.size() < nodes.size() || (!pass.empty() && pass.size() < nodes.size()))
		return Status::InvalidInput("distance output too small");
	for (std::size_t i = 0; i < nodes.size(); ++i) {
		if (nodes[i] >= g.count)
			return Status::InvalidInput("hnsw node is not in the graph");
		out[i] = g.Dist(query, g.Vec(nodes[i]));
		if (!pass.empty())
			pass[i] = g.deleted[static_cast<std::size_t>(nodes[i])] ? 0 : 1;
	}
	return Status::Ok();
}

Status InMemoryGraph::Neighbors(NodeId node, int level, std::vector<NodeId> &out) {
	out.clear();
	Impl &g = *impl_;
	if (!g.HasLevel(node, level))
		return Status::Ok();
	const std::uint32_t *list = g.List(node, level);
	try {
		out.assign(list + 1, list + 1 + list[0]);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory reading hnsw neighbours");
	}
	return Status::Ok();
}

Status InMemoryGraph::Vector(NodeId node, std::vector<float> &out) {
	Impl &g = *impl_;
	if (node >= g.count)
		return Status::InvalidInput("hnsw node is not in the graph");
	try {
		out.assign(g.Vec(node), g.Vec(node) + g.dim);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory copying a vector");
	}
	return Status::Ok();
}

Status InMemoryGraph::SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) {
	Impl &g = *impl_;
	if (!g.HasLevel(node, level))
		return Status::InvalidInput("hnsw node has no such level");
	if (neighbors.size() > g.Cap(level))
		return Status::InvalidInput("too many hnsw neighbours");
	for (NodeId n : neighbors)
		if (n >= g.count)
			return Status::InvalidInput("hnsw neighbour is not in the graph");
	std::uint32_t *list = g.List(node, level);
	list[0] = static_cast<std::uint32_t>(neighbors.size());
	for (std::size_t i = 0; i < neighbors.size(); ++i)
		list[i + 1] = static_cast<std::uint32_t>(neighbors[i]);
	return Status::Ok();
}

Status InMemoryGraph::SetEntryPoint(NodeId node, int level) {
	if (node != kNoNode && node >= impl_->count)
		return Status::InvalidInput("hnsw entry point is not in the graph");
	impl_->entry = node;
	impl_->entry_level = node == kNoNode ? -1 : level;
	return Status::Ok();
}

} // namespace s5v::hnsw
