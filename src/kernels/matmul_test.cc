#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "heed/error.h"
#include "hwy/targets.h"
#include "kernels/fp16.h"
#include "kernels/quant.h"

namespace heed {
namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K};

// A quantized random weight matrix, optionally with padding after each row.
struct TestWeight {
  std::vector<uint8_t> bytes;
  WeightView view;
};

TestWeight make_weight(DType t, int64_t n_in, int64_t n_out, size_t row_padding, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.f, 1.f);
  const size_t row = *row_bytes(t, n_in);
  const size_t stride = row + row_padding;
  TestWeight w;
  w.bytes.assign(stride * n_out, 0xAB);  // padding bytes must be ignored
  std::vector<float> values(n_in);
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : values) v = gauss(rng);
    quantize_row(t, values.data(), w.bytes.data() + r * stride, n_in);
  }
  w.view = WeightView{t, n_in, n_out, w.bytes.data(), stride};
  return w;
}

std::vector<float> random_vector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Naive reference: scalar dequantization, then a double-precision dot. Checks
// |y - ref| against f32 rounding of the sum of |w||x| terms.
void expect_matches_reference(const WeightView& w, const std::vector<float>& x, int64_t n_tokens,
                              const std::vector<float>& y, const std::string& what) {
  std::vector<float> row(w.n_in);
  for (int64_t r = 0; r < w.n_out; ++r) {
    dequantize_row(w.type, w.data + r * w.row_stride_bytes, row.data(), w.n_in);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < w.n_in; ++c) {
        ref += static_cast<double>(row[c]) * x[t * w.n_in + c];
        mag += std::fabs(static_cast<double>(row[c]) * x[t * w.n_in + c]);
      }
      ASSERT_NEAR(y[t * w.n_out + r], ref, 2e-6 * mag + 1e-6)
          << what << " row " << r << " token " << t;
    }
  }
}

struct Case {
  DType type;
  int64_t n_tokens;
  int threads;
};

class MatmulCase : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulCase, MatchesNaiveReference) {
  const auto [type, n_tokens, threads] = GetParam();
  const bool blocked = dtype_traits(type)->block_size > 1;
  // Float types take odd row lengths (exercises the SIMD tail); quantized ones whole blocks.
  const int64_t n_in = blocked ? 512 : 67;
  ThreadPool pool(threads);
  for (int64_t n_out : {37, 133}) {
    const auto w = make_weight(type, n_in, n_out, n_out == 133 ? 8 : 0, 7 + n_out);
    const auto x = random_vector(n_tokens * n_in, 11);
    std::vector<float> y(n_tokens * n_out, NAN);
    matmul(w.view, x.data(), n_tokens, y.data(), pool);
    expect_matches_reference(w.view, x, n_tokens, y,
                             std::string(dtype_name(type)) + " n_out " + std::to_string(n_out));
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DType t : kAllTypes)
    for (int64_t n : {1, 3, 17, 64})
      for (int threads : {1, 2}) cases.push_back({t, n, threads});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulCase, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) {
                           return std::string(dtype_name(info.param.type)) + "_t" +
                                  std::to_string(info.param.n_tokens) + "_th" +
                                  std::to_string(info.param.threads);
                         });

// Larger rows than one prefill tile holds, so several tiles per thread.
TEST(Matmul, ManyTilesWideRows) {
  ThreadPool pool(2);
  for (DType t : {DType::Q4_K, DType::Q8_0, DType::F16}) {
    const auto w = make_weight(t, 4096, 70, 0, 3);
    for (int64_t n_tokens : {1, 5}) {
      const auto x = random_vector(n_tokens * 4096, 5);
      std::vector<float> y(n_tokens * 70, NAN);
      matmul(w.view, x.data(), n_tokens, y.data(), pool);
      expect_matches_reference(w.view, x, n_tokens, y, std::string(dtype_name(t)));
    }
  }
}

