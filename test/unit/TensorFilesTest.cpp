//===- TensorFilesTest.cpp - safetensors, .npy and initial weights --------===//

#include "runtime/shipped/TensorFiles.h"
#include "runtime/shipped/WeightInit.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

using namespace qdsl::rt;

namespace {

std::string header(const std::string &json) {
  std::string bytes(8, '\0');
  uint64_t size = json.size();
  std::memcpy(&bytes[0], &size, 8);
  return bytes + json;
}

std::string floats(std::initializer_list<float> values) {
  std::string bytes;
  for (float v : values)
    bytes.append(reinterpret_cast<const char *>(&v), 4);
  return bytes;
}

TEST(Safetensors, RoundTripsThroughAFile) {
  TensorMap tensors;
  tensors["b.bias"] = Tensor({3});
  tensors["a.weight"] = Tensor({2, 2});
  tensors["a.weight"].data = {1, 2, 3, 4};
  tensors["b.bias"].data = {-1, 0.5f, 7};
  std::string path = ::testing::TempDir() + "/w.safetensors", error;
  ASSERT_TRUE(writeSafetensors(path, tensors, {{"qdsl.model", "M"}}, error)) << error;
  TensorMap back;
  Metadata metadata;
  ASSERT_TRUE(readSafetensors(path, back, error, &metadata)) << error;
  EXPECT_EQ(metadata["qdsl.model"], "M");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back["a.weight"].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(back["a.weight"].data, tensors["a.weight"].data);
  EXPECT_EQ(back["b.bias"].data, tensors["b.bias"].data);
  std::remove(path.c_str());
}

// The format's rules: a name once, offsets that tile the data exactly, in
// F32-aligned steps, a shallow header.
TEST(Safetensors, FollowsTheSpecification) {
  const std::string one = floats({1});
  const struct {
    std::string json, data;
    const char *error;
  } bad[] = {
      {R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
       one + one, "the header names 'a' twice"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
       one + one, "tensor 'b': data_offsets [4, 8] overlap the tensor before it"},
      {R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
       one + one + one, "bytes 4 to 8 of the data belong to no tensor (before tensor 'b')"},
      {R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", one + one,
       "4 bytes after the last tensor's data belong to no tensor"},
      {R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}})", one + one,
       "begin at byte 2, which is not a multiple of 4"},
      {R"({"a": {"dtype": "F32", "shape": [[[[1]]]], "data_offsets": [0, 4]}})", one,
       "nests deeper than 4 levels"},
  };
  for (const auto &file : bad) {
    TensorMap t;
    std::string e;
    EXPECT_FALSE(parseSafetensors(header(file.json) + file.data, "f", t, e));
    EXPECT_NE(e.find(file.error), std::string::npos) << e;
  }
  TensorMap t;
  std::string e;
  EXPECT_TRUE(parseSafetensors(
      header(R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
                 "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                 "z": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}})") +
          one + one,
      "f", t, e))
      << e;
  EXPECT_FALSE(readSafetensors(::testing::TempDir(), t, e));
  EXPECT_NE(e.find("is a directory; expected a file"), std::string::npos) << e;
}

TEST(Safetensors, RejectsMalformedFilesWithTheTensorName) {
  TensorMap t;
  std::string e;
  EXPECT_FALSE(parseSafetensors("abc", "f", t, e));
  EXPECT_NE(e.find("too short"), std::string::npos) << e;
  std::string big(8, '\xff');
  EXPECT_FALSE(parseSafetensors(big, "f", t, e));
  EXPECT_NE(e.find("runs past the end"), std::string::npos) << e;
  EXPECT_FALSE(parseSafetensors(header("[1, 2]"), "f", t, e));
  EXPECT_NE(e.find("not a JSON object"), std::string::npos) << e;
  EXPECT_FALSE(parseSafetensors(
      header(R"({"w": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}})") + "xx",
      "f", t, e));
  EXPECT_NE(e.find("tensor 'w' has dtype F16"), std::string::npos) << e;
  EXPECT_FALSE(parseSafetensors(
      header(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})") +
          floats({1}),
      "f", t, e));
  EXPECT_NE(e.find("tensor 'w': shape [2] needs 8 bytes but data_offsets give 4"),
            std::string::npos)
      << e;
  EXPECT_FALSE(parseSafetensors(
      header(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}})") +
          floats({1}),
      "f", t, e));
  EXPECT_NE(e.find("fall outside"), std::string::npos) << e;
  EXPECT_FALSE(parseSafetensors(
      header(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})"), "f", t, e));
  EXPECT_NE(e.find("invalid shape"), std::string::npos) << e;
  EXPECT_FALSE(parseSafetensors(
      header(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})"),
      "f", t, e));
  EXPECT_NE(e.find("invalid shape"), std::string::npos) << e;
}

