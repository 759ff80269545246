//===- ImagesTest.cpp - JPEG/PNG decoding, crops, folders, npy labels -----===//
//
// The images are made here with the encoders of the same libraries
// (TurboJPEG's compressor, libpng's writer): well-formed ones and the
// hostile kinds a folder of photographs holds.

#include "runtime/shipped/BatchLoader.h"
#include "runtime/shipped/Datasets.h"
#include "runtime/shipped/Images.h"
#include "runtime/shipped/TensorFiles.h"

#include <png.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

using namespace qdsl::rt;
namespace fs = std::filesystem;

namespace {

/// A smooth RGB test pattern.
std::vector<uint8_t> pattern(int height, int width, int channels) {
  std::vector<uint8_t> p(size_t(height) * width * channels);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        p[(size_t(y) * width + x) * channels + c] =
            static_cast<uint8_t>((x * 255 / std::max(1, width - 1) + c * 60 + y) % 256);
  return p;
}

std::string jpeg(int height, int width, int format = TJPF_RGB) {
  tjhandle h = tjInitCompress();
  std::vector<uint8_t> pixels = pattern(height, width, tjPixelSize[format]);
  unsigned char *out = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(h, pixels.data(), width, 0, height, format, &out, &size,
                        format == TJPF_CMYK ? TJSAMP_444 : TJSAMP_420, 95, 0),
            0)
      << tjGetErrorStr2(h);
  std::string bytes(reinterpret_cast<char *>(out), size);
  tjFree(out);
  tjDestroy(h);
  return bytes;
}

std::string png(int height, int width, png_uint_32 format) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = format;
  if (format & PNG_FORMAT_FLAG_COLORMAP)
    image.colormap_entries = 256;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  for (size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<uint8_t>(i * 7);
  std::vector<png_byte> colormap(256 * 3);
  for (size_t i = 0; i < colormap.size(); ++i)
    colormap[i] = static_cast<png_byte>(i);
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0,
                                        colormap.data()));
  std::string bytes(size, '\0');
  EXPECT_TRUE(png_image_write_to_memory(&image, bytes.data(), &size, 0, pixels.data(), 0,
                                        colormap.data()));
  bytes.resize(size);
  return bytes;
}

std::string temp(const std::string &name) { return ::testing::TempDir() + "/qdsl-images/" + name; }

