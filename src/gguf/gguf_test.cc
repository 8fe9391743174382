#include "gguf/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace heed::gguf {
namespace {

namespace fs = std::filesystem;

constexpr const char* kName = "mem.gguf";

std::vector<uint8_t> pattern(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 37);
  return v;
}

std::unique_ptr<File> parse(const std::vector<uint8_t>& bytes) {
  return File::from_memory(bytes.data(), bytes.size(), kName);
}

// The message of the heed::Error that parsing throws ("" plus a test failure if none).
std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsed without error";
  return "";
}

#define EXPECT_PARSE_ERROR(bytes, fragment)                                   \
  do {                                                                        \
    const std::string msg_ = parse_error(bytes);                              \
    EXPECT_EQ(msg_.rfind(std::string(kName) + ": ", 0), 0u) << msg_;          \
    EXPECT_NE(msg_.find(fragment), std::string::npos) << "message: " << msg_; \
  } while (0)

size_t find_text(const std::vector<uint8_t>& b, std::string_view s) {
  const auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  EXPECT_NE(it, b.end()) << "'" << s << "' not in file";
  return static_cast<size_t>(it - b.begin());
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Byte positions of a key's type tag and value (keys are written as u64 length + bytes).
struct KeyAt {
  size_t type;
  size_t value;
};
KeyAt locate_key(const std::vector<uint8_t>& b, std::string_view key) {
  const size_t p = find_text(b, key) + key.size();
  return {p, p + 4};
}

// Byte positions of a tensor info's fields, found after its name.
struct TensorAt {
  size_t n_dims, ne, type, offset;
};
TensorAt locate_tensor(const std::vector<uint8_t>& b, std::string_view name, uint32_t n_dims) {
  const size_t p = find_text(b, name) + name.size();
  return {p, p + 4, p + 4 + 8 * n_dims, p + 8 + 8 * n_dims};
}

Writer small_writer() {
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("test.count", 7);
  w.set_f32_array("test.floats", {1.5f, -2.0f});
  w.set_string_array("test.words", {"a", "bc"});
  w.set_bool("test.flag", true);
  w.add_tensor("weight", DType::F32, {4, 2}, pattern(32));
  w.add_tensor("quant", DType::Q8_0, {32, 1}, pattern(34, 9));
  return w;
}

Value u64v(uint64_t v, ValueType t) {
  return Value{t, v};
}
Value i64v(int64_t v, ValueType t) {
  return Value{t, v};
}

Value nested(int depth) {
  Value v{ValueType::UINT8, uint64_t{5}};
  for (int i = 0; i < depth; ++i) {
    const ValueType inner = v.type;
    v = Value{ValueType::ARRAY, Array{inner, {v}}};
  }
  return v;
}

bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type || a.data.index() != b.data.index()) return false;
  if (const auto* x = std::get_if<Array>(&a.data)) {
    const Array& y = std::get<Array>(b.data);
    if (x->elem_type != y.elem_type || x->items.size() != y.items.size()) return false;
    for (size_t i = 0; i < x->items.size(); ++i) {
      if (!same_value(x->items[i], y.items[i])) return false;
    }
    return true;
  }
  return a.data == b.data ||
         (a.is_float() && std::isnan(a.as_double()) && std::isnan(b.as_double()));
}

// ---- Writer / reader round trip -------------------------------------------

struct ExpectedTensor {
  std::string name;
  DType type;
  std::vector<uint64_t> ne;
  std::vector<uint8_t> data;
};

