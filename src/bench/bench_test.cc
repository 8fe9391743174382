#include "bench/bench.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bench/bandwidth.h"
#include "heed/error.h"

namespace heed::bench {
namespace {

const std::string kStories = std::string(HEED_SHARED_DIR) + "/models/stories260K-f32.gguf";

std::unique_ptr<Model> load_stories() {
  if (!std::filesystem::exists(kStories)) return nullptr;
  return Model::load(kStories);
}

#define SKIP_WITHOUT_MODEL(m) \
  if (!(m)) GTEST_SKIP() << "shared model missing: " << kStories

BenchParams tiny_params() {
  BenchParams p;
  p.n_prompt = {16};
  p.n_gen = {8};
  p.n_threads = {1};
  p.repetitions = 2;
  p.bandwidth_buffer_bytes = size_t{16} << 20;
  return p;
}

TEST(Bandwidth, PositiveAndFinite) {
  const double gbs = measure_bandwidth_gbs(1, size_t{32} << 20, 2);
  EXPECT_TRUE(std::isfinite(gbs));
  EXPECT_GT(gbs, 0.1);      // any machine that runs the tests reads faster than 100 MB/s
  EXPECT_LT(gbs, 10000.0);  // and slower than 10 TB/s
  const double two = measure_bandwidth_gbs(2, size_t{32} << 20, 2);
  EXPECT_TRUE(std::isfinite(two));
  EXPECT_GT(two, 0.1);
}

TEST(Bandwidth, RejectsBadArguments) {
  EXPECT_THROW(measure_bandwidth_gbs(0, size_t{32} << 20, 1), Error);
  EXPECT_THROW(measure_bandwidth_gbs(1, size_t{32} << 20, 0), Error);
  EXPECT_THROW(measure_bandwidth_gbs(1, 1024, 1), Error);
}

TEST(Bandwidth, DefaultBufferIsLargerThanTheCache) {
  const size_t bytes = default_bandwidth_buffer_bytes();
  EXPECT_GE(bytes, size_t{64} << 20);
  EXPECT_LE(bytes, size_t{1} << 30);
  const uint64_t llc = last_level_cache_bytes();
  if (llc > 0 && 4 * llc <= (uint64_t{1} << 30)) {
    EXPECT_GE(bytes, 4 * llc);
  }
}

TEST(Stats, MeanAndBesselCorrectedStddev) {
  EXPECT_DOUBLE_EQ(mean({1, 2, 3, 4}), 2.5);
  EXPECT_NEAR(sample_stddev({1, 2, 3, 4}), std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_EQ(sample_stddev({7}), 0.0);
  EXPECT_EQ(mean({}), 0.0);
}

TEST(Record, DerivedValues) {
  BenchRecord r;
  r.n_gen = 4;
  r.samples_ns = {1000000000, 2000000000};
  r.bandwidth_gbs = 10;
  r.weight_bytes = 1000000000;  // roofline: 10 t/s
  EXPECT_EQ(r.test_name(), "tg4");
  EXPECT_EQ(r.samples_ts(), (std::vector<double>{4.0, 2.0}));
  EXPECT_DOUBLE_EQ(r.avg_ts(), 3.0);
  EXPECT_NEAR(r.stddev_ts(), std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(r.avg_ns(), 1.5e9);
  ASSERT_TRUE(r.roofline_fraction().has_value());
  EXPECT_DOUBLE_EQ(*r.roofline_fraction(), 0.3);
  r.n_prompt = 4;
  r.n_gen = 0;
  EXPECT_EQ(r.test_name(), "pp4");
  EXPECT_FALSE(r.roofline_fraction().has_value());
}

TEST(Format, ParseOutputFormat) {
  EXPECT_EQ(parse_output_format("md"), OutputFormat::Markdown);
  EXPECT_EQ(parse_output_format("json"), OutputFormat::Json);
  try {
    parse_output_format("csv");
    FAIL() << "csv accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'csv'"), std::string::npos) << e.what();
  }
}

TEST(Bench, StoriesJsonRecordsAreWellFormed) {
  auto model = load_stories();
  SKIP_WITHOUT_MODEL(model);
  std::vector<std::string> progress;
  BenchParams p = tiny_params();
  p.progress = [&](const std::string& s) { progress.push_back(s); };
  const std::vector<BenchRecord> records = run_bench(*model, p);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(std::find(progress.begin(), progress.end(), "pp16 t=1 rep 2/2"), progress.end());

  const auto json = nlohmann::json::parse(records_json(records));
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 2u);
  uint64_t tensor_bytes = 0, n_params = 0;
  for (const auto& t : model->file().tensors()) {
    tensor_bytes += t.n_bytes;
    n_params += t.n_elements();
  }
  for (const auto& r : json) {
    for (const char* key :
         {"model_filename", "model_type", "model_size", "model_n_params", "n_prompt", "n_gen",
          "n_threads", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts",
          "guide", "trace", "roofline_fraction", "bandwidth_gbs"})
      EXPECT_TRUE(r.contains(key)) << key;
    EXPECT_EQ(r["model_filename"], kStories);
    EXPECT_EQ(r["model_type"], "llama 293K all F32");
    EXPECT_EQ(r["model_size"].get<uint64_t>(), tensor_bytes);
    EXPECT_EQ(r["model_n_params"].get<uint64_t>(), n_params);
    EXPECT_EQ(r["n_threads"], 1);
    EXPECT_TRUE(r["guide"].is_null());
    EXPECT_EQ(r["trace"], false);
    EXPECT_EQ(r["huge_pages"], model->file().in_huge_pages());
    const double bw = r["bandwidth_gbs"].get<double>();
    EXPECT_TRUE(std::isfinite(bw) && bw > 0);

    const auto ns = r["samples_ns"].get<std::vector<uint64_t>>();
    const auto ts = r["samples_ts"].get<std::vector<double>>();
    ASSERT_EQ(ns.size(), 2u);
    ASSERT_EQ(ts.size(), 2u);
    const int n_tokens = r["n_prompt"].get<int>() + r["n_gen"].get<int>();
    for (size_t i = 0; i < ns.size(); ++i) {
      ASSERT_GT(ns[i], 0u);
      EXPECT_NEAR(ts[i], 1e9 * n_tokens / static_cast<double>(ns[i]), 1e-9 * ts[i]);
    }
    const double avg = (ts[0] + ts[1]) / 2;
    EXPECT_NEAR(r["avg_ts"].get<double>(), avg, 1e-9 * avg);
    // Two samples: the Bessel-corrected deviation is |a-b|/sqrt(2).
    EXPECT_NEAR(r["stddev_ts"].get<double>(), std::abs(ts[0] - ts[1]) / std::sqrt(2.0), 1e-9 * avg);
    EXPECT_NEAR(r["avg_ns"].get<double>(), (ns[0] + ns[1]) / 2.0, 1.0);
    EXPECT_NEAR(r["stddev_ns"].get<double>(),
                std::abs(static_cast<double>(ns[0]) - static_cast<double>(ns[1])) / std::sqrt(2.0),
                1.0);
  }
  EXPECT_EQ(json[0]["n_prompt"], 16);
  EXPECT_EQ(json[0]["n_gen"], 0);
  EXPECT_TRUE(json[0]["roofline_fraction"].is_null());
  EXPECT_EQ(json[1]["n_prompt"], 0);
  EXPECT_EQ(json[1]["n_gen"], 8);
  const double roofline_ts =
      json[1]["bandwidth_gbs"].get<double>() * 1e9 / static_cast<double>(model->weight_bytes());
  EXPECT_NEAR(json[1]["roofline_fraction"].get<double>(),
              json[1]["avg_ts"].get<double>() / roofline_ts, 1e-9);
}

TEST(Bench, StoriesMarkdownHasOneRowPerTest) {
  auto model = load_stories();
  SKIP_WITHOUT_MODEL(model);
  BenchParams p = tiny_params();
  p.n_threads = {1, 2};
  const std::string md = records_markdown(run_bench(*model, p));
  EXPECT_NE(md.find("| model "), std::string::npos) << md;
  EXPECT_NE(md.find("| backend | threads | test |"), std::string::npos) << md;
  int rows = 0, pp = 0, tg = 0;
  for (size_t start = 0; start < md.size();) {
    const size_t end = md.find('\n', start);
    const std::string line = md.substr(start, end - start);
    start = end + 1;
    if (line.rfind("| llama", 0) != 0) continue;
    ++rows;
    pp += line.find(" pp16 |") != std::string::npos;
    tg += line.find(" tg8 |") != std::string::npos;
    EXPECT_NE(line.find(" ± "), std::string::npos) << line;
  }
  EXPECT_EQ(rows, 4) << md;
  EXPECT_EQ(pp, 2) << md;
  EXPECT_EQ(tg, 2) << md;
  EXPECT_EQ(md.find("| guide"), std::string::npos) << "no guide column without --guide-span";
}

TEST(Bench, GuideAndTraceVariantsRunAsACrossProduct) {
  auto model = load_stories();
  SKIP_WITHOUT_MODEL(model);
  BenchParams p = tiny_params();
  p.repetitions = 1;
  p.guide_spans = {"", "0:4:2.5"};
  p.trace_sets = {{}, {InfluenceMetric::Paper, InfluenceMetric::Rollout}};
  std::vector<std::string> progress;
  p.progress = [&](const std::string& s) { progress.push_back(s); };
  const auto records = run_bench(*model, p);
  ASSERT_EQ(records.size(), 8u);  // 2 tests x 2 guides x 2 trace sets
  EXPECT_NE(std::find(progress.begin(), progress.end(),
                      "tg8 t=1 guide 0:4:2.5 trace paper,rollout rep 1/1"),
            progress.end());
  const auto json = nlohmann::json::parse(records_json(records));
  for (size_t i = 0; i < json.size(); ++i) {
    const auto& r = json[i];
    EXPECT_EQ(r["n_prompt"], i < 4 ? 16 : 0) << i;
    const bool guided = (i / 2) % 2 == 1, traced = i % 2 == 1;
    if (guided) {
      EXPECT_EQ(r["guide"], "0:4:2.5") << i;
    } else {
      EXPECT_TRUE(r["guide"].is_null()) << i;
    }
    EXPECT_EQ(r["trace"], traced) << i;
    const std::vector<std::string> metrics =
        traced ? std::vector<std::string>{"paper", "rollout"} : std::vector<std::string>{};
    EXPECT_EQ(r["trace_metrics"], metrics) << i;
    EXPECT_EQ(r["samples_ns"].size(), 1u);
  }
  const std::string md = records_markdown(records);
  EXPECT_NE(md.find("|   guide |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 0:4:2.5 | paper,rollout |"), std::string::npos) << md;
  EXPECT_NE(md.find("|       - |             - |"), std::string::npos) << md;
}

// The variants of one test are timed in turn, so that a machine drifting between
// minutes does not favour the first (all warm-ups come before any timed run).
TEST(Bench, VariantsOfATestAreTimedInTurn) {
  auto model = load_stories();
  SKIP_WITHOUT_MODEL(model);
  BenchParams p = tiny_params();
  p.n_prompt = {0};
  p.n_gen = {4};
  p.repetitions = 2;
  p.guide_spans = {"", "0:2:1"};
  std::vector<std::string> progress;
  p.progress = [&](const std::string& s) { progress.push_back(s); };
  const auto records = run_bench(*model, p);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].samples_ns.size(), 2u);
  EXPECT_EQ(records[1].samples_ns.size(), 2u);
  const std::vector<std::string> expected = {"bandwidth t=1",
                                             "tg4 t=1 warmup",
                                             "tg4 t=1 guide 0:2:1 warmup",
                                             "tg4 t=1 rep 1/2",
                                             "tg4 t=1 guide 0:2:1 rep 1/2",
                                             "tg4 t=1 rep 2/2",
                                             "tg4 t=1 guide 0:2:1 rep 2/2"};
  EXPECT_EQ(progress, expected);
}

