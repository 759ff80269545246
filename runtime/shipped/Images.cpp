//===- Images.cpp - JPEG and PNG files as training examples ---------------===//

#include "Images.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#ifdef QDSL_WITH_JPEG
#include <turbojpeg.h>
#endif
#ifdef QDSL_WITH_PNG
#include <png.h>
#endif

namespace qdsl::rt {

namespace {

/// No decoded image may hold more pixels than this (a decompression bomb
/// announces 65535 × 65535).
constexpr int64_t kMaxPixels = int64_t(1) << 28;

uint32_t bigEndian(const std::string &s, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

bool tooLarge(int64_t height, int64_t width, const std::string &path, std::string &error) {
  // Each side first: two 32-bit sides would overflow their product.
  if (height > 0 && width > 0 && height <= kMaxPixels && width <= kMaxPixels &&
      height * width <= kMaxPixels)
    return false;
  error = path + ": the image is " + std::to_string(width) + " × " + std::to_string(height) +
          " pixels; qdsl decodes images of 1 to " + std::to_string(kMaxPixels) + " pixels";
  return true;
}

/// Grey from RGB with the weights of ITU-R BT.601 (what PIL's convert("L") uses).
void toGrey(std::vector<uint8_t> &rgb, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t *p = &rgb[3 * i];
    rgb[i] = static_cast<uint8_t>(std::lround((299 * p[0] + 587 * p[1] + 114 * p[2]) / 1000.0));
  }
  rgb.resize(count);
}

#ifdef QDSL_WITH_JPEG
bool decodeJpeg(const std::string &bytes, const std::string &path, int64_t channels,
                Image &image, std::string &error, int64_t atLeast) {
  std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
  if (!handle) {
    error = path + ": cannot start the JPEG decoder";
    return false;
  }
  auto data = reinterpret_cast<const unsigned char *>(bytes.data());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle.get(), data, bytes.size(), &width, &height, &subsampling,
                          &colorspace) != 0) {
    error = path + ": not a JPEG image the decoder reads (" +
            tjGetErrorStr2(handle.get()) + ")";
    return false;
  }
  if (tooLarge(height, width, path, error))
    return false;
  // The smallest DCT scale that keeps the shorter side at `atLeast`.
  int scaledWidth = width, scaledHeight = height;
  int factors = 0;
  tjscalingfactor *scaling = tjGetScalingFactors(&factors);
  for (int i = 0; scaling && atLeast > 0 && i < factors; ++i) {
    const tjscalingfactor f = scaling[i];
    if (f.num >= f.denom)
      continue;
    int w = TJSCALED(width, f), h = TJSCALED(height, f);
    if (std::min(w, h) >= atLeast && int64_t(w) * h < int64_t(scaledWidth) * scaledHeight) {
      scaledWidth = w;
      scaledHeight = h;
    }
  }
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int format = cmyk ? TJPF_CMYK : channels == 1 ? TJPF_GRAY : TJPF_RGB;
  const int depth = tjPixelSize[format];
  std::vector<uint8_t> pixels(size_t(scaledWidth) * scaledHeight * depth);
  // A file that ends early is an error, not an image grey below the cut.
  // libjpeg's other warnings ("extraneous bytes before marker", common in
  // photo collections) leave a whole image, which PIL and torchvision take
  // too.
  if (tjDecompress2(handle.get(), data, bytes.size(), pixels.data(), scaledWidth, 0,
                    scaledHeight, format, TJFLAG_LIMITSCANS) != 0) {
    const std::string why = tjGetErrorStr2(handle.get());
    if (tjGetErrorCode(handle.get()) != TJERR_WARNING ||
        why.find("Premature end") != std::string::npos) {
      error = path + ": the JPEG data is damaged or incomplete (" + why + ")";
      return false;
    }
  }
  const int64_t count = int64_t(scaledWidth) * scaledHeight;
  if (cmyk) {
    // Adobe's inverted CMYK: each ink stored as 255 - ink.
    std::vector<uint8_t> rgb(count * 3);
    for (int64_t i = 0; i < count; ++i) {
      const uint8_t *p = &pixels[4 * i];
      for (int c = 0; c < 3; ++c)
        rgb[3 * i + c] = static_cast<uint8_t>((p[c] * p[3] + 127) / 255);
    }
    pixels = std::move(rgb);
    if (channels == 1)
      toGrey(pixels, count);
  }
  image.height = scaledHeight;
  image.width = scaledWidth;
  image.channels = channels;
  image.pixels = std::move(pixels);
  return true;
}
#endif

