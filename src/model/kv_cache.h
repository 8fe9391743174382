// Per-layer f32 key/value cache for one sequence, laid out
// [layer][position][n_head_kv][head_dim]. f32 keeps logits exact against the
// oracles; positions are absolute token indices 0..n_ctx-1.
#pragma once
#include <cstdint>
#include <vector>

#include "common/aligned.h"
#include "kernels/attention.h"

namespace heed {

class KVCache {
 public:
  KVCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim)
      : n_ctx_(n_ctx),
        row_(n_head_kv * head_dim),
        k_(static_cast<size_t>(n_layer * n_ctx * row_)),
        v_(static_cast<size_t>(n_layer * n_ctx * row_)) {}

  int64_t capacity() const { return n_ctx_; }
  int64_t size() const { return n_used_; }
  void set_size(int64_t n) { n_used_ = n; }  // truncate (n <= size) or commit after a forward
  void clear() { n_used_ = 0; }

  float* k_row(int64_t layer, int64_t pos) { return &k_[(layer * n_ctx_ + pos) * row_]; }
  float* v_row(int64_t layer, int64_t pos) { return &v_[(layer * n_ctx_ + pos) * row_]; }
  KVView view(int64_t layer, int64_t n_kv) const {
    return KVView{&k_[layer * n_ctx_ * row_], &v_[layer * n_ctx_ * row_], n_kv};
  }

 private:
  int64_t n_ctx_;
  int64_t row_;
  int64_t n_used_ = 0;
  AlignedVector<float> k_, v_;
};

}  // namespace heed
