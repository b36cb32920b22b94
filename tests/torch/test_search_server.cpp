// The search server end to end over HTTP on localhost (cpp-httplib client): text search, upload of an
// example clip (size limit and validation), audio streaming restricted to indexed library files,
// several clients at once, the web page. Queries are encoded by a stand-in: the text is a frequency in
// Hz and an audio clip's frequency is measured from zero crossings, both mapped to a bump on a 32-d axis.
#if defined(SYNCLAP_HAVE_HTTPLIB) && defined(SYNCLAP_HAVE_FAISS)
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <memory>
#include <thread>

#include "search/library_indexer.h"
#include "search/search_server.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/util.h"
#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace synclap::search {
namespace {

constexpr int kDim = 32;

std::vector<float> bump(double freq) {
  std::vector<float> v(kDim);
  for (int j = 0; j < kDim; ++j) v[size_t(j)] = float(std::exp(-(j - freq / 100) * (j - freq / 100) / 2)) + 1e-3f;
  return v;
}

double tone_frequency(const Waveform& w) {
  int64_t crossings = 0;
  for (size_t i = 1; i < w.samples.size(); ++i) crossings += (w.samples[i - 1] < 0) != (w.samples[i] < 0);
  return crossings / 2.0 / w.duration_s();
}

Waveform tone(double freq, double seconds) {
  Waveform w;
  w.sample_rate = 16000;
  w.samples.resize(size_t(seconds * 16000));
  for (size_t i = 0; i < w.samples.size(); ++i) w.samples[i] = float(0.5 * std::sin(2 * M_PI * freq * (i + 0.5) / 16000.0));
  return w;
}

void write_tone(const std::string& path, double freq, double seconds) {
  fs::create_directories(fs::path(path).parent_path());
  write_audio(path, tone(freq, seconds));
}

class SearchServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(test::temp_dir("search_server"));
    const std::string lib = *dir_ + "/lib";
    write_tone(lib + "/rock/a_200.wav", 200, 1);
    write_tone(lib + "/rock/b_400.wav", 400, 2);
    write_tone(lib + "/jazz/c_420.flac", 420, 1);
    write_tone(lib + "/jazz/d_1000.wav", 1000, 1);
    write_tone(*dir_ + "/outside.wav", 700, 1);
    fs::create_symlink(*dir_ + "/outside.wav", lib + "/escape.wav");
    IndexOptions o;
    o.library = lib;
    o.out = *dir_ + "/index";
    o.progress = false;
    AudioEmbedder e;
    e.model = "fake";
    e.sample_rate = 16000;
    e.dim = kDim;
    e.embed = [](const std::vector<Waveform>& ws) {
      std::vector<std::vector<float>> out;
      for (const auto& w : ws) out.push_back(bump(tone_frequency(w)));
      return out;
    };
    index_library(o, e);
    index_ = new LibraryIndex(LibraryIndex::open(o.out));
    QueryEncoder enc;
    enc.text = [](const std::string& t) { return bump(std::stod(t)); };
    enc.audio = [](const void* data, size_t size, const std::string& name) {
      DecodeOptions d;
      d.target_rate = 16000;
      return bump(tone_frequency(decode_audio_memory(data, size, d, name)));
    };
    ServerOptions so;
    so.port = 0;
    so.max_upload_bytes = 100000;
    so.log = false;
    server_ = new SearchServer(*index_, enc, so);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {  // also after a set-up that threw half way
    if (server_) server_->stop();
    if (thread_) thread_->join();
    delete thread_;
    delete server_;
    delete index_;
    delete dir_;
    thread_ = nullptr;
    server_ = nullptr;
    index_ = nullptr;
    dir_ = nullptr;
  }
  // A client over search::http_request (the test does not include httplib.h itself).
  struct Client {
    int port;
    std::unique_ptr<HttpReply> Get(const std::string& path, const std::vector<std::pair<std::string, std::string>>& h = {}) {
      return wrap(http_request("127.0.0.1", port, "GET", path, "", "", h));
    }
    std::unique_ptr<HttpReply> Post(const std::string& path, const std::string& body, const std::string& type) {
      return wrap(http_request("127.0.0.1", port, "POST", path, body, type));
    }
    std::unique_ptr<HttpReply> PostForm(const std::string& path, const std::string& field, const std::string& body,
                                        const std::string& filename) {
      return wrap(http_request("127.0.0.1", port, "POST", path, body, "audio/wav", {}, field, filename));
    }
    static std::unique_ptr<HttpReply> wrap(HttpReply r) {
      return r.status ? std::make_unique<HttpReply>(std::move(r)) : nullptr;
    }
  };
  static Client client() { return Client{port_}; }
  static int64_t id_of(const std::string& rel) { return index_->store().find(rel)->id; }
  static std::string wav_bytes(double freq, double seconds) {
    const std::string p = *dir_ + "/upload_" + std::to_string(int(freq)) + ".wav";
    write_tone(p, freq, seconds);
    return read_file(p);
  }

