// safetensors and .npy: round trips, and malformed files rejected with a message naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <unistd.h>

#include "synclap/error.h"
#include "synclap/npy.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;

namespace {
void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + json + data;
}
// Success when opening `path` throws a FileError whose message names the file and contains `fragment`.
::testing::AssertionResult file_error_of(const std::string& path, const std::string& fragment) {
  try {
    SafetensorsReader r(path);
  } catch (const FileError& e) {
    const std::string what = e.what();
    if (what.find(path) == std::string::npos) return ::testing::AssertionFailure() << "message lacks the path: " << what;
    if (what.find(fragment) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks \"" << fragment << "\": " << what;
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no error for " << path;
}
}  // namespace

TEST(Safetensors, RoundTripKeepsNamesShapesValuesAndMetadata) {
  const std::string dir = test::temp_dir("st_roundtrip");
  SafetensorsWriter w;
  w.add_f32("b.weight", {2, 3}, {1, 2, 3, 4, 5, 6});
  w.add_i64("a.index", {3}, {7, -8, 9});
  w.add_f64("c", {}, {3.25});
  w.set_metadata("config", "{\"x\": 1}");
  w.write(dir + "/m.safetensors");
  SafetensorsReader r(dir + "/m.safetensors");
  EXPECT_EQ(r.names().size(), 3u);
  EXPECT_EQ(r.info("b.weight").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.floats("b.weight"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.int64s("a.index"), (std::vector<int64_t>{7, -8, 9}));
  EXPECT_EQ(r.doubles("c"), (std::vector<double>{3.25}));
  EXPECT_EQ(r.metadata().at("config"), "{\"x\": 1}");
  EXPECT_EQ(r.info("c").numel(), 1);
  // aligned: 8-byte tensors first
  EXPECT_EQ(r.info("a.index").begin % 8, 0u);
  EXPECT_THROW(r.info("missing"), FileError);
}

TEST(Safetensors, ReadsTheGoldenFiles) {
  const std::string path = test::golden_dir() + "/tiny_unfused_weights.safetensors";
  ASSERT_TRUE(test::file_exists(path));
  SafetensorsReader r(path);
  EXPECT_EQ(r.names().size(), 215u);  // generation_log.txt: 215 tensors
  EXPECT_TRUE(r.metadata().count("config"));
}

TEST(Safetensors, MalformedFilesAreClearErrors) {
  const std::string dir = test::temp_dir("st_bad");
  write_raw(dir + "/empty.safetensors", "");
  EXPECT_TRUE(file_error_of(dir + "/empty.safetensors", "not a safetensors file"));
  write_raw(dir + "/hugeheader.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}");
  EXPECT_TRUE(file_error_of(dir + "/hugeheader.safetensors", "absurd"));
  write_raw(dir + "/short.safetensors", with_header("{\"a\":", "").substr(0, 8) + std::string("\x10", 1));
  write_raw(dir + "/badjson.safetensors", with_header("{\"a\": [1,", ""));
  EXPECT_TRUE(file_error_of(dir + "/badjson.safetensors", "JSON"));
  write_raw(dir + "/oob.safetensors",
            with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')));
  EXPECT_TRUE(file_error_of(dir + "/oob.safetensors", "outside the data section"));
  write_raw(dir + "/mismatch.safetensors",
            with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", std::string(16, '\0')));
  EXPECT_TRUE(file_error_of(dir + "/mismatch.safetensors", "need 12 bytes"));
  write_raw(dir + "/dtype.safetensors",
            with_header(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\0')));
  EXPECT_TRUE(file_error_of(dir + "/dtype.safetensors", "unsupported"));
  write_raw(dir + "/neg.safetensors",
            with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')));
  EXPECT_TRUE(file_error_of(dir + "/neg.safetensors", "negative"));
  write_raw(dir + "/overlap.safetensors",
            with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        std::string(12, '\0')));
  EXPECT_TRUE(file_error_of(dir + "/overlap.safetensors", "overlap"));
  write_raw(dir + "/overflow.safetensors",
            with_header(R"({"w":{"dtype":"F64","shape":[4611686018427387904,8],"data_offsets":[0,8]}})",
                        std::string(8, '\0')));
  EXPECT_TRUE(file_error_of(dir + "/overflow.safetensors", "overflow"));
  EXPECT_TRUE(file_error_of(dir + "/does-not-exist.safetensors", "cannot open"));
}

TEST(Npy, RoundTripAndErrors) {
  const std::string dir = test::temp_dir("npy");
  std::vector<float> v{1.5f, -2.f, 3.f, 4.f, 5.f, 6.f};
  write_npy(dir + "/a.npy", {2, 3}, v);
  const NpyArray a = read_npy(dir + "/a.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data, v);
  write_npy(dir + "/b.npy", {6}, v);
  EXPECT_EQ(read_npy(dir + "/b.npy").shape, (std::vector<int64_t>{6}));
  // header length is a multiple of 64 (numpy's own files are, and numpy checks nothing else)
  const std::string bytes = read_file(dir + "/a.npy");
  EXPECT_EQ((bytes.size() - 24) % 64, 0u);
  write_raw(dir + "/bad.npy", "hello");
  EXPECT_THROW(read_npy(dir + "/bad.npy"), FileError);
  write_raw(dir + "/trunc.npy", bytes.substr(0, bytes.size() - 4));
  EXPECT_THROW(read_npy(dir + "/trunc.npy"), FileError);
}

TEST(Util, AtomicWriteReplacesWholeFilesOnly) {
  const std::string dir = test::temp_dir("atomic");
  write_file_atomic(dir + "/x.txt", std::string("first"));
  EXPECT_EQ(read_file(dir + "/x.txt"), "first");
  EXPECT_THROW(write_file_atomic(dir + "/x.txt", [](const std::string& tmp) {
                 std::ofstream(tmp) << "half";
                 throw Error("interrupted");
               }),
               Error);
  EXPECT_EQ(read_file(dir + "/x.txt"), "first");  // nothing lost
  EXPECT_FALSE(test::file_exists(dir + "/x.txt.tmp." + std::to_string(getpid())));
}

TEST(Util, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Util, ParallelForCoversEveryIndexAndPropagatesErrors) {
  std::vector<int> hits(1000, 0);
  parallel_for(1000, [&](int64_t i) { hits[size_t(i)]++; }, 2);
  for (int h : hits) EXPECT_EQ(h, 1);
  EXPECT_THROW(parallel_for(10, [](int64_t i) { if (i == 7) throw Error("seven"); }, 2), Error);
}

TEST(Util, BlasCoreTypeChosenForThisCpu) {
  // Whatever the CPU, the choice is one OpenBLAS knows; and ensure_blas_kernels() ran in main(),
  // so the variable is set for this process when a family was detected.
  const std::string core = detect_blas_coretype();
  EXPECT_TRUE(core.empty() || core == "SkylakeX" || core == "Haswell" || core == "Zen") << core;
  if (!core.empty()) {
    ASSERT_NE(std::getenv("OPENBLAS_CORETYPE"), nullptr);
  }
}
