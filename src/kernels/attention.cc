// The attention kernel, compiled once per Highway target (this file includes
// itself via foreach_target) and picked at run time.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/thread_pool.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h, once per target (clang-format: keep this block apart).
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace heed {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int n) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  int i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Dot products of R queries with 8 keys k + i * stride (i = 0..7), n a multiple
// of 8: eight 8-lane accumulators per query reduced together by a transpose of
// hadds (far cheaper than eight horizontal sums); each key vector loaded serves
// R FMAs. Every (query, key) sums the same way whatever R is. 9R + 1 vector
// registers: R > 1 only with AVX-512's 32.
template <int R>
HWY_INLINE void Dot8Keys(const float* const* HWY_RESTRICT q, const float* HWY_RESTRICT k,
                         int64_t stride, int n, float* const* HWY_RESTRICT out, int64_t j) {
  __m256 acc[R][8];
  for (auto& row : acc)
    for (__m256& a : row) a = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) {
    __m256 qv[R];
    for (int r = 0; r < R; ++r) qv[r] = _mm256_loadu_ps(q[r] + i);
    for (int key = 0; key < 8; ++key) {
      const __m256 kv = _mm256_loadu_ps(k + key * stride + i);
      for (int r = 0; r < R; ++r) acc[r][key] = _mm256_fmadd_ps(qv[r], kv, acc[r][key]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const __m256 h0123 =
        _mm256_hadd_ps(_mm256_hadd_ps(acc[r][0], acc[r][1]), _mm256_hadd_ps(acc[r][2], acc[r][3]));
    const __m256 h4567 =
        _mm256_hadd_ps(_mm256_hadd_ps(acc[r][4], acc[r][5]), _mm256_hadd_ps(acc[r][6], acc[r][7]));
    _mm256_storeu_ps(out[r] + j, _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                                               _mm256_permute2f128_ps(h0123, h4567, 0x31)));
  }
}
#endif

// Query rows of one KV head (grouped-query heads of one position: the same key
// range) scored and summed together.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kHeadRows = 3;
#else
constexpr int kHeadRows = 1;  // 16 vector registers: Dot8Keys<1> takes 9
#endif
static_assert(kHeadRows <= kAttentionRowsPerThread, "the scratch holds the rows' scores");

// Raw scores q_r . k_j for j in [first, last], rows r < n_rows (<= kHeadRows).
HWY_INLINE void KeyDots(const float* const* HWY_RESTRICT q, int n_rows, const float* HWY_RESTRICT k,
                        int64_t stride, int n, int64_t first, int64_t last,
                        float* const* HWY_RESTRICT scores) {
  int64_t j = first;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if (n % 8 == 0) {
    for (; j + 8 <= last + 1; j += 8) {
      const float* kj = k + j * stride;
      if (kHeadRows >= 3 && n_rows == 3) {
        Dot8Keys<3>(q, kj, stride, n, scores, j);
      } else if (kHeadRows >= 2 && n_rows == 2) {
        Dot8Keys<2>(q, kj, stride, n, scores, j);
      } else {
        for (int r = 0; r < n_rows; ++r) Dot8Keys<1>(q + r, kj, stride, n, scores + r, j);
      }
    }
  }
#endif
  for (int r = 0; r < n_rows; ++r)
    for (int64_t jj = j; jj <= last; ++jj) scores[r][jj] = Dot(q[r], k + jj * stride, n);
}

