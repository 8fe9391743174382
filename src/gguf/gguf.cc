#include "gguf/gguf.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace heed::gguf {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader and writer assume a little-endian host");

namespace {

constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// Each nesting level costs at least 12 bytes of file, so without a limit a
// small hostile file could recurse deep enough to overflow the stack.
constexpr int kMaxArrayDepth = 8;
// Smallest possible encodings, used to reject counts before allocating:
// a key/value is key length (8) + type (4) + at least one value byte; a tensor
// info is name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t kMinKeyValueBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 32;
constexpr size_t kMaxDisplayedStringBytes = 120;

bool is_valid_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(ValueType::FLOAT64);
}

uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL:
      return 1;
    case ValueType::UINT16:
    case ValueType::INT16:
      return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32:
      return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64:
    case ValueType::STRING:  // the length prefix
      return 8;
    case ValueType::ARRAY:  // element type + count
      return 12;
  }
  return 1;
}

uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

bool is_valid_alignment(uint64_t a) {
  return a != 0 && std::has_single_bit(a) && a <= std::numeric_limits<uint32_t>::max();
}

// Names and keys come from the file; keep control bytes out of messages.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char ch : s) {
    if (ch < 0x20 || ch == 0x7f) {
      out += fmt::format("\\x{:02x}", ch);
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

std::string supported_type_names() {
  std::string names;
  for (uint32_t id = 0; id < 64; ++id) {
    auto tr = dtype_traits(id);
    if (!tr || !tr->supported) continue;
    if (!names.empty()) names += ", ";
    names += tr->name;
  }
  return names;
}

std::string shape_of(uint32_t n_dims, const uint64_t* ne) {
  std::string s = "[";
  for (uint32_t d = 0; d < n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "]";
}

// Bounds-checked little-endian reader over the file image. Every failure
// names the byte position and what was being read.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, const std::string& path)
      : base_(base), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  // Appended to messages, e.g. " of key 'general.name'".
  void set_context(std::string context) { context_ = std::move(context); }
  const std::string& context() const { return context_; }

  [[noreturn]] void fail(const std::string& msg) const { throw Error(path_ + ": " + msg); }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(fmt::format("truncated at byte {} while reading {}{} ({} bytes needed at offset {})",
                       size_, what, context_, n, pos_));
    }
  }

  template <typename T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const size_t start = pos_;
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      fail(fmt::format("{}{}: length {} at byte {} runs past end of file ({} bytes left)", what,
                       context_, len, start, remaining()));
    }
    std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
  std::string context_;
};

Array read_array(Cursor& c, int depth);

Value read_value(Cursor& c, ValueType type, int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::UINT8:
      v.data = uint64_t{c.read<uint8_t>("value")};
      break;
    case ValueType::INT8:
      v.data = int64_t{c.read<int8_t>("value")};
      break;
    case ValueType::UINT16:
      v.data = uint64_t{c.read<uint16_t>("value")};
      break;
    case ValueType::INT16:
      v.data = int64_t{c.read<int16_t>("value")};
      break;
    case ValueType::UINT32:
      v.data = uint64_t{c.read<uint32_t>("value")};
      break;
    case ValueType::INT32:
      v.data = int64_t{c.read<int32_t>("value")};
      break;
    case ValueType::UINT64:
      v.data = c.read<uint64_t>("value");
      break;
    case ValueType::INT64:
      v.data = c.read<int64_t>("value");
      break;
    case ValueType::FLOAT32:
      v.data = double{c.read<float>("value")};
      break;
    case ValueType::FLOAT64:
      v.data = c.read<double>("value");
      break;
    case ValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>("value");
      if (b > 1) c.fail(fmt::format("invalid bool {} at byte {}{}", b, c.pos() - 1, c.context()));
      v.data = b == 1;
      break;
    }
    case ValueType::STRING:
      v.data = c.read_string("string value");
      break;
    case ValueType::ARRAY:
      v.data = read_array(c, depth + 1);
      break;
  }
  return v;
}

