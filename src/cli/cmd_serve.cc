// heed serve: the OpenAI-compatible HTTP server (src/server/README.md).
#include <fmt/core.h>

#include <memory>

#include "cli/commands.h"
#include "server/server.h"

namespace heed::cli {

namespace {

struct ServeArgs {
  std::string model, host = "127.0.0.1", chat_template, alias;
  int port = 8080, threads = 2;
  int64_t ctx = 0;
  bool mmap = false;
};

void serve(const ServeArgs& a) {
  auto model = load_model(a.model, a.mmap);
  server::Engine engine(*model, {.session = {.n_ctx = a.ctx, .n_threads = a.threads},
                                 .chat_template = a.chat_template,
                                 .model_id = a.alias});
  server::Server http(engine, {.host = a.host, .port = a.port});
  const int port = http.bind();
  const auto tmpl = engine.chat_template();
  fmt::print(stderr, "heed serve: {} on http://{}:{} (context {}, chat template {})\n",
             engine.model_id(), a.host, port, engine.shape().n_ctx,
             tmpl ? std::string(chat_template_name(*tmpl))
                  : std::string("none: /v1/chat/completions needs --chat-template"));
  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1")
    fmt::print(stderr,
               "heed serve: warning: {} is not a loopback address and there is no "
               "authentication\n",
               a.host);
  http.listen();
}

}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server with GUIDE steering and Influence tracing");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("--host", a->host, "Address to listen on (default 127.0.0.1)");
  c->add_option("--port", a->port, "Port (default 8080; 0: any free port)")
      ->check(CLI::Range(0, 65535));
  c->add_option("-t,--threads", a->threads, "Threads")->check(CLI::Range(1, 256));
  c->add_option("-c,--ctx-size", a->ctx, "Context size (0: model default, max 4096)");
  c->add_option("--chat-template", a->chat_template, "Chat template name (overrides the model's)");
  c->add_option("--alias", a->alias, "Model id reported by the API (default: the file name)");
  add_mmap_flag(c, &a->mmap);
  c->callback([a] { serve(*a); });
}

}  // namespace heed::cli
