// k-means micro-benchmark on synthetic clustered data (fixed seed): TrainKMeans time per metric, the
// assignment of a batch to its nearest centroid, the probe step (NearestCentroids), and a list scan with float
// distances against 8-bit codes (ScalarQuantizer) and 1-bit codes (BinaryQuantizer).
// Size from the environment: S5V_KMEANS_N (default 50000), S5V_KMEANS_DIM (128), S5V_KMEANS_K (316, about
// sqrt(n) as IVF builds choose), S5V_KMEANS_ITERS (10), S5V_KMEANS_SEED_SAMPLE (0 = TrainKMeans's default).
// The data are 1000 overlapping Gaussian clusters.
//
// Run: kmeans_bench --benchmark_filter=train/l2   (each training runs a few times; the time is CPU time)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kmeans.h"
#include "quantizer.h"

namespace {

using namespace s5v;

std::size_t EnvSize(const char *name, std::size_t def) {
	const char *v = std::getenv(name);
	return v != nullptr ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : def;
}

struct Data {
	std::size_t n, dim, k;
	int iters;
	std::vector<float> rows;
	std::vector<float> normalised; // for cosine, as the index stores rows
};

const Data &GetData() {
	static const Data data = [] {
		Data d;
		d.n = EnvSize("S5V_KMEANS_N", 50000);
		d.dim = EnvSize("S5V_KMEANS_DIM", 128);
		d.k = EnvSize("S5V_KMEANS_K", 316);
		d.iters = static_cast<int>(EnvSize("S5V_KMEANS_ITERS", 10));
		std::mt19937_64 rng(12345);
		std::normal_distribution<float> g(0.0f, 1.0f);
		const std::size_t clusters = 1000;
		std::vector<float> centres(clusters * d.dim);
		for (float &x : centres)
			x = g(rng);
		d.rows.resize(d.n * d.dim);
		std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
		for (std::size_t i = 0; i < d.n; i++) {
			std::size_t c = pick(rng);
			for (std::size_t j = 0; j < d.dim; j++)
				d.rows[i * d.dim + j] = centres[c * d.dim + j] + 0.5f * g(rng);
		}
		d.normalised = d.rows;
		for (std::size_t i = 0; i < d.n; i++) {
			double s = 0.0;
			for (std::size_t j = 0; j < d.dim; j++)
				s += static_cast<double>(d.rows[i * d.dim + j]) * d.rows[i * d.dim + j];
			float inv = static_cast<float>(1.0 / std::sqrt(s));
			for (std::size_t j = 0; j < d.dim; j++)
				d.normalised[i * d.dim + j] *= inv;
		}
		return d;
	}();
	return data;
}

void Train(benchmark::State &state, Metric metric) {
	const Data &d = GetData();
	const std::vector<float> &rows = metric == Metric::Cosine ? d.normalised : d.rows;
	KMeansParams p;
	p.k = d.k;
	p.metric = metric;
	p.max_iterations = d.iters;
	p.seed = 1;
	p.seed_sample = EnvSize("S5V_KMEANS_SEED_SAMPLE", 0);
	NeverCancel never;
	KMeansResult r;
	for (auto _ : state) {
		Status st = TrainKMeans(rows, d.n, d.dim, p, never, r);
		if (!st.ok()) {
			state.SkipWithError(st.message().c_str());
			return;
		}
	}
	state.counters["objective"] = r.objective;
	state.counters["iterations"] = r.iterations;
	state.counters["lists"] = static_cast<double>(r.k);
	state.counters["MiB"] = static_cast<double>(KMeansMemoryBytes(d.n, d.dim, d.k, metric)) / (1 << 20);
	state.SetLabel(std::to_string(d.n) + "x" + std::to_string(d.dim) + " k=" + std::to_string(d.k) +
	               " iters=" + std::to_string(d.iters) + " kernels=" + ActiveKernels().name);
}

// Every row to its nearest centroid (what a build does with the rows it did not train on).
void Assign(benchmark::State &state) {
	const Data &d = GetData();
	KMeansParams p;
	p.k = d.k;
	p.max_iterations = 0;
	NeverCancel never;
	KMeansResult r;
	if (!TrainKMeans(d.rows, d.n, d.dim, p, never, r).ok()) {
		state.SkipWithError("train failed");
		return;
	}
	std::vector<std::uint32_t> assign(d.n);
	for (auto _ : state) {
		Status st = AssignToNearest(d.rows, d.n, d.dim, r.centroids, r.k, Metric::L2, never, assign, {});
		benchmark::DoNotOptimize(assign.data());
		if (!st.ok()) {
			state.SkipWithError(st.message().c_str());
			return;
		}
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d.n)); // rows per second
}

