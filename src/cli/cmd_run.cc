// heed run: generate text from a prompt (optionally as a chat turn).
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/guide_flags.h"
#include "generate/prompt.h"
#include "generate/session.h"
#include "heed/error.h"
#include "tokenizer/tokenizer.h"

namespace heed::cli {

namespace {

struct RunArgs {
  std::string model, prompt, file, system, chat_template;
  std::vector<std::string> stop;
  int n_predict = 128, threads = 2;
  int64_t ctx = 0;
  bool chat = false, echo = false, ignore_eos = false, verbose = false, act_quant = false,
       mmap = false;
  SamplingParams sampling;
  GuideFlags guide;
};

void run(const RunArgs& a) {
  auto model = load_model(a.model, a.mmap);
  std::string text = prompt_text(a.prompt, a.file);
  PromptOptions popts = a.guide.prompt_options();
  if (a.chat) {
    // Tags may sit in any message: the template passes them through, and the
    // markup is parsed on the templated text.
    const ChatTemplate tmpl = resolve_chat_template(*model, a.chat_template);
    std::vector<ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", text});
    ChatPrompt chat = format_chat(*model, tmpl, msgs);
    text = std::move(chat.text);
    popts.add_bos = chat.add_bos;
  }
  const PreparedPrompt prompt = prepare_prompt(*model, text, popts);
  const std::vector<int32_t>& tokens = prompt.tokens;
  if (tokens.empty()) throw Error("the prompt is empty after tokenization");
  if (a.guide.show_spans) print_spans(*model, prompt);

  Session session(
      *model, SessionOptions{.n_ctx = a.ctx,
                             .n_threads = a.threads,
                             .matmul_mode = a.act_quant ? MatmulMode::LlamaCpp : MatmulMode::Exact,
                             .on_prefill_progress = print_prefill_progress});
  const Steering steering = a.guide.steering(*model, prompt.bias, session.n_ctx());
  session.set_steering(&steering);
  GenerateOptions g;
  g.n_predict = a.n_predict;
  g.sampling = a.sampling;
  g.stop = a.stop;
  g.ignore_eos = a.ignore_eos;
  if (a.echo) {
    // The prompt as the model sees it: tags removed.
    std::fwrite(prompt.text.data(), 1, prompt.text.size(), stdout);
    std::fflush(stdout);
  }
  GenerateResult r = session.generate(tokens, g, [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (a.verbose) {
    const double n = static_cast<double>(r.tokens.size());
    fmt::print(stderr,
               "prompt: {} tokens, {:.1f} t/s | generated: {} tokens, {:.1f} t/s | stop: {}\n",
               r.n_prompt, r.n_prompt / std::max(r.prefill_seconds, 1e-9), r.tokens.size(),
               n / std::max(r.decode_seconds, 1e-9), stop_reason_name(r.reason));
  }
}

}  // namespace

void add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Generate text from a prompt");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-p,--prompt", a->prompt, "Prompt text");
  c->add_option("-f,--file", a->file, "Read the prompt from a file");
  c->add_option("-n,--n-predict", a->n_predict, "New tokens to generate (-1: until end)");
  c->add_option("-t,--threads", a->threads, "Threads")->check(CLI::Range(1, 256));
  c->add_option("-c,--ctx-size", a->ctx, "Context size (0: model default, max 4096)");
  c->add_option("--temp", a->sampling.temperature, "Temperature (0: greedy)");
  c->add_option("--top-k", a->sampling.top_k, "Top-k (0: off)");
  c->add_option("--top-p", a->sampling.top_p, "Top-p (1: off)");
  c->add_option("--min-p", a->sampling.min_p, "Min-p (0: off)");
  c->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1: off)");
  c->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalty looks back");
  c->add_option("-s,--seed", a->sampling.seed, "Random seed");
  c->add_option("--stop", a->stop, "Stop string (repeatable)");
  c->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  c->add_flag("--chat", a->chat, "Wrap the prompt in the model's chat template");
  c->add_option("--system", a->system, "System message (with --chat)");
  c->add_option("--chat-template", a->chat_template, "Chat template name (overrides the model's)");
  c->add_flag("--echo", a->echo, "Print the prompt before the continuation");
  add_mmap_flag(c, &a->mmap);
  c->add_flag("-v,--verbose", a->verbose, "Print timings to stderr");
  c->add_flag("--act-quant", a->act_quant,
              "Quantize activations like llama.cpp (Q8_0/Q8_K integer dots) instead of float");
  a->guide.add_to(c);
  c->callback([a] { run(*a); });
}

}  // namespace heed::cli
