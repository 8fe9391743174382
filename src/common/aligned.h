// Cache-line-aligned std::vector storage for kernel buffers.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace heed {

// Rows that start mid-line make every 512-bit load touch two cache lines: on
// Zen 5 that alone cost F16 prefill 25 %. Buffers the kernels stream from start
// on a 64-byte boundary (rows of a multiple of 16 floats then stay aligned).
template <class T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAlignedAllocator() = default;
  template <class U>
  explicit CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t n) noexcept { ::operator delete(p, n * sizeof(T), kAlign); }
  template <class U>
  bool operator==(const CacheAlignedAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using AlignedVector = std::vector<T, CacheAlignedAllocator<T>>;

}  // namespace heed