// A scan over a list: exact float distances (the kernel set), 8-bit codes (ScalarQuantizer) or 1-bit codes
// (BinaryQuantizer, estimate and lower bound), per row.
enum class Scan { Float, Sq8, Binary };

void ScanList(benchmark::State &state, Metric metric, Scan mode) {
	const Data &d = GetData();
	const std::size_t rows = std::min<std::size_t>(d.n, 20000); // 20000 x 128: 10 MB float, 2.5 MB / 0.5 MB codes
	const std::vector<float> &data = metric == Metric::Cosine ? d.normalised : d.rows;
	std::span<const float> sample(data.data(), rows * d.dim);
	std::span<const float> query(data.data() + (d.n - 1) * d.dim, d.dim);
	ScalarQuantizer sq;
	BinaryQuantizer bq;
	QuantizedQuery q;
	BinaryQuery bqq;
	if (!sq.Train(sample, rows, d.dim, metric).ok() || !bq.Init(d.dim, metric, 1).ok() || !sq.Prepare(query, q).ok() ||
	    !bq.Prepare(query, {}, bqq).ok()) {
		state.SkipWithError("setup failed");
		return;
	}
	const std::size_t code_size = mode == Scan::Binary ? bq.code_size() : sq.code_size();
	std::vector<std::uint8_t> codes(rows * code_size);
	std::vector<float> scratch;
	for (std::size_t i = 0; i < rows; i++) {
		std::span<const float> x(data.data() + i * d.dim, d.dim);
		if (mode == Scan::Binary)
			(void)bq.Encode(x, {}, codes.data() + i * code_size, scratch);
		else
			(void)sq.Encode(x.data(), codes.data() + i * code_size);
	}
	std::vector<float> out(rows), lower(rows);
	for (auto _ : state) {
		switch (mode) {
		case Scan::Float:
			for (std::size_t i = 0; i < rows; i++)
				out[i] = IndexDistance(metric, query.data(), data.data() + i * d.dim, d.dim);
			break;
		case Scan::Sq8:
			sq.Distances(q, codes.data(), rows, code_size, out.data());
			break;
		case Scan::Binary:
			bq.Estimate(bqq, codes.data(), rows, code_size, out.data(), lower.data());
			break;
		}
		benchmark::DoNotOptimize(out.data());
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows)); // rows per second
}

// The probe step of one query: distances to all centroids, the nprobe nearest sorted.
void Probe(benchmark::State &state) {
	const Data &d = GetData();
	const std::size_t k = static_cast<std::size_t>(state.range(0));
	const std::size_t nprobe = static_cast<std::size_t>(state.range(1));
	std::vector<float> centroids(d.rows.begin(), d.rows.begin() + static_cast<std::ptrdiff_t>(k * d.dim));
	std::vector<ListDistance> out;
	std::size_t q = 0;
	for (auto _ : state) {
		std::span<const float> query(d.rows.data() + (k + q) * d.dim, d.dim);
		q = (q + 1) % 1000;
		Status st = NearestCentroids(query, centroids, k, Metric::L2, nprobe, out);
		benchmark::DoNotOptimize(out.data());
		if (!st.ok()) {
			state.SkipWithError(st.message().c_str());
			return;
		}
	}
	state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

} // namespace

BENCHMARK_CAPTURE(Train, l2, Metric::L2)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(Train, cosine, Metric::Cosine)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(Train, ip, Metric::InnerProduct)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(Train, l1, Metric::L1)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(Assign)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(ScanList, l2_float, Metric::L2, Scan::Float)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(ScanList, l2_sq8, Metric::L2, Scan::Sq8)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(ScanList, l2_binary, Metric::L2, Scan::Binary)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(ScanList, ip_float, Metric::InnerProduct, Scan::Float)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(ScanList, ip_sq8, Metric::InnerProduct, Scan::Sq8)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(ScanList, ip_binary, Metric::InnerProduct, Scan::Binary)->Unit(benchmark::kMicrosecond);
BENCHMARK(Probe)->Args({316, 10})->Args({1000, 32})->Args({4000, 64})->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
