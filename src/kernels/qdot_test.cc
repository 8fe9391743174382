// ggml's activation quantizers against hand-computed blocks (rounding ties
// included), and the SIMD quantized-activation matmul against the scalar
// block formula on every Highway target.
#include "kernels/qdot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"

namespace heed {
namespace {

TEST(QuantizeAct, Q8_0RoundsHalfToEvenWithScaleFromAmax) {
  float x[kQK] = {};
  x[0] = 254.0f;  // amax: d = 2, id = 127 / 254 = 0.5
  x[1] = 5.0f;    // 2.5 -> 2 (roundf would give 3)
  x[2] = 7.0f;    // 3.5 -> 4
  x[3] = -5.0f;   // -2.5 -> -2
  x[4] = -3.0f;   // -1.5 -> -2
  x[5] = 1.0f;    // 0.5 -> 0
  x[6] = 100.2f;  // 50.1 -> 50
  BlockQ8_0 b;
  quantize_act_q8_0(x, &b, kQK);
  EXPECT_EQ(fp16_to_f32(b.d), 2.0f);
  const int expected[7] = {127, 2, 4, -2, -2, 0, 50};
  for (int j = 0; j < 7; ++j) EXPECT_EQ(b.qs[j], expected[j]) << j;
  for (int j = 7; j < kQK; ++j) EXPECT_EQ(b.qs[j], 0) << j;
}

TEST(QuantizeAct, Q8_1StoresHalfOfScaleTimesQuantSum) {
  float x[kQK];
  for (int j = 0; j < kQK; ++j) x[j] = (j % 2 ? -0.5f : 1.0f) * static_cast<float>(j + 1);
  // amax = 31 (j = 30); d = 31/127, quants round(x * 127/31).
  BlockQ8_1 b;
  quantize_act_q8_1(x, &b, kQK);
  const float d = 31.0f / 127.f;
  EXPECT_EQ(b.d, f32_to_fp16(d));
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    EXPECT_EQ(b.qs[j], static_cast<int>(std::nearbyint(x[j] * (127.f / 31.0f)))) << j;
    sum += b.qs[j];
  }
  EXPECT_EQ(b.qs[30], 127);
  EXPECT_EQ(b.s, f32_to_fp16(d * static_cast<float>(sum)));
  EXPECT_NE(sum, 0);
}

TEST(QuantizeAct, Q8_KUsesSignedMaxAndHalfEven) {
  std::vector<float> x(kQK_K, 0.0f);
  x[0] = -254.0f;  // signed max: iscale = -127 / -254 = 0.5, d = 1 / iscale = 2
  x[1] = 5.0f;     // 2.5 -> 2
  x[2] = 7.0f;     // 3.5 -> 4
  x[17] = -3.0f;   // -1.5 -> -2 (second 16-group)
  x[255] = 9.0f;   // 4.5 -> 4
  BlockQ8_K b;
  quantize_act_q8_K(x.data(), &b, kQK_K);
  EXPECT_EQ(b.d, 2.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], 4);
  EXPECT_EQ(b.qs[17], -2);
  EXPECT_EQ(b.qs[255], 4);
  EXPECT_EQ(b.bsums[0], -127 + 2 + 4);
  EXPECT_EQ(b.bsums[1], -2);
  EXPECT_EQ(b.bsums[15], 4);
  for (int j = 2; j < 15; ++j) EXPECT_EQ(b.bsums[j], 0);

  // A positive max flips the sign of the scale (ggml's iscale = -127 / max).
  x.assign(kQK_K, 0.0f);
  x[3] = 127.0f;
  x[4] = 2.5f;
  quantize_act_q8_K(x.data(), &b, kQK_K);
  EXPECT_EQ(b.d, -1.0f);
  EXPECT_EQ(b.qs[3], -127);
  EXPECT_EQ(b.qs[4], -2);

  // An all-zero block has d = 0 and zero quants.
  x.assign(kQK_K, 0.0f);
  quantize_act_q8_K(x.data(), &b, kQK_K);
  EXPECT_EQ(b.d, 0.0f);
  for (int j = 0; j < kQK_K; ++j) ASSERT_EQ(b.qs[j], 0);
}