TEST(GgufRoundTrip, EveryValueTypeNestedArraysAndTensors) {
  std::vector<KeyValue> kvs = {
      {"v.u8", u64v(255, ValueType::UINT8)},
      {"v.i8", i64v(-128, ValueType::INT8)},
      {"v.u16", u64v(65535, ValueType::UINT16)},
      {"v.i16", i64v(-32768, ValueType::INT16)},
      {"v.u32", u64v(4294967295u, ValueType::UINT32)},
      {"v.i32", i64v(std::numeric_limits<int32_t>::min(), ValueType::INT32)},
      {"v.f32", Value{ValueType::FLOAT32, double{0.1f}}},
      {"v.bool", Value{ValueType::BOOL, false}},
      {"v.string", Value{ValueType::STRING, std::string("h\xc3\xa9llo \"q\"\n\0z", 12)}},
      {"v.empty_string", Value{ValueType::STRING, std::string()}},
      {"v.u64", u64v(std::numeric_limits<uint64_t>::max(), ValueType::UINT64)},
      {"v.i64", i64v(std::numeric_limits<int64_t>::min(), ValueType::INT64)},
      {"v.f64", Value{ValueType::FLOAT64, -1e300}},
      {"v.nan", Value{ValueType::FLOAT64, std::nan("")}},
      {"v.nested",
       Value{ValueType::ARRAY,
             Array{ValueType::ARRAY,
                   {Value{ValueType::ARRAY,
                          Array{ValueType::INT16,
                                {i64v(1, ValueType::INT16), i64v(-2, ValueType::INT16)}}},
                    Value{ValueType::ARRAY,
                          Array{ValueType::STRING, {Value{ValueType::STRING, std::string("x")}}}},
                    Value{ValueType::ARRAY, Array{ValueType::UINT8, {}}}, nested(3)}}}},
      {"v.bools", Value{ValueType::ARRAY,
                        Array{ValueType::BOOL,
                              {Value{ValueType::BOOL, true}, Value{ValueType::BOOL, false}}}}},
  };
  Writer w;
  for (const KeyValue& kv : kvs) w.set(kv.key, kv.value);
  w.set_i32_array("a.i32", {-1, 0, 2147483647});
  kvs.push_back({"a.i32", Value{ValueType::ARRAY,
                                Array{ValueType::INT32,
                                      {i64v(-1, ValueType::INT32), i64v(0, ValueType::INT32),
                                       i64v(2147483647, ValueType::INT32)}}}});
  w.set_string_array("a.str", {"", "two"});
  kvs.push_back(
      {"a.str", Value{ValueType::ARRAY, Array{ValueType::STRING,
                                              {Value{ValueType::STRING, std::string()},
                                               Value{ValueType::STRING, std::string("two")}}}}});
  w.set_f32_array("a.f32", {0.5f, -3.25f});
  kvs.push_back({"a.f32", Value{ValueType::ARRAY, Array{ValueType::FLOAT32,
                                                        {Value{ValueType::FLOAT32, 0.5},
                                                         Value{ValueType::FLOAT32, -3.25}}}}});

  const std::vector<ExpectedTensor> tensors = {
      {"t.f32", DType::F32, {3, 2}, pattern(24, 3)},
      {"t.f16", DType::F16, {8}, pattern(16, 5)},
      {"t.q4_K", DType::Q4_K, {256, 2}, pattern(288, 7)},
      {"t.bf16.4d", DType::BF16, {2, 2, 2, 2}, pattern(32, 11)},
  };
  for (const ExpectedTensor& t : tensors) w.add_tensor(t.name, t.type, t.ne, t.data);

  const std::vector<uint8_t> bytes = w.to_bytes();
  const auto f = parse(bytes);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->file_size(), bytes.size());
  ASSERT_EQ(f->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(f->metadata()[i].key, kvs[i].key) << "metadata keeps insertion order";
    EXPECT_TRUE(same_value(f->metadata()[i].value, kvs[i].value))
        << kvs[i].key << ": " << f->metadata()[i].value.to_string() << " vs "
        << kvs[i].value.to_string();
  }
  ASSERT_EQ(f->tensors().size(), tensors.size());
  for (const ExpectedTensor& e : tensors) {
    const TensorInfo* t = f->find_tensor(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->type, e.type);
    ASSERT_EQ(t->n_dims, e.ne.size());
    for (size_t d = 0; d < 4; ++d) EXPECT_EQ(t->ne[d], d < e.ne.size() ? e.ne[d] : 1u);
    EXPECT_EQ(t->n_bytes, e.data.size());
    EXPECT_EQ(t->offset % 32, 0u);
    EXPECT_EQ((t->data - bytes.data()) % 32, 0) << "data section and tensors are aligned";
    EXPECT_EQ(std::memcmp(t->data, e.data.data(), e.data.size()), 0) << e.name;
  }
  EXPECT_EQ(f->find_tensor("t.bf16.4d")->shape_string(), "[2, 2, 2, 2]");
  EXPECT_EQ(f->find_tensor("absent"), nullptr);
  EXPECT_EQ(bytes.size() % 32, 0u) << "the last tensor is padded too";

  // The same bytes through write() and the mmap path.
  const fs::path path = fs::temp_directory_path() / "heed_gguf_roundtrip.gguf";
  w.write(path.string());
  const auto g = File::open(path.string());
  EXPECT_EQ(g->path(), path.string());
  EXPECT_EQ(g->file_size(), bytes.size());
  ASSERT_EQ(g->tensors().size(), tensors.size());
  EXPECT_EQ(std::memcmp(g->find_tensor("t.q4_K")->data, tensors[2].data.data(), 288), 0);
  EXPECT_EQ(g->get_uint("v.u64"), std::numeric_limits<uint64_t>::max());
  fs::remove(path);
}

TEST(GgufRoundTrip, CustomAlignmentPadsDataAndTensors) {
  Writer w;
  w.set_alignment(128);
  w.set_string("k", "abc");
  w.add_tensor("a", DType::F32, {3}, pattern(12));
  w.add_tensor("b", DType::Q8_0, {32}, pattern(34));
  const std::vector<uint8_t> bytes = w.to_bytes();
  const auto f = parse(bytes);
  EXPECT_EQ(f->alignment(), 128u);
  EXPECT_EQ(f->get_uint("general.alignment"), 128u);
  EXPECT_EQ(f->find_tensor("a")->offset, 0u);
  EXPECT_EQ(f->find_tensor("b")->offset, 128u);
  EXPECT_EQ((f->find_tensor("b")->data - bytes.data()) % 128, 0);
  EXPECT_EQ(bytes.size() % 128, 0u);
}

TEST(GgufRoundTrip, Version2ReadsLikeVersion3) {
  std::vector<uint8_t> bytes = small_writer().to_bytes();
  poke<uint32_t>(bytes, 4, 2);
  const auto f = parse(bytes);
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->tensors().size(), 2u);
}

