// Decode (GEMV, 1 token) and prefill (GEMM, 64 tokens) throughput of heed::matmul.
// Args: n_in, n_out, n_tokens, threads, llama (0: MatmulMode::Exact, 1: LlamaCpp, i.e.
// ggml's activation quantization + integer dots). Reports GFLOP/s (2 flops per
// weight per token).
// Shapes are the FFN matrices of a 576/1536 model (SmolLM-135M) and a 2048/5632
// one (TinyLlama-1.1B): ffn_down (n_in = 1536 / 5632) works for every type; ffn_up
// (n_in = 576) only for 32-element blocks, since 576 is not a multiple of 256.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/quant.h"

namespace heed {
namespace {

template <DType kType>
void BM_Matmul(benchmark::State& state) {
  const int64_t n_in = state.range(0), n_out = state.range(1), n_tokens = state.range(2);
  ThreadPool pool(static_cast<int>(state.range(3)));
  const MatmulMode mode = state.range(4) ? MatmulMode::LlamaCpp : MatmulMode::Exact;
  std::mt19937 rng(1);
  std::normal_distribution<float> gauss(0.f, 1.f);
  const auto row_size = row_bytes(kType, n_in);
  if (!row_size) {
    state.SkipWithError("n_in is not a multiple of the block size");
    return;
  }
  const size_t stride = *row_size;
  std::vector<uint8_t> weights(stride * n_out);
  std::vector<float> row(n_in);
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : row) v = gauss(rng);
    quantize_row(kType, row.data(), weights.data() + r * stride, n_in);
  }
  std::vector<float> x(n_tokens * n_in), y(n_tokens * n_out);
  for (auto& v : x) v = gauss(rng);
  const WeightView w{kType, n_in, n_out, weights.data(), stride};
  for (auto _ : state) {
    matmul(w, x.data(), n_tokens, y.data(), pool, mode);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * n_in * n_out * n_tokens,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s_weights"] = benchmark::Counter(
      1e-9 * static_cast<double>(weights.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(matmul_target_name());
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n_in", "n_out", "tokens", "threads", "llama"});
  for (int64_t llama : {0, 1})
    for (int64_t threads : {1, 2})
      for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{1536, 576},
                                 {576, 1536},
                                 {5632, 2048},
                                 {2048, 5632},
                                 {576, 49152}})
        for (int64_t tokens : {1, 64, 512}) b->Args({n_in, n_out, tokens, threads, llama});
  b->UseRealTime();
}

BENCHMARK_TEMPLATE(BM_Matmul, DType::Q8_0)->Apply(Shapes);
BENCHMARK_TEMPLATE(BM_Matmul, DType::Q4_K)->Apply(Shapes);
BENCHMARK_TEMPLATE(BM_Matmul, DType::Q6_K)->Apply(Shapes);
BENCHMARK_TEMPLATE(BM_Matmul, DType::F16)->Apply(Shapes);

}  // namespace
}  // namespace heed

BENCHMARK_MAIN();