TEST(Npy, RoundTripsAndRejectsOtherTypes) {
  Tensor x({2, 3});
  for (size_t i = 0; i < x.data.size(); ++i)
    x.data[i] = static_cast<float>(i) * 0.5f;
  std::string path = ::testing::TempDir() + "/x.npy", error;
  ASSERT_TRUE(writeNpy(path, x, error)) << error;
  Tensor back;
  ASSERT_TRUE(readNpy(path, back, error)) << error;
  EXPECT_EQ(back.shape, x.shape);
  EXPECT_EQ(back.data, x.data);
  std::remove(path.c_str());

  auto npy = [](const std::string &dict) {
    std::string h = dict;
    while ((10 + h.size() + 1) % 64)
      h += ' ';
    h += '\n';
    std::string bytes = "\x93NUMPY\x01";
    bytes += '\0';
    bytes += static_cast<char>(h.size() & 0xff);
    bytes += static_cast<char>(h.size() >> 8);
    return bytes + h;
  };
  // A header, the data after it, and the error it gets.
  const struct {
    const char *dict;
    std::string data;
    const char *error;
  } bad[] = {
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0'),
       "holds float64 data; qdsl needs float32"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", floats({1}), "Fortran order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", floats({1}),
       "shape [3] needs 12 data bytes but the file has 4"},
      // Found by the fuzzer: a shape that is not a tuple.
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ,2, 3), }", floats({1}),
       "cannot read the shape"},
      {"{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,), }", floats({1}),
       "fortran_order is 'no'; expected True or False"},
      {"{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
       floats({1}), "descr, fortran_order and shape, each once"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", floats({1}),
       "not a Python dictionary"},
  };
  std::string e;
  for (const auto &file : bad) {
    EXPECT_FALSE(parseNpy(npy(file.dict) + file.data, "x.npy", back, e));
    EXPECT_NE(e.find(file.error), std::string::npos) << e;
  }
  // numpy writes and reads blanks around values.
  EXPECT_TRUE(parseNpy(npy("{'descr': '<f4', 'fortran_order' : False , 'shape': (1,), }") +
                           floats({1}),
                       "x.npy", back, e))
      << e;
  EXPECT_FALSE(parseNpy("PK\x03\x04", "x.npy", back, e));
  EXPECT_NE(e.find("not a NumPy .npy file"), std::string::npos) << e;
}

TEST(WeightInit, IsDeterministicPerNameAndMatchesItsDistribution) {
  InitSpec spec{InitKind::TruncNormal, 0.02};
  Tensor a = initializeTensor("w", {10000}, spec, 7);
  Tensor b = initializeTensor("w", {10000}, spec, 7);
  Tensor c = initializeTensor("v", {10000}, spec, 7);
  Tensor d = initializeTensor("w", {10000}, spec, 8);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NE(a.data, c.data);
  EXPECT_NE(a.data, d.data);
  double sum = 0, sq = 0, largest = 0;
  for (float v : a.data) {
    sum += v;
    sq += double(v) * v;
    largest = std::max(largest, std::fabs(double(v)));
  }
  double mean = sum / a.size(), std = std::sqrt(sq / a.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  // A normal truncated at ±2σ has standard deviation 0.88σ.
  EXPECT_NEAR(std, 0.02 * 0.8796, 0.0005);
  EXPECT_LE(largest, 0.04 + 1e-7);
  Tensor ones = initializeTensor("g", {4}, {InitKind::Constant, 1e-6}, 0);
  EXPECT_EQ(ones.data, std::vector<float>(4, 1e-6f));
}

// The one check of a weights file against a model, in qdsl and in every
// generated project: every problem, named.
TEST(WeightProblems, NamesEveryMissingMisshapenAndUnexpectedTensor) {
  TensorMap weights;
  weights["a"] = Tensor({2, 3});
  weights["b"] = Tensor({4});
  weights["extra"] = Tensor({1});
  std::vector<std::string> problems =
      weightProblems({{"a", {2, 3}}, {"b", {5}}, {"c", {7}}}, weights);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0], "tensor 'b' has shape [4], expected [5]");
  EXPECT_EQ(problems[1], "missing tensor 'c' [7]");
  EXPECT_EQ(problems[2], "unexpected tensor 'extra' (the model has no such weight)");
  EXPECT_EQ(describeMisfit("w.safetensors", "M", listProblems(problems)),
            "'w.safetensors' does not fit model M:\n  tensor 'b' has shape [4], expected [5]\n"
            "  missing tensor 'c' [7]\n  unexpected tensor 'extra' (the model has no such "
            "weight)");
  EXPECT_TRUE(weightProblems({{"a", {2, 3}}, {"b", {4}}, {"extra", {1}}}, weights).empty());
}

