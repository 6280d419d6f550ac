#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <thread>
#include <vector>

namespace s5v {

unsigned ParallelFor(size_t n, unsigned extra_threads, const std::function<void(size_t, unsigned)> &fn) noexcept {
	if (n == 0)
		return 1;
	if (extra_threads > n - 1)
		extra_threads = static_cast<unsigned>(n - 1);
	std::atomic<size_t> next{0};
	auto work = [&](unsigned worker) {
		for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;)
			fn(i, worker);
	};
	std::vector<std::thread> threads;
	if (extra_threads > 0) {
		// Threads inherit the creator's signal mask: block everything while they are created, then restore ours.
		sigset_t all, saved;
		sigfillset(&all);
		if (pthread_sigmask(SIG_SETMASK, &all, &saved) == 0) {
			try {
				threads.reserve(extra_threads);
				for (unsigned w = 1; w <= extra_threads; w++)
					threads.emplace_back(work, w);
			} catch (...) {
				// No more threads (resource limits, memory): the ones started and this thread do the rest.
			}
			pthread_sigmask(SIG_SETMASK, &saved, nullptr);
		}
	}
	work(0);
	for (std::thread &t : threads)
		t.join();
	return 1 + static_cast<unsigned>(threads.size());
}

unsigned SpareCpus(unsigned cap) noexcept {
	unsigned cpus = 0;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		cpus = static_cast<unsigned>(CPU_COUNT(&set));
	if (cpus == 0)
		cpus = std::thread::hardware_concurrency();
	if (cpus <= 1)
		return 0;
	unsigned spare = cpus - 1;
	// CPUs the rest of the machine leaves idle (the 1-minute load average counts this thread too): a busy machine
	// gains nothing from more threads, they only take CPU from other work.
	double load = 0;
	if (getloadavg(&load, 1) == 1) {
		double idle = static_cast<double>(cpus) - load + 0.5;
		spare = idle < 1 ? 0 : std::min<unsigned>(spare, static_cast<unsigned>(idle));
	}
	return std::min(spare, cap);
}

} // namespace s5v
