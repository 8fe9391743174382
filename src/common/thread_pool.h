// A small fork-join thread pool for 1-16 cores.
//
// Why not std::async or OpenMP: a decode step issues ~10 parallel regions per
// layer, each only microseconds long, so wake-up latency dominates. Workers
// spin briefly on an epoch counter before sleeping on a condition variable,
// which keeps a region's dispatch cost well under a microsecond on 2 cores
// while an idle process still sleeps. The calling thread takes part as worker 0.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace heed {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index) on every thread (0..size()-1) and waits for all.
  // Callables are passed by reference, never wrapped in std::function, so a
  // decode step's many parallel regions allocate nothing.
  template <typename Fn>
  void run(Fn&& fn) {
    run_raw([](void* ctx, int ti) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(ti); },
            const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into contiguous chunks, one per thread, rounded to `grain`.
  // fn(begin, end, thread_index) is called for each non-empty chunk.
  template <typename Fn>
  void parallel_for(size_t n, size_t grain, Fn&& fn) {
    if (n == 0) return;
    grain = grain > 0 ? grain : 1;
    const size_t n_chunks = (n + grain - 1) / grain;
    const size_t t = std::min<size_t>(static_cast<size_t>(n_threads_), n_chunks);
    if (t <= 1) {
      fn(size_t{0}, n, 0);
      return;
    }
    const size_t per = (n_chunks + t - 1) / t;  // chunks per thread
    run([&](int ti) {
      const size_t begin = std::min(n, static_cast<size_t>(ti) * per * grain);
      const size_t end = std::min(n, begin + per * grain);
      if (begin < end) fn(begin, end, ti);
    });
  }

  // Like parallel_for, but threads claim chunks of `grain` items in turn from a
  // shared counter until none are left, for compute-bound work whose items may
  // take unequal time on the two cores of a VM. (Streaming work, such as
  // decode, is better served by parallel_for's one contiguous range per thread.)
  // fn(begin, end, thread_index) runs once per chunk.
  template <typename Fn>
  void parallel_chunks(size_t n, size_t grain, Fn&& fn) {
    if (n == 0) return;
    grain = grain > 0 ? grain : 1;
    if (n_threads_ <= 1 || n <= grain) {
      for (size_t begin = 0; begin < n; begin += grain) fn(begin, std::min(n, begin + grain), 0);
      return;
    }
    std::atomic<size_t> next{0};
    run([&](int ti) {
      for (;;) {
        const size_t begin = next.fetch_add(grain, std::memory_order_relaxed);
        if (begin >= n) return;
        fn(begin, std::min(n, begin + grain), ti);
      }
    });
  }

  // parallel_for over rows, or fn(0, n, 0) inline below kMinParallelRows: for
  // row-wise work (norms, activation quantization) that pays for a parallel
  // region in a prompt but not in a decode step.
  static constexpr size_t kMinParallelRows = 8;
  template <typename Fn>
  void parallel_rows(size_t n, Fn&& fn) {
    if (n < kMinParallelRows) {
      if (n > 0) fn(size_t{0}, n, 0);
      return;
    }
    parallel_for(n, 1, fn);
  }

 private:
  void worker_loop(int index);
  void run_raw(void (*call)(void*, int), void* ctx);

  int n_threads_;
  std::vector<std::thread> workers_;
  void (*job_call_)(void*, int) = nullptr;
  void* job_ctx_ = nullptr;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace heed
