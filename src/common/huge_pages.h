// Anonymous memory in 2 MiB transparent huge pages, for data read once per
// token (model weights) and for the bandwidth probe that sizes their roofline.
//
// Why: decode streams every weight once per token. In the file's own mapping
// (4 KiB pages of the page cache) each page costs a TLB walk and restarts the
// hardware prefetcher; on a 2-core Zen 5 VM, reading the weights into huge
// pages made TinyLlama decode 22-56 % faster (F16) and 5-33 % (Q4_K_M) in
// paired runs. Where the kernel offers no transparent huge pages the buffer is
// ordinary anonymous memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace heed {

// True when /sys/kernel/mm/transparent_hugepage/enabled is "always" or
// "madvise" (madvise(MADV_HUGEPAGE) then gets 2 MiB pages where memory allows).
bool transparent_huge_pages_available();

class HugePageBuffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  HugePageBuffer() = default;
  // Reserves `bytes` (zero-filled on first touch), aligned to 2 MiB and advised
  // MADV_HUGEPAGE. Throws heed::Error when the address space is exhausted.
  explicit HugePageBuffer(size_t bytes);
  ~HugePageBuffer();
  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void release();
  void* mapping_ = nullptr;  // the whole reservation, with its alignment slack
  size_t mapping_bytes_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace heed
