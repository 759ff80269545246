//===- DatasetsTest.cpp - IDX, CIFAR-10 and batch assembly ----------------===//

#include "runtime/shipped/Datasets.h"
#include "runtime/shipped/TensorFiles.h"

#include <zlib.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <set>
#include <tuple>
#include <sys/stat.h>

#include <gtest/gtest.h>

using namespace qdsl::rt;

namespace {

std::string bigEndian(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i)
    s[i] = static_cast<char>((v >> (8 * (3 - i))) & 0xff);
  return s;
}

std::string idx(std::vector<uint32_t> dims, const std::vector<uint8_t> &data,
                unsigned type = 0x08) {
  std::string s = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    s += bigEndian(d);
  s.append(data.begin(), data.end());
  return s;
}

std::string path(const std::string &name) { return ::testing::TempDir() + "/" + name; }

void writePlain(const std::string &file, const std::string &bytes) {
  std::ofstream(file, std::ios::binary) << bytes;
}

void writeGzip(const std::string &file, const std::string &bytes) {
  gzFile f = gzopen(file.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

std::string readAll(const std::string &file) {
  std::string bytes, error;
  EXPECT_TRUE(readFileBytes(file, bytes, error)) << error;
  return bytes;
}

std::vector<uint8_t> iota(size_t n) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), uint8_t(1));
  return v;
}

/// The error of reading images `images` with labels `labels` (plain files).
std::string idxError(const std::string &images, const std::string &labels,
                     int64_t classes = 0) {
  writePlain(path("e-images"), images);
  writePlain(path("e-labels"), labels);
  Dataset d;
  std::string error;
  EXPECT_FALSE(readIdx(path("e-images"), path("e-labels"), d, error, classes));
  return error;
}

TEST(Idx, ReadsPlainAndGzipFilesAlike) {
  std::string images = idx({3, 2, 4}, iota(24)), labels = idx({3}, {2, 0, 5});
  writePlain(path("i"), images);
  writePlain(path("l"), labels);
  writeGzip(path("i.gz"), images);
  writeGzip(path("l.gz"), labels);
  Dataset plain, packed;
  std::string error;
  ASSERT_TRUE(readIdx(path("i"), path("l"), plain, error)) << error;
  ASSERT_TRUE(readIdx(path("i.gz"), path("l.gz"), packed, error)) << error;
  for (const Dataset *d : {&plain, &packed}) {
    EXPECT_EQ(d->count, 3);
    EXPECT_EQ(d->height, 2);
    EXPECT_EQ(d->width, 4);
    EXPECT_EQ(d->channels, 1);
    EXPECT_EQ(d->classes, 6);
    EXPECT_EQ(d->pixels, iota(24));
    EXPECT_EQ(d->labels, (std::vector<int32_t>{2, 0, 5}));
  }
}

TEST(Idx, FourDimensionsAreChannelsLast) {
  Dataset d;
  std::string error;
  ASSERT_TRUE(parseIdxImages(idx({2, 1, 2, 3}, iota(12)), "x", d, error)) << error;
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.exampleBytes(), 6u);
}

TEST(Idx, ErrorsNameTheFileThePlaceAndWhatWasExpected) {
  std::string images = idx({2, 2, 2}, iota(8)), labels = idx({2}, {1, 0});
  std::string error = idxError("\x01" + images.substr(1), labels);
  EXPECT_NE(error.find(path("e-images") + ": byte 0: not an IDX file"), std::string::npos)
      << error;
  error = idxError(idx({2, 2, 2}, std::vector<uint8_t>(32), 0x0D), labels);
  EXPECT_NE(error.find("byte 2: element type 0x0d (float)"), std::string::npos) << error;
  error = idxError(images, idx({2, 1}, {1, 0}));
  EXPECT_NE(error.find(path("e-labels") + ": byte 3: 2 dimensions; label files have 1"),
            std::string::npos)
      << error;
  error = idxError(images.substr(0, images.size() - 3), labels);
  EXPECT_NE(error.find("promises 2 x 2 x 2 = 8 bytes of data after byte 16, the file "
                       "holds 5 (truncated?)"),
            std::string::npos)
      << error;
  error = idxError(images + "xy", labels);
  EXPECT_NE(error.find("holds 10 (extra bytes at the end)"), std::string::npos) << error;
  error = idxError(images.substr(0, 9), labels);
  EXPECT_NE(error.find("inside the header"), std::string::npos) << error;
  error = idxError(idx({0, 2, 2}, {}), labels);
  EXPECT_NE(error.find("byte 4: dimension 0 is 0"), std::string::npos) << error;
  error = idxError(images, idx({3}, {1, 0, 1}));
  EXPECT_NE(error.find("3 labels for the 2 images"), std::string::npos) << error;
  error = idxError(images, idx({2}, {1, 12}), 10);
  EXPECT_NE(error.find("example 1 has label 12; expected 0 to 9"), std::string::npos)
      << error;
  Dataset d;
  EXPECT_FALSE(readIdx(path("no-such-file"), path("e-labels"), d, error));
  EXPECT_NE(error.find("cannot read '" + path("no-such-file") + "'"), std::string::npos)
      << error;
}

