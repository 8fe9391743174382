#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace heed {
namespace {

// Every item is handed out exactly once, in chunks of at most `grain`, to valid
// thread indices, whatever the split.
void expect_each_item_once(int n_threads, size_t n, size_t grain) {
  ThreadPool pool(n_threads);
  std::vector<std::atomic<int>> seen(n);
  std::atomic<bool> bad_chunk{false};
  pool.parallel_chunks(n, grain, [&](size_t begin, size_t end, int ti) {
    if (end <= begin || end - begin > std::max<size_t>(grain, 1) || ti < 0 || ti >= n_threads)
      bad_chunk = true;
    for (size_t i = begin; i < end; ++i) seen[i].fetch_add(1);
  });
  EXPECT_FALSE(bad_chunk) << n_threads << " threads, n " << n << ", grain " << grain;
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i << " of " << n;
}

TEST(ThreadPool, ParallelChunksCoversEveryItemOnce) {
  for (int threads : {1, 2, 3})
    for (size_t n : {0, 1, 7, 64, 1000})
      for (size_t grain : {0, 1, 4, 2000}) expect_each_item_once(threads, n, grain);
}

TEST(ThreadPool, ParallelForGivesOneContiguousRangePerThread) {
  ThreadPool pool(2);
  std::vector<int> owner(101, -1);
  int calls[2] = {0, 0};
  pool.parallel_for(owner.size(), 1, [&](size_t begin, size_t end, int ti) {
    ++calls[ti];
    for (size_t i = begin; i < end; ++i) owner[i] = ti;
  });
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[1], 1);
  for (size_t i = 1; i < owner.size(); ++i) EXPECT_GE(owner[i], owner[i - 1]) << i;
  EXPECT_EQ(owner.front(), 0);
  EXPECT_EQ(owner.back(), 1);
}

}  // namespace
}  // namespace heed