#ifdef QDSL_WITH_PNG
bool decodePng(const std::string &bytes, const std::string &path, int64_t channels, Image &image,
               std::string &error) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    error = path + ": not a PNG image the decoder reads (" + png.message + ")";
    png_image_free(&png);
    return false;
  }
  if (tooLarge(png.height, png.width, path, error)) {
    png_image_free(&png);
    return false;
  }
  // Any colour type and depth → 8-bit grey or RGB (alpha composited on black).
  // A 16-bit file without gamma information holds sRGB values as every
  // other tool reads them (PIL, torchvision): scaled to 8 bits, not taken
  // for linear light and brightened, libpng's default.
  png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, pixels.data(), 0, nullptr)) {
    error = path + ": the PNG data is damaged or incomplete (" + png.message + ")";
    png_image_free(&png);
    return false;
  }
  image.height = png.height;
  image.width = png.width;
  image.channels = channels;
  image.pixels = std::move(pixels);
  return true;
}
#endif

/// The input pixels (first index, weights) that make each of `out`
/// outputs from [start, start + size) of an axis of `in` pixels.
struct Taps {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weights;
};

Taps taps(double start, double size, int64_t in, int64_t out) {
  Taps t;
  const double scale = size / out, support = std::max(1.0, scale);
  const int64_t lo = std::max<int64_t>(0, int64_t(std::floor(start)));
  const int64_t hi = std::min<int64_t>(in, std::max<int64_t>(lo + 1, int64_t(std::ceil(start + size))));
  for (int64_t i = 0; i < out; ++i) {
    const double centre = start + (i + 0.5) * scale;
    int64_t first = std::max<int64_t>(lo, int64_t(std::floor(centre - support)));
    int64_t last = std::min<int64_t>(hi - 1, int64_t(std::ceil(centre + support)));
    std::vector<float> w;
    double sum = 0;
    for (int64_t j = first; j <= last; ++j) {
      double v = std::max(0.0, 1.0 - std::abs(j + 0.5 - centre) / support);
      w.push_back(float(v));
      sum += v;
    }
    if (sum <= 0) {  // a box thinner than a pixel: the nearest one
      first = std::clamp<int64_t>(int64_t(centre), lo, hi - 1);
      w.assign(1, 1.0f);
      sum = 1;
    }
    for (float &v : w)
      v = float(v / sum);
    t.first.push_back(first);
    t.weights.push_back(std::move(w));
  }
  return t;
}

} // namespace

ImageFormat sniffImageFormat(const std::string &head) {
  if (head.size() >= 3 && static_cast<unsigned char>(head[0]) == 0xFF &&
      static_cast<unsigned char>(head[1]) == 0xD8 && static_cast<unsigned char>(head[2]) == 0xFF)
    return ImageFormat::Jpeg;
  if (head.size() >= 8 && head.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0)
    return ImageFormat::Png;
  return ImageFormat::Unknown;
}

bool probeImage(const std::string &head, const std::string &path, int64_t &height,
                int64_t &width, std::string &error) {
  switch (sniffImageFormat(head)) {
  case ImageFormat::Png:
    if (head.size() < 24 || head.compare(12, 4, "IHDR") != 0) {
      error = path + ": a PNG file without its IHDR header";
      return false;
    }
    width = bigEndian(head, 16, 4);
    height = bigEndian(head, 20, 4);
    break;
  case ImageFormat::Jpeg: {
    // Walk the marker segments to the frame header (SOFn).
    size_t at = 2;
    height = width = -1;
    while (at + 4 <= head.size()) {
      if (static_cast<unsigned char>(head[at]) != 0xFF) {
        error = path + ": a JPEG file whose markers are damaged at byte " + std::to_string(at);
        return false;
      }
      unsigned marker = static_cast<unsigned char>(head[at + 1]);
      if (marker == 0xFF) {  // fill byte
        ++at;
        continue;
      }
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
        at += 2;
        continue;
      }
      uint32_t length = bigEndian(head, at + 2, 2);
      bool frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                   marker != 0xCC;
      if (frame) {
        if (at + 9 > head.size())
          break;
        height = bigEndian(head, at + 5, 2);
        width = bigEndian(head, at + 7, 2);
        break;
      }
      if (marker == 0xD9 || length < 2)
        break;
      at += 2 + length;
    }
    if (height < 0) {
      error = path + ": a JPEG file with no frame header in its first " +
              std::to_string(head.size()) + " bytes (damaged or cut short)";
      return false;
    }
    break;
  }
  case ImageFormat::Unknown:
    error = path + ": neither a JPEG nor a PNG file (its first bytes say otherwise)";
    return false;
  }
  return !tooLarge(height, width, path, error);
}

