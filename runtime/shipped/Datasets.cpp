//===- Datasets.cpp - labelled image data sets for training ---------------===//

#include "Datasets.h"
#include "Contract.h"
#include "Images.h"
#include "TensorFiles.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <set>
#include <sys/stat.h>

namespace qdsl::rt {

namespace {

/// More than any data set qdsl trains on; stops a hostile file from
/// inflating until memory runs out.
constexpr uint64_t kMaxInflatedBytes = uint64_t(1) << 33;

bool exists(const std::string &path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

uint32_t readBigEndian32(const std::string &bytes, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return v;
}

const char *idxTypeName(unsigned code) {
  switch (code) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "16-bit integer";
  case 0x0C: return "32-bit integer";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return "unknown";
  }
}

std::string hex(unsigned value, int digits) {
  static const char *d = "0123456789abcdef";
  std::string s = "0x";
  for (int i = digits - 1; i >= 0; --i)
    s += d[(value >> (4 * i)) & 0xf];
  return s;
}

/// The header of an IDX file of unsigned bytes: its dimensions, checked
/// against `allowedRanks` and against the size of the file.
bool parseIdxHeader(const std::string &bytes, const std::string &name,
                    std::vector<unsigned> allowedRanks, const char *what,
                    std::vector<int64_t> &dims, std::string &error) {
  if (bytes.size() < 4) {
    error = name + ": " + std::to_string(bytes.size()) +
            " bytes is too short for an IDX header (4 magic bytes, then one "
            "4-byte size per dimension)";
    return false;
  }
  unsigned zero = readBigEndian32(bytes, 0) >> 16;
  unsigned type = static_cast<unsigned char>(bytes[2]);
  unsigned rank = static_cast<unsigned char>(bytes[3]);
  if (zero != 0) {
    error = name + ": byte 0: not an IDX file (the magic number " +
            hex(readBigEndian32(bytes, 0), 8) + " should start with two zero bytes)";
    return false;
  }
  if (type != 0x08) {
    error = name + ": byte 2: element type " + hex(type, 2) + " (" + idxTypeName(type) +
            "); qdsl reads IDX files of unsigned bytes (0x08)";
    return false;
  }
  if (std::find(allowedRanks.begin(), allowedRanks.end(), rank) == allowedRanks.end()) {
    error = name + ": byte 3: " + std::to_string(rank) + " dimensions; " + what +
            " have ";
    for (size_t i = 0; i < allowedRanks.size(); ++i)
      error += (i ? " or " : "") + std::to_string(allowedRanks[i]);
    return false;
  }
  size_t headerBytes = 4 + 4 * size_t(rank);
  if (bytes.size() < headerBytes) {
    error = name + ": the file ends at byte " + std::to_string(bytes.size()) +
            ", inside the header's " + std::to_string(rank) + " dimension sizes";
    return false;
  }
  dims.clear();
  uint64_t elements = 1;
  for (unsigned i = 0; i < rank; ++i) {
    uint32_t d = readBigEndian32(bytes, 4 + 4 * i);
    if (d == 0) {
      error = name + ": byte " + std::to_string(4 + 4 * i) + ": dimension " +
              std::to_string(i) + " is 0; a data set needs at least one example "
              "of at least one pixel";
      return false;
    }
    dims.push_back(d);
    elements *= d;
    if (elements > kMaxInflatedBytes) {
      error = name + ": the header's sizes describe more than " +
              std::to_string(kMaxInflatedBytes) + " bytes";
      return false;
    }
  }
  uint64_t dataBytes = bytes.size() - headerBytes;
  if (dataBytes != elements) {
    std::string shape;
    for (size_t i = 0; i < dims.size(); ++i)
      shape += (i ? " x " : "") + std::to_string(dims[i]);
    error = name + ": the header promises " + shape + " = " + std::to_string(elements) +
            " bytes of data after byte " + std::to_string(headerBytes) + ", the file holds " +
            std::to_string(dataBytes) +
            (dataBytes < elements ? " (truncated?)" : " (extra bytes at the end)");
    return false;
  }
  return true;
}

} // namespace

bool gunzip(const std::string &compressed, const std::string &name,
            std::string &bytes, std::string &error) {
  bytes.clear();
  z_stream z{};
  // 16 + 15: a gzip wrapper around a stream with a window of up to 32 KiB.
  if (inflateInit2(&z, 16 + 15) != Z_OK) {
    error = name + ": cannot start zlib's inflate";
    return false;
  }
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  std::string chunk(1 << 16, '\0');
  bool ok = true;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef *>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    int status = inflate(&z, Z_NO_FLUSH);
    bytes.append(chunk.data(), chunk.size() - z.avail_out);
    size_t at = compressed.size() - z.avail_in;
    if (bytes.size() > kMaxInflatedBytes) {
      error = name + ": inflates to more than " + std::to_string(kMaxInflatedBytes) +
              " bytes; not a data set qdsl can hold";
      ok = false;
      break;
    }
    if (status == Z_STREAM_END) {
      // Concatenated gzip members make one file.
      if (z.avail_in == 0)
        break;
      inflateReset(&z);
      continue;
    }
    if (status == Z_OK)
      continue;
    if (status == Z_BUF_ERROR && z.avail_in == 0) {
      error = name + ": the gzip stream is truncated (it ends at compressed byte " +
              std::to_string(at) + " before its end marker)";
    } else {
      error = name + ": corrupt gzip data near compressed byte " + std::to_string(at) +
              (z.msg ? std::string(": ") + z.msg : std::string());
    }
    ok = false;
    break;
  }
  inflateEnd(&z);
  return ok;
}

