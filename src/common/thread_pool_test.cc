#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
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

// A thread that is held up leaves its chunks to the others: with thread 1 stuck
// until thread 0 has run every chunk of its own range and some of thread 1's,
// the region still completes, each item once.
TEST(ThreadPool, ParallelChunksLetsAFreeThreadTakeOverAStalledRange) {
  ThreadPool pool(2);
  constexpr size_t n = 64;
  std::vector<std::atomic<int>> seen(n);
  std::atomic<int> by_zero_in_second_half{0};
  std::atomic<bool> release{false};
  pool.parallel_chunks(n, 1, [&](size_t begin, size_t, int ti) {
    if (ti == 1) {
      while (!release.load()) std::this_thread::yield();
    } else if (begin >= n / 2 && by_zero_in_second_half.fetch_add(1) == 3) {
      release = true;  // thread 0 has taken four chunks of thread 1's half
    }
    seen[begin].fetch_add(1);
  });
  EXPECT_GE(by_zero_in_second_half.load(), 4);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << i;
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