void write(const std::string &file, const std::string &bytes) {
  fs::create_directories(fs::path(file).parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

} // namespace

TEST(Images, JpegAndPngDecodeToTheirPixels) {
  Image image;
  std::string error;
  ASSERT_TRUE(decodeImage(jpeg(40, 64), "a.jpg", 3, image, error)) << error;
  EXPECT_EQ(image.height, 40);
  EXPECT_EQ(image.width, 64);
  std::vector<uint8_t> expected = pattern(40, 64, 3);
  double diff = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    diff += std::abs(int(image.pixels[i]) - int(expected[i]));
  EXPECT_LT(diff / expected.size(), 8.0);  // JPEG at quality 95, chroma halved
  ASSERT_TRUE(decodeImage(jpeg(40, 64), "a.jpg", 1, image, error)) << error;
  EXPECT_EQ(image.pixels.size(), 40u * 64u);
  // A large JPEG decodes at a DCT scale that keeps the shorter side at 20.
  ASSERT_TRUE(decodeImage(jpeg(160, 256), "big.jpg", 3, image, error, 20)) << error;
  EXPECT_EQ(image.height, 20);
  EXPECT_EQ(image.width, 32);
}

TEST(Images, PngOfAnyColourTypeAndDepthComesOutAs8BitRgb) {
  // 16-bit grey, palette, RGBA.
  for (png_uint_32 format : {png_uint_32(PNG_FORMAT_LINEAR_Y), png_uint_32(PNG_FORMAT_RGB_COLORMAP),
                             png_uint_32(PNG_FORMAT_RGBA)}) {
    Image image;
    std::string error;
    ASSERT_TRUE(decodeImage(png(9, 11, format), "p.png", 3, image, error)) << error;
    EXPECT_EQ(image.height, 9);
    EXPECT_EQ(image.width, 11);
    EXPECT_EQ(image.pixels.size(), 9u * 11u * 3u);
  }
}

TEST(Images, JpegWarningsOtherThanATruncationAreAccepted) {
  // 100 stray bytes before the end marker: libjpeg warns ("extraneous bytes
  // before marker 0xd9"), PIL and torchvision read it; so does qdsl.
  std::string file = jpeg(32, 32);
  file.insert(file.size() - 2, std::string(100, '\x11'));
  Image image;
  std::string error;
  EXPECT_TRUE(decodeImage(file, "stray.jpg", 3, image, error)) << error;
  EXPECT_EQ(image.height, 32);
}

TEST(Images, CmykJpegBecomesRgb) {
  // A flat colour stored as Adobe's inverted CMYK (no black ink: K = 255):
  // the inks' complements are the RGB values.
  tjhandle h = tjInitCompress();
  std::vector<uint8_t> cmyk(16 * 16 * 4);
  for (size_t i = 0; i < cmyk.size(); i += 4) {
    cmyk[i] = 200;
    cmyk[i + 1] = 100;
    cmyk[i + 2] = 50;
    cmyk[i + 3] = 255;
  }
  unsigned char *out = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(h, cmyk.data(), 16, 0, 16, TJPF_CMYK, &out, &size, TJSAMP_444, 100, 0),
            0);
  std::string file(reinterpret_cast<char *>(out), size);
  tjFree(out);
  tjDestroy(h);
  Image image;
  std::string error;
  ASSERT_TRUE(decodeImage(file, "cmyk.jpg", 3, image, error)) << error;
  ASSERT_EQ(image.pixels.size(), 16u * 16u * 3u);
  EXPECT_NEAR(image.pixels[0], 200, 3);
  EXPECT_NEAR(image.pixels[1], 100, 3);
  EXPECT_NEAR(image.pixels[2], 50, 3);
}

TEST(Images, SixteenBitPngIsScaledNotGammaCorrected) {
  // 16-bit grey 0x8080 without a gAMA chunk: 0x80 = 128 in 8 bits, as PIL
  // reads it (libpng's default would take it for linear light: 188).
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = image.height = 2;
  image.format = PNG_FORMAT_LINEAR_Y;
  std::vector<uint16_t> pixels(4, 0x8080);
  png_alloc_size_t size = 0;
  ASSERT_TRUE(png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr));
  std::string file(size, '\0');
  ASSERT_TRUE(png_image_write_to_memory(&image, file.data(), &size, 0, pixels.data(), 0, nullptr));
  file.resize(size);
  // The writer records the values as linear (gAMA 1.0): cut the chunk out
  // (length, type, 4 bytes of data, CRC) to make a file without gamma.
  size_t gama = file.find("gAMA");
  if (gama != std::string::npos)
    file.erase(gama - 4, 16);
  ASSERT_EQ(file.find("gAMA"), std::string::npos);
  ASSERT_EQ(file.find("sRGB"), std::string::npos);
  Image decoded;
  std::string error;
  ASSERT_TRUE(decodeImage(file, "p16.png", 1, decoded, error)) << error;
  EXPECT_NEAR(decoded.pixels[0], 128, 1);
}

TEST(Images, HostileFilesAreErrorsNamingTheFile) {
  std::string full = jpeg(64, 64), error;
  Image image;
  // Cut short: the decoder's warning stops it.
  EXPECT_FALSE(decodeImage(full.substr(0, full.size() / 2), "cut.jpg", 3, image, error));
  EXPECT_NE(error.find("cut.jpg: the JPEG data is damaged or incomplete"), std::string::npos)
      << error;
  EXPECT_FALSE(decodeImage("hello, I am text", "text.jpg", 3, image, error));
  EXPECT_NE(error.find("text.jpg: neither a JPEG nor a PNG"), std::string::npos) << error;
  std::string p = png(4, 4, PNG_FORMAT_RGB);
  EXPECT_FALSE(decodeImage(p.substr(0, 40), "cut.png", 3, image, error));
  EXPECT_NE(error.find("cut.png"), std::string::npos) << error;
  // 0 × 0 as the header announces it.
  std::string empty = p;
  std::memset(&empty[16], 0, 8);
  int64_t h = 0, w = 0;
  EXPECT_FALSE(probeImage(empty, "zero.png", h, w, error));
  EXPECT_NE(error.find("zero.png: the image is 0 × 0 pixels"), std::string::npos) << error;
  EXPECT_TRUE(probeImage(full, "ok.jpg", h, w, error)) << error;
  EXPECT_EQ(h, 64);
  EXPECT_EQ(w, 64);
}

