// heed bench: llama-bench-compatible throughput tests (pp/tg), plus the cost
// of GUIDE steering and Influence tracing and the decode roofline fraction.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "bench/bench.h"
#include "cli/commands.h"
#include "heed/error.h"

namespace heed::cli {

namespace {

constexpr InfluenceMetric kTraceOrder[] = {InfluenceMetric::Paper, InfluenceMetric::Compat,
                                           InfluenceMetric::Rollout, InfluenceMetric::Raw};

struct BenchArgs {
  std::string model, output = "md";
  std::vector<std::string> guide_spans;
  std::vector<int> n_prompt = {512}, n_gen = {128}, threads = {2}, trace_metrics;
  int repetitions = 3, batch = 512, bandwidth_mib = 0;
  bool trace = false, progress = true, exact = false, mmap = false;
};

void run_bench_command(const BenchArgs& a) {
  const bench::OutputFormat format = bench::parse_output_format(a.output);
  auto model = load_model(a.model, a.mmap);
  bench::BenchParams p;
  p.n_prompt = a.n_prompt;
  p.n_gen = a.n_gen;
  p.n_threads = a.threads;
  p.repetitions = a.repetitions;
  p.n_batch = a.batch;
  p.matmul_mode = a.exact ? MatmulMode::Exact : MatmulMode::LlamaCpp;
  p.bandwidth_buffer_bytes = static_cast<size_t>(a.bandwidth_mib) << 20;
  if (!a.guide_spans.empty()) {
    p.guide_spans.clear();
    for (const std::string& s : a.guide_spans) p.guide_spans.push_back(s == "none" ? "" : s);
  }
  std::vector<int> trace_counts = a.trace_metrics;
  if (trace_counts.empty()) trace_counts.push_back(a.trace ? 1 : 0);
  p.trace_sets.clear();
  for (int n : trace_counts) p.trace_sets.emplace_back(kTraceOrder, kTraceOrder + n);
  size_t shown = 0;
  if (a.progress) {
    p.progress = [&shown](const std::string& s) {
      const std::string line = "[" + s + "]";
      fmt::print(stderr, "\r{:<{}}", line, shown);
      shown = std::max(shown, line.size());
      std::fflush(stderr);
    };
  }
  // Clears the progress line on success and on error alike.
  struct ClearLine {
    const size_t& width;
    ~ClearLine() {
      if (width > 0) fmt::print(stderr, "\r{:{}}\r", "", width);
    }
  } clear_line{shown};
  const std::vector<bench::BenchRecord> records = bench::run_bench(*model, p);
  fmt::print("{}", format == bench::OutputFormat::Json ? bench::records_json(records) + "\n"
                                                       : bench::records_markdown(records));
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand(
      "bench", "Measure prompt (pp) and generation (tg) speed like llama.cpp's llama-bench");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens per pp test; 0 skips (default 512)")
      ->delimiter(',');
  c->add_option("-n,--n-gen", a->n_gen, "Generated tokens per tg test; 0 skips (default 128)")
      ->delimiter(',');
  c->add_option("-t,--threads", a->threads, "Threads (default 2); a list runs each")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  c->add_option("-r,--repetitions", a->repetitions, "Timed runs per test (default 3)")
      ->check(CLI::Range(1, 1000));
  c->add_option("-b,--batch-size", a->batch, "Prompt tokens per forward call (default 512)")
      ->check(CLI::Range(1, 1 << 20));
  c->add_option("-o,--output", a->output, "Output format: md (default) | json");
  c->add_option("--guide-span", a->guide_spans,
                "GUIDE bias START:END:DELTA on token positions, in prefill and decode; a list "
                "runs each (none = unsteered), e.g. none,0:10:1")
      ->delimiter(',');
  c->add_flag("--trace", a->trace,
              "Attach an Influence tracer (paper metric) on the guide span, else the first 10 "
              "tokens");
  c->add_option("--trace-metrics", a->trace_metrics,
                "Traced metrics: 0 = untraced, 1 = paper .. 4 = paper,compat,rollout,raw; a list "
                "runs each, e.g. 0,1")
      ->delimiter(',')
      ->check(CLI::Range(0, 4));
  c->add_option("--bandwidth-mib", a->bandwidth_mib,
                "Bandwidth-probe buffer in MiB (default 4x the last-level cache, 64-1024)")
      ->check(CLI::Range(1, 1 << 16));
  c->add_flag("--exact", a->exact,
              "Float activations against exactly dequantized weights (heed run's default) instead "
              "of llama.cpp's quantized activations");
  add_mmap_flag(c, &a->mmap);
  c->add_flag("!--no-progress", a->progress, "No progress line on stderr");
  c->callback([a] { run_bench_command(*a); });
}

}  // namespace heed::cli