TEST(GgufRoundTrip, EmptyFileWithoutTensors) {
  const auto f = parse(Writer().to_bytes());
  EXPECT_TRUE(f->metadata().empty());
  EXPECT_TRUE(f->tensors().empty());
}

// ---- Writer input checks -----------------------------------------------------

template <typename Fn>
std::string thrown_by(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no heed::Error thrown";
  return "";
}

TEST(GgufWriter, RejectsInconsistentInput) {
  Writer w;
  EXPECT_NE(thrown_by([&] {
              w.add_tensor("x", DType::F32, {4}, pattern(15));
            }).find("writer: tensor 'x': got 15 data bytes, shape [4] of f32 needs 16"),
            std::string::npos);
  EXPECT_NE(thrown_by([&] {
              w.add_tensor("x", DType::Q8_0, {33}, pattern(34));
            }).find("row length 33 is not a multiple of the q8_0 block size 32"),
            std::string::npos);
  EXPECT_NE(thrown_by([&] {
              w.add_tensor("x", DType::F32, {1, 1, 1, 1, 1}, pattern(4));
            }).find("5 dimensions"),
            std::string::npos);
  EXPECT_NE(thrown_by([&] {
              w.add_tensor("x", DType::F32, {4, 0}, {});
            }).find("dimension 1 is 0"),
            std::string::npos);
  w.add_tensor("x", DType::F32, {1}, pattern(4));
  EXPECT_NE(thrown_by([&] {
              w.add_tensor("x", DType::F32, {1}, pattern(4));
            }).find("duplicate tensor 'x'"),
            std::string::npos);
  EXPECT_NE(thrown_by([&] { w.set_alignment(48); }).find("alignment 48 is not a power of two"),
            std::string::npos);
  EXPECT_NE(thrown_by([&] {
              w.set("general.alignment", Value{ValueType::UINT64, uint64_t{64}});
            }).find("general.alignment must be a u32"),
            std::string::npos);

  Writer bad_value;
  bad_value.set("too.big", Value{ValueType::UINT8, uint64_t{300}});
  EXPECT_NE(thrown_by([&] {
              bad_value.to_bytes();
            }).find("writer: key 'too.big': value 300 does not fit in u8"),
            std::string::npos);
  Writer mixed;
  mixed.set("mixed", Value{ValueType::ARRAY,
                           Array{ValueType::INT32, {Value{ValueType::STRING, std::string("s")}}}});
  EXPECT_NE(thrown_by([&] { mixed.to_bytes(); }).find("key 'mixed': array of i32 holds a string"),
            std::string::npos);
  EXPECT_NE(thrown_by([&] {
              small_writer().write("/nonexistent-dir/x.gguf");
            }).find("/nonexistent-dir/x.gguf: cannot create"),
            std::string::npos);
}

TEST(GgufWriter, SetReplacesDuplicateKeyInPlace) {
  Writer w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_string("a", "replaced");
  const auto f = parse(w.to_bytes());
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].key, "a");
  EXPECT_EQ(f->get_string("a"), "replaced");
}

// ---- Typed getters -------------------------------------------------------------

class GgufGetters : public ::testing::Test {
 protected:
  void SetUp() override {
    Writer w;
    w.set("u8", u64v(200, ValueType::UINT8));
    w.set("i16.pos", i64v(300, ValueType::INT16));
    w.set("i32.neg", i64v(-5, ValueType::INT32));
    w.set("u64.big", u64v(std::numeric_limits<uint64_t>::max(), ValueType::UINT64));
    w.set_f32("f32", 0.25f);
    w.set("f64", Value{ValueType::FLOAT64, 1e-7});
    w.set_string("s", "text");
    w.set_bool("flag", true);
    w.set_i32_array("ints", {3, -4});
    w.set("u64s", Value{ValueType::ARRAY,
                        Array{ValueType::UINT64,
                              {u64v(1, ValueType::UINT64),
                               u64v(std::numeric_limits<uint64_t>::max(), ValueType::UINT64)}}});
    w.set_f32_array("floats", {1.0f, 2.5f});
    w.set_string_array("words", {"x", "y"});
    bytes_ = w.to_bytes();
    f_ = parse(bytes_);
  }
  std::vector<uint8_t> bytes_;
  std::unique_ptr<File> f_;
};

