// Micro-benchmarks of the S5 layer: BLAKE3, segment encode/decode, and the client against a local s5vector-node.
#include <benchmark/benchmark.h>

#include <memory>
#include <cstring>
#include <random>

#include "../../test/unit/s5_node_process.h"
#include "core/s5/blake3_hash.h"
#include "core/s5/client.h"
#include "core/s5/segment.h"

#ifndef S5V_NODE_PATH
#error "S5V_NODE_PATH must name the s5vector-node binary"
#endif

namespace {

using namespace s5v::s5;

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
	std::mt19937_64 rng(seed);
	std::vector<uint8_t> v(n);
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t x = rng();
		std::memcpy(v.data() + i, &x, 8);
	}
	return v;
}

void BM_Blake3(benchmark::State &state) {
	std::vector<uint8_t> data = RandomBytes(static_cast<size_t>(state.range(0)), 1);
	for (auto _ : state)
		benchmark::DoNotOptimize(Blake3(data));
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Blake3)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20)->Arg(16 << 20);

struct SegmentInput {
	SegmentHeader header;
	std::vector<float> vectors;
	std::vector<uint64_t> ids;
};

SegmentInput MakeSegment(uint32_t dims, uint64_t rows) {
	SegmentInput s;
	s.header.dims = dims;
	s.header.row_count = rows;
	s.header.list_no = 3;
	std::mt19937 rng(1);
	std::normal_distribution<float> d;
	s.vectors.resize(dims * rows);
	for (auto &f : s.vectors)
		f = d(rng);
	for (uint64_t i = 0; i < rows; i++)
		s.ids.push_back(i);
	return s;
}

// range(0) = dimensions, range(1) = rows.
void BM_SegmentEncode(benchmark::State &state) {
	SegmentInput s = MakeSegment(static_cast<uint32_t>(state.range(0)), static_cast<uint64_t>(state.range(1)));
	std::vector<uint8_t> out;
	for (auto _ : state) {
		if (!EncodeSegment(s.header, s.vectors, s.ids, {}, &out).ok())
			state.SkipWithError("encode failed");
		benchmark::DoNotOptimize(out.data());
	}
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_SegmentEncode)->Args({768, 1000})->Args({128, 10000});

void BM_SegmentDecode(benchmark::State &state) {
	SegmentInput s = MakeSegment(static_cast<uint32_t>(state.range(0)), static_cast<uint64_t>(state.range(1)));
	std::vector<uint8_t> doc;
	if (!EncodeSegment(s.header, s.vectors, s.ids, {}, &doc).ok())
		state.SkipWithError("encode failed");
	std::vector<float> vectors(s.vectors.size());
	for (auto _ : state) {
		SegmentView v;
		if (!DecodeSegment(doc, {}, &v).ok())
			state.SkipWithError("decode failed");
		v.CopyVectors(vectors);
		benchmark::DoNotOptimize(vectors.data());
	}
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * doc.size()));
}
BENCHMARK(BM_SegmentDecode)->Args({768, 1000})->Args({128, 10000});

// One node for the whole run, on a temporary store.
struct Node {
	s5v::test::TempDir dir;
	s5v::test::NodeProcess process;
	std::unique_ptr<S5Client> client;
	bool ok = false;
	Node() {
		if (!process.Start(S5V_NODE_PATH, dir.path()))
			return;
		S5ClientOptions o;
		o.base_url = process.url();
		ok = S5Client::Create(o, &client).ok();
	}
};

Node &TheNode() {
	static Node node;
	return node;
}

s5v::NeverCancel g_never;

// Uploads of the same bytes: the node hashes and verifies every time (the disk write is skipped once stored).
void BM_Upload(benchmark::State &state) {
	Node &n = TheNode();
	if (!n.ok)
		return state.SkipWithError("node did not start");
	std::vector<uint8_t> data = RandomBytes(static_cast<size_t>(state.range(0)), 7);
	BlobId id;
	for (auto _ : state)
		if (!n.client->Upload(data, &id, g_never).ok())
			state.SkipWithError("upload failed");
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Upload)->Arg(64 << 10)->Arg(1 << 20)->Arg(16 << 20)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Download(benchmark::State &state) {
	Node &n = TheNode();
	if (!n.ok)
		return state.SkipWithError("node did not start");
	std::vector<uint8_t> data = RandomBytes(static_cast<size_t>(state.range(0)), 8);
	BlobId id;
	if (!n.client->Upload(data, &id, g_never).ok())
		return state.SkipWithError("upload failed");
	std::vector<uint8_t> out;
	for (auto _ : state)
		if (!n.client->Download(id, &out, g_never).ok())
			state.SkipWithError("download failed");
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Download)->Arg(64 << 10)->Arg(1 << 20)->Arg(16 << 20)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The probes of one query: 16 blobs of 1 MiB fetched concurrently and verified.
void BM_DownloadParallel16x1MiB(benchmark::State &state) {
	Node &n = TheNode();
	if (!n.ok)
		return state.SkipWithError("node did not start");
	std::vector<BlobId> ids(16);
	for (int i = 0; i < 16; i++) {
		std::vector<uint8_t> data = RandomBytes(1 << 20, 100 + i);
		if (!n.client->Upload(data, &ids[i], g_never).ok())
			return state.SkipWithError("upload failed");
	}
	std::vector<DownloadResult> results;
	for (auto _ : state)
		if (!n.client->DownloadMany(ids, &results, g_never).ok())
			state.SkipWithError("download failed");
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 16 * (1 << 20));
}
BENCHMARK(BM_DownloadParallel16x1MiB)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
