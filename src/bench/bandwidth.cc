#include "bench/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/huge_pages.h"
#include "common/thread_pool.h"
#include "heed/error.h"

namespace heed::bench {

namespace {

// sysfs sizes look like "48K", "2048K" or "480M".
uint64_t parse_cache_size(const std::string& text) {
  size_t pos = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &pos);
  } catch (const std::exception&) {
    return 0;
  }
  const char unit = pos < text.size() ? text[pos] : '\0';
  if (unit == 'K') return value << 10;
  if (unit == 'M') return value << 20;
  if (unit == 'G') return value << 30;
  return value;
}

// Sums a slice with independent accumulators so the loop is load-bound, not
// add-latency-bound, and vectorises without -ffast-math (integer adds).
// Prefetches 1 KiB ahead (as the AVX2 decode kernels do; the AVX-512 ones leave
// it to the hardware prefetcher) to read about as fast as decode streams. Not a
// hard ceiling: F16 decode has read up to ~6 % faster than it on a Zen 4 VM.
uint64_t sum_slice(const uint64_t* data, size_t n) {
  constexpr size_t kAheadWords = 1024 / sizeof(uint64_t);
  uint64_t acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __builtin_prefetch(data + i + kAheadWords);
    for (int k = 0; k < 8; ++k) acc[k] += data[i + k];
  }
  for (; i < n; ++i) acc[0] += data[i];
  uint64_t total = 0;
  for (uint64_t a : acc) total += a;
  return total;
}

}  // namespace

uint64_t last_level_cache_bytes() {
  uint64_t largest = 0;
  for (int index = 0; index < 16; ++index) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
    if (!in) break;
    std::string text;
    in >> text;
    largest = std::max(largest, parse_cache_size(text));
  }
  return largest;
}

size_t default_bandwidth_buffer_bytes() {
  const uint64_t want = 4 * last_level_cache_bytes();
  return static_cast<size_t>(std::clamp<uint64_t>(want, uint64_t{64} << 20, uint64_t{1} << 30));
}

double measure_bandwidth_gbs(int n_threads, size_t buffer_bytes, int runs) {
  if (n_threads < 1) throw Error("bandwidth: n_threads must be at least 1");
  if (runs < 1) throw Error("bandwidth: runs must be at least 1");
  if (buffer_bytes < (size_t{1} << 20)) throw Error("bandwidth: buffer must be at least 1 MiB");
  const size_t n_words = buffer_bytes / sizeof(uint64_t) / 8 * 8;
  // The same pages as the weights (Model::load's default): the roofline is what
  // decode could stream from them.
  HugePageBuffer buffer(n_words * sizeof(uint64_t));
  uint64_t* data = reinterpret_cast<uint64_t*>(buffer.data());

  ThreadPool pool(n_threads);
  auto slice = [&](int t) {
    const size_t per = (n_words / n_threads + 7) / 8 * 8;
    const size_t begin = std::min(n_words, per * t);
    return std::pair{begin, std::min(n_words, begin + per)};
  };
  // First touch by the reading thread puts each page on that thread's node.
  pool.run([&](int t) {
    const auto [begin, end] = slice(t);
    for (size_t i = begin; i < end; ++i) data[i] = i;
  });

  std::vector<uint64_t> sums(n_threads);
  double best_seconds = 0;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.run([&](int t) {
      const auto [begin, end] = slice(t);
      sums[t] = sum_slice(data + begin, end - begin);
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r == 0 || seconds < best_seconds) best_seconds = seconds;
  }
  // The sums are data-dependent; checking them keeps the reads from being elided.
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  const uint64_t expected = n_words / 2 * (n_words - 1);  // 0+1+…+(n-1), n_words is even
  if (total != expected) throw Error("bandwidth: read kernel returned a wrong sum");
  return static_cast<double>(n_words * sizeof(uint64_t)) / best_seconds / 1e9;
}

}  // namespace heed::bench