TEST_F(GgufGetters, IntegersConvertAcrossWidthsWithRangeChecks) {
  EXPECT_EQ(f_->get_uint("u8"), 200u);
  EXPECT_EQ(f_->get_uint("i16.pos"), 300u);
  EXPECT_EQ(f_->get_uint("u64.big"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f_->get("i32.neg").as_int(), -5);
  EXPECT_EQ(f_->get_uint_or("absent", 42), 42u);
  EXPECT_EQ(thrown_by([&] { f_->get_uint("i32.neg"); }),
            "mem.gguf: key 'i32.neg': value -5 is negative, expected an unsigned integer");
  EXPECT_EQ(thrown_by([&] { f_->get_uint_or("s", 1); }),
            "mem.gguf: key 's': expected an unsigned integer, got string");
  EXPECT_EQ(thrown_by([&] { f_->get_uint("f32"); }),
            "mem.gguf: key 'f32': expected an unsigned integer, got f32");
  EXPECT_EQ(thrown_by([&] { f_->get("u64.big").as_int(); }),
            "value 18446744073709551615 does not fit in int64");
}

TEST_F(GgufGetters, FloatsAcceptFloatAndIntegerValues) {
  EXPECT_EQ(f_->get_float("f32"), 0.25);
  EXPECT_EQ(f_->get_float("f64"), 1e-7);
  EXPECT_EQ(f_->get_float("i32.neg"), -5.0);
  EXPECT_EQ(f_->get_float_or("absent", 1.5), 1.5);
  EXPECT_EQ(thrown_by([&] { f_->get_float("flag"); }),
            "mem.gguf: key 'flag': expected a number, got bool");
}

TEST_F(GgufGetters, StringsBoolsAndMissingKeys) {
  EXPECT_EQ(f_->get_string("s"), "text");
  EXPECT_EQ(f_->get_string_or("absent", "fb"), "fb");
  EXPECT_TRUE(f_->get_bool_or("flag", false));
  EXPECT_TRUE(f_->get_bool_or("absent", true));
  EXPECT_EQ(f_->find("absent"), nullptr);
  EXPECT_EQ(thrown_by([&] { f_->get_string("nope"); }), "mem.gguf: missing key 'nope'");
  EXPECT_EQ(thrown_by([&] { f_->get_string_or("u8", "fb"); }),
            "mem.gguf: key 'u8': expected string, got u8");
  EXPECT_EQ(thrown_by([&] { f_->get_bool_or("u8", false); }),
            "mem.gguf: key 'u8': expected bool, got u8");
}

TEST_F(GgufGetters, TypedArrays) {
  EXPECT_EQ(f_->get_int_array("ints"), (std::vector<int64_t>{3, -4}));
  EXPECT_EQ(f_->get_float_array("floats"), (std::vector<float>{1.0f, 2.5f}));
  EXPECT_EQ(f_->get_float_array("ints"), (std::vector<float>{3.0f, -4.0f}));
  EXPECT_EQ(f_->get_string_array("words"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(thrown_by([&] { f_->get_int_array("u64s"); }),
            "mem.gguf: key 'u64s': value 18446744073709551615 does not fit in int64");
  EXPECT_EQ(thrown_by([&] { f_->get_int_array("floats"); }),
            "mem.gguf: key 'floats': expected an array of integers, got an array of f32");
  EXPECT_EQ(thrown_by([&] { f_->get_float_array("words"); }),
            "mem.gguf: key 'words': expected an array of numbers, got an array of string");
  EXPECT_EQ(thrown_by([&] { f_->get_string_array("ints"); }),
            "mem.gguf: key 'ints': expected an array of string, got an array of i32");
  EXPECT_EQ(thrown_by([&] { f_->get_string_array("s"); }),
            "mem.gguf: key 's': expected array, got string");
}

TEST(GgufValue, ToStringIsShortAndReadable) {
  EXPECT_EQ(Value(u64v(7, ValueType::UINT32)).to_string(), "7");
  EXPECT_EQ(Value(i64v(-7, ValueType::INT64)).to_string(), "-7");
  EXPECT_EQ((Value{ValueType::FLOAT32, double{1e-5f}}).to_string(), "1e-05");
  EXPECT_EQ((Value{ValueType::FLOAT64, 0.1}).to_string(), "0.1");
  EXPECT_EQ((Value{ValueType::BOOL, true}).to_string(), "true");
  EXPECT_EQ((Value{ValueType::STRING, std::string("a\n\"b\"\x01")}).to_string(),
            "\"a\\n\\\"b\\\"\\x01\"");
  Array ten{ValueType::INT32, {}};
  for (int i = 0; i < 10; ++i) ten.items.push_back(i64v(i, ValueType::INT32));
  const Value arr{ValueType::ARRAY, ten};
  EXPECT_EQ(arr.to_string(3), "[0, 1, 2, ... 7 more] (10 x i32)");
  EXPECT_EQ(arr.to_string(10), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
  EXPECT_EQ(nested(2).to_string(), "[[5]]");
  // Long strings are cut at a UTF-8 boundary: 'é' (2 bytes) straddles byte 120.
  const std::string long_text = std::string(119, 'x') + "\xc3\xa9" + std::string(50, 'y');
  EXPECT_EQ((Value{ValueType::STRING, long_text}).to_string(),
            "\"" + std::string(119, 'x') + "\"... (171 bytes)");
}

// ---- Malformed files ------------------------------------------------------------

TEST(GgufMalformed, EveryTruncationFailsCleanly) {
  const std::vector<uint8_t> full = small_writer().to_bytes();
  const auto f = parse(full);
  size_t data_end = 0;
  for (const TensorInfo& t : f->tensors()) {
    data_end = std::max(data_end, static_cast<size_t>(t.data - full.data()) + t.n_bytes);
  }
  ASSERT_GT(data_end, 100u);
  for (size_t n = 0; n < full.size(); ++n) {
    // A fresh exact-size buffer so ASan catches any read past the cut.
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    if (n < data_end) {
      const std::string msg = parse_error(prefix);
      EXPECT_TRUE(msg.find("truncated at byte " + std::to_string(n)) != std::string::npos ||
                  msg.find("runs past end of file") != std::string::npos ||
                  msg.find("cannot fit in the") != std::string::npos)
          << "prefix " << n << ": " << msg;
    } else {
      EXPECT_NO_THROW(parse(prefix)) << "prefix " << n << " only lacks trailing padding";
    }
  }
  EXPECT_PARSE_ERROR(std::vector<uint8_t>(), "truncated at byte 0 while reading magic");
  EXPECT_PARSE_ERROR(std::vector<uint8_t>(full.begin(), full.begin() + 10),
                     "truncated at byte 10 while reading tensor count");
  const size_t count_at = locate_key(full, "test.count").value;
  EXPECT_PARSE_ERROR(std::vector<uint8_t>(full.begin(), full.begin() + count_at + 2),
                     "while reading value of key 'test.count'");
}

TEST(GgufMalformed, BadMagic) {
  std::vector<uint8_t> b = small_writer().to_bytes();
  std::memcpy(b.data(), "GGML", 4);
  EXPECT_PARSE_ERROR(b, "not a GGUF file (magic 'GGML')");
  b[0] = 0;
  EXPECT_PARSE_ERROR(b, "not a GGUF file (magic '\\x00GML')");
}

TEST(GgufMalformed, UnsupportedVersions) {
  std::vector<uint8_t> b = small_writer().to_bytes();
  poke<uint32_t>(b, 4, 1);
  EXPECT_PARSE_ERROR(b, "unsupported GGUF version 1");
  poke<uint32_t>(b, 4, 99);
  EXPECT_PARSE_ERROR(b, "unsupported GGUF version 99");
  poke<uint32_t>(b, 4, 0x03000000);
  EXPECT_PARSE_ERROR(b, "big-endian");
}

TEST(GgufMalformed, EnormousCountsAreRejectedBeforeAllocating) {
  const std::vector<uint8_t> good = small_writer().to_bytes();
  std::vector<uint8_t> b = good;
  poke<uint64_t>(b, 16, uint64_t{1} << 60);
  EXPECT_PARSE_ERROR(b, "n_kv 1152921504606846976 at byte 16 cannot fit");
  b = good;
  poke<uint64_t>(b, 8, ~uint64_t{0});
  EXPECT_PARSE_ERROR(b, "n_tensors 18446744073709551615 at byte 8 cannot fit");

  b = good;
  const size_t floats = locate_key(b, "test.floats").value;  // elem type, then count
  poke<uint64_t>(b, floats + 4, uint64_t{1} << 61);
  EXPECT_PARSE_ERROR(b, "array of 2305843009213693952 f32 at byte");
  EXPECT_PARSE_ERROR(b, "of key 'test.floats' runs past end of file");
  b = good;
  poke<uint32_t>(b, floats, 42);
  EXPECT_PARSE_ERROR(b, "unknown array element type 42");
}

TEST(GgufMalformed, StringLengthsPastEnd) {
  const std::vector<uint8_t> good = small_writer().to_bytes();
  std::vector<uint8_t> b = good;
  poke<uint64_t>(b, find_text(b, "llama") - 8, uint64_t{1} << 40);
  EXPECT_PARSE_ERROR(b, "string value of key 'general.architecture': length 1099511627776");
  EXPECT_PARSE_ERROR(b, "runs past end of file");
  b = good;
  poke<uint64_t>(b, 24, ~uint64_t{0});  // the first key's length
  EXPECT_PARSE_ERROR(b, "key #0: length 18446744073709551615 at byte 24 runs past end of file");
  b = good;
  poke<uint64_t>(b, find_text(b, "quant") - 8, 1000000);
  EXPECT_PARSE_ERROR(b, "tensor name #1: length 1000000");
  b = good;
  poke<uint64_t>(b, find_text(b, "bc") - 8, 5000);  // an item of a string array
  EXPECT_PARSE_ERROR(b, "string value of key 'test.words': length 5000");
}

TEST(GgufMalformed, BadValues) {
  const std::vector<uint8_t> good = small_writer().to_bytes();
  std::vector<uint8_t> b = good;
  poke<uint32_t>(b, locate_key(b, "test.count").type, 13);
  EXPECT_PARSE_ERROR(b, "key 'test.count': unknown value type 13");
  b = good;
  poke<uint8_t>(b, locate_key(b, "test.flag").value, 2);
  EXPECT_PARSE_ERROR(b, "invalid bool 2 at byte");

  Writer deep;
  deep.set("ok", nested(8));
  EXPECT_EQ(parse(deep.to_bytes())->metadata().size(), 1u);
  deep.set("too.deep", nested(9));
  EXPECT_PARSE_ERROR(deep.to_bytes(), "arrays nested deeper than 8 levels");
}

TEST(GgufMalformed, DuplicateKeysAndTensors) {
  Writer w;
  w.set_u32("dup.a", 1);
  w.set_u32("dup.b", 2);
  w.add_tensor("t1", DType::F32, {1}, pattern(4));
  w.add_tensor("t2", DType::F32, {1}, pattern(4));
  const std::vector<uint8_t> good = w.to_bytes();
  std::vector<uint8_t> b = good;
  b[find_text(b, "dup.b") + 4] = 'a';
  EXPECT_PARSE_ERROR(b, "duplicate key 'dup.a'");
  b = good;
  b[find_text(b, "t2") + 1] = '1';
  EXPECT_PARSE_ERROR(b, "duplicate tensor 't1'");
}

TEST(GgufMalformed, AlignmentKey) {
  Writer w;
  w.set_alignment(64);
  w.add_tensor("w", DType::F32, {4}, pattern(16));
  const std::vector<uint8_t> good = w.to_bytes();
  const KeyAt at = locate_key(good, "general.alignment");
  std::vector<uint8_t> b = good;
  poke<uint32_t>(b, at.value, 3);
  EXPECT_PARSE_ERROR(b, "general.alignment 3 is not a nonzero power of two");
  poke<uint32_t>(b, at.value, 0);
  EXPECT_PARSE_ERROR(b, "general.alignment 0 is not a nonzero power of two");
  b = good;
  poke<uint32_t>(b, at.type, static_cast<uint32_t>(ValueType::INT32));
  EXPECT_PARSE_ERROR(b, "general.alignment must be of type u32, got i32");
  b = good;
  poke<uint64_t>(b, locate_tensor(b, "w", 1).offset, 32);
  EXPECT_PARSE_ERROR(b, "tensor 'w': offset 32 is not a multiple of the alignment 64");
}

class GgufMalformedTensor : public ::testing::Test {
 protected:
  void SetUp() override {
    Writer w;
    w.add_tensor("w", DType::F32, {32, 1, 1}, pattern(128));
    good_ = w.to_bytes();
    at_ = locate_tensor(good_, "w", 3);
  }
  std::vector<uint8_t> good_;
  TensorAt at_{};
};

TEST_F(GgufMalformedTensor, DimensionCount) {
  std::vector<uint8_t> b = good_;
  poke<uint32_t>(b, at_.n_dims, 5);
  EXPECT_PARSE_ERROR(b, "tensor 'w': n_dims 5 is not in 1..4");
  poke<uint32_t>(b, at_.n_dims, 0);
  EXPECT_PARSE_ERROR(b, "tensor 'w': n_dims 0 is not in 1..4");
}

TEST_F(GgufMalformedTensor, HugeAndZeroDimensions) {
  std::vector<uint8_t> b = good_;
  poke<uint64_t>(b, at_.ne + 8, uint64_t{1} << 40);
  poke<uint64_t>(b, at_.ne + 16, uint64_t{1} << 40);
  EXPECT_PARSE_ERROR(b,
                     "tensor 'w': shape [32, 1099511627776, 1099511627776] has too many elements");
  b = good_;
  poke<uint64_t>(b, at_.ne, uint64_t{1} << 62);  // elements fit in int64, bytes do not
  EXPECT_PARSE_ERROR(b, "tensor 'w': shape [4611686018427387904, 1, 1] of type f32 needs more");
  b = good_;
  poke<uint64_t>(b, at_.ne + 8, uint64_t{1} << 30);  // representable, but not in this file
  EXPECT_PARSE_ERROR(b, "tensor 'w': data [");
  EXPECT_PARSE_ERROR(b, "runs past end of file (" + std::to_string(b.size()) + " bytes)");
  b = good_;
  poke<uint64_t>(b, at_.ne + 16, 0);
  EXPECT_PARSE_ERROR(b, "tensor 'w': dimension 2 is 0");
}

TEST_F(GgufMalformedTensor, Offsets) {
  std::vector<uint8_t> b = good_;
  poke<uint64_t>(b, at_.offset, 4);
  EXPECT_PARSE_ERROR(b, "tensor 'w': offset 4 is not a multiple of the alignment 32");
  poke<uint64_t>(b, at_.offset, 1 << 20);
  EXPECT_PARSE_ERROR(b, "tensor 'w': data [");
  EXPECT_PARSE_ERROR(b, "runs past end of file");
  poke<uint64_t>(b, at_.offset, ~uint64_t{31});  // start + size would wrap around
  EXPECT_PARSE_ERROR(b, "tensor 'w': data at offset 18446744073709551584 (+128 bytes) runs past");
}

TEST_F(GgufMalformedTensor, TypeIds) {
  std::vector<uint8_t> b = good_;
  poke<uint32_t>(b, at_.type, 77);
  EXPECT_PARSE_ERROR(b, "tensor 'w': unknown tensor type id 77");
  poke<uint32_t>(b, at_.type, 4);  // removed from GGML (old q4_2)
  EXPECT_PARSE_ERROR(b, "tensor 'w': unknown tensor type id 4");
  poke<uint32_t>(b, at_.type, 16);
  EXPECT_PARSE_ERROR(b, "tensor 'w': type iq2_xxs is not supported (supported: f32, f16, q4_0");
  poke<uint32_t>(b, at_.type, static_cast<uint32_t>(DType::Q8_0));
  poke<uint64_t>(b, at_.ne, 33);
  EXPECT_PARSE_ERROR(b, "tensor 'w': row length 33 is not a multiple of the q8_0 block size 32");

  Writer w;  // the Writer can emit types heed cannot compute with
  w.add_tensor("k", DType::Q8_K, {256}, pattern(292));
  EXPECT_PARSE_ERROR(w.to_bytes(), "tensor 'k': type q8_K is not supported");
}

TEST(GgufOpen, ReportsOsErrorsWithPath) {
  EXPECT_EQ(thrown_by([] { File::open("/nonexistent/m.gguf"); }),
            "/nonexistent/m.gguf: cannot open: No such file or directory");
  EXPECT_EQ(thrown_by([] { File::open("/tmp"); }), "/tmp: not a regular file");
  const fs::path empty = fs::temp_directory_path() / "heed_gguf_empty.gguf";
  std::ofstream(empty).close();
  EXPECT_EQ(
      thrown_by([&] { File::open(empty.string()); }),
      empty.string() + ": truncated at byte 0 while reading magic (4 bytes needed at offset 0)");
  fs::remove(empty);
}

// Reading into huge pages gives the same bytes and the same parse as the
// mapping, and the same errors (with the path) for an empty or missing file.
TEST(GgufOpen, HugePagesHoldTheSameBytesAsTheMapping) {
  const fs::path path = fs::temp_directory_path() / "heed_gguf_huge.gguf";
  const std::vector<uint8_t> bytes = small_writer().to_bytes();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  const auto mapped = File::open(path.string(), File::Residency::Mapped);
  const auto huge = File::open(path.string(), File::Residency::HugePages);
  EXPECT_FALSE(mapped->in_huge_pages());
  EXPECT_EQ(huge->in_huge_pages(), transparent_huge_pages_available());
  ASSERT_EQ(huge->tensors().size(), mapped->tensors().size());
  ASSERT_GT(huge->tensors().size(), 0u);
  for (size_t i = 0; i < huge->tensors().size(); ++i) {
    const TensorInfo &a = mapped->tensors()[i], &b = huge->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    ASSERT_EQ(a.n_bytes, b.n_bytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0) << a.name;
  }
  EXPECT_EQ(huge->metadata().size(), mapped->metadata().size());
  EXPECT_EQ(thrown_by([] { File::open("/nonexistent/m.gguf", File::Residency::HugePages); }),
            "/nonexistent/m.gguf: cannot open: No such file or directory");
  std::ofstream(path, std::ios::trunc).close();
  EXPECT_EQ(
      thrown_by([&] { File::open(path.string(), File::Residency::HugePages); }),
      path.string() + ": truncated at byte 0 while reading magic (4 bytes needed at offset 0)");
  fs::remove(path);
}

TEST(HugePageBuffer, AlignedZeroedMovable) {
  HugePageBuffer a(3 * HugePageBuffer::kHugePage + 5);
  ASSERT_NE(a.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % HugePageBuffer::kHugePage, 0u);
  EXPECT_EQ(a.size(), 3 * HugePageBuffer::kHugePage + 5);
  EXPECT_EQ(a.data()[0], 0);
  EXPECT_EQ(a.data()[a.size() - 1], 0);
  a.data()[a.size() - 1] = 7;  // the whole size is writable
  uint8_t* const p = a.data();
  HugePageBuffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.data()[b.size() - 1], 7);
  EXPECT_EQ(HugePageBuffer().data(), nullptr);
  EXPECT_EQ(HugePageBuffer(0).size(), 0u);
}

// ---- Fuzz seed corpus ----------------------------------------------------------

// The committed seeds under fuzz_corpus/ are exactly what these writers produce;
// HEED_WRITE_FUZZ_SEEDS=1 regenerates them.
std::map<std::string, std::vector<uint8_t>> fuzz_seeds() {
  Writer every_type;
  every_type.set("u8", u64v(1, ValueType::UINT8));
  every_type.set("i8", i64v(-1, ValueType::INT8));
  every_type.set("u16", u64v(2, ValueType::UINT16));
  every_type.set("i16", i64v(-2, ValueType::INT16));
  every_type.set("i64", i64v(-3, ValueType::INT64));
  every_type.set("u64", u64v(3, ValueType::UINT64));
  every_type.set("f64", Value{ValueType::FLOAT64, 0.5});
  every_type.set("general.alignment", u64v(16, ValueType::UINT32));
  every_type.set("nest", nested(3));
  every_type.add_tensor("b", DType::BF16, {2, 2}, pattern(8));
  Writer quant;
  quant.add_tensor("q4", DType::Q4_0, {32}, pattern(18));
  quant.add_tensor("q6", DType::Q6_K, {256}, pattern(210));
  return {{"small.gguf", small_writer().to_bytes()},
          {"every_type.gguf", every_type.to_bytes()},
          {"quant.gguf", quant.to_bytes()}};
}

TEST(GgufFuzzCorpus, SeedsMatchTheWriter) {
  const fs::path dir = fs::path(HEED_SOURCE_DIR) / "src/gguf/fuzz_corpus";
  const char* regen = std::getenv("HEED_WRITE_FUZZ_SEEDS");
  for (const auto& [name, bytes] : fuzz_seeds()) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(parse(bytes));
    if (regen && std::string(regen) == "1") {
      fs::create_directories(dir);
      std::ofstream(dir / name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    std::ifstream in(dir / name, std::ios::binary);
    ASSERT_TRUE(in) << "missing seed " << (dir / name) << " (run with HEED_WRITE_FUZZ_SEEDS=1)";
    const std::vector<uint8_t> committed((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
    EXPECT_EQ(committed, bytes);
  }
}

// ---- Real files from shared/ ----------------------------------------------------

fs::path shared_dir() {
  return fs::path(HEED_SHARED_DIR);
}

std::vector<fs::path> gguf_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".gguf") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

#define REQUIRE_SHARED(sub)                                       \
  if (!fs::is_directory(shared_dir() / sub))                      \
  GTEST_SKIP() << "shared oracle folder " << (shared_dir() / sub) \
               << " is missing (set HEED_SHARED_DIR at configure time)"

TEST(GgufShared, EveryModelAndVocabFileParses) {
  REQUIRE_SHARED("models");
  REQUIRE_SHARED("vocab");
  const auto models = gguf_files(shared_dir() / "models");
  const auto vocabs = gguf_files(shared_dir() / "vocab");
  EXPECT_GE(models.size(), 20u);
  EXPECT_GE(vocabs.size(), 11u);
  for (const fs::path& p : models) {
    SCOPED_TRACE(p.string());
    std::unique_ptr<File> f;
    ASSERT_NO_THROW(f = File::open(p.string()));
    EXPECT_EQ(f->version(), 3u);
    EXPECT_FALSE(f->get_string("general.architecture").empty());
    EXPECT_GT(f->tensors().size(), 0u);
    for (const TensorInfo& t : f->tensors()) {
      const auto row = row_bytes(t.type, t.ne[0]);
      ASSERT_TRUE(row.has_value()) << t.name;
      EXPECT_EQ(t.n_bytes, *row * t.rows()) << t.name;
      EXPECT_NE(t.data, nullptr);
    }
  }
  for (const fs::path& p : vocabs) {
    SCOPED_TRACE(p.string());
    std::unique_ptr<File> f;
    ASSERT_NO_THROW(f = File::open(p.string()));
    const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
    EXPECT_GT(tokens.size(), 1000u);
    EXPECT_FALSE(f->get_string("tokenizer.ggml.model").empty());
  }
}

TEST(GgufShared, LlamaF32Facts) {
  REQUIRE_SHARED("models");
  const auto f = File::open((shared_dir() / "models/llama-f32.gguf").string());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_uint("llama.block_count"), 4u);
  EXPECT_EQ(f->get_uint("llama.embedding_length"), 256u);
  EXPECT_EQ(f->get_uint("llama.feed_forward_length"), 512u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count_kv"), 2u);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("llama.attention.layer_norm_rms_epsilon")),
                  1e-5f);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens").size(), 512u);
  const TensorInfo* q = f->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, DType::F32);
  EXPECT_EQ(q->shape_string(), "[256, 256]");
  EXPECT_EQ(q->n_bytes, 256u * 256u * 4u);
  EXPECT_EQ(f->tensors().size(), 39u);
  const TensorInfo* down = f->find_tensor("blk.3.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->shape_string(), "[512, 256]");
}

// Tensor type counts per file, from shared/models/README.md.
TEST(GgufShared, QuantizedFilesHaveTheDocumentedTensorTypes) {
  REQUIRE_SHARED("models");
  const std::map<std::string, std::map<DType, int>> expected = {
      {"llama-q4_k_m.gguf", {{DType::Q4_K, 25}, {DType::Q6_K, 5}, {DType::F32, 9}}},
      {"llama-q2_k.gguf",
       {{DType::Q2_K, 17}, {DType::Q3_K, 8}, {DType::Q4_K, 4}, {DType::Q6_K, 1}, {DType::F32, 9}}},
      {"llama-q4_0.gguf", {{DType::Q4_0, 29}, {DType::Q6_K, 1}, {DType::F32, 9}}},
      {"llama-bf16.gguf", {{DType::BF16, 30}, {DType::F32, 9}}},
      {"llama-f16.gguf", {{DType::F16, 30}, {DType::F32, 9}}},
      {"phi3-q4_k_m.gguf", {{DType::Q4_K, 6}, {DType::Q5_K, 2}, {DType::Q6_K, 2}, {DType::F32, 5}}},
  };
  for (const auto& [file, counts] : expected) {
    SCOPED_TRACE(file);
    const auto f = File::open((shared_dir() / "models" / file).string());
    std::map<DType, int> seen;
    for (const TensorInfo& t : f->tensors()) ++seen[t.type];
    EXPECT_EQ(seen, counts);
  }
  EXPECT_EQ(File::open((shared_dir() / "models/llama-q4_k_m.gguf").string())
                ->get_uint("general.file_type"),
            15u);
}

TEST(GgufShared, VocabFacts) {
  REQUIRE_SHARED("vocab");
  const auto spm = File::open((shared_dir() / "vocab/ggml-vocab-llama-spm.gguf").string());
  EXPECT_EQ(spm->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(spm->get_string_array("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(spm->get_float_array("tokenizer.ggml.scores").size(), 32000u);
  EXPECT_EQ(spm->get_int_array("tokenizer.ggml.token_type").size(), 32000u);
  EXPECT_EQ(spm->get_string_array("tokenizer.ggml.tokens")[1], "<s>");
  const auto gpt2 = File::open((shared_dir() / "vocab/ggml-vocab-gpt-2.gguf").string());
  EXPECT_EQ(gpt2->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(gpt2->get_string_array("tokenizer.ggml.tokens").size(), 50257u);
  EXPECT_EQ(gpt2->get_string_array("tokenizer.ggml.merges").size(), 50000u);
}

}  // namespace
}  // namespace heed::gguf
