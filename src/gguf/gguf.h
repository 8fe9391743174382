// GGUF reader (versions 2 and 3): mmap, full validation before use.
//
// Everything read from the file is checked before it is trusted: string and
// array lengths against the bytes left, tensor dims against overflow, tensor
// data ranges against the file size, type ids against the known set, and
// duplicate keys / tensor names. A failure throws heed::Error whose message
// starts with the file path and names the field or tensor, e.g.
//   "model.gguf: tensor 'blk.0.attn_q.weight': data [4096, 1052672) runs past end of file (1000000
//   bytes)"
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/ggml_types.h"
#include "common/huge_pages.h"
#include "heed/error.h"

namespace heed::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<Value> items;  // nested arrays allowed
  bool operator==(const Array&) const = default;
};

// One metadata value. Integers are kept as int64/uint64, floats as double,
// but `type` remembers the type the file declared.
struct Value {
  ValueType type = ValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  bool is_integer() const;
  bool is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
  // Numeric accessors throw heed::Error on a non-numeric value or out-of-range conversion.
  int64_t as_int() const;
  uint64_t as_uint() const;
  double as_double() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  // Short human-readable form for `heed info`: arrays show their first `max_items`
  // items, long strings are cut (at a UTF-8 boundary) and control bytes escaped.
  std::string to_string(size_t max_items = 8) const;
  // Same declared type and same data (so NaN != NaN, as in IEEE).
  bool operator==(const Value&) const = default;
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;            // relative to the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // points into the mapping; valid while the File lives

  uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  uint64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // e.g. "[256, 512]"
};

class File {
 public:
  // Where the bytes live once open: the file's own read-only mapping (no copy,
  // 4 KiB page-cache pages), or read into 2 MiB huge pages (a copy, which
  // streams faster: see common/huge_pages.h). HugePages falls back to Mapped
  // where the kernel has no transparent huge pages.
  enum class Residency { Mapped, HugePages };
  // Opens and validates `path`. Throws heed::Error.
  static std::unique_ptr<File> open(const std::string& path, Residency where = Residency::Mapped);
  // Parses an in-memory image (used by the fuzzer and tests). The buffer must outlive the File.
  static std::unique_ptr<File> from_memory(const uint8_t* data, size_t size, std::string name);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  bool in_huge_pages() const { return copy_.data() != nullptr; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;  // nullptr when absent

  // Typed getters. The *_or variants return `fallback` when the key is absent
  // and throw heed::Error (naming the key) when it is present with the wrong type.
  const Value& get(std::string_view key) const;  // throws when absent: "missing key 'x'"
  std::string get_string(std::string_view key) const;
  std::string get_string_or(std::string_view key, std::string fallback) const;
  uint64_t get_uint(std::string_view key) const;
  uint64_t get_uint_or(std::string_view key, uint64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;
  // Arrays of a given element kind; throw on wrong element type.
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent

 private:
  File() = default;
  void parse();
  [[noreturn]] void fail(const std::string& msg) const;

  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when we own an mmap
  HugePageBuffer copy_;      // the bytes, when read into huge pages
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
  // Built once parsing is done; the views point into kv_ / tensors_, which never change afterwards.
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// ---- Writer ---------------------------------------------------------------
// Builds GGUF v3 files (used by `heed synth`, tests and the malformed-file suite).
class Writer {
 public:
  // Keeps insertion order, replaces on duplicate key. Setting "general.alignment"
  // (must be a u32 power of two) also sets the data alignment.
  void set(std::string key, Value value);
  void set_string(std::string key, std::string v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, const std::vector<std::string>& v);
  void set_f32_array(std::string key, const std::vector<float>& v);
  void set_i32_array(std::string key, const std::vector<int32_t>& v);
  // `data` must hold exactly row_bytes(type, ne[0]) * rows bytes.
  void add_tensor(std::string name, DType type, std::vector<uint64_t> ne,
                  std::vector<uint8_t> data);
  // Stores "general.alignment" = a (u32); throws unless a is a power of two below 2^32.
  void set_alignment(uint64_t a);

  std::vector<uint8_t> to_bytes() const;
  void write(const std::string& path) const;  // throws heed::Error on I/O failure

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<KeyValue> kv_;
  std::vector<PendingTensor> tensors_;
  uint64_t alignment_ = 32;
};

}  // namespace heed::gguf