Array read_array(Cursor& c, int depth) {
  if (depth > kMaxArrayDepth) {
    c.fail(fmt::format("arrays nested deeper than {} levels at byte {}{}", kMaxArrayDepth, c.pos(),
                       c.context()));
  }
  const size_t start = c.pos();
  const uint32_t elem = c.read<uint32_t>("array element type");
  if (!is_valid_value_type(elem)) {
    c.fail(fmt::format("unknown array element type {} at byte {}{}", elem, start, c.context()));
  }
  Array a;
  a.elem_type = static_cast<ValueType>(elem);
  const uint64_t n = c.read<uint64_t>("array length");
  if (n > c.remaining() / min_encoded_size(a.elem_type)) {
    c.fail(fmt::format("array of {} {} at byte {}{} runs past end of file ({} bytes left)", n,
                       value_type_name(a.elem_type), start, c.context(), c.remaining()));
  }
  a.items.reserve(n);
  for (uint64_t i = 0; i < n; ++i) a.items.push_back(read_value(c, a.elem_type, depth));
  return a;
}

// Shape, type and size of one tensor; the data range is checked once the data
// section start is known.
void validate_tensor_shape(Cursor& c, TensorInfo& t, uint32_t type_id) {
  const std::string name = printable(t.name);
  uint64_t n_elements = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    if (t.ne[d] == 0) c.fail(fmt::format("tensor '{}': dimension {} is 0", name, d));
    if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements) ||
        n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      c.fail(fmt::format("tensor '{}': shape {} has too many elements (overflows 64 bits)", name,
                         t.shape_string()));
    }
  }
  const auto traits = dtype_traits(type_id);
  if (!traits) c.fail(fmt::format("tensor '{}': unknown tensor type id {}", name, type_id));
  if (!traits->supported) {
    c.fail(fmt::format("tensor '{}': type {} is not supported (supported: {})", name, traits->name,
                       supported_type_names()));
  }
  t.type = static_cast<DType>(type_id);
  if (t.ne[0] % traits->block_size != 0) {
    c.fail(fmt::format("tensor '{}': row length {} is not a multiple of the {} block size {}", name,
                       t.ne[0], traits->name, traits->block_size));
  }
  uint64_t row_bytes = 0;
  if (__builtin_mul_overflow(t.ne[0] / traits->block_size, uint64_t{traits->type_size},
                             &row_bytes) ||
      __builtin_mul_overflow(row_bytes, t.rows(), &t.n_bytes)) {
    c.fail(fmt::format("tensor '{}': shape {} of type {} needs more than 2^64 bytes", name,
                       t.shape_string(), traits->name));
  }
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
      return "u8";
    case ValueType::INT8:
      return "i8";
    case ValueType::UINT16:
      return "u16";
    case ValueType::INT16:
      return "i16";
    case ValueType::UINT32:
      return "u32";
    case ValueType::INT32:
      return "i32";
    case ValueType::FLOAT32:
      return "f32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::UINT64:
      return "u64";
    case ValueType::INT64:
      return "i64";
    case ValueType::FLOAT64:
      return "f64";
  }
  return "unknown";
}

// ---- Value ------------------------------------------------------------------

bool Value::is_integer() const {
  switch (type) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

int64_t Value::as_int() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Error(fmt::format("value {} does not fit in int64", *u));
    }
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&data)) return *i;
  throw Error(fmt::format("expected an integer, got {}", value_type_name(type)));
}

uint64_t Value::as_uint() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data)) {
    if (*i < 0) throw Error(fmt::format("value {} is negative, expected an unsigned integer", *i));
    return static_cast<uint64_t>(*i);
  }
  throw Error(fmt::format("expected an unsigned integer, got {}", value_type_name(type)));
}

