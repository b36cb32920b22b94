// synclap serve --index INDEX [--host 127.0.0.1] [--port 8080]: the search server and its web page
// (see src/search/search_server.h for the API). Loads the index's model for text and example queries;
// with --no-model only "more like this" and audio streaming work. Binds to localhost unless told.
#if defined(SYNCLAP_HAVE_FAISS)
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "search/clap_encoder.h"
#include "search/library_indexer.h"
#include "search/search_server.h"
#include "synclap/error.h"

namespace synclap::cli {
namespace {

#if defined(SYNCLAP_HAVE_HTTPLIB) && defined(SYNCLAP_HAVE_FAISS)
struct ServeArgs {
  std::string index, model, tokenizer, host = "127.0.0.1";
  int port = 8080;
  double max_upload_mb = 20;
  bool no_model = false;
};

search::SearchServer* g_server = nullptr;
void on_signal(int) {
  if (g_server) g_server->stop();
}

int run_serve(const ServeArgs& a, const Context& ctx) {
  search::LibraryIndex li = search::LibraryIndex::open(a.index);
  std::unique_ptr<search::ClapEncoder> enc;
  search::QueryEncoder qe;
  if (!a.no_model) {
    search::EncoderOptions eo;
    eo.tokenizer_dir = a.tokenizer;
    eo.threads = ctx.threads;
    enc = std::make_unique<search::ClapEncoder>(a.model.empty() ? li.model() : a.model, eo);
    if (enc->dim() != li.dim()) throw Error("the model's embeddings do not have the index's dimension");
    search::ClapEncoder* e = enc.get();
    qe.text = [e](const std::string& t) { return e->text(t); };
    qe.audio = [e](const void* d, size_t n, const std::string& name) { return e->audio_bytes(d, n, name); };
  }
  search::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.max_upload_bytes = size_t(a.max_upload_mb * 1024 * 1024);
  so.log = !ctx.quiet;
  search::SearchServer server(li, qe, so);
  const int port = server.bind();
  g_server = &server;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::fprintf(stderr, "synclap serve: %lld items (%s) at http://%s:%d/  (Ctrl-C stops)\n", (long long)li.size(),
               li.structure().c_str(), a.host.c_str(), port);
  if (a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1")
    std::fprintf(stderr, "synclap serve: listening beyond this machine (%s): anyone who can reach it can search and play the library\n",
                 a.host.c_str());
  server.run();
  g_server = nullptr;
  return 0;
}

Command reg("serve", "HTTP search server with a web page over an index", [](CLI::App& sub, Context& ctx) -> Runner {
  auto a = std::make_shared<ServeArgs>();
  sub.add_option("--index", a->index, "Index folder (from synclap index)")->required();
  sub.add_option("--host", a->host, "Address to listen on (default 127.0.0.1: this machine only)");
  sub.add_option("--port", a->port, "Port (0 = any free one)")->check(CLI::Range(0, 65535));
  sub.add_option("--model", a->model, "Model for queries (default: the one the index was built with)");
  sub.add_option("--tokenizer", a->tokenizer, "Folder with vocab.json + merges.txt");
  sub.add_option("--max-upload-mb", a->max_upload_mb, "Largest example clip accepted")->check(CLI::Range(0.01, 1024.0));
  sub.add_flag("--no-model", a->no_model, "Do not load a model (only 'more like this' and playback)");
  return [a, &ctx]() { return run_serve(*a, ctx); };
});
#endif

}  // namespace
}  // namespace synclap::cli
#endif  // SYNCLAP_HAVE_FAISS