bool readMaybeCompressed(const std::string &path, std::string &bytes,
                         std::string &error) {
  std::string raw;
  if (!readFileBytes(path, raw, error))
    return false;
  if (raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
      static_cast<unsigned char>(raw[1]) == 0x8b)
    return gunzip(raw, path, bytes, error);
  bytes = std::move(raw);
  return true;
}

bool parseIdxImages(const std::string &bytes, const std::string &name,
                    Dataset &images, std::string &error) {
  std::vector<int64_t> dims;
  if (!parseIdxHeader(bytes, name, {3, 4}, "image files", dims, error))
    return false;
  images.count = dims[0];
  images.height = dims[1];
  images.width = dims[2];
  images.channels = dims.size() == 4 ? dims[3] : 1;
  size_t headerBytes = 4 + 4 * dims.size();
  images.pixels.assign(bytes.begin() + headerBytes, bytes.end());
  return true;
}

bool parseIdxLabels(const std::string &bytes, const std::string &name,
                    std::vector<uint8_t> &labels, std::string &error) {
  std::vector<int64_t> dims;
  if (!parseIdxHeader(bytes, name, {1}, "label files", dims, error))
    return false;
  labels.assign(bytes.begin() + 8, bytes.end());
  return true;
}

namespace {

/// Sets `dataset.classes` from its labels, or checks them against the
/// number given.
bool checkLabels(Dataset &dataset, int64_t classes, const std::string &name,
                 std::string &error) {
  int64_t largest = 0;
  for (size_t i = 0; i < dataset.labels.size(); ++i) {
    int64_t label = dataset.labels[i];
    if (classes > 0 && label >= classes) {
      error = name + ": example " + std::to_string(i) + " has label " +
              std::to_string(label) + "; expected 0 to " + std::to_string(classes - 1);
      return false;
    }
    largest = std::max(largest, label);
  }
  dataset.classes = classes > 0 ? classes : largest + 1;
  return true;
}

} // namespace

bool readIdx(const std::string &imagesPath, const std::string &labelsPath,
             Dataset &dataset, std::string &error, int64_t classes) {
  std::string bytes;
  Dataset result;
  std::vector<uint8_t> labels;
  if (!readMaybeCompressed(imagesPath, bytes, error) ||
      !parseIdxImages(bytes, imagesPath, result, error) ||
      !readMaybeCompressed(labelsPath, bytes, error) ||
      !parseIdxLabels(bytes, labelsPath, labels, error))
    return false;
  result.labels.assign(labels.begin(), labels.end());
  if (int64_t(result.labels.size()) != result.count) {
    error = labelsPath + ": " + std::to_string(result.labels.size()) + " labels for the " +
            std::to_string(result.count) + " images of " + imagesPath;
    return false;
  }
  if (!checkLabels(result, classes, labelsPath, error))
    return false;
  dataset = std::move(result);
  return true;
}

