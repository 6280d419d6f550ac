#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <pthread.h>
#include <signal.h>
#include <thread>
#include <vector>

using s5v::ParallelFor;

TEST(ParallelFor, EveryItemOnceOnEveryWorkerCount) {
	for (unsigned extra : {0u, 1u, 3u, 8u}) {
		for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{1000}}) {
			std::vector<std::atomic<int>> seen(n);
			std::atomic<unsigned> max_worker{0};
			unsigned used = ParallelFor(n, extra, [&](size_t i, unsigned w) {
				seen[i].fetch_add(1);
				unsigned m = max_worker.load();
				while (w > m && !max_worker.compare_exchange_weak(m, w)) {
				}
			});
			for (size_t i = 0; i < n; i++)
				EXPECT_EQ(seen[i].load(), 1) << "n " << n << " extra " << extra << " item " << i;
			// Never more workers than items, never more than asked.
			size_t cap = n == 0 ? 1 : std::min<size_t>(n, 1 + extra);
			EXPECT_LE(used, cap);
			EXPECT_GE(used, 1u);
			EXPECT_LT(max_worker.load(), used);
		}
	}
}

TEST(ParallelFor, ExtraThreadsBlockEverySignalAndTheCallerKeepsItsMask) {
	sigset_t before;
	ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &before), 0);
	ASSERT_EQ(sigismember(&before, SIGINT), 0);
	std::atomic<int> worker_items{0}, unblocked_on_worker{0}, caller_items{0}, caller_blocked{0};
	std::thread::id caller = std::this_thread::get_id();
	// Items that wait a little, so that the extra thread surely takes some.
	unsigned used = ParallelFor(64, 1, [&](size_t, unsigned w) {
		sigset_t m;
		pthread_sigmask(SIG_SETMASK, nullptr, &m);
		if (std::this_thread::get_id() == caller) {
			EXPECT_EQ(w, 0u);
			caller_items++;
			if (sigismember(&m, SIGINT) == 1)
				caller_blocked++;
		} else {
			EXPECT_EQ(w, 1u);
			worker_items++;
			if (sigismember(&m, SIGINT) != 1 || sigismember(&m, SIGTERM) != 1 || sigismember(&m, SIGUSR1) != 1)
				unblocked_on_worker++;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	});
	EXPECT_EQ(used, 2u);
	EXPECT_GT(worker_items.load(), 0);
	EXPECT_GT(caller_items.load(), 0);
	EXPECT_EQ(worker_items.load() + caller_items.load(), 64);
	EXPECT_EQ(unblocked_on_worker.load(), 0);
	EXPECT_EQ(caller_blocked.load(), 0);
	sigset_t after;
	ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &after), 0);
	EXPECT_EQ(sigismember(&after, SIGINT), 0);
}

TEST(ParallelFor, SpareCpusIsBelowTheCpuCountAndTheCap) {
	unsigned hw = std::thread::hardware_concurrency();
	unsigned s = s5v::SpareCpus(3);
	EXPECT_LE(s, 3u);
	if (hw > 0) {
		EXPECT_LT(s, hw);
	}
	EXPECT_EQ(s5v::SpareCpus(0), 0u);
}
