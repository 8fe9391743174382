// Oracle tests of the forward pass against llama.cpp's golden logits
// (../shared/models/golden), and of the kernel's bias and trace interfaces.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/thread_pool.h"
#include "model/forward.h"
#include "model/model.h"

namespace heed {
namespace {

namespace fs = std::filesystem;
const fs::path kShared = HEED_SHARED_DIR;

#define REQUIRE_SHARED()               \
  if (!fs::exists(kShared / "models")) \
  GTEST_SKIP() << "shared oracles not found at " << kShared << " (set HEED_SHARED_DIR)"

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

std::vector<float> read_f32(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(0, std::ios::end);
  std::vector<float> v(static_cast<size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()),
          static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

struct Runner {
  std::unique_ptr<Model> model;
  ThreadPool pool{2};
  explicit Runner(const fs::path& p, WeightResidency where = WeightResidency::HugePages)
      : model(Model::load(p.string(), where)) {}

  // All-position logits [n][n_vocab] for one batch.
  std::vector<float> logits(const std::vector<int32_t>& tokens, const ForwardHooks& hooks = {}) {
    const auto& c = model->config();
    const int64_t n = static_cast<int64_t>(tokens.size());
    KVCache cache(c.n_layer, n, c.n_head_kv, c.head_dim);
    Workspace ws(c, n, n, pool.size(), 4);
    std::vector<float> out(static_cast<size_t>(n * c.n_vocab));
    forward(*model, cache, tokens, 0, hooks, LogitsFor::All, out.data(), ws, pool);
    return out;
  }
};

// Max |ours - golden| over the golden's stored positions.
double max_diff(const std::vector<float>& ours, const std::vector<float>& golden,
                const std::vector<int>& positions, int64_t n_vocab) {
  double m = 0;
  for (size_t r = 0; r < positions.size(); ++r)
    for (int64_t v = 0; v < n_vocab; ++v)
      m = std::max(m, std::fabs(static_cast<double>(ours[positions[r] * n_vocab + v]) -
                                golden[r * n_vocab + v]));
  return m;
}

struct GoldenCase {
  std::string model;   // file stem in models/
  std::string input;   // random128 | story
  std::string golden;  // base | dequant_ref
  double tol;
};

class GoldenLogits : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenLogits, MatchesOracle) {
  REQUIRE_SHARED();
  const GoldenCase& gc = GetParam();
  const fs::path dir = kShared / "models" / "golden" / gc.golden;
  const std::string stem = gc.model + "." + gc.input;
  const auto meta = read_json(dir / (stem + ".json"));
  // dequant_ref sidecars omit tokens; the base sidecar of the same stem has them.
  const auto base = read_json(kShared / "models" / "golden" / "base" / (stem + ".json"));
  const std::vector<int32_t> tokens = base["tokens"].get<std::vector<int32_t>>();
  const std::vector<int> positions = meta["positions"].get<std::vector<int>>();
  Runner r(kShared / "models" / (gc.model + ".gguf"));
  // The numpy reference keeps activations in float; llama.cpp quantizes them.
  ForwardHooks hooks;
  hooks.matmul_mode = gc.golden == "dequant_ref" ? MatmulMode::Exact : MatmulMode::LlamaCpp;
  const auto ours = r.logits(tokens, hooks);
  const auto golden = read_f32(dir / (stem + ".logits.f32"));
  const int64_t n_vocab = r.model->config().n_vocab;
  ASSERT_EQ(golden.size(), positions.size() * n_vocab);
  const double d = max_diff(ours, golden, positions, n_vocab);
  RecordProperty("max_abs_diff", std::to_string(d));
  std::printf("[ oracle ] %s vs %s: max |diff| = %.3g (tol %.1g)\n", stem.c_str(),
              gc.golden.c_str(), d, gc.tol);
  EXPECT_LE(d, gc.tol);
}

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> v = {
      {"llama-f32", "random128", "base", 1e-4},       {"stories260K-f32", "story", "base", 1e-4},
      {"stories260K-f32", "random128", "base", 1e-4}, {"llama3rope-f32", "random128", "base", 1e-4},
      {"qwen2-f32", "random128", "base", 1e-4},       {"phi3-f32", "random128", "base", 1e-4},
      {"gemma2-f32", "random128", "base", 5e-3},  // GELU through ggml's fp16 table
  };
  for (const char* m : {"qwen2", "phi3", "gemma2"})
    for (const char* q : {"q8_0", "q4_k_m"})
      v.push_back({std::string(m) + "-" + q, "random128", "dequant_ref",
                   std::string(m) == "gemma2" ? 5e-3 : 1e-3});
  for (const char* q : {"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m",
                        "q4_k_m", "q5_k_m", "q6_k"})
    v.push_back({std::string("llama-") + q, "random128", "dequant_ref", 1e-3});
  return v;
}

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string s = info.param.model + "_" + info.param.input;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Zoo, GoldenLogits, ::testing::ValuesIn(golden_cases()), case_name);