double Value::as_double() const {
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&data)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&data)) return static_cast<double>(*i);
  throw Error(fmt::format("expected a number, got {}", value_type_name(type)));
}

bool Value::as_bool() const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  throw Error(fmt::format("expected bool, got {}", value_type_name(type)));
}

const std::string& Value::as_string() const {
  if (const auto* s = std::get_if<std::string>(&data)) return *s;
  throw Error(fmt::format("expected string, got {}", value_type_name(type)));
}

const Array& Value::as_array() const {
  if (const auto* a = std::get_if<Array>(&data)) return *a;
  throw Error(fmt::format("expected array, got {}", value_type_name(type)));
}

namespace {

std::string display_string(const std::string& s) {
  size_t shown = s.size();
  if (shown > kMaxDisplayedStringBytes) {
    shown = kMaxDisplayedStringBytes;
    // Back up to the start of a UTF-8 sequence so the cut stays valid text.
    while (shown > 0 && (static_cast<unsigned char>(s[shown]) & 0xC0) == 0x80) --shown;
  }
  std::string out = "\"";
  for (size_t i = 0; i < shown; ++i) {
    const unsigned char ch = s[i];
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          out += fmt::format("\\x{:02x}", ch);
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  out += '"';
  if (shown < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

}  // namespace

std::string Value::to_string(size_t max_items) const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return std::to_string(*u);
  if (const auto* i = std::get_if<int64_t>(&data)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&data)) {
    // Shortest form that round-trips in the declared width: 1e-05, not 9.99999974737875e-06.
    return type == ValueType::FLOAT32 ? fmt::format("{}", static_cast<float>(*d))
                                      : fmt::format("{}", *d);
  }
  if (const auto* b = std::get_if<bool>(&data)) return *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&data)) return display_string(*s);
  const Array& a = std::get<Array>(data);
  std::string out = "[";
  const size_t shown = std::min(max_items, a.items.size());
  for (size_t i = 0; i < shown; ++i) {
    if (i) out += ", ";
    out += a.items[i].to_string(max_items);
  }
  if (shown < a.items.size()) {
    out += fmt::format("{}... {} more", shown ? ", " : "", a.items.size() - shown);
  }
  out += "]";
  if (a.items.size() > shown) {
    out += fmt::format(" ({} x {})", a.items.size(), value_type_name(a.elem_type));
  }
  return out;
}

std::string TensorInfo::shape_string() const {
  return shape_of(n_dims, ne);
}

// ---- File -------------------------------------------------------------------

namespace {

// Reads exactly `size` bytes of fd into out; a short read (the file shrank since
// fstat) or an I/O error is an error naming the file and offset.
void read_all(int fd, uint8_t* out, size_t size, const File& f) {
  size_t done = 0;
  while (done < size) {
    const size_t want = std::min<size_t>(size - done, size_t{1} << 30);
    const ssize_t got = pread(fd, out + done, want, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw Error(
          fmt::format("{}: read failed at offset {}: {}", f.path(), done, std::strerror(errno)));
    if (got == 0)
      throw Error(
          fmt::format("{}: file ended at offset {} of {} while reading", f.path(), done, size));
    done += static_cast<size_t>(got);
  }
}

}  // namespace

File::~File() {
  if (mapping_) munmap(mapping_, size_);
}

void File::fail(const std::string& msg) const {
  throw Error(path_ + ": " + msg);
}

std::unique_ptr<File> File::open(const std::string& path, Residency where) {
  std::unique_ptr<File> f(new File());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) f->fail(fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    f->fail(fmt::format("cannot stat: {}", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    f->fail("not a regular file");
  }
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0 && where == Residency::HugePages && transparent_huge_pages_available()) {
    try {
      f->copy_ = HugePageBuffer(f->size_);
      read_all(fd, f->copy_.data(), f->size_, *f);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    f->base_ = f->copy_.data();
  } else if (f->size_ > 0) {
    void* m = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (m == MAP_FAILED) f->fail(fmt::format("cannot mmap: {}", std::strerror(err)));
    f->mapping_ = m;
    f->base_ = static_cast<const uint8_t*>(m);
  } else {
    ::close(fd);
  }
  f->parse();
  return f;
}

std::unique_ptr<File> File::from_memory(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<File> f(new File());
  f->path_ = std::move(name);
  f->base_ = data;
  f->size_ = size;
  f->parse();
  return f;
}

void File::parse() {
  Cursor c(base_, size_, path_);
  c.need(4, "magic");
  if (std::memcmp(base_, "GGUF", 4) != 0) {
    fail(fmt::format("not a GGUF file (magic '{}')",
                     printable(std::string_view(reinterpret_cast<const char*>(base_), 4))));
  }
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    fail(fmt::format("unsupported GGUF version {} (heed reads versions 2 and 3{})", version_,
                     swapped == 2 || swapped == 3 ? "; this looks like a big-endian file" : ""));
  }
  const size_t counts_at = c.pos();
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata key/value count");
  if (n_kv > c.remaining() / kMinKeyValueBytes) {
    fail(fmt::format("n_kv {} at byte {} cannot fit in the {} bytes left", n_kv, counts_at + 8,
                     c.remaining()));
  }
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    fail(fmt::format("n_tensors {} at byte {} cannot fit in the {} bytes left", n_tensors,
                     counts_at, c.remaining()));
  }

