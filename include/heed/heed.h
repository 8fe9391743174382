// heed — the public C++ API. The CLI, the server, the eval harness and the
// tests all use only what this header exposes.
//
//   auto model = heed::Model::load("model.gguf");  // read into huge pages, validate
//                                                  // (WeightResidency::Mapped: mmap, no copy)
//   heed::Session session(*model, {.n_threads = 2});
//   auto ids = model->tokenizer().encode("Once upon a time", {});
//   heed::GenerateOptions opts;  opts.n_predict = 64;  opts.sampling.temperature = 0;
//   heed::GenerateResult r = session.generate(ids, opts, [](std::string_view s) { ...; return true;
//   });
//
// Steering (GUIDE): parse markup with heed::parse_markup, map spans to tokens,
// fill a heed::Steering and call session.set_steering(&steering). The bias is
// added to the pre-softmax attention logits toward the tagged keys, after the
// 1/sqrt(d) scale and any softcap, in the layers and heads the Steering selects.
//
// Tracing (Influence): make a heed::InfluenceTracer, set its indicator, and
// call session.set_observer(&tracer). The attention kernel returns Ā·I per
// layer as an extra value channel; no attention matrix is materialised.
//
// Every function reports bad input by throwing heed::Error.
#pragma once

#include "heed/error.h"

#include "generate/chat_template.h"  // ChatMessage, ChatTemplate, apply_chat_template
#include "generate/prompt.h"         // resolve_chat_template, format_chat
#include "generate/sampler.h"        // SamplingParams, Sampler
#include "generate/session.h"        // Session, SessionOptions, GenerateOptions, GenerateResult
#include "model/model.h"             // Model, ModelConfig
#include "steer/markup.h"            // parse_markup, spans_to_tokens
#include "steer/steering.h"          // Steering, DecodePolicy
#include "tokenizer/tokenizer.h"     // Tokenizer
#include "trace/influence.h"         // InfluenceTracer, InfluenceMetric
