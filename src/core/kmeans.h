// k-means for the cold tier's IVF lists: k-means++ seeding on a sample, Lloyd iterations accelerated with
// Hamerly's bounds on the SIMD kernels, for every metric, plus the probe step of an IVF scan.
//
// What each metric trains (and why):
//  - L2: plain k-means (centroid = mean), minimising the sum of squared L2 distances.
//  - InnerProduct and Cosine: spherical k-means. Centroids have unit norm (the normalised mean of the rows, for
//    Cosine of the normalised rows); a row belongs to the centroid with the largest dot product, which for unit
//    centroids is also the nearest in Euclidean distance, so the same bounds apply. An IVF probe by -dot then
//    ranks lists exactly as training assigned rows. Zero rows take part (dot 0 with every centroid) but are
//    never chosen as seeds.
//  - L1: k-medians. Rows are assigned by L1 distance and a centroid is the per-dimension median of its rows
//    (the point minimising the sum of L1 distances), so lists are compact in the distance the scan probes by.
//    (L2-trained centroids with L1 probing would minimise a different objective than the one queries use.)
//    The median is the lower middle value, so a centroid is always made of input coordinates.
//
// Determinism: for the same rows, parameters and seed the result is bitwise identical on the same kernel set
// (ActiveKernels(); AVX2 and AVX-512 round sums differently). The pseudo-random generator is our own
// (xoshiro256** seeded by splitmix64); nothing depends on time, threads or std::random_device. Single-threaded.
//
// Memory: the caller passes the training sample as a span (it decides how many rows that is); TrainKMeans
// allocates about KMeansMemoryBytes(n, dim, k, metric) = O(k * dim + n) bytes, results included, and refuses
// with LimitExceeded when that exceeds KMeansParams::max_bytes (0 = no limit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cancel.h"
#include "distance.h"
#include "status.h"

namespace s5v {

struct KMeansParams {
	std::size_t k = 0;          // lists wanted (>= 1)
	Metric metric = Metric::L2; // see above for what each metric trains
	int max_iterations = 10;    // Lloyd iterations after seeding (0: seeding and one assignment only); <= 1000
	std::uint64_t seed = 0;     // same seed, same result
	// Rows greedy k-means++ (3 candidates a step) seeds from: a uniform sample of the input (0 = min(n, max(16 * k,
	// 2048))). When the sample has fewer distinct points than k, seeding continues over all rows.
	std::size_t seed_sample = 0;
	// 0 = no cap. Otherwise no list ends up with more rows than this: after training, the rows of an over-full
	// list farthest from its centroid move to their next-nearest centroid that has room (centroids are not
	// moved again). Needs max_list_size * (lists used) >= n, else InvalidInput.
	std::size_t max_list_size = 0;
	std::size_t max_bytes = 0; // refuse (LimitExceeded) when KMeansMemoryBytes would exceed this (0 = no limit)
	// Start from these centroids instead of seeding (k * dim floats, finite, k <= n; normalised here for the
	// spherical metrics, where a zero centroid is InvalidInput): refreshing drifted centroids or splitting a list
	// from chosen starting points. Duplicates are allowed; the lists that end up empty are re-seeded.
	std::span<const float> initial_centroids;
};

struct KMeansResult {
	// Lists produced: min(k, n), and fewer when the rows hold fewer distinct points (distinct directions for
	// InnerProduct/Cosine) than that; every list then has at least one row. Callers that need exactly k lists
	// check this.
	std::size_t k = 0;
	std::vector<float> centroids;           // k * dim floats, row-major
	std::vector<std::uint32_t> assignments; // n: the list of each row
	std::vector<std::uint32_t> list_sizes;  // k: rows per list
	// Sum over rows of IndexDistance(metric, row, centroid of its list), in double; for Cosine the rows are
	// taken as normalised (sum of -cos). L2: sum of squared distances; InnerProduct: sum of -dot; L1: sum of L1.
	double objective = 0.0;
	int iterations = 0;     // Lloyd iterations run
	bool converged = false; // stopped because no row changed list (before max_iterations)
};

// Bytes TrainKMeans allocates for n rows of dim floats and k lists (saturates at SIZE_MAX).
std::size_t KMeansMemoryBytes(std::size_t n, std::size_t dim, std::size_t k, Metric metric) noexcept;

// Train k lists on `rows` (n * dim floats, row-major; rows.size() must be n * dim). Every value must be finite
// and every row's squared norm at most FLT_MAX / 4 (so no distance overflows), else InvalidInput naming the
// row. n must be below 2^32. Polls `cancel` about every 256 rows of work and returns Cancelled. On error `out`
// is left in an unspecified (valid) state.
Status TrainKMeans(std::span<const float> rows, std::size_t n, std::size_t dim, const KMeansParams &params,
                   const CancelToken &cancel, KMeansResult &out);

struct ListDistance {
	float distance;     // IndexDistance(metric, query, centroid); NaN is reported as +infinity
	std::uint32_t list; // index of the centroid
};

// The probe step of an IVF scan: the min(nprobe, k) centroids nearest to `query` by IndexDistance, nearest
// first (ties: lower list first). dim = query.size(); centroids.size() must be k * dim. For Cosine the query
// is expected normalised, as the index stores rows. `out` is reused (cleared, then filled). A non-finite query
// is InvalidInput. O(k * dim) time, O(k) memory in `out`.
Status NearestCentroids(std::span<const float> query, std::span<const float> centroids, std::size_t k, Metric metric,
                        std::size_t nprobe, std::vector<ListDistance> &out);

// Nearest centroid (by IndexDistance; ties: lower list) of each of n rows, for batches of inserts or for
// assigning every cold row after training on a sample. `assignments` must hold n entries; `distances` is
// empty or holds n entries (the IndexDistance to the chosen centroid). A non-finite row is InvalidInput.
// Polls `cancel` about every 256 rows. Allocates nothing.
Status AssignToNearest(std::span<const float> rows, std::size_t n, std::size_t dim, std::span<const float> centroids,
                       std::size_t k, Metric metric, const CancelToken &cancel, std::span<std::uint32_t> assignments,
                       std::span<float> distances);

} // namespace s5v