  for (uint64_t i = 0; i < n_kv; ++i) {
    c.set_context(fmt::format(" #{}", i));
    KeyValue kv;
    kv.key = c.read_string("key");
    c.set_context(fmt::format(" of key '{}'", printable(kv.key)));
    const size_t type_at = c.pos();
    const uint32_t type = c.read<uint32_t>("value type");
    if (!is_valid_value_type(type)) {
      fail(fmt::format("key '{}': unknown value type {} at byte {}", printable(kv.key), type,
                       type_at));
    }
    kv.value = read_value(c, static_cast<ValueType>(type), 0);
    kv_.push_back(std::move(kv));
  }
  for (size_t i = 0; i < kv_.size(); ++i) {
    if (!kv_index_.emplace(kv_[i].key, i).second) {
      fail(fmt::format("duplicate key '{}'", printable(kv_[i].key)));
    }
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::UINT32) {
      fail(fmt::format("general.alignment must be of type u32, got {}", value_type_name(a->type)));
    }
    alignment_ = a->as_uint();
    if (alignment_ == 0 || !std::has_single_bit(alignment_)) {
      fail(fmt::format("general.alignment {} is not a nonzero power of two", alignment_));
    }
  } else {
    alignment_ = kDefaultAlignment;
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    c.set_context(fmt::format(" #{}", i));
    TensorInfo t;
    t.name = c.read_string("tensor name");
    c.set_context(fmt::format(" of tensor '{}'", printable(t.name)));
    t.n_dims = c.read<uint32_t>("n_dims");
    if (t.n_dims < 1 || t.n_dims > kMaxDims) {
      fail(fmt::format("tensor '{}': n_dims {} is not in 1..{}", printable(t.name), t.n_dims,
                       kMaxDims));
    }
    for (uint32_t d = 0; d < t.n_dims; ++d) t.ne[d] = c.read<uint64_t>("dimension");
    const uint32_t type_id = c.read<uint32_t>("tensor type");
    t.offset = c.read<uint64_t>("data offset");
    validate_tensor_shape(c, t, type_id);
    tensors_.push_back(std::move(t));
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (!tensor_index_.emplace(tensors_[i].name, i).second) {
      fail(fmt::format("duplicate tensor '{}'", printable(tensors_[i].name)));
    }
  }

  const uint64_t data_start = align_up(c.pos(), alignment_);
  for (TensorInfo& t : tensors_) {
    if (t.offset % alignment_ != 0) {
      fail(fmt::format("tensor '{}': offset {} is not a multiple of the alignment {}",
                       printable(t.name), t.offset, alignment_));
    }
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(data_start, t.offset, &begin) ||
        __builtin_add_overflow(begin, t.n_bytes, &end)) {
      fail(
          fmt::format("tensor '{}': data at offset {} (+{} bytes) runs past end of file ({} bytes)",
                      printable(t.name), t.offset, t.n_bytes, size_));
    }
    if (end > size_) {
      fail(fmt::format("tensor '{}': data [{}, {}) runs past end of file ({} bytes)",
                       printable(t.name), begin, end, size_));
    }
    t.data = base_ + begin;
  }
}

