// Nanoseconds per distance for every kernel set this CPU supports, per metric, at 128, 384, 768 and
// 1536 dimensions. After Google Benchmark's own output it prints a table and the speed-up over scalar.
//
// Run: distance_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// (the table then shows the fastest repetition, the least disturbed by other load).
//
// One query against a small ring of base vectors (16 KiB - 96 KiB, L1/L2 resident): this measures the
// arithmetic, not memory bandwidth, which is what an index's inner loop sees for hot vectors.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "distance.h"

namespace {

constexpr std::size_t kBaseVectors = 16;
const char *const kKernelNames[] = {"scalar", "sse2", "avx2", "avx512"};
const char *const kMetrics[] = {"l2", "ip", "l1", "cosine"};
const std::size_t kDims[] = {128, 384, 768, 1536};

struct Data {
	std::vector<float> query, base;
	explicit Data(std::size_t dim) : query(dim), base(dim * kBaseVectors) {
		std::mt19937 rng(1234);
		std::normal_distribution<float> dist(0.0f, 1.0f);
		for (float &x : query)
			x = dist(rng);
		for (float &x : base)
			x = dist(rng);
	}
};

// One loop per metric so the timed loop holds nothing but the call.
void RunDistance(benchmark::State &state, const s5v::KernelSet *k, std::string metric, std::size_t dim) {
	Data data(dim);
	const float *q = data.query.data();
	const float *base = data.base.data();
	std::size_t j = 0;
	auto next = [&]() {
		const float *v = base + j * dim;
		j = (j + 1) % kBaseVectors;
		return v;
	};
	if (metric == "l2") {
		for (auto _ : state)
			benchmark::DoNotOptimize(k->l2_squared(q, next(), dim));
	} else if (metric == "ip") {
		for (auto _ : state)
			benchmark::DoNotOptimize(k->inner_product(q, next(), dim));
	} else if (metric == "l1") {
		for (auto _ : state)
			benchmark::DoNotOptimize(k->l1(q, next(), dim));
	} else {
		for (auto _ : state)
			benchmark::DoNotOptimize(s5v::CosineDistance(*k, q, next(), dim));
	}
	state.SetItemsProcessed(state.iterations());
}

// Collects ns/iteration (= ns per distance) per (metric, kernel, dim) for the summary table.
class TableReporter : public benchmark::ConsoleReporter {
public:
	std::map<std::tuple<std::string, std::string, std::size_t>, double> ns;
	void ReportRuns(const std::vector<Run> &runs) override {
		ConsoleReporter::ReportRuns(runs);
		for (const Run &run : runs) {
			// With --benchmark_repetitions the fastest repetition is kept (the machine may be busy); else the run.
			if (run.error_occurred)
				continue;
			bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "min";
			if (run.run_type == Run::RT_Aggregate && !median)
				continue;
			if (run.run_type == Run::RT_Iteration && run.repetitions > 1)
				continue;
			// Name: distance/<metric>/<kernel>/<dim>
			std::string name = run.run_name.str();
			std::vector<std::string> parts;
			std::size_t start = 0, slash;
			while ((slash = name.find('/', start)) != std::string::npos) {
				parts.push_back(name.substr(start, slash - start));
				start = slash + 1;
			}
			parts.push_back(name.substr(start));
			if (parts.size() < 4)
				continue;
			// CPU time: on a shared machine it leaves out the time this thread was not running.
			ns[{parts[1], parts[2], std::stoul(parts[3])}] = run.GetAdjustedCPUTime();
		}
	}
};

void PrintTable(const TableReporter &rep, const std::vector<const s5v::KernelSet *> &kernels) {
	std::printf("\nns per distance, CPU time (active kernel set: %s)\n", s5v::ActiveKernels().name);
	std::printf("%-8s %-8s", "metric", "kernel");
	for (std::size_t d : kDims)
		std::printf(" %9zu", d);
	std::printf("   x scalar @768\n");
	for (const char *metric : kMetrics)
		for (const s5v::KernelSet *k : kernels) {
			std::printf("%-8s %-8s", metric, k->name);
			for (std::size_t d : kDims) {
				auto it = rep.ns.find({metric, k->name, d});
				if (it == rep.ns.end())
					std::printf(" %9s", "-");
				else
					std::printf(" %9.1f", it->second);
			}
			auto s = rep.ns.find({metric, "scalar", 768});
			auto v = rep.ns.find({metric, k->name, 768});
			if (s != rep.ns.end() && v != rep.ns.end() && v->second > 0)
				std::printf("   %6.1fx", s->second / v->second);
			std::printf("\n");
		}
}

} // namespace

int main(int argc, char **argv) {
	std::vector<const s5v::KernelSet *> kernels;
	for (const char *name : kKernelNames)
		if (const s5v::KernelSet *k = s5v::KernelsByName(name))
			kernels.push_back(k);
	for (const char *metric : kMetrics)
		for (const s5v::KernelSet *k : kernels)
			for (std::size_t dim : kDims) {
				std::string name = std::string("distance/") + metric + "/" + k->name + "/" + std::to_string(dim);
				benchmark::RegisterBenchmark(name.c_str(), RunDistance, k, std::string(metric), dim)
				    ->ComputeStatistics("min", [](const std::vector<double> &v) {
					    return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
				    });
			}
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	TableReporter reporter;
	benchmark::RunSpecifiedBenchmarks(&reporter);
	PrintTable(reporter, kernels);
	benchmark::Shutdown();
	return 0;
}