// Quantized models with llama.cpp's activation quantization (MatmulMode::LlamaCpp)
// against llama.cpp's own logits (golden/base, 17 stored positions).
//
// The kernel reproduces ggml's x86 float order (see qdot.cc), so position 0
// (only the matmuls, norms and activations; no rope or attention mixing) is
// bit-identical or within 1e-6 for every file, and phi3-q4_k_m matches at all
// positions. Elsewhere later positions still differ: ggml rounds every
// activation to a grid (Q8: step amax/127 per block), so a last-bit difference
// from an upstream float op that is not yet bit-identical to ggml's (rope,
// attention sums and exp) occasionally flips one rounding, which moves the
// result by one grid step times a weight, and the flipped K/V rows carry it to
// later positions. The tolerances are the measured maxima plus headroom, and
// every file must also be clearly closer to llama.cpp than Exact mode is.
struct LlamaCppCase {
  std::string model;
  double tol;              // max |diff| over the 17 stored positions
  double tol_pos0 = 1e-6;  // max |diff| at position 0
  // Float-weight dots sum in lanes as wide as the vectors, so position 0 is
  // bit-exact only where heed runs the same width as the golden's llama.cpp.
  bool float_lanes = false;
};

double mean_diff(const std::vector<float>& ours, const std::vector<float>& golden,
                 const std::vector<int>& positions, int64_t n_vocab) {
  double s = 0;
  for (size_t r = 0; r < positions.size(); ++r)
    for (int64_t v = 0; v < n_vocab; ++v)
      s += std::fabs(static_cast<double>(ours[positions[r] * n_vocab + v]) -
                     golden[r * n_vocab + v]);
  return s / static_cast<double>(positions.size() * n_vocab);
}

class GoldenLogitsLlamaCpp : public ::testing::TestWithParam<LlamaCppCase> {};

TEST_P(GoldenLogitsLlamaCpp, MatchesLlamaCppGolden) {
  REQUIRE_SHARED();
  const LlamaCppCase& lc = GetParam();
  const fs::path dir = kShared / "models" / "golden" / "base";
  const std::string stem = lc.model + ".random128";
  const auto meta = read_json(dir / (stem + ".json"));
  const auto tokens = meta["tokens"].get<std::vector<int32_t>>();
  const auto positions = meta["positions"].get<std::vector<int>>();
  Runner r(kShared / "models" / (lc.model + ".gguf"));
  const int64_t n_vocab = r.model->config().n_vocab;
  const auto golden = read_f32(dir / (stem + ".logits.f32"));
  ASSERT_EQ(golden.size(), positions.size() * n_vocab);
  ForwardHooks hooks;
  hooks.matmul_mode = MatmulMode::LlamaCpp;
  const auto ours = r.logits(tokens, hooks);
  hooks.matmul_mode = MatmulMode::Exact;
  const auto exact = r.logits(tokens, hooks);
  const double d = max_diff(ours, golden, positions, n_vocab);
  const double d_exact = max_diff(exact, golden, positions, n_vocab);
  const double d_pos0 = max_diff(ours, golden, {positions[0]}, n_vocab);
  RecordProperty("max_abs_diff", std::to_string(d));
  std::printf(
      "[ oracle ] %s vs llama.cpp: max |diff| %.3g at position 0, %.3g overall "
      "(tol %.2g), mean %.2g; Exact mode: max %.3g, mean %.2g\n",
      stem.c_str(), d_pos0, d, lc.tol, mean_diff(ours, golden, positions, n_vocab), d_exact,
      mean_diff(exact, golden, positions, n_vocab));
  const bool golden_avx512 =
      meta["llama_cpp"]["system_info"].get<std::string>().find("AVX512 = 1") != std::string::npos;
  const bool same_width =
      golden_avx512 == (std::string(matmul_target_name()).rfind("AVX3", 0) == 0);
  if (!lc.float_lanes || same_width) {
    EXPECT_LE(d_pos0, lc.tol_pos0);
  } else {
    std::printf("[ oracle ] position 0 not pinned: golden from a %s build, heed on %s\n",
                golden_avx512 ? "AVX-512" : "non-AVX-512", matmul_target_name());
  }
  EXPECT_LE(d, lc.tol);
  EXPECT_LT(d, 0.75 * d_exact);
}