const Value* File::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const Value& File::get(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  fail(fmt::format("missing key '{}'", key));
}

namespace {

// Runs a Value conversion and re-throws its error with the file and key prepended.
template <typename Fn>
auto convert(const File& f, std::string_view key, const Value& v, Fn&& fn) {
  try {
    return fn(v);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: key '{}': {}", f.path(), key, e.what()));
  }
}

}  // namespace

std::string File::get_string(std::string_view key) const {
  return convert(*this, key, get(key), [](const Value& v) { return v.as_string(); });
}

std::string File::get_string_or(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  return v ? get_string(key) : std::move(fallback);
}

uint64_t File::get_uint(std::string_view key) const {
  return convert(*this, key, get(key), [](const Value& v) { return v.as_uint(); });
}

uint64_t File::get_uint_or(std::string_view key, uint64_t fallback) const {
  return find(key) ? get_uint(key) : fallback;
}

double File::get_float(std::string_view key) const {
  return convert(*this, key, get(key), [](const Value& v) { return v.as_double(); });
}

double File::get_float_or(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}

bool File::get_bool_or(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  return v ? convert(*this, key, *v, [](const Value& x) { return x.as_bool(); }) : fallback;
}

std::vector<std::string> File::get_string_array(std::string_view key) const {
  return convert(*this, key, get(key), [](const Value& v) {
    const Array& a = v.as_array();
    if (a.elem_type != ValueType::STRING) {
      throw Error(fmt::format("expected an array of string, got an array of {}",
                              value_type_name(a.elem_type)));
    }
    std::vector<std::string> out;
    out.reserve(a.items.size());
    for (const Value& item : a.items) out.push_back(item.as_string());
    return out;
  });
}

std::vector<float> File::get_float_array(std::string_view key) const {
  return convert(*this, key, get(key), [](const Value& v) {
    const Array& a = v.as_array();
    const Value probe{a.elem_type, {}};
    if (!probe.is_float() && !probe.is_integer()) {
      throw Error(fmt::format("expected an array of numbers, got an array of {}",
                              value_type_name(a.elem_type)));
    }
    std::vector<float> out;
    out.reserve(a.items.size());
    for (const Value& item : a.items) out.push_back(static_cast<float>(item.as_double()));
    return out;
  });
}

std::vector<int64_t> File::get_int_array(std::string_view key) const {
  return convert(*this, key, get(key), [](const Value& v) {
    const Array& a = v.as_array();
    if (!Value{a.elem_type, {}}.is_integer()) {
      throw Error(fmt::format("expected an array of integers, got an array of {}",
                              value_type_name(a.elem_type)));
    }
    std::vector<int64_t> out;
    out.reserve(a.items.size());
    for (const Value& item : a.items) out.push_back(item.as_int());
    return out;
  });
}

// ---- Writer -----------------------------------------------------------------

