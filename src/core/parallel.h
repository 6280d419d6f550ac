// A parallel loop over independent items for CPU-bound work inside one call (decrypting and decoding the segments
// a query fetched). Threads are started and joined within the call; they never outlive it.
#pragma once

#include <cstddef>
#include <functional>

namespace s5v {

// Runs fn(item, worker) once for every item in [0, n): on the calling thread (worker 0) and on up to
// `extra_threads` more (workers 1..extra_threads), each taking the next item not yet taken. Returns when every
// item is done. fn must not throw and must not touch state that is not safe to share between threads (in the
// PostgreSQL backend: nothing of PostgreSQL's). The extra threads run with every signal blocked, so the process's
// signal handlers keep running on the calling thread only. If a thread cannot be started, the calling thread does
// its share. Returns the number of workers that took part (1 = everything ran on the calling thread).
unsigned ParallelFor(size_t n, unsigned extra_threads,
                     const std::function<void(size_t item, unsigned worker)> &fn) noexcept;

// Extra threads worth starting for CPU work now: one less than the CPUs the process may use, fewer when the
// 1-minute load average says the machine is busy (rounded: a 2-CPU machine with a load up to 1.5 has one spare),
// at most `cap`, 0 when there is only one CPU.
unsigned SpareCpus(unsigned cap) noexcept;

} // namespace s5v