bool parseCifar10(const std::string &bytes, const std::string &name,
                  Dataset &dataset, std::string &error) {
  constexpr size_t kSide = 32, kPlane = kSide * kSide, kRecord = 1 + 3 * kPlane;
  if (bytes.empty() || bytes.size() % kRecord != 0) {
    error = name + ": " + std::to_string(bytes.size()) +
            " bytes is not a whole number of CIFAR-10 records (3073 bytes each: a "
            "label byte, then 3 planes of 32 x 32 pixels)";
    return false;
  }
  if (dataset.count > 0 &&
      (dataset.height != 32 || dataset.width != 32 || dataset.channels != 3)) {
    error = name + ": CIFAR-10 images are 32 x 32 x 3; the data set read before holds " +
            std::to_string(dataset.height) + " x " + std::to_string(dataset.width) + " x " +
            std::to_string(dataset.channels);
    return false;
  }
  size_t records = bytes.size() / kRecord;
  for (size_t r = 0; r < records; ++r) {
    unsigned label = static_cast<unsigned char>(bytes[r * kRecord]);
    if (label > 9) {
      error = name + ": byte " + std::to_string(r * kRecord) + " (record " +
              std::to_string(r) + "): label " + std::to_string(label) + "; expected 0 to 9";
      return false;
    }
  }
  size_t first = dataset.pixels.size();
  dataset.pixels.resize(first + records * 3 * kPlane);
  for (size_t r = 0; r < records; ++r) {
    const char *record = bytes.data() + r * kRecord;
    dataset.labels.push_back(static_cast<unsigned char>(record[0]));
    uint8_t *out = dataset.pixels.data() + first + r * 3 * kPlane;
    // Planes (R, G, B) to channels last.
    for (size_t p = 0; p < kPlane; ++p)
      for (size_t c = 0; c < 3; ++c)
        out[p * 3 + c] = static_cast<uint8_t>(record[1 + c * kPlane + p]);
  }
  dataset.count += records;
  dataset.height = dataset.width = 32;
  dataset.channels = 3;
  dataset.classes = 10;
  return true;
}

bool readCifar10(const std::vector<std::string> &paths, Dataset &dataset,
                 std::string &error) {
  if (paths.empty()) {
    error = "CIFAR-10: no batch files given";
    return false;
  }
  Dataset result;
  std::string bytes;
  for (const std::string &path : paths)
    if (!readMaybeCompressed(path, bytes, error) ||
        !parseCifar10(bytes, path, result, error))
      return false;
  dataset = std::move(result);
  return true;
}

const char *defaultFashionMnistDirectory() { return "/usr/share/datasets/fashion-mnist"; }

bool readFashionMnist(const std::string &directory, const std::string &split,
                      Dataset &dataset, std::string &error) {
  if (split != "train" && split != "test") {
    error = "Fashion-MNIST has the splits 'train' and 'test', not '" + split + "'";
    return false;
  }
  std::string prefix = directory + "/" + (split == "train" ? "train" : "t10k");
  std::string paths[2];
  const char *suffixes[2] = {"-images-idx3-ubyte", "-labels-idx1-ubyte"};
  for (int i = 0; i < 2; ++i) {
    std::string plain = prefix + suffixes[i];
    paths[i] = exists(plain + ".gz") ? plain + ".gz" : plain;
    if (!exists(paths[i])) {
      error = "Fashion-MNIST's " + split + " split is not in '" + directory +
              "': expected " + plain + ".gz (or without .gz); install Debian's "
              "dataset-fashion-mnist, or give the directory that holds the IDX files";
      return false;
    }
  }
  if (!readIdx(paths[0], paths[1], dataset, error, 10))
    return false;
  if (dataset.channels != 1) {
    error = paths[0] + ": Fashion-MNIST images have one channel, this file has " +
            std::to_string(dataset.channels);
    return false;
  }
  return true;
}