void Writer::set(std::string key, Value value) {
  if (key == "general.alignment") {
    if (value.type != ValueType::UINT32 || !is_valid_alignment(value.as_uint())) {
      throw Error(fmt::format("writer: general.alignment must be a u32 power of two, got {} {}",
                              value_type_name(value.type), value.to_string()));
    }
    alignment_ = value.as_uint();
  }
  for (KeyValue& kv : kv_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kv_.push_back({std::move(key), std::move(value)});
}

void Writer::set_alignment(uint64_t a) {
  if (!is_valid_alignment(a)) {
    throw Error(fmt::format("writer: alignment {} is not a power of two below 2^32", a));
  }
  set("general.alignment", Value{ValueType::UINT32, uint64_t{a}});
}

void Writer::set_string(std::string key, std::string v) {
  set(std::move(key), Value{ValueType::STRING, std::move(v)});
}
void Writer::set_u32(std::string key, uint32_t v) {
  set(std::move(key), Value{ValueType::UINT32, uint64_t{v}});
}
void Writer::set_i32(std::string key, int32_t v) {
  set(std::move(key), Value{ValueType::INT32, int64_t{v}});
}
void Writer::set_f32(std::string key, float v) {
  set(std::move(key), Value{ValueType::FLOAT32, double{v}});
}
void Writer::set_bool(std::string key, bool v) {
  set(std::move(key), Value{ValueType::BOOL, v});
}

void Writer::set_string_array(std::string key, const std::vector<std::string>& v) {
  Array a{ValueType::STRING, {}};
  a.items.reserve(v.size());
  for (const std::string& s : v) a.items.push_back(Value{ValueType::STRING, s});
  set(std::move(key), Value{ValueType::ARRAY, std::move(a)});
}

void Writer::set_f32_array(std::string key, const std::vector<float>& v) {
  Array a{ValueType::FLOAT32, std::vector<Value>(v.size())};
  for (size_t i = 0; i < v.size(); ++i) a.items[i] = {ValueType::FLOAT32, double{v[i]}};
  set(std::move(key), Value{ValueType::ARRAY, std::move(a)});
}

void Writer::set_i32_array(std::string key, const std::vector<int32_t>& v) {
  Array a{ValueType::INT32, std::vector<Value>(v.size())};
  for (size_t i = 0; i < v.size(); ++i) a.items[i] = {ValueType::INT32, int64_t{v[i]}};
  set(std::move(key), Value{ValueType::ARRAY, std::move(a)});
}

void Writer::add_tensor(std::string name, DType type, std::vector<uint64_t> ne,
                        std::vector<uint8_t> data) {
  const std::string where = fmt::format("writer: tensor '{}'", printable(name));
  if (ne.empty() || ne.size() > kMaxDims) {
    throw Error(fmt::format("{}: {} dimensions, expected 1..{}", where, ne.size(), kMaxDims));
  }
  const auto traits = dtype_traits(type);
  if (!traits)
    throw Error(fmt::format("{}: unknown type id {}", where, static_cast<uint32_t>(type)));
  uint64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] == 0) throw Error(fmt::format("{}: dimension {} is 0", where, d));
    if (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows)) {
      throw Error(fmt::format("{}: shape overflows", where));
    }
  }
  const auto row = row_bytes(type, ne[0]);
  if (!row) {
    throw Error(fmt::format("{}: row length {} is not a multiple of the {} block size {}", where,
                            ne[0], traits->name, traits->block_size));
  }
  uint64_t expected = 0;
  if (__builtin_mul_overflow(uint64_t{*row}, rows, &expected) || data.size() != expected) {
    throw Error(fmt::format("{}: got {} data bytes, shape {} of {} needs {}", where, data.size(),
                            shape_of(static_cast<uint32_t>(ne.size()), ne.data()), traits->name,
                            expected));
  }
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) throw Error(fmt::format("writer: duplicate tensor '{}'", printable(name)));
  }
  tensors_.push_back({std::move(name), type, std::move(ne), std::move(data)});
}

