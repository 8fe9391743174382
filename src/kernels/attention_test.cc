// The attention kernel against a naive double-precision reference that follows
// llama.cpp's order: q·k → softcap → ·kq_scale → +bias → mask → softmax.
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/thread_pool.h"
#include "hwy/targets.h"

namespace heed {
namespace {

struct Problem {
  AttentionShape shape;
  int64_t n_query, pos0, n_kv;
  std::vector<float> q, k, v, bias, trace_values;
  std::vector<uint8_t> heads;
  int n_ch = 0;
};

Problem make(int n_head, int n_head_kv, int d, int64_t n_kv, int64_t n_query, float softcap,
             int window, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Problem p;
  p.shape = {n_head, n_head_kv, d, 1.0f / std::sqrt(static_cast<float>(d)), softcap, window};
  p.n_query = n_query;
  p.n_kv = n_kv;
  p.pos0 = n_kv - n_query;
  p.q.resize(n_query * n_head * d);
  p.k.resize(n_kv * n_head_kv * d);
  p.v.resize(n_kv * n_head_kv * d);
  for (auto* vec : {&p.q, &p.k, &p.v})
    for (float& x : *vec) x = 2.0f * nd(rng);
  p.bias.resize(n_kv);
  for (float& b : p.bias) b = nd(rng);
  p.n_ch = 2;
  p.trace_values.resize(n_kv * 2);
  for (float& t : p.trace_values) t = std::fabs(nd(rng));
  p.heads.resize(n_head);
  for (int h = 0; h < n_head; ++h) p.heads[h] = h % 3 != 1;
  return p;
}

struct Output {
  std::vector<float> out, trace;
};

Output run_kernel(const Problem& p, bool with_bias, bool with_trace, int threads) {
  ThreadPool pool(threads);
  std::vector<float> scores(threads * kAttentionRowsPerThread * p.n_kv),
      partial(p.n_query * p.shape.n_head * p.n_ch);
  AttentionScratch scratch{scores.data(), p.n_kv, partial.data()};
  Output o;
  o.out.resize(p.q.size());
  o.trace.resize(p.n_query * p.n_ch);
  KeyBias bias{p.bias.data(), p.n_kv, p.heads.data()};
  TraceValues tv{p.trace_values.data(), p.n_ch, o.trace.data()};
  attention(p.shape, p.q.data(), p.n_query, p.pos0, KVView{p.k.data(), p.v.data(), p.n_kv},
            with_bias ? &bias : nullptr, with_trace ? &tv : nullptr, scratch, o.out.data(), pool);
  return o;
}

Output run_reference(const Problem& p, bool with_bias) {
  const auto& s = p.shape;
  const int H = s.n_head, D = s.head_dim, G = H / s.n_head_kv;
  Output o;
  o.out.assign(p.q.size(), 0.0f);
  o.trace.assign(p.n_query * p.n_ch, 0.0f);
  for (int64_t i = 0; i < p.n_query; ++i) {
    const int64_t pos = p.pos0 + i;
    std::vector<double> acc_trace(p.n_ch, 0.0);
    for (int h = 0; h < H; ++h) {
      const int hk = h / G;
      std::vector<double> w(p.n_kv, -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j < p.n_kv; ++j) {
        const bool visible = j <= pos && (s.window == 0 || pos - j < s.window);
        if (!visible) continue;
        double dot = 0;
        for (int d = 0; d < D; ++d)
          dot +=
              static_cast<double>(p.q[(i * H + h) * D + d]) * p.k[(j * s.n_head_kv + hk) * D + d];
        if (s.softcap > 0) dot = s.softcap * std::tanh(dot / s.softcap);
        dot *= s.kq_scale;
        if (with_bias && p.heads[h]) dot += p.bias[j];
        w[j] = dot;
        mx = std::max(mx, dot);
      }
      double sum = 0;
      for (double& x : w) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < p.n_kv; ++j) {
        const double pr = w[j] / sum;
        for (int d = 0; d < D; ++d)
          o.out[(i * H + h) * D + d] +=
              static_cast<float>(pr * p.v[(j * s.n_head_kv + hk) * D + d]);
        for (int c = 0; c < p.n_ch; ++c) acc_trace[c] += pr * p.trace_values[j * p.n_ch + c] / H;
      }
    }
    for (int c = 0; c < p.n_ch; ++c) o.trace[i * p.n_ch + c] = static_cast<float>(acc_trace[c]);
  }
  return o;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

TEST(Attention, MatchesReferenceAcrossShapes) {
  struct Cfg {
    int h, hkv, d;
    int64_t n_kv, n_q;
    float cap;
    int win;
  };
  for (const Cfg& c :
       {Cfg{8, 2, 32, 40, 40, 0, 0}, Cfg{8, 2, 32, 40, 1, 0, 0}, Cfg{4, 4, 16, 70, 13, 50, 0},
        Cfg{8, 1, 8, 90, 30, 0, 16}, Cfg{6, 3, 24, 33, 7, 20, 5}, Cfg{4, 2, 64, 50, 20, 0, 0},
        Cfg{2, 1, 136, 30, 5, 0, 0}}) {
    for (bool bias : {false, true})
      for (int threads : {1, 2}) {
        const Problem p = make(c.h, c.hkv, c.d, c.n_kv, c.n_q, c.cap, c.win, 7u + c.d);
        const Output k = run_kernel(p, bias, true, threads);
        const Output r = run_reference(p, bias);
        EXPECT_LT(max_diff(k.out, r.out), 2e-5) << c.h << " " << c.n_kv << " bias " << bias;
        EXPECT_LT(max_diff(k.trace, r.trace), 2e-6) << c.h << " " << c.n_kv << " bias " << bias;
      }
  }
}

// Every Highway target compiled in and supported here (incl. scalar) against the reference.
TEST(Attention, EveryHighwayTarget) {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    // head_dim 40: vector tail; 136: register-resident column blocks plus a tail.
    for (int d : {40, 136}) {
      const Problem p = make(8, 2, d, 37, 9, 30.0f, 12, 99);
      const Output k = run_kernel(p, true, true, 2);
      const Output r = run_reference(p, true);
      EXPECT_LT(max_diff(k.out, r.out), 2e-5) << hwy::TargetName(target) << " d " << d;
      EXPECT_LT(max_diff(k.trace, r.trace), 2e-6) << hwy::TargetName(target) << " d " << d;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A prompt's queries give the bits of the same queries decoded one at a time
// (the rows scored together, the task split, the thread count change nothing),
// on every target; GQA groups of 8, 3 and 1 heads.
TEST(Attention, PrefillEqualsDecodeBitwiseOnEveryTarget) {
  struct Cfg {
    int h, hkv, d;
  };
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const Cfg& c : {Cfg{16, 2, 64}, Cfg{9, 3, 64}, Cfg{6, 2, 40}, Cfg{4, 4, 136}}) {
      const Problem p = make(c.h, c.hkv, c.d, 29, 29, 0.0f, 0, 5u + c.h);
      const Output all = run_kernel(p, true, true, 2);
      const int64_t row = static_cast<int64_t>(c.h) * c.d;
      for (int64_t i = 0; i < p.n_query; ++i) {
        Problem one = p;
        one.n_query = 1;
        one.pos0 = i;
        one.n_kv = i + 1;  // the cache as decode sees it
        one.q.assign(p.q.begin() + i * row, p.q.begin() + (i + 1) * row);
        const Output single = run_kernel(one, true, true, 1);
        for (int64_t e = 0; e < row; ++e)
          ASSERT_EQ(single.out[e], all.out[i * row + e])
              << hwy::TargetName(target) << " heads " << c.h << " query " << i << " elem " << e;
        for (int ch = 0; ch < p.n_ch; ++ch)
          ASSERT_EQ(single.trace[ch], all.trace[i * p.n_ch + ch]) << hwy::TargetName(target);
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Attention, BiasNeverUnmasksAWindowedKey) {
  Problem p = make(4, 2, 16, 40, 1, 0, 8, 3);
  const Output plain = run_kernel(p, false, false, 1);
  // A huge Δ on keys outside the window (and beyond the causal edge) changes nothing.
  std::fill(p.bias.begin(), p.bias.end(), 0.0f);
  std::fill(p.heads.begin(), p.heads.end(), 1);
  for (int64_t j = 0; j < 40 - 8; ++j) p.bias[j] = 1e4f;
  const Output biased = run_kernel(p, true, false, 1);
  EXPECT_EQ(plain.out, biased.out);
  // While Δ on a visible key does change the output.
  p.bias[39] = 3.0f;
  EXPECT_GT(max_diff(run_kernel(p, true, false, 1).out, plain.out), 1e-3);
}

TEST(Attention, BiasComesAfterSoftcap) {
  // With a tiny cap every capped logit is ~equal; a bias added after the cap
  // still decides, one added before it would be squashed.
  Problem p = make(2, 1, 8, 6, 1, 0.01f, 0, 5);
  std::fill(p.heads.begin(), p.heads.end(), 1);
  std::fill(p.bias.begin(), p.bias.end(), 0.0f);
  p.bias[2] = 20.0f;
  p.shape.kq_scale = 1.0f;
  const Output o = run_kernel(p, true, false, 1);
  for (int h = 0; h < 2; ++h)
    for (int d = 0; d < 8; ++d)
      EXPECT_NEAR(o.out[h * 8 + d], p.v[2 * 8 + d], 1e-4);  // all weight on key 2
}

// GUIDE's defining property: before renormalisation, the attention mass on a
// tagged key is multiplied by exactly e^Δ relative to an untagged key.
TEST(Attention, BiasScalesTaggedMassByExpDelta) {
  Problem p = make(1, 1, 16, 24, 4, 0, 0, 21);  // one head: the trace channel is P itself
  p.n_ch = 2;
  p.trace_values.assign(p.n_kv * 2, 0.0f);
  const int64_t tagged = 5, other = 11;
  p.trace_values[tagged * 2 + 0] = 1.0f;
  p.trace_values[other * 2 + 1] = 1.0f;
  p.heads = {1};
  const float delta = 1.7f;
  std::fill(p.bias.begin(), p.bias.end(), 0.0f);
  p.bias[tagged] = delta;
  const Output plain = run_kernel(p, false, true, 1);
  const Output biased = run_kernel(p, true, true, 1);
  for (int64_t q = 0; q < p.n_query; ++q) {
    const double r0 = double(plain.trace[q * 2]) / plain.trace[q * 2 + 1];
    const double r1 = double(biased.trace[q * 2]) / biased.trace[q * 2 + 1];
    EXPECT_NEAR(r1 / r0, std::exp(double(delta)), 1e-4 * std::exp(double(delta))) << q;
  }
}

TEST(Attention, DisabledHeadsIgnoreTheBias) {
  Problem p = make(4, 2, 16, 20, 3, 0, 0, 11);
  std::fill(p.heads.begin(), p.heads.end(), 0);
  const Output off = run_kernel(p, true, false, 2);
  const Output none = run_kernel(p, false, false, 2);
  EXPECT_EQ(off.out, none.out);
}

}  // namespace
}  // namespace heed
