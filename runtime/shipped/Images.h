//===- Images.h - JPEG and PNG files as training examples -------*- C++ -*-===//
//
// Decodes JPEG (libjpeg-turbo's TurboJPEG) and PNG (libpng) files into
// 8-bit RGB or grey pixels, and resamples them to a model's input: the
// crops and resizes of torchvision's ImageFolder pipelines, written here.
//
// Every failure names the file and says what is wrong with it. A JPEG that
// ends early is an error, not an image half grey; libjpeg's other warnings
// (extraneous bytes, as many photo collections hold) are not. CMYK JPEGs are converted to RGB (as Photoshop writes them,
// inverted); PNGs of any colour type and depth (palette, grey, alpha,
// 16-bit) come out as 8-bit RGB or grey. A project built where the
// libraries were missing says so when it meets an image.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_IMAGES_H
#define QDSL_RUNTIME_SHIPPED_IMAGES_H

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qdsl::rt {

/// height × width × channels bytes, channels last.
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

enum class ImageFormat { Unknown, Jpeg, Png };

/// The format the first bytes of a file announce (not its name).
ImageFormat sniffImageFormat(const std::string &head);

/// The size an image file announces in its first bytes (`head`: up to the
/// first 64 KiB): false, naming `path`, when it is not a JPEG or PNG file or
/// announces no pixels.
bool probeImage(const std::string &head, const std::string &path, int64_t &height,
                int64_t &width, std::string &error);

/// Decodes `bytes` (the file `path`) into `channels` (1: grey, 3: RGB)
/// channels. `atLeast` > 0 lets a JPEG decode at the smallest of
/// libjpeg-turbo's scales (7/8 down to 1/8) whose shorter side is still
/// `atLeast` pixels or more.
bool decodeImage(const std::string &bytes, const std::string &path, int64_t channels,
                 Image &image, std::string &error, int64_t atLeast = 0);

/// The region (y, x, height, width) of an image to resize into an output.
struct CropBox {
  double y = 0, x = 0, height = 0, width = 0;
};

/// torchvision's RandomResizedCrop box: area 8%-100% of the image, aspect
/// ratio 3/4-4/3 (log-uniform), ten tries, then the centre at the nearest
/// ratio.
CropBox randomResizedCrop(int64_t height, int64_t width, std::mt19937_64 &rng);

/// Evaluation: the centre crop that a resize of the shorter side to
/// outSide / 0.875 followed by a centre crop of outHeight × outWidth takes.
CropBox centreCrop(int64_t height, int64_t width, int64_t outHeight, int64_t outWidth);

/// Resamples `box` of `image` to `outHeight` × `outWidth` (a triangle
/// filter widened when shrinking, as antialiased bilinear resizes do),
/// mirrored left to right when `flip`; writes floats (pixel / 255 -
/// mean) / stddev, channels last.
void resampleInto(const Image &image, const CropBox &box, int64_t outHeight, int64_t outWidth,
                  bool flip, const std::vector<float> &mean, const std::vector<float> &stddev,
                  float *out);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_IMAGES_H