std::string llama_cpp_case_name(const ::testing::TestParamInfo<LlamaCppCase>& info) {
  std::string s = info.param.model;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, GoldenLogitsLlamaCpp,
    ::testing::Values(LlamaCppCase{"llama-f16", 5e-3, 1e-6, true},
                      LlamaCppCase{"llama-bf16", 4e-2, 1e-6, true}, LlamaCppCase{"llama-q8_0", 0.1},
                      LlamaCppCase{"llama-q4_0", 0.15}, LlamaCppCase{"llama-q4_1", 0.15},
                      LlamaCppCase{"llama-q5_0", 0.15}, LlamaCppCase{"llama-q5_1", 0.15},
                      LlamaCppCase{"llama-q2_k", 0.15}, LlamaCppCase{"llama-q3_k_m", 0.15},
                      LlamaCppCase{"llama-q4_k_m", 0.2}, LlamaCppCase{"llama-q5_k_m", 0.2},
                      LlamaCppCase{"llama-q6_k", 0.1}, LlamaCppCase{"qwen2-q8_0", 0.15},
                      LlamaCppCase{"qwen2-q4_k_m", 0.15}, LlamaCppCase{"phi3-q8_0", 0.1},
                      LlamaCppCase{"phi3-q4_k_m", 1e-5}, LlamaCppCase{"gemma2-q8_0", 0.3},
                      LlamaCppCase{"gemma2-q4_k_m", 0.4}),
    llama_cpp_case_name);

// The kernel's key bias, filled by hand the way GUIDE will fill it, reproduces
// llama.cpp's GUIDE-patched goldens; a zero bias is bit-identical to none.
TEST(KernelBias, ZeroBiasIsBitIdentical) {
  REQUIRE_SHARED();
  Runner r(kShared / "models" / "llama-f32.gguf");
  const auto tokens = read_json(kShared / "models/golden/base/llama-f32.random128.json")["tokens"]
                          .get<std::vector<int32_t>>();
  const auto plain = r.logits(tokens);
  std::vector<float> zeros(tokens.size(), 0.0f);
  std::vector<KeyBias> lb(r.model->config().n_layer,
                          KeyBias{zeros.data(), (int64_t)zeros.size(), nullptr});
  const auto biased = r.logits(tokens, ForwardHooks{lb, nullptr});
  ASSERT_EQ(plain.size(), biased.size());
  EXPECT_EQ(0, std::memcmp(plain.data(), biased.data(), plain.size() * sizeof(float)));
}