TEST(Images, CropsResizeAndNormalise) {
  Image image;
  image.height = 6;
  image.width = 8;
  image.channels = 1;
  image.pixels.assign(48, 51);  // 0.2 after / 255
  std::vector<float> out(4 * 4);
  resampleInto(image, centreCrop(6, 8, 4, 4), 4, 4, false, {0.2f}, {0.5f}, out.data());
  for (float v : out)
    EXPECT_NEAR(v, 0.0f, 1e-5);  // a constant image stays constant
  // A left-to-right ramp, mirrored by the flip.
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x)
      image.pixels[y * 8 + x] = static_cast<uint8_t>(x * 30);
  std::vector<float> plain(16), flipped(16);
  CropBox whole{0, 0, 6, 8};
  resampleInto(image, whole, 4, 4, false, {0}, {1}, plain.data());
  resampleInto(image, whole, 4, 4, true, {0}, {1}, flipped.data());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      EXPECT_NEAR(plain[y * 4 + x], flipped[y * 4 + 3 - x], 1e-6);
      if (x > 0)
        EXPECT_GT(plain[y * 4 + x], plain[y * 4 + x - 1]);
    }
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100; ++i) {
    CropBox b = randomResizedCrop(300, 200, rng);
    EXPECT_GE(b.y, 0);
    EXPECT_GE(b.x, 0);
    EXPECT_LE(b.y + b.height, 300);
    EXPECT_LE(b.x + b.width, 200);
    EXPECT_GE(b.height * b.width, 0.08 * 300 * 200 * 0.9);
  }
}

TEST(ImageFolder, ClassesAreSortedSubfoldersAndProblemsAreNamed) {
  const std::string root = temp("folder");
  fs::remove_all(root);
  write(root + "/cat/a.jpg", jpeg(20, 30));
  write(root + "/cat/deep/b.PNG", png(10, 10, PNG_FORMAT_RGB));
  write(root + "/ant/c.jpeg", jpeg(30, 20));
  write(root + "/ant/notes.txt", "not an image");
  Dataset d;
  std::string error;
  ASSERT_TRUE(readImageFolder(root, 8, 8, 3, d, error)) << error;
  EXPECT_EQ(d.classNames, (std::vector<std::string>{"ant", "cat"}));
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.labels, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(d.skippedFiles, 1);
  std::vector<float> images(3 * 8 * 8 * 3), mean, stddev;
  std::vector<int32_t> labels(3);
  channelStatistics(d, mean, stddev);
  std::mt19937_64 rng(1);
  ASSERT_TRUE(assembleBatch(d, {0, 1, 2}, mean, stddev, {0, true, true}, rng, images.data(),
                            labels.data(), error))
      << error;
  for (float v : images)
    EXPECT_TRUE(std::isfinite(v));

  // A class folder without images; a text file named .jpg; a folder named .png.
  write(root + "/empty/readme.md", "");
  EXPECT_FALSE(readImageFolder(root, 8, 8, 3, d, error));
  EXPECT_NE(error.find("class folder 'empty' holds no .jpg, .jpeg or .png file"),
            std::string::npos)
      << error;
  fs::remove_all(root + "/empty");
  write(root + "/cat/fake.jpg", "GIF89a, not a JPEG");
  EXPECT_FALSE(readImageFolder(root, 8, 8, 3, d, error));
  EXPECT_NE(error.find("fake.jpg: neither a JPEG nor a PNG"), std::string::npos) << error;
  fs::remove(root + "/cat/fake.jpg");
  // Cut short after the scan: the batch that needs it names it.
  std::string full = jpeg(40, 40);
  write(root + "/cat/late.jpg", full);
  ASSERT_TRUE(readImageFolder(root, 8, 8, 3, d, error)) << error;
  write(root + "/cat/late.jpg", full.substr(0, full.size() / 2));
  std::vector<size_t> all(d.count);
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = i;
  images.resize(all.size() * 8 * 8 * 3);
  labels.resize(all.size());
  EXPECT_FALSE(assembleBatch(d, all, mean, stddev, {}, rng, images.data(), labels.data(), error));
  EXPECT_NE(error.find("late.jpg: the JPEG data is damaged or incomplete"), std::string::npos)
      << error;
  // A frame header after 128 KiB of metadata (two APP2 segments, as an ICC
  // profile is stored): found past the scan's first 64 KiB.
  std::string metadata;
  for (int i = 0; i < 2; ++i)
    metadata += std::string("\xFF\xE2\xFF\xFF", 4) + std::string(65533, 'i');
  std::string tagged = jpeg(20, 20);
  tagged.insert(2, metadata);
  write(root + "/cat/late.jpg", full);
  write(root + "/cat/icc.jpg", tagged);
  ASSERT_TRUE(readImageFolder(root, 8, 8, 3, d, error)) << error;
  Image decoded;
  EXPECT_TRUE(decodeImage(tagged, "icc.jpg", 3, decoded, error)) << error;
  EXPECT_FALSE(readImageFolder(root + "/none", 8, 8, 3, d, error));
  EXPECT_NE(error.find("not a folder"), std::string::npos) << error;
}

