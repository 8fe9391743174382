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

  // Like parallel_for, but balanced: each thread runs its own contiguous range
  // in chunks of `grain` items from the front, so that in a quiet machine its
  // reads stay one sequential stream, and a thread that runs out takes chunks
  // from the back of the others' ranges. When another process takes a core for
  // a while (a VM, a build), the thread left running finishes the region
  // instead of waiting for the descheduled one. fn(begin, end, thread_index)
  // runs once per chunk.
  template <typename Fn>
  void parallel_chunks(size_t n, size_t grain, Fn&& fn) {
    if (n == 0) return;
    grain = grain > 0 ? grain : 1;
    const size_t n_chunks = (n + grain - 1) / grain;
    const auto chunk = [&](size_t c, int ti) { fn(c * grain, std::min(n, (c + 1) * grain), ti); };
    const size_t t = std::min({static_cast<size_t>(n_threads_), n_chunks, kMaxStealThreads});
    if (t <= 1 || n_chunks >> 32 != 0) {  // chunk indices are 32-bit halves of a word
      if (t <= 1) {
        for (size_t c = 0; c < n_chunks; ++c) chunk(c, 0);
      } else {
        parallel_for(n, grain, fn);
      }
      return;
    }
    // Range i is chunks [front, back) of one word (front low, back high), so
    // that the owner's and a thief's claims never overlap.
    StealRange ranges[kMaxStealThreads];
    const size_t per = (n_chunks + t - 1) / t;
    for (size_t i = 0; i < t; ++i)
      ranges[i].init(std::min(n_chunks, i * per), std::min(n_chunks, (i + 1) * per));
    run([&](int ti) {
      const auto self = static_cast<size_t>(ti);
      if (self >= t) return;
      for (size_t c; ranges[self].take_front(&c);) chunk(c, ti);
      for (size_t k = 1; k < t; ++k)
        for (size_t c; ranges[(self + k) % t].take_back(&c);) chunk(c, ti);
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
  static constexpr size_t kMaxStealThreads = 64;
  struct alignas(64) StealRange {  // one cache line each: owners do not contend
    std::atomic<uint64_t> word{0};
    void init(size_t front, size_t back) {
      word.store(front | (static_cast<uint64_t>(back) << 32), std::memory_order_relaxed);
    }
    bool take_front(size_t* c) { return take(c, true); }
    bool take_back(size_t* c) { return take(c, false); }
    bool take(size_t* c, bool front_end) {
      uint64_t w = word.load(std::memory_order_relaxed);
      for (;;) {
        const uint64_t front = w & 0xffffffffu, back = w >> 32;
        if (front >= back) return false;
        const uint64_t next = front_end ? (front + 1) | (back << 32) : front | ((back - 1) << 32);
        if (word.compare_exchange_weak(w, next, std::memory_order_relaxed)) {
          *c = static_cast<size_t>(front_end ? front : back - 1);
          return true;
        }
      }
    }
  };

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
