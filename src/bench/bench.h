// heed bench: prompt-processing (pp) and text-generation (tg) throughput,
// measured the way llama.cpp's llama-bench does so the numbers compare:
//  - ppN: one prompt of N random tokens (BOS first when the model adds one),
//    processed in n_batch chunks from an empty context;
//  - tgN: N single-token decode steps from an empty context, random tokens;
//  - one warm-up run per test, then `repetitions` timed runs, the KV cache
//    cleared before each; t/s per run = tokens / seconds, reported as the
//    mean and the Bessel-corrected standard deviation over runs.
// heed extras: a GUIDE bias span, Influence tracing, and the decode speed as
// a fraction of the memory-bandwidth roofline.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/matmul.h"
#include "model/model.h"
#include "steer/steering.h"
#include "trace/influence.h"

namespace heed::bench {

struct BenchParams {
  std::vector<int> n_prompt = {512};  // one pp test per value > 0
  std::vector<int> n_gen = {128};     // one tg test per value > 0
  std::vector<int> n_threads = {2};   // every test runs at every thread count
  int repetitions = 3;
  int n_batch = 512;
  uint32_t seed = 1234;  // random tokens; the same for every test
  // Like llama-bench's value lists, every test runs once per guide span and
  // once per trace setting (all combinations), so overheads land in one table.
  // A guide span is a GUIDE bias "START:END:DELTA" on absolute token positions,
  // applied in prefill and in every decode step; "" means unsteered.
  std::vector<std::string> guide_spans = {""};
  // Influence metrics traced in the same pass; an empty set means untraced. The
  // traced tokens are the guide span, or the first 10 positions without one.
  std::vector<std::vector<InfluenceMetric>> trace_sets = {{}};
  // How activations meet quantized weights. LlamaCpp (the default) is the arithmetic
  // llama-bench measures; Exact keeps float activations against dequantized weights.
  MatmulMode matmul_mode = MatmulMode::LlamaCpp;
  // Bandwidth-probe buffer; 0: default_bandwidth_buffer_bytes().
  size_t bandwidth_buffer_bytes = 0;
  // Called with a short status ("pp512 t=2 rep 2/3") before each run.
  std::function<void(const std::string&)> progress;
};

// One test at one thread count: the fields of a llama-bench JSON record plus heed's.
struct BenchRecord {
  std::string model_filename, model_type, cpu_info, test_time;
  std::string backends = "CPU";
  uint64_t model_size = 0;      // bytes of all tensors
  uint64_t model_n_params = 0;  // elements of all tensors
  uint64_t weight_bytes = 0;    // weight bytes read per decoded token
  int n_batch = 0, n_threads = 0, n_prompt = 0, n_gen = 0;
  std::vector<uint64_t> samples_ns;
  std::string guide;                       // the guide span, empty when unsteered
  std::vector<std::string> trace_metrics;  // metric names, empty when untraced
  double bandwidth_gbs = 0;                // measured read bandwidth at n_threads
  bool act_quant = true;                   // activations quantized as llama.cpp does
  bool huge_pages = false;                 // weights in 2 MiB pages (not the file mapping)

  std::string test_name() const;  // "pp512" / "tg128"
  std::vector<double> samples_ts() const;
  double avg_ns() const;
  double stddev_ns() const;
  double avg_ts() const;
  double stddev_ts() const;
  // tg tests: avg_ts / (bandwidth / weight_bytes); nullopt for pp tests.
  std::optional<double> roofline_fraction() const;
};

// Mean and Bessel-corrected sample standard deviation (0 for fewer than 2 values).
double mean(const std::vector<double>& v);
double sample_stddev(const std::vector<double>& v);

// "llama 260K all F32": architecture, parameter count and file type, like llama-bench's model
// column.
std::string model_type(const Model& model);

// Runs every (threads, test, guide span, trace set) combination; the records come in
// that order. The variants of one test are timed in turn, one repetition each.
// Throws heed::Error for bad parameters (nothing to run, negative sizes,
// repetitions or threads < 1, a bad guide span, an empty variant list).
std::vector<BenchRecord> run_bench(const Model& model, const BenchParams& params);

enum class OutputFormat { Markdown, Json };
OutputFormat parse_output_format(std::string_view text);  // "md" | "json"; throws heed::Error

// A JSON array of records (llama-bench's -o json layout plus heed's fields).
std::string records_json(const std::vector<BenchRecord>& records);
// llama-bench's table: | model | size | params | backend | threads | test | t/s |,
// then roofline, and guide/trace columns when any record has them.
std::string records_markdown(const std::vector<BenchRecord>& records);

}  // namespace heed::bench