  static std::string* dir_;
  static LibraryIndex* index_;
  static SearchServer* server_;
  static std::thread* thread_;
  static int port_;
};
std::string* SearchServerTest::dir_ = nullptr;
LibraryIndex* SearchServerTest::index_ = nullptr;
SearchServer* SearchServerTest::server_ = nullptr;
std::thread* SearchServerTest::thread_ = nullptr;
int SearchServerTest::port_ = 0;

std::vector<std::string> paths(const json& j) {
  std::vector<std::string> out;
  for (const auto& r : j.at("results")) out.push_back(r.at("path"));
  return out;
}

TEST_F(SearchServerTest, HealthAndPage) {
  auto c = client();
  auto r = c.Get("/api/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json h = json::parse(r->body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["items"], 5);
  EXPECT_EQ(h["dim"], kDim);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->header("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/api/search"), std::string::npos);
  EXPECT_NE(page->body.find("createElement(\"audio\")"), std::string::npos);
  EXPECT_EQ(c.Get("/nope")->status, 404);
}

TEST_F(SearchServerTest, TextSearchWithFilters) {
  auto c = client();
  auto r = c.Get("/api/search?q=410&k=2");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["results"].size(), 2u);
  auto p = paths(j);
  std::sort(p.begin(), p.end());
  EXPECT_EQ(p, (std::vector<std::string>{"jazz/c_420.flac", "rock/b_400.wav"}));
  EXPECT_GT(j["results"][0]["score"].get<double>(), 0.9);
  EXPECT_EQ(j["results"][0]["audio"], "/api/audio/" + std::to_string(j["results"][0]["id"].get<int64_t>()));
  EXPECT_EQ(paths(json::parse(c.Get("/api/search?q=410&k=5&tag=jazz")->body)),
            (std::vector<std::string>{"jazz/c_420.flac", "jazz/d_1000.wav"}));
  EXPECT_EQ(paths(json::parse(c.Get("/api/search?q=410&k=5&min_duration=1.5")->body)),
            std::vector<std::string>{"rock/b_400.wav"});
  EXPECT_EQ(paths(json::parse(c.Get("/api/search?q=100&k=5&path=rock/*&tag=rock")->body)),
            (std::vector<std::string>{"rock/a_200.wav", "rock/b_400.wav"}));
  for (const char* bad : {"/api/search?q=410&k=0", "/api/search?q=410&k=abc", "/api/search?q=410&k=100000",
                          "/api/search", "/api/search?q=%20", "/api/search?q=410&min_duration=x"}) {
    auto b = c.Get(bad);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->status, 400) << bad;
    EXPECT_TRUE(json::parse(b->body).contains("error")) << bad;
  }
  // More like an indexed item (the item itself excluded).
  auto s = c.Get("/api/similar/" + std::to_string(id_of("rock/b_400.wav")) + "?k=1");
  EXPECT_EQ(paths(json::parse(s->body)), std::vector<std::string>{"jazz/c_420.flac"});
  EXPECT_EQ(c.Get("/api/similar/999999")->status, 404);
}

