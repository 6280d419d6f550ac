// The visited set of searches over sparse node ids (the page store's (block << 16) | offset): membership, reset,
// and the size it starts at when a search tells it how many nodes to expect.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "hnsw_internal.h"

namespace {

using s5v::hnsw::NodeId;
using s5v::hnsw::internal::HashVisited;

NodeId PageId(std::uint64_t i) {
	return ((i / 7 + 1) << 16) | (i % 7 + 1); // seven elements a page, like 128-d vectors
}

TEST(HashVisited, EachIdIsNewOnceUntilReset) {
	HashVisited v;
	v.Reset(0);
	for (std::uint64_t i = 0; i < 5000; ++i)
		ASSERT_TRUE(v.Insert(PageId(i))) << i;
	for (std::uint64_t i = 0; i < 5000; ++i)
		ASSERT_FALSE(v.Insert(PageId(i))) << i;
	v.Reset(0);
	for (std::uint64_t i = 0; i < 5000; ++i)
		ASSERT_TRUE(v.Insert(PageId(i))) << i;
}

TEST(HashVisited, ExpectedVisitsFitWithoutGrowing) {
	HashVisited v;
	v.Expect(3000);
	v.Reset(0);
	const std::size_t start = v.memory_bytes();
	EXPECT_GE(start, 2 * 3000 * sizeof(NodeId)); // at most half full with what was expected
	for (std::uint64_t i = 0; i < 3000; ++i)
		ASSERT_TRUE(v.Insert(PageId(i)));
	EXPECT_EQ(v.memory_bytes(), start); // no growth (each growth rehashes every id)
	for (std::uint64_t i = 3000; i < 20000; ++i)
		ASSERT_TRUE(v.Insert(PageId(i))); // more than expected still works: the table grows
	EXPECT_GT(v.memory_bytes(), start);
	for (std::uint64_t i = 0; i < 20000; ++i)
		ASSERT_FALSE(v.Insert(PageId(i))) << i;
}

TEST(HashVisited, ShrinksAfterALargeSearch) {
	HashVisited v;
	v.Expect(100000);
	v.Reset(0);
	const std::size_t large = v.memory_bytes();
	for (std::uint64_t i = 0; i < 10; ++i)
		ASSERT_TRUE(v.Insert(PageId(i)));
	v.Expect(100);
	v.Reset(0); // the large table, nearly empty, is given back
	EXPECT_LT(v.memory_bytes(), large / 4);
	for (std::uint64_t i = 0; i < 10; ++i)
		ASSERT_TRUE(v.Insert(PageId(i)));
}

} // namespace