bool readNpyDataset(const std::string &imagesPath, const std::string &labelsPath,
                    Dataset &dataset, std::string &error, int64_t classes) {
  std::string bytes;
  NpyArray images;
  if (!readFileBytes(imagesPath, bytes, error) ||
      !parseNpyArray(bytes, imagesPath, images, error))
    return false;
  const bool floats = images.kind == 'f' && images.itemSize == 4;
  if (!floats && !(images.kind == 'u' && images.itemSize == 1)) {
    error = "'" + imagesPath + "': holds " + images.typeName() +
            " images; qdsl reads uint8 (pixels 0-255) or float32 (taken as they are)";
    return false;
  }
  if (images.shape.size() != 3 && images.shape.size() != 4) {
    error = "'" + imagesPath + "': images of shape " + describeShape(images.shape) +
            "; expected (N, H, W, C) or (N, H, W), channels last";
    return false;
  }
  Dataset result;
  result.count = images.shape[0];
  result.height = images.shape[1];
  result.width = images.shape[2];
  result.channels = images.shape.size() == 4 ? images.shape[3] : 1;
  const size_t size = images.dataBytes(bytes);
  if (floats) {
    result.values.resize(size / 4);
    if (size)
      std::memcpy(result.values.data(), images.data(bytes), size);
    for (size_t i = 0; i < result.values.size(); ++i)
      if (!std::isfinite(result.values[i])) {
        error = "'" + imagesPath + "': value " + std::to_string(result.values[i]) +
                " at element " + std::to_string(i) + "; images must be finite";
        return false;
      }
  } else {
    result.pixels.assign(images.data(bytes), images.data(bytes) + size);
  }
  std::string().swap(bytes);  // the file's copy: twice the data at most
  std::vector<int64_t> labels;
  if (!readNpyLabels(labelsPath, labels, error))
    return false;
  if (int64_t(labels.size()) != result.count) {
    error = "'" + labelsPath + "': " + std::to_string(labels.size()) + " labels for the " +
            std::to_string(result.count) + " images of " + imagesPath;
    return false;
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= contract::kMaxClasses) {
      error = "'" + labelsPath + "': example " + std::to_string(i) + " has label " +
              std::to_string(labels[i]) + "; expected a class index 0 to " +
              std::to_string(contract::kMaxClasses - 1);
      return false;
    }
    result.labels.push_back(static_cast<int32_t>(labels[i]));
  }
  if (!checkLabels(result, classes, labelsPath, error))
    return false;
  dataset = std::move(result);
  return true;
}

namespace {

bool isImageName(const std::filesystem::path &path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

/// What the scan reads of each file: enough for its header.
constexpr size_t kHeadBytes = 64 * 1024;

/// The first bytes of `path`, enough for its header.
bool readHead(const std::string &path, std::string &head, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot be read (" + std::strerror(errno) + ")";
    return false;
  }
  head.resize(kHeadBytes);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) {
    error = path + ": cannot be read (" + std::strerror(errno) + ")";
    return false;
  }
  return true;
}

} // namespace