TEST_F(SearchServerTest, AudioOnlyFromTheLibrary) {
  auto c = client();
  const std::string want = read_file(*dir_ + "/lib/rock/b_400.wav");
  auto r = c.Get("/api/audio/" + std::to_string(id_of("rock/b_400.wav")));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "audio/wav");
  EXPECT_EQ(r->body, want);
  // Range requests (what <audio> players send for seeking).
  auto part = c.Get("/api/audio/" + std::to_string(id_of("rock/b_400.wav")), {{"Range", "bytes=100-199"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, want.substr(100, 100));
  // A symlink inside the library that leads outside it is indexed but never served.
  auto esc = c.Get("/api/audio/" + std::to_string(id_of("escape.wav")));
  ASSERT_TRUE(esc);
  EXPECT_EQ(esc->status, 404);
  EXPECT_EQ(esc->body.find("RIFF"), std::string::npos);
  // Paths are never taken from the request.
  for (const char* bad : {"/api/audio/../../../etc/passwd", "/api/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                          "/api/audio/..%2foutside.wav", "/api/audio/999999", "/api/audio/-1", "/api/audio/1abc",
                          "/api/audio/99999999999999999999999", "/lib/rock/a_200.wav", "/../outside.wav"}) {
    auto b = c.Get(bad);
    ASSERT_TRUE(b) << bad;
    EXPECT_NE(b->status, 200) << bad;
    EXPECT_EQ(b->body.find("RIFF"), std::string::npos) << bad;
    EXPECT_EQ(b->body.find("root:"), std::string::npos) << bad;
  }
}

TEST_F(SearchServerTest, UploadsAreLimitedAndValidated) {
  auto c = client();
  // Raw body and multipart both work; a 1000 Hz example finds the 1000 Hz tone.
  const std::string clip = wav_bytes(1000, 0.5);  // 16 kB
  auto r = c.Post("/api/search/audio?k=1", clip, "audio/wav");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(paths(json::parse(r->body)), std::vector<std::string>{"jazz/d_1000.wav"});
  auto m = c.PostForm("/api/search/audio?k=1", "file", clip, "example.wav");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200) << m->body;
  EXPECT_EQ(paths(json::parse(m->body)), std::vector<std::string>{"jazz/d_1000.wav"});
  // Blended with text: all text (blend=1) follows the text.
  auto b = c.Post("/api/search/audio?k=1&q=200&blend=1", clip, "audio/wav");
  EXPECT_EQ(paths(json::parse(b->body)), std::vector<std::string>{"rock/a_200.wav"});
  // Too large: refused (413) before decoding.
  const std::string big = wav_bytes(300, 4);  // 128 kB > 100 kB limit
  auto t = c.Post("/api/search/audio", big, "audio/wav");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->status, 413);
  // Not audio, empty, or a form without the field: 400 with a message.
  auto junk = c.Post("/api/search/audio", std::string(5000, 'x'), "audio/wav");
  EXPECT_EQ(junk->status, 400);
  EXPECT_NE(json::parse(junk->body)["error"].get<std::string>().find("audio"), std::string::npos);
  EXPECT_EQ(c.Post("/api/search/audio", "", "audio/wav")->status, 400);
  EXPECT_EQ(c.PostForm("/api/search/audio", "other", clip, "x.wav")->status, 400);
  // The server is still fine afterwards.
  EXPECT_EQ(c.Get("/api/health")->status, 200);
}

TEST_F(SearchServerTest, SeveralClientsAtOnce) {
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      auto c = client();
      for (int i = 0; i < 10; ++i) {
        auto r = (i % 2) ? c.Get("/api/search?q=1000&k=1")
                         : c.Get("/api/audio/" + std::to_string(id_of(t % 2 ? "rock/a_200.wav" : "jazz/d_1000.wav")));
        const bool good = r && r->status == 200 &&
                          ((i % 2) ? paths(json::parse(r->body)) == std::vector<std::string>{"jazz/d_1000.wav"}
                                   : r->body.size() > 1000);
        ++(good ? ok : bad);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 80);
  EXPECT_EQ(bad.load(), 0);
}

TEST(SearchServer, LocalhostByDefaultAndNoModelMeans503) {
  ServerOptions o;
  EXPECT_EQ(o.host, "127.0.0.1");
  const std::string dir = test::temp_dir("search_server_bind");
  write_tone(dir + "/lib/x.wav", 500, 0.5);
  IndexOptions io;
  io.library = dir + "/lib";
  io.out = dir + "/index";
  io.progress = false;
  AudioEmbedder e;
  e.model = "fake";
  e.sample_rate = 16000;
  e.dim = kDim;
  e.embed = [](const std::vector<Waveform>& ws) { return std::vector<std::vector<float>>(ws.size(), bump(500)); };
  index_library(io, e);
  LibraryIndex li = LibraryIndex::open(io.out);
  o.port = 0;
  o.log = false;
  SearchServer a(li, {}, o);
  const int port = a.bind();
  // Without a model, text search answers 503.
  std::thread th([&] { a.run(); });
  auto r = http_request("127.0.0.1", port, "GET", "/api/search?q=hello");
  ASSERT_EQ(r.status, 503);
  a.stop();
  th.join();
}

}  // namespace
}  // namespace synclap::search
#endif  // SYNCLAP_HAVE_HTTPLIB