// Weights read into huge pages and weights in the file's mapping give the same
// bits (a quantized file, so the integer kernels read both copies).
TEST(ModelLoad, HugePagesAndMappingGiveTheSameLogits) {
  REQUIRE_SHARED();
  const fs::path file = kShared / "models" / "llama-q4_k_m.gguf";
  Runner huge(file), mapped(file, WeightResidency::Mapped);
  EXPECT_EQ(huge.model->file().in_huge_pages(), transparent_huge_pages_available());
  EXPECT_FALSE(mapped.model->file().in_huge_pages());
  const std::vector<int32_t> tokens = {1, 15, 300, 7, 42, 99, 5, 260, 11};
  const auto a = huge.logits(tokens), b = mapped.logits(tokens);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

struct BiasCase {
  std::string model, input, cfg;
  std::vector<std::tuple<int, int, float>> spans;
};

TEST(KernelBias, MatchesPatchedLlamaCppGoldens) {
  REQUIRE_SHARED();
  const std::vector<BiasCase> cases = {
      {"llama-f32", "random128", "guideA", {{10, 20, 2.0f}}},
      {"llama-f32", "random128", "guideB", {{5, 8, 1.0f}, {40, 50, -1.5f}}},
      {"stories260K-f32", "story", "guideA", {{10, 20, 2.0f}}},
      {"stories260K-f32", "story", "guideB", {{5, 8, 1.0f}, {40, 50, -1.5f}}},
      {"qwen2-f32", "random128", "guideA", {{10, 20, 2.0f}}},
      {"qwen2-f32", "random128", "guideB", {{5, 8, 1.0f}, {40, 50, -1.5f}}},
      {"gemma2-f32", "random128", "guideA", {{10, 20, 2.0f}}},
      {"gemma2-f32", "random128", "guideB", {{5, 8, 1.0f}, {40, 50, -1.5f}}},
  };
  for (const auto& bc : cases) {
    const std::string stem = bc.model + "." + bc.input + "." + bc.cfg;
    const fs::path dir = kShared / "models/golden/guide";
    const auto meta = read_json(dir / (stem + ".json"));
    const auto tokens = meta["tokens"].get<std::vector<int32_t>>();
    std::vector<float> bias(tokens.size(), 0.0f);
    for (auto [s, e, d] : bc.spans)
      for (int i = s; i < e; ++i) bias[i] += d;
    Runner r(kShared / "models" / (bc.model + ".gguf"));
    std::vector<KeyBias> lb(r.model->config().n_layer,
                            KeyBias{bias.data(), (int64_t)bias.size(), nullptr});
    const auto ours = r.logits(tokens, ForwardHooks{lb, nullptr});
    const auto golden = read_f32(dir / (stem + ".logits.f32"));
    const double d = max_diff(ours, golden, meta["positions"].get<std::vector<int>>(),
                              r.model->config().n_vocab);
    std::printf("[ oracle ] %s: max |diff| = %.3g\n", stem.c_str(), d);
    // gemma2: llama.cpp's GELU goes through an fp16 table (see shared/models/README.md).
    EXPECT_LE(d, bc.model == "gemma2-f32" ? 5e-3 : 1e-4) << stem;
    // And the bias really changes the output (the test can fail).
    const auto plain = r.logits(tokens);
    EXPECT_GT(max_diff(plain, golden, meta["positions"].get<std::vector<int>>(),
                       r.model->config().n_vocab),
              0.1)
        << stem;
  }
}

// A trace channel holding all ones must come back as ones (rows of Ā sum to 1),
// and a one-hot channel on key 0 gives the head-averaged attention to BOS.
class ProbeObserver : public ForwardObserver {
 public:
  explicit ProbeObserver(int64_t n) : values_(static_cast<size_t>(n) * 2) {
    for (int64_t j = 0; j < n; ++j) {
      values_[j * 2] = 1.0f;
      values_[j * 2 + 1] = j == 0 ? 1.0f : 0.0f;
    }
  }
  int n_channels() const override { return 2; }
  const float* trace_values(int, int64_t) override { return values_.data(); }
  void on_layer(const LayerTap& tap) override {
    ++layers_seen;
    for (int64_t t = 0; t < tap.n_tokens; ++t) {
      max_ones_err = std::max(max_ones_err, std::fabs(tap.mixed[t * 2] - 1.0));
      if (tap.pos0 + t == 0) bos_self = tap.mixed[t * 2 + 1];
      min_bos = std::min<double>(min_bos, tap.mixed[t * 2 + 1]);
    }
    EXPECT_NE(tap.residual_in, nullptr);
    EXPECT_NE(tap.attn_output, nullptr);
  }
  std::vector<float> values_;
  int layers_seen = 0;
  double max_ones_err = 0, bos_self = -1, min_bos = 1;
};

TEST(KernelTrace, ChannelsAreHeadAveragedAttention) {
  REQUIRE_SHARED();
  Runner r(kShared / "models" / "stories260K-f32.gguf");
  std::vector<int32_t> tokens = {1, 400, 34, 90, 200, 17, 5, 300};
  ProbeObserver obs(static_cast<int64_t>(tokens.size()));
  const auto traced = r.logits(tokens, ForwardHooks{{}, &obs});
  EXPECT_EQ(obs.layers_seen, r.model->config().n_layer);
  EXPECT_LT(obs.max_ones_err, 1e-5);
  EXPECT_NEAR(obs.bos_self, 1.0, 1e-6);  // the first token can only see itself
  EXPECT_GE(obs.min_bos, 0.0);
  // Tracing does not change the logits.
  const auto plain = r.logits(tokens);
  EXPECT_EQ(0, std::memcmp(plain.data(), traced.data(), plain.size() * sizeof(float)));
}

TEST(ModelLoad, UnsupportedArchitectureNamesIt) {
  REQUIRE_SHARED();
  // A vocab-only GGUF has an architecture but no weights.
  try {
    Model::load((kShared / "vocab" / "ggml-vocab-falcon.gguf").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("falcon"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("supported"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace heed
