// HNSW micro-benchmark on synthetic clustered data (fixed seed): build time, QPS and recall@10 at ef 10 .. 160.
// Size from the environment: S5V_HNSW_N (default 20000), S5V_HNSW_DIM (128), S5V_HNSW_M (16), S5V_HNSW_EFC (64),
// S5V_HNSW_NQ (queries, 200), S5V_HNSW_STD (spread within a cluster, in tenths: default 5 = 0.5; 15 = 1.5 overlaps like
// bench/hnsw_bench.py's default set).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <ctime>
#include <vector>

#include "hnsw.h"

namespace {

using namespace s5v;
using namespace s5v::hnsw;

std::size_t EnvSize(const char *name, std::size_t def) {
	const char *v = std::getenv(name);
	return v != nullptr ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : def;
}

std::uint64_t SplitMix(std::uint64_t &state) {
	std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

// 1000 Gaussian clusters (centres ~ N(0, 1), points ~ N(centre, std)).
struct Dataset {
	std::size_t n, dim, nq = EnvSize("S5V_HNSW_NQ", 200);
	std::vector<float> data, queries;
	std::vector<std::vector<NodeId>> truth;

	Dataset(std::size_t n_, std::size_t dim_) : n(n_), dim(dim_) {
		std::mt19937 rng(12345);
		std::normal_distribution<float> g(0.0f, 1.0f);
		const std::size_t clusters = 1000;
		const float std_dev = static_cast<float>(EnvSize("S5V_HNSW_STD", 5)) / 10.0f;
		std::vector<float> centres(clusters * dim);
		for (float &c : centres)
			c = g(rng);
		auto point = [&](std::vector<float> &out) {
			const std::size_t c = rng() % clusters;
			for (std::size_t j = 0; j < dim; ++j)
				out.push_back(centres[c * dim + j] + std_dev * g(rng));
		};
		data.reserve(n * dim);
		for (std::size_t i = 0; i < n; ++i)
			point(data);
		for (std::size_t i = 0; i < nq; ++i)
			point(queries);
		truth.resize(nq);
		std::vector<std::pair<float, NodeId>> all(n);
		for (std::size_t q = 0; q < nq; ++q) {
			for (std::size_t i = 0; i < n; ++i) {
				float s = 0;
				for (std::size_t j = 0; j < dim; ++j) {
					const float d = queries[q * dim + j] - data[i * dim + j];
					s += d * d;
				}
				all[i] = {s, i};
			}
			std::partial_sort(all.begin(), all.begin() + 10, all.end());
			for (std::size_t k = 0; k < 10; ++k)
				truth[q].push_back(all[k].second);
		}
	}
};

Dataset &Data() {
	static Dataset d(EnvSize("S5V_HNSW_N", 20000), EnvSize("S5V_HNSW_DIM", 128));
	return d;
}

Params BenchParams() {
	Params p;
	p.m = static_cast<int>(EnvSize("S5V_HNSW_M", 16));
	p.ef_construction = static_cast<int>(EnvSize("S5V_HNSW_EFC", 64));
	return p;
}

// CPU time of this thread: the machine may be shared, wall time alone would mislead.
double ThreadCpuSeconds() {
	timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::unique_ptr<InMemoryGraph> BuildGraph(const Dataset &d, double *seconds, double *cpu_seconds = nullptr) {
	auto g = std::make_unique<InMemoryGraph>(d.dim, Metric::L2, BenchParams());
	NeverCancel never;
	std::uint64_t state = 99;
	const auto t0 = std::chrono::steady_clock::now();
	const double c0 = ThreadCpuSeconds();
	for (std::size_t i = 0; i < d.n; ++i) {
		NodeId id;
		if (!g->AddAndInsert(&d.data[i * d.dim], SplitMix(state), never, id).ok())
			std::abort();
	}
	*seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	if (cpu_seconds != nullptr)
		*cpu_seconds = ThreadCpuSeconds() - c0;
	return g;
}

InMemoryGraph &Graph() {
	static double secs = 0;
	static std::unique_ptr<InMemoryGraph> g = BuildGraph(Data(), &secs);
	return *g;
}

void BM_HnswBuild(benchmark::State &state) {
	const Dataset &d = Data();
	double secs = 0, cpu = 0;
	for (auto _ : state) {
		auto g = BuildGraph(d, &secs, &cpu);
		state.SetIterationTime(secs);
		state.counters["bytes"] = static_cast<double>(g->memory_bytes());
	}
	state.counters["n"] = static_cast<double>(d.n);
	state.counters["sec_per_10k"] = secs * 10000.0 / static_cast<double>(d.n);
	state.counters["cpu_sec_per_10k"] = cpu * 10000.0 / static_cast<double>(d.n);
	state.counters["inserts/cpu_s"] = static_cast<double>(d.n) / cpu;
}
BENCHMARK(BM_HnswBuild)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_HnswSearch(benchmark::State &state) {
	const Dataset &d = Data();
	InMemoryGraph &g = Graph();
	NeverCancel never;
	Searcher s(g, d.dim, never);
	SearchParams sp;
	sp.ef_search = static_cast<int>(state.range(0));
	sp.iterative = false;
	std::size_t hits = 0, total = 0, queries = 0, comps = 0;
	const double c0 = ThreadCpuSeconds();
	for (auto _ : state) {
		const std::size_t q = queries % d.nq;
		if (!s.Start(&d.queries[q * d.dim], sp).ok())
			std::abort();
		std::set<NodeId> got;
		for (int k = 0; k < 10; ++k) {
			Candidate c;
			bool done;
			if (!s.Next(c, done).ok())
				std::abort();
			if (done)
				break;
			got.insert(c.node);
		}
		comps += s.distance_computations();
		if (queries < d.nq) {
			for (NodeId t : d.truth[q])
				hits += got.count(t);
			total += 10;
		}
		++queries;
	}
	state.counters["QPS"] = benchmark::Counter(static_cast<double>(queries), benchmark::Counter::kIsRate);
	state.counters["QPS_cpu"] = static_cast<double>(queries) / (ThreadCpuSeconds() - c0);
	state.counters["recall@10"] = total ? static_cast<double>(hits) / static_cast<double>(total) : 0.0;
	state.counters["dist/query"] = static_cast<double>(comps) / static_cast<double>(queries);
}
BENCHMARK(BM_HnswSearch)->Arg(10)->Arg(20)->Arg(40)->Arg(80)->Arg(160)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

} // namespace

BENCHMARK_MAIN();
