// synclap search: the HTTP server over an index (cpp-httplib; only when SYNCLAP_HAVE_HTTPLIB).
//
//   GET  /                      the web page: a search box, results with <audio> players and scores,
//                               drop an audio file on the page to search by it
//   GET  /api/health            {"status":"ok", "items", "structure", "dim", "model", "text", "audio"}
//   GET  /api/search?q=TEXT&k=10[&min_duration=&max_duration=&path=GLOB&tag=T...]
//   POST /api/search/audio[?q=TEXT&blend=0.5&k=...]   body: the example clip (raw bytes, or multipart
//                               form field "file"); at most max_upload_bytes (else 413); it must decode
//                               as audio (else 400)
//   GET  /api/similar/ID[?k=..] items like an indexed item (its stored embedding)
//   GET  /api/audio/ID          the item's file (Range requests supported). Only ids of the index are
//                               accepted, and the file must still lie inside the library folder: no
//                               path ever comes from the request, so there is nothing to traverse.
// Results: {"results": [{"rank", "id", "score", "path", "duration_s", "tags", "audio": "/api/audio/ID"}]}.
// Errors: {"error": "..."} with 400 / 404 / 413 / 503 (no model for that kind of query).
// Several clients are served at once (a thread pool); model calls are serialised by the encoder.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "search/library_indexer.h"

namespace synclap::search {

// How queries become vectors; either may be empty (that query kind then answers 503).
struct QueryEncoder {
  std::function<std::vector<float>(const std::string& text)> text;
  std::function<std::vector<float>(const void* data, size_t size, const std::string& name)> audio;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0 = any free port (see bound_port())
  size_t max_upload_bytes = 20u << 20;     // example clips
  int max_k = 200;
  bool log = true;                         // one line per request on stderr
};

class SearchServer {
 public:
  SearchServer(const LibraryIndex& index, QueryEncoder encoder, ServerOptions options);
  ~SearchServer();
  // Binds the socket; returns the port (useful with port 0). Error if it cannot bind.
  int bind();
  // Serves until stop() (call bind() first).
  void run();
  void stop();
  int bound_port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// A small blocking HTTP/1.1 client (tests, tools), so that only search_server.cpp includes httplib.h.
// status 0: no connection. With multipart_field set, the body is sent as that field of a
// multipart/form-data form (filename `filename`). Header names in the reply keep their case.
struct HttpReply {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const std::string& name) const;
};
HttpReply http_request(const std::string& host, int port, const std::string& method, const std::string& path,
                       const std::string& body = "", const std::string& content_type = "",
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       const std::string& multipart_field = "", const std::string& filename = "");

// The single-page web UI.
const std::string& web_page_html();

}  // namespace synclap::search