bool decodeImage(const std::string &bytes, const std::string &path, int64_t channels,
                 Image &image, std::string &error, int64_t atLeast) {
  switch (sniffImageFormat(bytes)) {
  case ImageFormat::Jpeg:
#ifdef QDSL_WITH_JPEG
    return decodeJpeg(bytes, path, channels, image, error, atLeast);
#else
    error = path + ": this program was built without libjpeg-turbo (TurboJPEG), so it reads "
                   "no JPEG files; install libturbojpeg0-dev and build the project again";
    return false;
#endif
  case ImageFormat::Png:
#ifdef QDSL_WITH_PNG
    (void)atLeast;
    return decodePng(bytes, path, channels, image, error);
#else
    error = path + ": this program was built without libpng, so it reads no PNG files; "
                   "install libpng-dev and build the project again";
    return false;
#endif
  case ImageFormat::Unknown:
    break;
  }
  error = path + ": neither a JPEG nor a PNG file (its first bytes say otherwise)";
  return false;
}

CropBox randomResizedCrop(int64_t height, int64_t width, std::mt19937_64 &rng) {
  const double area = double(height) * double(width);
  std::uniform_real_distribution<double> scale(0.08, 1.0);
  std::uniform_real_distribution<double> logRatio(std::log(3.0 / 4.0), std::log(4.0 / 3.0));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * scale(rng), ratio = std::exp(logRatio(rng));
    const int64_t w = std::llround(std::sqrt(target * ratio));
    const int64_t h = std::llround(std::sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int64_t y = std::uniform_int_distribution<int64_t>(0, height - h)(rng);
      const int64_t x = std::uniform_int_distribution<int64_t>(0, width - w)(rng);
      return {double(y), double(x), double(h), double(w)};
    }
  }
  // The whole image, cut to the nearest allowed aspect ratio.
  const double inRatio = double(width) / double(height);
  double w = double(width), h = double(height);
  if (inRatio < 3.0 / 4.0)
    h = std::round(w / (3.0 / 4.0));
  else if (inRatio > 4.0 / 3.0)
    w = std::round(h * (4.0 / 3.0));
  return {std::floor((height - h) / 2), std::floor((width - w) / 2), h, w};
}

CropBox centreCrop(int64_t height, int64_t width, int64_t outHeight, int64_t outWidth) {
  // The shorter side resized to min(out) / 0.875: one output pixel covers
  // `step` input pixels.
  const double resized = std::round(double(std::min(outHeight, outWidth)) / 0.875);
  const double step = double(std::min(height, width)) / resized;
  const double h = std::min(double(height), outHeight * step);
  const double w = std::min(double(width), outWidth * step);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

void resampleInto(const Image &image, const CropBox &box, int64_t outHeight, int64_t outWidth,
                  bool flip, const std::vector<float> &mean, const std::vector<float> &stddev,
                  float *out) {
  const int64_t C = image.channels, W = image.width;
  const Taps rows = taps(box.y, box.height, image.height, outHeight);
  const Taps cols = taps(box.x, box.width, image.width, outWidth);
  // Columns the horizontal taps read.
  int64_t x0 = W, x1 = 0;
  for (int64_t i = 0; i < outWidth; ++i) {
    x0 = std::min(x0, cols.first[i]);
    x1 = std::max(x1, cols.first[i] + int64_t(cols.weights[i].size()));
  }
  std::vector<float> row(size_t(x1 - x0) * C);
  std::vector<float> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = 1.0f / (255.0f * stddev[c]);
    shift[c] = mean[c] / stddev[c];
  }
  for (int64_t y = 0; y < outHeight; ++y) {
    std::fill(row.begin(), row.end(), 0.0f);
    const std::vector<float> &wy = rows.weights[y];
    for (size_t k = 0; k < wy.size(); ++k) {
      const uint8_t *src = image.pixels.data() + ((rows.first[y] + int64_t(k)) * W + x0) * C;
      for (size_t i = 0; i < row.size(); ++i)
        row[i] += wy[k] * src[i];
    }
    for (int64_t x = 0; x < outWidth; ++x) {
      const std::vector<float> &wx = cols.weights[x];
      float *dst = out + (y * outWidth + (flip ? outWidth - 1 - x : x)) * C;
      for (int64_t c = 0; c < C; ++c) {
        float v = 0;
        for (size_t k = 0; k < wx.size(); ++k)
          v += wx[k] * row[(cols.first[x] - x0 + int64_t(k)) * C + c];
        dst[c] = v * scale[c] - shift[c];
      }
    }
  }
}

} // namespace qdsl::rt