bool readImageFolder(const std::string &directory, int64_t height, int64_t width,
                     int64_t channels, Dataset &dataset, std::string &error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    error = directory + ": not a folder (expected one subfolder of images per class)";
    return false;
  }
  std::vector<std::string> classes;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && it->path().filename().string()[0] != '.')
      classes.push_back(it->path().filename().string());
  if (ec) {
    error = directory + ": cannot be listed (" + ec.message() + ")";
    return false;
  }
  if (classes.empty()) {
    error = directory + ": holds no class folders (expected one subfolder of images per class, "
                        "as torchvision's ImageFolder)";
    return false;
  }
  std::sort(classes.begin(), classes.end());
  if (int64_t(classes.size()) > contract::kMaxClasses) {
    error = directory + ": " + std::to_string(classes.size()) + " class folders; at most " +
            std::to_string(contract::kMaxClasses);
    return false;
  }
  Dataset result;
  result.height = height;
  result.width = width;
  result.channels = channels;
  result.classNames = classes;
  result.classes = int64_t(classes.size());
  // Every folder the scan enters, by device and inode: a link may lead
  // elsewhere, but not back into the data set (a loop would never end; a
  // link to another class would read its images under this one's label).
  std::set<std::pair<dev_t, ino_t>> entered;
  auto identity = [](const fs::path &path, std::pair<dev_t, ino_t> &id) {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0)
      return false;
    id = {info.st_dev, info.st_ino};
    return true;
  };
  std::vector<fs::path> known = {fs::path(directory)};
  for (const std::string &name : classes)
    known.push_back(fs::path(directory) / name);
  for (const fs::path &folder : known) {
    std::pair<dev_t, ino_t> id;
    if (identity(folder, id))
      entered.insert(id);
  }
  for (size_t label = 0; label < classes.size(); ++label) {
    const fs::path folder = fs::path(directory) / classes[label];
    std::vector<std::string> files;
    auto options = fs::directory_options::follow_directory_symlink;
    for (fs::recursive_directory_iterator it(folder, options, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_directory(ec)) {
        std::pair<dev_t, ino_t> id;
        if (identity(it->path(), id) && !entered.insert(id).second) {
          error = it->path().string() + ": leads back to a folder the scan reads already (a "
                                        "link loop, or a second way to the same images); "
                                        "remove the link";
          return false;
        }
        continue;
      }
      if (!isImageName(it->path())) {
        ++result.skippedFiles;
        continue;
      }
      files.push_back(it->path().string());
    }
    if (ec) {
      error = folder.string() + ": cannot be listed (" + ec.message() + ")";
      return false;
    }
    if (files.empty()) {
      error = folder.string() + ": class folder '" + classes[label] +
              "' holds no .jpg, .jpeg or .png file";
      return false;
    }
    std::sort(files.begin(), files.end());
    for (const std::string &file : files) {
      std::string head;
      int64_t h = 0, w = 0;
      if (!fs::is_regular_file(file, ec)) {
        error = file + ": not a regular file (a folder, a broken link or a device)";
        return false;
      }
      if (!readHead(file, head, error))
        return false;
      if (!probeImage(head, file, h, w, error)) {
        // A JPEG's frame header may follow large metadata (ICC profiles,
        // EXIF): the whole file, then.
        if (head.size() < kHeadBytes || sniffImageFormat(head) != ImageFormat::Jpeg ||
            !readFileBytes(file, head, error, uint64_t(1) << 30) ||
            !probeImage(head, file, h, w, error))
          return false;
      }
      result.files.push_back(file);
      result.labels.push_back(static_cast<int32_t>(label));
    }
  }
  result.count = int64_t(result.files.size());
  if (result.count > contract::kMaxExamples) {
    error = directory + ": " + std::to_string(result.count) + " images; at most " +
            std::to_string(contract::kMaxExamples);
    return false;
  }
  dataset = std::move(result);
  return true;
}

void channelStatistics(const Dataset &dataset, std::vector<float> &mean,
                       std::vector<float> &stddev) {
  size_t c = size_t(dataset.channels);
  mean.assign(c, 0.0f);
  stddev.assign(c, 1.0f);
  if (dataset.fromFiles()) {
    // ImageNet's statistics, as torchvision and timm use them; grey: their mean.
    const float imagenetMean[3] = {0.485f, 0.456f, 0.406f}, imagenetStd[3] = {0.229f, 0.224f, 0.225f};
    for (size_t k = 0; k < c; ++k) {
      mean[k] = c == 3 ? imagenetMean[k] : 0.449f;
      stddev[k] = c == 3 ? imagenetStd[k] : 0.226f;
    }
    return;
  }
  std::vector<double> sum(c, 0.0), squares(c, 0.0);
  const bool floats = !dataset.values.empty();
  const size_t n_values = floats ? dataset.values.size() : dataset.pixels.size();
  for (size_t i = 0; i < n_values; ++i) {
    double v = floats ? dataset.values[i] : dataset.pixels[i] / 255.0;
    sum[i % c] += v;
    squares[i % c] += v * v;
  }
  double n = std::max<double>(1.0, double(n_values / std::max<size_t>(1, c)));
  for (size_t k = 0; k < c; ++k) {
    double m = sum[k] / n;
    double variance = std::max(0.0, squares[k] / n - m * m);
    mean[k] = float(m);
    // A constant channel would divide by zero; leave it unscaled.
    stddev[k] = variance > 0 ? float(std::sqrt(variance)) : 1.0f;
  }
}