// quantize_act_row runs SIMD quantizers; on every target they give the scalar
// reference's bytes (scales, quants, sums, bsums), ties and zero blocks included.
TEST(QuantizeAct, SimdRowsMatchScalarOnEveryTarget) {
  constexpr int64_t n = 4 * kQK_K;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  for (int j = 0; j < 40; ++j) x[j] = 0.0f;                       // a zero Q8_0 block
  for (int j = 256; j < 512; ++j) x[j] = 0.0f;                    // a zero Q8_K block
  x[600] = 127.0f, x[601] = 2.5f, x[602] = -3.5f, x[603] = 0.5f;  // half-way ties
  x[700] = -9.0f, x[701] = 9.0f;                                  // equal magnitudes
  std::vector<BlockQ8_0> q0(n / kQK);
  std::vector<BlockQ8_1> q1(n / kQK);
  std::vector<BlockQ8_K> qk(n / kQK_K);
  quantize_act_q8_0(x.data(), q0.data(), n);
  quantize_act_q8_1(x.data(), q1.data(), n);
  quantize_act_q8_K(x.data(), qk.data(), n);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string what = hwy::TargetName(target);
    std::vector<uint8_t> out(act_row_bytes(DType::Q4_K, n));
    quantize_act_row(DType::Q8_0, x.data(), out.data(), n);
    ASSERT_EQ(std::memcmp(out.data(), q0.data(), q0.size() * sizeof(BlockQ8_0)), 0) << what;
    quantize_act_row(DType::Q4_1, x.data(), out.data(), n);
    ASSERT_EQ(std::memcmp(out.data(), q1.data(), q1.size() * sizeof(BlockQ8_1)), 0) << what;
    quantize_act_row(DType::Q6_K, x.data(), out.data(), n);
    ASSERT_EQ(std::memcmp(out.data(), qk.data(), qk.size() * sizeof(BlockQ8_K)), 0) << what;
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(QuantizeAct, VecDotTypesAreGgmls) {
  EXPECT_EQ(vec_dot_type(DType::Q4_0), DType::Q8_0);
  EXPECT_EQ(vec_dot_type(DType::Q5_0), DType::Q8_0);
  EXPECT_EQ(vec_dot_type(DType::Q8_0), DType::Q8_0);
  EXPECT_EQ(vec_dot_type(DType::IQ4_NL), DType::Q8_0);
  EXPECT_EQ(vec_dot_type(DType::Q4_1), DType::Q8_1);
  EXPECT_EQ(vec_dot_type(DType::Q5_1), DType::Q8_1);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_EQ(vec_dot_type(t), DType::Q8_K);
  EXPECT_EQ(vec_dot_type(DType::F16), DType::F16);
  EXPECT_EQ(vec_dot_type(DType::BF16), DType::BF16);
  EXPECT_EQ(vec_dot_type(DType::F32), DType::F32);
}

constexpr DType kQuantTypes[] = {DType::Q4_0,   DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                 DType::IQ4_NL, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                 DType::Q6_K,   DType::F16,  DType::BF16};

struct Weights {
  std::vector<uint8_t> bytes;
  WeightView view;
};

Weights make_weights(DType t, int64_t n_in, int64_t n_out, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Weights w;
  const size_t stride = *row_bytes(t, n_in);
  w.bytes.resize(stride * n_out);
  std::vector<float> row(n_in);
  for (int64_t r = 0; r < n_out; ++r) {
    for (float& v : row) v = nd(rng);
    quantize_row(t, row.data(), w.bytes.data() + r * stride, n_in);
  }
  w.view = {t, n_in, n_out, w.bytes.data(), stride};
  return w;
}

// Every target's result against qdot_reference on the quantized activations,
// within 1e-5 of sum |w| |x| (float rounding of the per-block scale products);
// decode and prefill give the same bits.
TEST(QdotMatmul, EveryTypeEveryTargetMatchesBlockFormula) {
  ThreadPool pool(2);
  constexpr int64_t n_in = 512, n_out = 37, n_tokens = 13;  // >= 8: rows quantized in parallel
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n_tokens * n_in);
  for (float& v : x) v = 3.0f * nd(rng);
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (DType t : kQuantTypes) {
    const Weights w = make_weights(t, n_in, n_out, 11 + static_cast<uint32_t>(t));
    const size_t act_bytes = act_row_bytes(t, n_in);
    std::vector<uint8_t> act(act_bytes * n_tokens);
    std::vector<float> wrow(n_in), arow(n_in);
    std::vector<double> ref(n_tokens * n_out), mag(n_tokens * n_out);
    for (int64_t k = 0; k < n_tokens; ++k) {
      quantize_act_row(t, x.data() + k * n_in, act.data() + k * act_bytes, n_in);
      for (int64_t r = 0; r < n_out; ++r) {
        const uint8_t* row = w.bytes.data() + r * w.view.row_stride_bytes;
        ref[k * n_out + r] = qdot_reference(t, row, act.data() + k * act_bytes, n_in);
        dequantize_row(t, row, wrow.data(), n_in);
        double m = 0;
        for (int64_t c = 0; c < n_in; ++c) m += std::fabs(wrow[c] * x[k * n_in + c]);
        mag[k * n_out + r] = m;
      }
    }
    for (int64_t target : targets) {
      hwy::SetSupportedTargetsForTest(target);
      const std::string what = std::string(dtype_name(t)) + " on " + hwy::TargetName(target);
      std::vector<float> prefill(n_tokens * n_out, NAN), decode(n_out, NAN);
      matmul(w.view, x.data(), n_tokens, prefill.data(), pool, MatmulMode::LlamaCpp);
      for (int64_t k = 0; k < n_tokens; ++k) {
        matmul(w.view, x.data() + k * n_in, 1, decode.data(), pool, MatmulMode::LlamaCpp);
        for (int64_t r = 0; r < n_out; ++r) {
          const size_t i = k * n_out + r;
          ASSERT_NEAR(prefill[i], ref[i], 1e-5 * mag[i]) << what << " token " << k << " row " << r;
          // F16/BF16 reuse the float kernel, whose decode and prefill sum in different orders.
          if (t != DType::F16 && t != DType::BF16) {
            ASSERT_EQ(prefill[i], decode[r]) << what << " token " << k << " row " << r;
          } else {
            ASSERT_NEAR(decode[r], ref[i], 1e-5 * mag[i]) << what;
          }
        }
      }
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

// ggml_vec_dot_f16 as its AVX2 / F16C build sums: four 8-lane accumulators over
// 32-element steps, (0 + 2) + (1 + 3), the lanes as hsum_float_8, the tail in double.
float ggml_f16_dot(const uint16_t* w, const float* x, int64_t n) {
  float acc[4][8] = {};
  const int64_t np = n / 32 * 32;
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l)
        acc[j][l] = std::fma(fp16_to_f32(w[i + 8 * j + l]), x[i + 8 * j + l], acc[j][l]);
  float v[8];
  for (int l = 0; l < 8; ++l) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double total = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
  for (int64_t i = np; i < n; ++i) total += static_cast<double>(fp16_to_f32(w[i]) * x[i]);
  return static_cast<float>(total);
}

// F16 decode on the x86 targets (8-lane AVX2, 16-lane AVX-512) gives ggml's bits
// exactly, tail included.
TEST(QdotMatmul, HalfDecodeIsGgmlsSumOnEveryX86Target) {
  ThreadPool pool(2);
  constexpr int64_t n_in = 1000, n_out = 23;  // 1000 = 31 steps of 32 + an 8-element tail
  const Weights w = make_weights(DType::F16, n_in, n_out, 5);
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n_in), rounded(n_in);
  for (int64_t i = 0; i < n_in; ++i) {
    x[i] = nd(rng);
    rounded[i] = fp16_to_f32(f32_to_fp16(x[i]));
  }
  std::vector<float> want(n_out);
  for (int64_t r = 0; r < n_out; ++r)
    want[r] = ggml_f16_dot(
        reinterpret_cast<const uint16_t*>(w.bytes.data() + r * w.view.row_stride_bytes),
        rounded.data(), n_in);
  int checked = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (target != HWY_AVX2 && target != HWY_AVX3 && target != HWY_AVX3_DL) continue;
    hwy::SetSupportedTargetsForTest(target);
    std::vector<float> got(n_out, NAN);
    matmul(w.view, x.data(), 1, got.data(), pool, MatmulMode::LlamaCpp);
    for (int64_t r = 0; r < n_out; ++r) EXPECT_EQ(got[r], want[r]) << hwy::TargetName(target);
    ++checked;
  }
  hwy::SetSupportedTargetsForTest(0);
  if (checked == 0) GTEST_SKIP() << "no x86 AVX2 / AVX-512 target on this machine";
}

// The activation quantization is visible: LlamaCpp and Exact differ by far more
// than float rounding, yet stay close (the test above pins the exact formula).
TEST(QdotMatmul, DiffersFromExactByActivationQuantization) {
  ThreadPool pool(1);
  constexpr int64_t n_in = 256, n_out = 8;
  const Weights w = make_weights(DType::Q4_K, n_in, n_out, 3);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n_in);
  for (float& v : x) v = nd(rng);
  std::vector<float> exact(n_out), llama(n_out);
  matmul(w.view, x.data(), 1, exact.data(), pool, MatmulMode::Exact);
  matmul(w.view, x.data(), 1, llama.data(), pool, MatmulMode::LlamaCpp);
  double max_diff = 0;
  for (int64_t r = 0; r < n_out; ++r)
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(exact[r]) - llama[r]));
  EXPECT_GT(max_diff, 1e-3);
  EXPECT_LT(max_diff, 0.5);
}

}  // namespace
}  // namespace heed
