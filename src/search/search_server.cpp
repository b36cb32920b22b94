// synclap search: the HTTP server (see search_server.h).
#ifdef SYNCLAP_HAVE_HTTPLIB
#include "search/search_server.h"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "synclap/error.h"

namespace fs = std::filesystem;

namespace synclap::search {
namespace {

// An error the client caused (or a service missing), with its HTTP status.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

double param_double(const httplib::Request& req, const char* name, double fallback) {
  if (!req.has_param(name) || req.get_param_value(name).empty()) return fallback;
  try {
    size_t used = 0;
    const std::string s = req.get_param_value(name);
    const double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) throw 0;
    return v;
  } catch (...) {
    throw HttpError(400, std::string("parameter ") + name + " is not a number");
  }
}

std::string audio_type(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (e == ".wav" || e == ".w64" || e == ".rf64") return "audio/wav";
  if (e == ".flac") return "audio/flac";
  if (e == ".mp3") return "audio/mpeg";
  if (e == ".ogg" || e == ".oga") return "audio/ogg";
  if (e == ".opus") return "audio/ogg; codecs=opus";
  if (e == ".aif" || e == ".aiff" || e == ".aifc") return "audio/aiff";
  return "application/octet-stream";
}

}  // namespace

struct SearchServer::Impl {
  const LibraryIndex& index;
  QueryEncoder enc;
  ServerOptions opt;
  httplib::Server svr;

  Impl(const LibraryIndex& i, QueryEncoder e, ServerOptions o) : index(i), enc(std::move(e)), opt(std::move(o)) {}

  SearchFilter filter_of(const httplib::Request& req) const {
    SearchFilter f;
    f.min_duration_s = param_double(req, "min_duration", -1);
    f.max_duration_s = param_double(req, "max_duration", -1);
    if (req.has_param("path")) f.path_glob = req.get_param_value("path");
    for (size_t i = 0; i < req.get_param_value_count("tag"); ++i) {
      const std::string t = req.get_param_value("tag", i);
      if (!t.empty()) f.tags.push_back(t);
    }
    return f;
  }

  int k_of(const httplib::Request& req) const {
    const double k = param_double(req, "k", 10);
    if (k < 1 || k > opt.max_k || k != std::floor(k))
      throw HttpError(400, "k must be an integer in 1.." + std::to_string(opt.max_k));
    return int(k);
  }

  std::vector<float> text_query(const std::string& q) const {
    if (!enc.text) throw HttpError(503, "text search is not available (no model loaded)");
    if (q.size() > 2000) throw HttpError(400, "query text too long");
    return enc.text(q);
  }

  nlohmann::json results(const std::vector<float>& q, const httplib::Request& req, int64_t exclude = -1) const {
    const int k = k_of(req);
    auto rs = index.search(q, exclude >= 0 ? k + 1 : k, filter_of(req));
    nlohmann::json out = nlohmann::json::array();
    int rank = 0;
    for (const auto& r : rs) {
      if (r.item.id == exclude || rank >= k) continue;
      out.push_back({{"rank", ++rank},
                     {"id", r.item.id},
                     {"score", r.score},
                     {"path", r.item.path},
                     {"duration_s", r.item.duration_s},
                     {"tags", r.item.tags},
                     {"audio", "/api/audio/" + std::to_string(r.item.id)}});
    }
    return {{"results", out}};
  }