TEST(Idx, HugeHeadersAreRefusedBeforeAllocating) {
  Dataset d;
  std::string error;
  EXPECT_FALSE(parseIdxImages(idx({0xffffffffu, 0xffffffffu, 2}, {}), "huge", d, error));
  EXPECT_NE(error.find("huge: the header's sizes describe more than"), std::string::npos)
      << error;
}

TEST(Gzip, CorruptOrTruncatedStreamsAreReported) {
  std::string images = idx({4, 8, 8}, iota(256));
  writeGzip(path("c.gz"), images);
  std::string packed = readAll(path("c.gz")), bytes, error;
  ASSERT_TRUE(gunzip(packed, "c.gz", bytes, error)) << error;
  EXPECT_EQ(bytes, images);
  EXPECT_FALSE(gunzip(packed.substr(0, packed.size() / 2), "half.gz", bytes, error));
  EXPECT_NE(error.find("half.gz: the gzip stream is truncated"), std::string::npos) << error;
  std::string corrupt = packed;
  for (size_t i = 12; i < corrupt.size() - 8; ++i)
    corrupt[i] = static_cast<char>(0xff);
  EXPECT_FALSE(gunzip(corrupt, "bad.gz", bytes, error));
  EXPECT_NE(error.find("bad.gz: corrupt gzip data near compressed byte"), std::string::npos)
      << error;
}

TEST(Cifar10, PlanesBecomeChannelsLast) {
  std::string bytes;
  for (uint8_t label : {3, 9}) {
    bytes.push_back(static_cast<char>(label));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p)
        bytes.push_back(static_cast<char>((c * 50 + p + label) & 0xff));
  }
  writePlain(path("data_batch_1.bin"), bytes);
  Dataset d;
  std::string error;
  ASSERT_TRUE(readCifar10({path("data_batch_1.bin"), path("data_batch_1.bin")}, d, error))
      << error;
  EXPECT_EQ(d.count, 4);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{3, 9, 3, 9}));
  // Example 1, pixel 5, channel 2 (blue).
  EXPECT_EQ(d.pixels[1 * 3072 + 5 * 3 + 2], (2 * 50 + 5 + 9) & 0xff);
  EXPECT_FALSE(parseCifar10(bytes.substr(1), "short.bin", d, error));
  EXPECT_NE(error.find("short.bin: 6145 bytes is not a whole number of CIFAR-10 records"),
            std::string::npos)
      << error;
  bytes[3073] = 10;
  EXPECT_FALSE(parseCifar10(bytes, "label.bin", d, error));
  EXPECT_NE(error.find("label.bin: byte 3073 (record 1): label 10; expected 0 to 9"),
            std::string::npos)
      << error;
}

TEST(FashionMnist, MissingDirectoryOrSplitIsExplained) {
  Dataset d;
  std::string error;
  EXPECT_FALSE(readFashionMnist(path("nowhere"), "train", d, error));
  EXPECT_NE(error.find("dataset-fashion-mnist"), std::string::npos) << error;
  EXPECT_NE(error.find("train-images-idx3-ubyte.gz"), std::string::npos) << error;
  EXPECT_FALSE(readFashionMnist(path("nowhere"), "validation", d, error));
  EXPECT_NE(error.find("not 'validation'"), std::string::npos) << error;
}