// o[r][col..col + kVecs lanes) = sum_j p[r][j] * v_j over j in [first, last], in
// key order with one FMA per element and key; each value vector loaded serves
// the R rows, whose outputs stay in registers.
template <int kVecs, int R>
HWY_INLINE void WeightedSumBlock(const float* const* HWY_RESTRICT p, const float* HWY_RESTRICT v,
                                 int64_t stride, int64_t first, int64_t last,
                                 float* const* HWY_RESTRICT o, int col) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  decltype(hn::Zero(d)) acc[R][kVecs];
  for (auto& row : acc)
    for (auto& a : row) a = hn::Zero(d);
  for (int64_t j = first; j <= last; ++j) {
    const float* vj = v + j * stride;
    decltype(hn::Zero(d)) vv[kVecs];
    for (int c = 0; c < kVecs; ++c) vv[c] = hn::LoadU(d, vj + c * N);
    for (int r = 0; r < R; ++r) {
      const auto pj = hn::Set(d, p[r][j]);
      for (int c = 0; c < kVecs; ++c) acc[r][c] = hn::MulAdd(pj, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kVecs; ++c) hn::StoreU(acc[r][c], d, o[r] + col + c * N);
}

// o[r][0..n / lanes * lanes) in register blocks of up to 8 vectors (4 when
// rows share them). Every block sums the same way (one FMA chain per element, in
// key order), so the bits depend neither on the block widths nor on the rows
// taken together: a 64-wide head is one block of 4 vectors on AVX-512, not a
// per-key read-modify-write of o.
constexpr int kSumLanes = static_cast<int>(hn::MaxLanes(hn::ScalableTag<float>()));
// WeightedSumBlock<vecs, R> for a run-time vecs <= V.
template <int V, int R>
HWY_INLINE void WeightedSumVecs(int vecs, const float* const* HWY_RESTRICT p,
                                const float* HWY_RESTRICT v, int64_t stride, int64_t first,
                                int64_t last, float* const* HWY_RESTRICT o, int col) {
  if constexpr (V > 1) {
    if (vecs < V) return WeightedSumVecs<V - 1, R>(vecs, p, v, stride, first, last, o, col);
  }
  WeightedSumBlock<V, R>(p, v, stride, first, last, o, col);
}
template <int R>
HWY_INLINE void WeightedSumRows(const float* const* HWY_RESTRICT p, const float* HWY_RESTRICT v,
                                int64_t stride, int64_t first, int64_t last, int n,
                                float* const* HWY_RESTRICT o) {
  constexpr int kMaxVecs = R == 1 ? 8 : 4;  // R x vecs accumulators + vecs loads fit
  int col = 0;
  for (int left = n / kSumLanes; left > 0;) {
    const int vecs = std::min(left, kMaxVecs);
    WeightedSumVecs<kMaxVecs, R>(vecs, p, v + col, stride, first, last, o, col);
    col += vecs * kSumLanes;
    left -= vecs;
  }
}
HWY_INLINE void WeightedSum(const float* const* HWY_RESTRICT p, int n_rows,
                            const float* HWY_RESTRICT v, int64_t stride, int64_t first,
                            int64_t last, int n, float* const* HWY_RESTRICT o) {
  if (kHeadRows >= 3 && n_rows == 3) return WeightedSumRows<3>(p, v, stride, first, last, n, o);
  if (kHeadRows >= 2 && n_rows == 2) return WeightedSumRows<2>(p, v, stride, first, last, n, o);
  for (int r = 0; r < n_rows; ++r) WeightedSumRows<1>(p + r, v, stride, first, last, n, o + r);
}

// y += p * x
HWY_INLINE void Axpy(float p, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int n) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  const auto vp = hn::Set(d, p);
  int i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::MulAdd(vp, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += p * x[i];
}

// s[j] = s[j] * scale (+ bias[j] for j < biased_end) over [first, last]; returns the max.
HWY_INLINE float ScaleBiasMax(float* HWY_RESTRICT s, int64_t first, int64_t last, float scale,
                              const float* HWY_RESTRICT bias, int64_t biased_end) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  const auto vscale = hn::Set(d, scale);
  auto vmax = hn::Set(d, -std::numeric_limits<float>::infinity());
  float max_s = -std::numeric_limits<float>::infinity();
  const int64_t end = last + 1;
  const int64_t b_end = bias ? std::min(biased_end, end) : first;
  int64_t j = first;
  for (; j + N <= b_end; j += N) {
    const auto v = hn::Mul(hn::LoadU(d, s + j), vscale);
    const auto vb = hn::Add(v, hn::LoadU(d, bias + j));
    hn::StoreU(vb, d, s + j);
    vmax = hn::Max(vmax, vb);
  }
  for (; j < b_end; ++j) {
    s[j] = s[j] * scale + bias[j];
    max_s = std::max(max_s, s[j]);
  }
  for (; j + N <= end; j += N) {
    const auto v = hn::Mul(hn::LoadU(d, s + j), vscale);
    hn::StoreU(v, d, s + j);
    vmax = hn::Max(vmax, v);
  }
  for (; j < end; ++j) {
    s[j] *= scale;
    max_s = std::max(max_s, s[j]);
  }
  return std::max(max_s, hn::GetLane(hn::MaxOfLanes(d, vmax)));
}

// s[j] = exp(s[j] - max_s) over [first, last]; returns their sum, each vector's
// lanes summed in float and added in double as ggml's soft_max does.
HWY_INLINE double ExpSum(float* HWY_RESTRICT s, int64_t first, int64_t last, float max_s) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  const auto vmax = hn::Set(d, max_s);
  double sum = 0.0;
  int64_t j = first;
  for (; j + N <= last + 1; j += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, s + j), vmax));
    hn::StoreU(e, d, s + j);
    sum += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, e)));
  }
  for (; j <= last; ++j) {
    s[j] = std::exp(s[j] - max_s);
    sum += s[j];
  }
  return sum;
}

HWY_INLINE void Scale(float* HWY_RESTRICT s, int64_t first, int64_t last, float k) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  int64_t j = first;
  for (; j + N <= last + 1; j += N)
    hn::StoreU(hn::Mul(hn::LoadU(d, s + j), hn::Set(d, k)), d, s + j);
  for (; j <= last; ++j) s[j] *= k;
}