TEST(Bench, RejectsBadParameters) {
  auto model = load_stories();
  SKIP_WITHOUT_MODEL(model);
  BenchParams p = tiny_params();
  p.n_prompt = {0};
  p.n_gen = {0};
  EXPECT_THROW(run_bench(*model, p), Error);
  p = tiny_params();
  p.repetitions = 0;
  EXPECT_THROW(run_bench(*model, p), Error);
  p = tiny_params();
  p.n_threads = {0};
  EXPECT_THROW(run_bench(*model, p), Error);
  p = tiny_params();
  p.n_gen = {-1};
  EXPECT_THROW(run_bench(*model, p), Error);
  p = tiny_params();
  p.guide_spans = {"", "4:2:1"};  // reversed
  EXPECT_THROW(run_bench(*model, p), Error);
  p.guide_spans = {"0:17:1"};  // past the largest context (16)
  EXPECT_THROW(run_bench(*model, p), Error);
  p.guide_spans = {};
  EXPECT_THROW(run_bench(*model, p), Error);
  p = tiny_params();
  p.trace_sets = {};
  EXPECT_THROW(run_bench(*model, p), Error);
  EXPECT_THROW(Model::load("/nonexistent/model.gguf"), Error);
}

}  // namespace
}  // namespace heed::bench