TEST(NpyLabels, IntegerAndWholeFloatLabelsAreRead) {
  auto npy = [](const std::string &descr, const std::string &data, int n) {
    std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                    std::to_string(n) + ",), }";
    h += std::string(63 - (10 + h.size()) % 64, ' ') + "\n";
    std::string bytes = "\x93NUMPY\x01";
    bytes += '\0';
    bytes += static_cast<char>(h.size() & 0xff);
    bytes += static_cast<char>(h.size() >> 8);
    return bytes + h + data;
  };
  int64_t i8[2] = {3, 7};
  int32_t i4[2] = {3, 7};
  float f4[2] = {3, 7}, half[2] = {3, 7.5f};
  std::vector<int64_t> labels;
  std::string error;
  for (const auto &[descr, data] :
       {std::pair<std::string, std::string>{"<i8", std::string((char *)i8, 16)},
        {"<i4", std::string((char *)i4, 8)},
        {"<f4", std::string((char *)f4, 8)},
        {"|u1", std::string("\x03\x07", 2)}}) {
    write(temp("labels.npy"), npy(descr, data, 2));
    ASSERT_TRUE(readNpyLabels(temp("labels.npy"), labels, error)) << descr << ": " << error;
    EXPECT_EQ(labels, (std::vector<int64_t>{3, 7})) << descr;
  }
  write(temp("labels.npy"), npy("<f4", std::string((char *)half, 8), 2));
  EXPECT_FALSE(readNpyLabels(temp("labels.npy"), labels, error));
  EXPECT_NE(error.find("of example 1 is not a whole number"), std::string::npos) << error;
  write(temp("labels.npy"), npy("<f8", std::string(16, '\0'), 2));
  EXPECT_FALSE(readNpyLabels(temp("labels.npy"), labels, error));
  EXPECT_NE(error.find("holds float64 labels"), std::string::npos) << error;
}

TEST(BatchLoader, HandsOutBatchesInOrderAndStopsAtAnError) {
  for (int threads : {1, 3}) {
    BatchLoader loader(
        [](int64_t index, float *images, int32_t *labels, std::string &error) {
          if (index == 7) {
            error = "batch 7 is broken";
            return false;
          }
          images[0] = float(index);
          labels[0] = int32_t(index * 2);
          return true;
        },
        9, 1, 1, threads, threads + 1);
    float image = 0;
    int32_t label = 0;
    std::string error;
    for (int i = 0; i < 7; ++i) {
      ASSERT_TRUE(loader.next(&image, &label, error)) << error;
      EXPECT_EQ(image, float(i));
      EXPECT_EQ(label, i * 2);
    }
    EXPECT_FALSE(loader.next(&image, &label, error));
    EXPECT_EQ(error, "batch 7 is broken");
  }
}