void AttentionTarget(const AttentionShape& shape, const float* q, int64_t n_query, int64_t pos0,
                     const KVView& kv, const KeyBias* bias, TraceValues* trace,
                     AttentionScratch& scratch, float* out, ThreadPool& pool) {
  const int H = shape.n_head, D = shape.head_dim;
  const int group = H / shape.n_head_kv;
  const int64_t kv_stride = static_cast<int64_t>(shape.n_head_kv) * D;
  const int n_ch = trace ? trace->n_channels : 0;

  // Causal rows cost in proportion to their position: threads take tasks in
  // turn (not contiguous halves) so that each gets early and late rows alike.
  // A task is up to kHeadRows heads of one query and one KV head.
  const int row_sets = (group + kHeadRows - 1) / kHeadRows;
  const size_t tasks_per_query = static_cast<size_t>(shape.n_head_kv) * row_sets;
  const size_t n_tasks = static_cast<size_t>(n_query) * tasks_per_query;
  const size_t n_workers = std::min<size_t>(static_cast<size_t>(pool.size()), n_tasks);
  pool.run([&](int ti) {
    if (static_cast<size_t>(ti) >= n_workers) return;
    float* const thread_scores =
        scratch.scores + static_cast<int64_t>(ti) * kAttentionRowsPerThread * scratch.max_kv;
    for (size_t task = static_cast<size_t>(ti); task < n_tasks; task += n_workers) {
      const auto qi = static_cast<int64_t>(task / tasks_per_query);
      const auto in_query = static_cast<int>(task % tasks_per_query);
      const int hk = in_query / row_sets;
      const int h0 = hk * group + (in_query % row_sets) * kHeadRows;
      const int n_rows = std::min(kHeadRows, (hk + 1) * group - h0);
      const int64_t pos = pos0 + qi;
      // Visible keys: [first, last]. The window keeps keys with pos - j < window.
      const int64_t last = std::min<int64_t>(pos, kv.n_kv - 1);
      const int64_t first = shape.window > 0 ? std::max<int64_t>(0, pos - shape.window + 1) : 0;
      const float* qv[kHeadRows];
      float* scores[kHeadRows];
      float* o[kHeadRows];
      for (int r = 0; r < n_rows; ++r) {
        qv[r] = q + (qi * H + h0 + r) * D;
        scores[r] = thread_scores + r * scratch.max_kv;
        o[r] = out + (qi * H + h0 + r) * D;
      }
      const float* kh = kv.k + hk * D;
      const float* vh = kv.v + hk * D;
      KeyDots(qv, n_rows, kh, kv_stride, D, first, last, scores);
      for (int r = 0; r < n_rows; ++r) {
        const int h = h0 + r;
        float* s = scores[r];
        const bool use_bias =
            bias && bias->values && (!bias->head_enabled || bias->head_enabled[h]);
        const int64_t n_biased = use_bias ? std::min(last + 1, bias->n_values) : 0;
        if (shape.softcap > 0.0f)
          for (int64_t j = first; j <= last; ++j)
            s[j] = shape.softcap * std::tanh(s[j] / shape.softcap);
        // Scale, then the bias (after scale and softcap, before softmax).
        const float max_s =
            ScaleBiasMax(s, first, last, shape.kq_scale, n_biased > first ? bias->values : nullptr,
                         std::max(first, n_biased));
        const float inv = static_cast<float>(1.0 / ExpSum(s, first, last, max_s));
        Scale(s, first, last, inv);
      }
      WeightedSum(scores, n_rows, vh, kv_stride, first, last, D, o);
      for (int r = 0; r < n_rows; ++r) {
        const float* s = scores[r];
        const int col = D / kSumLanes * kSumLanes;
        if (col < D) {
          std::fill(o[r] + col, o[r] + D, 0.0f);
          for (int64_t j = first; j <= last; ++j)
            Axpy(s[j], vh + j * kv_stride + col, o[r] + col, D - col);
        }
        if (n_ch > 0) {
          float* part = scratch.trace_partial + (qi * H + h0 + r) * n_ch;
          for (int c = 0; c < n_ch; ++c) {
            double acc = 0.0;
            for (int64_t j = first; j <= last; ++j) acc += s[j] * trace->values[j * n_ch + c];
            part[c] = static_cast<float>(acc);
          }
        }
      }
    }
  });

  if (n_ch > 0) {
    // Head average in a fixed order, so results do not depend on the thread count.
    for (int64_t qi = 0; qi < n_query; ++qi) {
      for (int c = 0; c < n_ch; ++c) {
        double acc = 0.0;
        for (int h = 0; h < H; ++h) acc += scratch.trace_partial[(qi * H + h) * n_ch + c];
        trace->out[qi * n_ch + c] = static_cast<float>(acc / H);
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace heed
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace heed {

HWY_EXPORT(AttentionTarget);

void attention(const AttentionShape& shape, const float* q, int64_t n_query, int64_t pos0,
               const KVView& kv, const KeyBias* bias, TraceValues* trace, AttentionScratch& scratch,
               float* out, ThreadPool& pool) {
  HWY_DYNAMIC_DISPATCH(AttentionTarget)
  (shape, q, n_query, pos0, kv, bias, trace, scratch, out, pool);
}

}  // namespace heed
#endif  // HWY_ONCE