// Every SIMD target compiled in and supported by this CPU (incl. the scalar
// fallback) against the scalar reference.
TEST(Matmul, EveryHighwayTarget) {
  ThreadPool pool(2);
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    EXPECT_STREQ(matmul_target_name(), hwy::TargetName(target));
    for (DType t : kAllTypes) {
      const int64_t n_in = dtype_traits(t)->block_size > 1 ? 256 : 45;
      const auto w = make_weight(t, n_in, 21, 0, 17);
      for (int64_t n_tokens : {1, 6}) {
        const auto x = random_vector(n_tokens * n_in, 19);
        std::vector<float> y(n_tokens * 21, NAN);
        matmul(w.view, x.data(), n_tokens, y.data(), pool);
        expect_matches_reference(
            w.view, x, n_tokens, y,
            std::string(hwy::TargetName(target)) + " " + std::string(dtype_name(t)));
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  std::string names;
  for (int64_t target : targets) names += std::string(" ") + hwy::TargetName(target);
  std::printf("  tested targets:%s; default dispatch: %s\n", names.c_str(), matmul_target_name());
}

// The vector rounding is f32_to_fp16 bit for bit on every target: ties to even,
// overflow to inf, subnormal halves, signed zeros, NaN payloads.
TEST(Matmul, RoundToHalfMatchesScalarOnEveryTarget) {
  std::vector<float> x = {0.0f,     -0.0f,          1.0f,           -1.0f,    65504.0f,  65519.0f,
                          65520.0f, -1e30f,         5.96e-8f,       2.98e-8f, 2.99e-8f,  1e-45f,
                          6.1e-5f,  1.00048828125f, 1.00146484375f, INFINITY, -INFINITY, NAN};
  uint32_t payload = 0x7fc12345u;
  float nan_payload;
  std::memcpy(&nan_payload, &payload, sizeof(payload));
  x.push_back(nan_payload);
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 4000; ++i) {  // every exponent, mostly in and around the half range
    uint32_t b = bits(rng);
    if (i % 2) b = (b & 0x807fffffu) | ((100u + b % 60u) << 23);
    float f;
    std::memcpy(&f, &b, sizeof(f));
    x.push_back(f);
  }
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = f32_to_fp16(x[i]);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const size_t n : {x.size(), size_t{13}}) {  // 13: a tail shorter than a vector
      std::vector<uint16_t> got(n, 0xdead);
      round_to_half(x.data(), got.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], want[i]) << hwy::TargetName(target) << " x[" << i << "] = " << x[i];
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Matmul, DequantizeRowOf) {
  const auto w = make_weight(DType::Q5_K, 512, 9, 6, 23);
  std::vector<float> got(512), want(512);
  dequantize_row_of(w.view, 8, got.data());
  dequantize_row(DType::Q5_K, w.bytes.data() + 8 * w.view.row_stride_bytes, want.data(), 512);
  EXPECT_EQ(got, want);
  EXPECT_THROW(dequantize_row_of(w.view, 9, got.data()), Error);
  EXPECT_THROW(dequantize_row_of(w.view, -1, got.data()), Error);
}

TEST(Matmul, RejectsBadWeights) {
  ThreadPool pool(1);
  std::vector<uint8_t> data(4096);
  std::vector<float> x(256), y(16);
  EXPECT_THROW(
      matmul(WeightView{DType::Q8_K, 256, 1, data.data(), 292}, x.data(), 1, y.data(), pool),
      Error);
  EXPECT_THROW(
      matmul(WeightView{DType::Q4_K, 100, 1, data.data(), 144}, x.data(), 1, y.data(), pool),
      Error);
  EXPECT_THROW(matmul(WeightView{DType::Q4_0, 64, 2, data.data(), 20}, x.data(), 1, y.data(), pool),
               Error);
  EXPECT_THROW(matmul(WeightView{DType::F32, 4, 2, data.data(), 16}, x.data(), -1, y.data(), pool),
               Error);
}

}  // namespace
}  // namespace heed