// The real data set, when Debian's package is installed (scripts/setup.sh
// installs it): 60000 + 10000 images of 28 × 28, balanced over 10 classes.
TEST(FashionMnist, ReadsDebiansFiles) {
  struct stat info;
  if (::stat(defaultFashionMnistDirectory(), &info) != 0)
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  for (auto [split, count] : {std::pair<const char *, int64_t>{"train", 60000}, {"test", 10000}}) {
    Dataset d;
    std::string error;
    ASSERT_TRUE(readFashionMnist(defaultFashionMnistDirectory(), split, d, error)) << error;
    EXPECT_EQ(d.count, count);
    EXPECT_EQ(d.height, 28);
    EXPECT_EQ(d.width, 28);
    EXPECT_EQ(d.classes, 10);
    std::vector<int64_t> perClass(10, 0);
    for (int32_t label : d.labels)
      ++perClass[label];
    for (int64_t n : perClass)
      EXPECT_EQ(n, count / 10);
    if (count == 60000) {
      std::vector<float> mean, stddev;
      channelStatistics(d, mean, stddev);
      // The figures every Fashion-MNIST training script normalises with.
      EXPECT_NEAR(mean[0], 0.2860, 0.0005);
      EXPECT_NEAR(stddev[0], 0.3530, 0.0005);
    }
  }
}

Dataset tiny() {
  Dataset d;
  d.count = 2;
  d.height = 3;
  d.width = 4;
  d.channels = 2;
  d.classes = 3;
  d.pixels = iota(48);
  d.labels = {2, 1};
  return d;
}

TEST(Batches, WithoutAugmentationPixelsAreNormalised) {
  Dataset d = tiny();
  std::vector<float> mean = {0.1f, 0.2f}, stddev = {0.5f, 0.25f};
  std::vector<float> images(48);
  std::vector<int32_t> labels(2);
  std::mt19937_64 rng(1);
  std::string error;
  ASSERT_TRUE(assembleBatch(d, {1, 0}, mean, stddev, {}, rng, images.data(), labels.data(), error));
  EXPECT_EQ(labels, (std::vector<int32_t>{1, 2}));
  for (size_t i = 0; i < 24; ++i) {
    int c = i % 2;
    EXPECT_NEAR(images[i], (d.pixels[24 + i] / 255.0f - mean[c]) / stddev[c], 1e-5);
    EXPECT_NEAR(images[24 + i], (d.pixels[i] / 255.0f - mean[c]) / stddev[c], 1e-5);
  }
}

TEST(Batches, CropsAndFlipsAreShiftsAndMirrorsDrawnFromTheSeed) {
  Dataset d = tiny();
  std::vector<float> mean = {0, 0}, stddev = {1, 1};
  Augmentation augmentation{1, true};
  std::vector<float> a(48 * 16), b(48 * 16);
  std::vector<int32_t> labels(32);
  std::vector<size_t> indices(32, 0);
  std::mt19937_64 first(7), second(7);
  std::string error;
  ASSERT_TRUE(assembleBatch(d, indices, mean, stddev, augmentation, first, a.data(), labels.data(), error));
  ASSERT_TRUE(assembleBatch(d, indices, mean, stddev, augmentation, second, b.data(), labels.data(), error));
  EXPECT_EQ(a, b);
  // Every output is the image shifted by at most one pixel, possibly
  // mirrored, with zeros where it was padded; all variants occur.
  std::set<std::tuple<int, int, bool>> seen;
  for (size_t k = 0; k < 32; ++k) {
    const float *out = a.data() + k * 24;
    bool matched = false;
    for (int dy = -1; dy <= 1 && !matched; ++dy)
      for (int dx = -1; dx <= 1 && !matched; ++dx)
        for (bool flip : {false, true}) {
          bool same = true;
          for (int y = 0; y < 3 && same; ++y)
            for (int x = 0; x < 4 && same; ++x)
              for (int c = 0; c < 2; ++c) {
                int sy = y + dy, sx = (flip ? 3 - x : x) + dx;
                float expected = sy >= 0 && sy < 3 && sx >= 0 && sx < 4
                                     ? d.pixels[(sy * 4 + sx) * 2 + c] / 255.0f
                                     : 0.0f;
                same = same && std::fabs(out[(y * 4 + x) * 2 + c] - expected) < 1e-6;
              }
          if (same) {
            matched = true;
            seen.insert({dy, dx, flip});
            break;
          }
        }
    EXPECT_TRUE(matched) << "output " << k << " is no shift or mirror of the image";
  }
  EXPECT_GE(seen.size(), 8u);
}

} // namespace