namespace {

class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>& out) : out_(out) {}

  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) { out_.resize(align_up(out_.size(), alignment), 0); }

  // The value's payload (without its top-level type tag); arrays carry their
  // element type and count, and nested arrays recurse.
  void put_payload(const Value& v) {
    switch (v.type) {
      case ValueType::UINT8:
        put(static_cast<uint8_t>(unsigned_in_range(v, UINT8_MAX)));
        break;
      case ValueType::UINT16:
        put(static_cast<uint16_t>(unsigned_in_range(v, UINT16_MAX)));
        break;
      case ValueType::UINT32:
        put(static_cast<uint32_t>(unsigned_in_range(v, UINT32_MAX)));
        break;
      case ValueType::UINT64:
        put(v.as_uint());
        break;
      case ValueType::INT8:
        put(static_cast<int8_t>(signed_in_range(v, INT8_MIN, INT8_MAX)));
        break;
      case ValueType::INT16:
        put(static_cast<int16_t>(signed_in_range(v, INT16_MIN, INT16_MAX)));
        break;
      case ValueType::INT32:
        put(static_cast<int32_t>(signed_in_range(v, INT32_MIN, INT32_MAX)));
        break;
      case ValueType::INT64:
        put(v.as_int());
        break;
      case ValueType::FLOAT32:
        put(static_cast<float>(v.as_double()));
        break;
      case ValueType::FLOAT64:
        put(v.as_double());
        break;
      case ValueType::BOOL:
        put(static_cast<uint8_t>(v.as_bool()));
        break;
      case ValueType::STRING:
        put_string(v.as_string());
        break;
      case ValueType::ARRAY: {
        const Array& a = v.as_array();
        put(static_cast<uint32_t>(a.elem_type));
        put<uint64_t>(a.items.size());
        for (const Value& item : a.items) {
          if (item.type != a.elem_type) {
            throw Error(fmt::format("array of {} holds a {}", value_type_name(a.elem_type),
                                    value_type_name(item.type)));
          }
          put_payload(item);
        }
        break;
      }
    }
  }

 private:
  static uint64_t unsigned_in_range(const Value& v, uint64_t max) {
    const uint64_t x = v.as_uint();
    if (x > max) {
      throw Error(fmt::format("value {} does not fit in {}", x, value_type_name(v.type)));
    }
    return x;
  }
  static int64_t signed_in_range(const Value& v, int64_t min, int64_t max) {
    const int64_t x = v.as_int();
    if (x < min || x > max) {
      throw Error(fmt::format("value {} does not fit in {}", x, value_type_name(v.type)));
    }
    return x;
  }

  std::vector<uint8_t>& out_;
};

}  // namespace

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out;
  ByteSink sink(out);
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  sink.put<uint32_t>(3);
  sink.put<uint64_t>(tensors_.size());
  sink.put<uint64_t>(kv_.size());
  for (const KeyValue& kv : kv_) {
    sink.put_string(kv.key);
    sink.put(static_cast<uint32_t>(kv.value.type));
    try {
      sink.put_payload(kv.value);
    } catch (const Error& e) {
      throw Error(fmt::format("writer: key '{}': {}", printable(kv.key), e.what()));
    }
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    sink.put_string(t.name);
    sink.put(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t n : t.ne) sink.put(n);
    sink.put(static_cast<uint32_t>(t.type));
    sink.put(offset);
    offset = align_up(offset + t.data.size(), alignment_);
  }
  // Like llama.cpp, pad after every tensor (including the last), so readers
  // that load the padded data section size find all its bytes.
  sink.pad_to(alignment_);
  for (const PendingTensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    sink.pad_to(alignment_);
  }
  return out;
}

void Writer::write(const std::string& path) const {
  const std::vector<uint8_t> bytes = to_bytes();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  const size_t written = std::fwrite(bytes.data(), 1, bytes.size(), f);
  const int write_err = errno;
  if (std::fclose(f) != 0 || written != bytes.size()) {
    throw Error(fmt::format("{}: cannot write: {}", path,
                            std::strerror(written != bytes.size() ? write_err : errno)));
  }
}

}  // namespace heed::gguf