TEST(Files, ReadersAreBoundedAndNeverBlock) {
  std::string dir = ::testing::TempDir(), bytes, error;
  // A regular file over the limit: refused by its size, nothing read.
  std::string big = dir + "/big.bin";
  { std::ofstream(big) << "x"; }
  ASSERT_EQ(::truncate(big.c_str(), 3 << 20), 0);
  EXPECT_FALSE(readFileBytes(big, bytes, error, 1 << 20));
  EXPECT_NE(error.find("is 3145728 bytes, more than the 1 MiB this reader takes"),
            std::string::npos)
      << error;
  EXPECT_TRUE(bytes.empty());
  ASSERT_TRUE(readFileBytes(big, bytes, error, 4 << 20)) << error;
  EXPECT_EQ(bytes.size(), size_t(3) << 20);
  // An endless device: read up to the limit, then refused.
  error.clear();
  EXPECT_FALSE(readFileBytes("/dev/zero", bytes, error, 2 << 20));
  EXPECT_NE(error.find("'/dev/zero' gives more than 2 MiB (a pipe or device"), std::string::npos)
      << error;
  // A FIFO that nothing writes reads as empty instead of blocking.
  std::string fifo = dir + "/silent.fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_TRUE(readFileBytes(fifo, bytes, error)) << error;
  EXPECT_TRUE(bytes.empty());
  EXPECT_FALSE(readFileBytes(dir, bytes, error));
  EXPECT_NE(error.find("is a directory"), std::string::npos) << error;
}

TEST(Files, WritesReplaceRegularFilesAndWriteThroughSpecialOnes) {
  std::string dir = ::testing::TempDir(), error, bytes;
  std::string target = dir + "/target.txt", link = dir + "/link.txt";
  { std::ofstream(target) << "old"; }
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  // Through the link: the file it names is replaced, the link stays.
  ASSERT_TRUE(writeFileAtomically(link, "new", error)) << error;
  struct stat status;
  ASSERT_EQ(::lstat(link.c_str(), &status), 0);
  EXPECT_TRUE(S_ISLNK(status.st_mode));
  ASSERT_TRUE(readFileBytes(target, bytes, error)) << error;
  EXPECT_EQ(bytes, "new");
  // /dev/null stays a device.
  ASSERT_TRUE(writeFileAtomically("/dev/null", "nothing", error)) << error;
  ASSERT_EQ(::stat("/dev/null", &status), 0);
  EXPECT_TRUE(S_ISCHR(status.st_mode));
  // A full device: an error, and the device is still one.
  if (::stat("/dev/full", &status) == 0) {
    EXPECT_FALSE(writeFileAtomically("/dev/full", "bytes", error));
    EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
    ASSERT_EQ(::stat("/dev/full", &status), 0);
    EXPECT_TRUE(S_ISCHR(status.st_mode));
  }
  // A FIFO that nothing reads: refused, not waited on.
  std::string fifo = dir + "/unread.fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(writeFileAtomically(fifo, "bytes", error));
  EXPECT_NE(error.find("a FIFO that nothing reads"), std::string::npos) << error;
}

} // namespace
