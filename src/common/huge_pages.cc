#include "common/huge_pages.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "heed/error.h"

namespace heed {

bool transparent_huge_pages_available() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

HugePageBuffer::HugePageBuffer(size_t bytes) {
  if (bytes == 0) return;
  if (bytes > SIZE_MAX - 2 * kHugePage)
    throw Error("huge-page buffer: " + std::to_string(bytes) + " bytes is too large");
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // One huge page of slack, so that the data can start on a 2 MiB boundary.
  const size_t total = rounded + kHugePage;
  void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    throw Error("huge-page buffer: cannot reserve " + std::to_string(bytes) +
                " bytes: " + std::strerror(errno));
  mapping_ = m;
  mapping_bytes_ = total;
  const auto addr = reinterpret_cast<uintptr_t>(m);
  data_ = static_cast<uint8_t*>(m) + (kHugePage - addr % kHugePage) % kHugePage;
  size_ = bytes;
  // Advice only: without transparent huge pages the memory is ordinary pages.
  (void)madvise(data_, rounded, MADV_HUGEPAGE);
}

HugePageBuffer::~HugePageBuffer() {
  release();
}

HugePageBuffer::HugePageBuffer(HugePageBuffer&& other) noexcept {
  *this = std::move(other);
}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& other) noexcept {
  if (this != &other) {
    release();
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_bytes_ = std::exchange(other.mapping_bytes_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void HugePageBuffer::release() {
  if (mapping_) munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
  data_ = nullptr;
  mapping_bytes_ = size_ = 0;
}

}  // namespace heed