namespace {

/// One example of a data set of files: decoded, cropped, resized, flipped.
bool assembleFile(const Dataset &dataset, size_t example, const std::vector<float> &mean,
                  const std::vector<float> &stddev, const Augmentation &augmentation,
                  std::mt19937_64 &rng, float *out, std::string &error) {
  const std::string &path = dataset.files[example];
  std::string bytes;
  Image image;
  // Decode no smaller than the crop needs at the output's resolution: the
  // evaluation's resize of the shorter side to side / 0.875, or the
  // smallest RandomResizedCrop box (8% of the area) at full size.
  const double side = double(std::min(dataset.height, dataset.width));
  const int64_t atLeast = int64_t(std::ceil(augmentation.resizedCrop ? side / std::sqrt(0.08)
                                                                     : side / 0.875));
  try {
    if (!readFileBytes(path, bytes, error, uint64_t(1) << 30) ||
        !decodeImage(bytes, path, dataset.channels, image, error, atLeast))
      return false;
  } catch (const std::bad_alloc &) {
    error = path + ": out of memory decoding it";
    return false;
  }
  CropBox box = augmentation.resizedCrop
                    ? randomResizedCrop(image.height, image.width, rng)
                    : centreCrop(image.height, image.width, dataset.height, dataset.width);
  bool flip = augmentation.flip && std::uniform_int_distribution<int>(0, 1)(rng) == 1;
  resampleInto(image, box, dataset.height, dataset.width, flip, mean, stddev, out);
  return true;
}

} // namespace

bool assembleBatch(const Dataset &dataset, const std::vector<size_t> &indices,
                   const std::vector<float> &mean,
                   const std::vector<float> &stddev,
                   const Augmentation &augmentation, std::mt19937_64 &rng,
                   float *images, int32_t *labels, std::string &error) {
  const int64_t H = dataset.height, W = dataset.width, C = dataset.channels;
  if (dataset.fromFiles()) {
    for (size_t b = 0; b < indices.size(); ++b) {
      if (!assembleFile(dataset, indices[b], mean, stddev, augmentation, rng,
                        images + b * dataset.exampleBytes(), error))
        return false;
      labels[b] = dataset.labels[indices[b]];
    }
    return true;
  }
  const int pad = std::max(0, augmentation.pad);
  const bool floats = !dataset.values.empty();
  std::vector<float> padValue(C), scale(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = (floats ? 1.0f : 1.0f / 255.0f) / stddev[c];
    padValue[c] = -mean[c] / stddev[c];  // a zero pixel, normalised
  }
  for (size_t b = 0; b < indices.size(); ++b) {
    size_t example = indices[b];
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (pad > 0) {
      std::uniform_int_distribution<int> offset(0, 2 * pad);
      dy = offset(rng) - pad;
      dx = offset(rng) - pad;
    }
    if (augmentation.flip)
      flip = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    const size_t first = example * dataset.exampleBytes();
    float *out = images + b * dataset.exampleBytes();
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        int64_t sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
        bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        for (int64_t c = 0; c < C; ++c) {
          size_t at = first + size_t((sy * W + sx) * C + c);
          float v = !inside ? 0.0f : floats ? dataset.values[at] : float(dataset.pixels[at]);
          out[(y * W + x) * C + c] = inside ? v * scale[c] - mean[c] / stddev[c] : padValue[c];
        }
      }
    labels[b] = dataset.labels[example];
  }
  return true;
}

} // namespace qdsl::rt