  // Runs a handler, turning exceptions into JSON errors.
  template <typename F>
  httplib::Server::Handler guarded(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const HttpError& e) {
        send_json(res, {{"error", e.what()}}, e.status);
      } catch (const FileError& e) {
        send_json(res, {{"error", e.what()}}, 400);
      } catch (const std::exception& e) {
        send_json(res, {{"error", e.what()}}, 500);
      }
    };
  }

  void routes() {
    svr.set_payload_max_length(opt.max_upload_bytes);
    svr.set_read_timeout(30, 0);
    svr.set_write_timeout(30, 0);
    if (opt.log)
      svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
        std::fprintf(stderr, "%s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
      });
    svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) {
        const char* what = res.status == 413 ? "upload too large" : res.status == 404 ? "not found" : "bad request";
        res.set_content(nlohmann::json{{"error", what}}.dump(), "application/json");
      }
    });

    svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(web_page_html(), "text/html; charset=utf-8");
    });
    svr.Get("/api/health", guarded([this](const httplib::Request&, httplib::Response& res) {
      send_json(res, {{"status", "ok"},
                      {"items", index.size()},
                      {"structure", index.structure()},
                      {"dim", index.dim()},
                      {"model", index.model()},
                      {"text", bool(enc.text)},
                      {"audio", bool(enc.audio)},
                      {"max_upload_bytes", opt.max_upload_bytes}});
    }));
    svr.Get("/api/search", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const std::string q = req.get_param_value("q");
      if (q.find_first_not_of(" \t\r\n") == std::string::npos) throw HttpError(400, "give a query: ?q=...");
      send_json(res, results(text_query(q), req));
    }));
    svr.Post("/api/search/audio", guarded([this](const httplib::Request& req, httplib::Response& res) {
      if (!enc.audio) throw HttpError(503, "search by example is not available (no model loaded)");
      std::string name = "upload", body;
      if (req.is_multipart_form_data()) {
        if (!req.has_file("file")) throw HttpError(400, "multipart upload without a 'file' field");
        const auto f = req.get_file_value("file");
        body = f.content;
        if (!f.filename.empty()) name = fs::path(f.filename).filename().string();
      } else {
        body = req.body;
      }
      if (body.empty()) throw HttpError(400, "empty upload");
      if (body.size() > opt.max_upload_bytes) throw HttpError(413, "upload too large");
      std::vector<float> q;
      try {
        q = enc.audio(body.data(), body.size(), name);
      } catch (const HttpError&) {
        throw;
      } catch (const std::exception& e) {
        throw HttpError(400, std::string("not a readable audio clip: ") + e.what());
      }
      const std::string text = req.get_param_value("q");
      if (text.find_first_not_of(" \t\r\n") != std::string::npos) {
        const double w = param_double(req, "blend", 0.5);
        if (w < 0 || w > 1) throw HttpError(400, "blend must be in [0, 1]");
        const std::vector<float> t = text_query(text);
        std::vector<float> b(q.size());
        double n = 0;
        for (size_t i = 0; i < q.size(); ++i) {
          b[i] = float(w * t[i] + (1 - w) * q[i]);
          n += double(b[i]) * b[i];
        }
        if (n <= 0) throw HttpError(400, "the text and the clip cancel out");
        q = std::move(b);
      }
      send_json(res, results(q, req));
    }));
    svr.Get(R"(/api/similar/(\d{1,18}))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const int64_t id = std::stoll(req.matches[1]);
      std::vector<float> e;
      try {
        e = index.embedding(id);
      } catch (const std::exception&) {
        throw HttpError(404, "no item " + std::to_string(id));
      }
      send_json(res, results(e, req, id));
    }));
    svr.Get(R"(/api/audio/(\d{1,18}))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const int64_t id = std::stoll(req.matches[1]);
      std::string path;
      try {
        path = index.audio_path(id);  // an indexed item whose file is inside the library, or an error
      } catch (const std::exception& e) {
        throw HttpError(404, e.what());
      }
      std::error_code ec;
      const uint64_t size = fs::file_size(path, ec);
      if (ec) throw HttpError(404, "file is gone");
      auto file = std::make_shared<std::FILE*>(std::fopen(path.c_str(), "rb"));
      if (!*file) throw HttpError(404, "cannot open the file");
      res.set_header("Cache-Control", "no-cache");
      res.set_content_provider(
          size_t(size), audio_type(path),
          [file](size_t offset, size_t length, httplib::DataSink& sink) {
            char buf[65536];
            if (std::fseek(*file, long(offset), SEEK_SET) != 0) return false;
            const size_t n = std::fread(buf, 1, std::min(length, sizeof buf), *file);
            if (n == 0) return false;
            return sink.write(buf, n);
          },
          [file](bool) {
            if (*file) std::fclose(*file);
            *file = nullptr;
          });
    }));
  }
};

SearchServer::SearchServer(const LibraryIndex& index, QueryEncoder encoder, ServerOptions options)
    : impl_(std::make_unique<Impl>(index, std::move(encoder), std::move(options))) {
  impl_->routes();
}

SearchServer::~SearchServer() { stop(); }

int SearchServer::bind() {
  auto& o = impl_->opt;
  if (o.port == 0) {
    port_ = impl_->svr.bind_to_any_port(o.host.c_str());
    if (port_ <= 0) throw Error("cannot listen on " + o.host);
  } else {
    if (!impl_->svr.bind_to_port(o.host.c_str(), o.port))
      throw Error("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (in use?)");
    port_ = o.port;
  }
  return port_;
}

std::string HttpReply::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return v;
  return "";
}

HttpReply http_request(const std::string& host, int port, const std::string& method, const std::string& path,
                       const std::string& body, const std::string& content_type,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& multipart_field, const std::string& filename) {
  httplib::Client c(host, port);
  c.set_read_timeout(60, 0);
  c.set_connection_timeout(10, 0);
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  if (method != "GET" && method != "POST") throw Error("http_request: unsupported method " + method);
  httplib::MultipartFormDataItems form = {{multipart_field, body, filename, content_type}};
  httplib::Result r = method == "GET"              ? c.Get(path, h)
                      : !multipart_field.empty()   ? c.Post(path, h, form)
                                                   : c.Post(path, h, body, content_type.empty() ? "application/octet-stream" : content_type);
  HttpReply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  for (const auto& [k, v] : r->headers) out.headers.emplace_back(k, v);
  return out;
}

void SearchServer::run() { impl_->svr.listen_after_bind(); }
void SearchServer::stop() {
  if (impl_) impl_->svr.stop();
}

}  // namespace synclap::search
#endif  // SYNCLAP_HAVE_HTTPLIB
