//===- Datasets.h - labelled image data sets for training -------*- C++ -*-===//
//
// Reads the image classification data sets the generated training programs
// use: IDX files (MNIST, Fashion-MNIST; plain or gzip-compressed, as
// Debian's dataset-fashion-mnist ships them), CIFAR-10's binary batches,
// NumPy arrays (.npy images and integer labels) and folders of JPEG and PNG
// files, one subfolder per class (torchvision's ImageFolder layout).
// Pixels stay as the files hold them (bytes, floats, or the files
// themselves, decoded per batch) and become float NHWC batches only when a
// batch is assembled, with optional random crop and flip.
//
// Every reader checks the file against what its header promises and
// reports the first problem with the file's name, the byte offset where it
// is and what was expected. It uses only the standard library and zlib, so
// that generated training programs can carry it as they carry TensorFiles.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_DATASETS_H
#define QDSL_RUNTIME_SHIPPED_DATASETS_H

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qdsl::rt {

/// N labelled images of height × width × channels, channels last, held in
/// one of three ways: `pixels` (bytes, scaled by 1/255 when assembled),
/// `values` (floats, taken as they are) or `files` (JPEG or PNG files,
/// decoded and resized to height × width when assembled).
struct Dataset {
  int64_t count = 0, height = 0, width = 0, channels = 0;
  /// Labels are 0 .. classes - 1.
  int64_t classes = 0;
  std::vector<uint8_t> pixels;
  std::vector<float> values;
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  /// A folder's class names (its subfolders, sorted); label i is classNames[i].
  std::vector<std::string> classNames;
  /// Files of a folder left out: not named .jpg, .jpeg or .png.
  int64_t skippedFiles = 0;

  size_t exampleBytes() const { return size_t(height) * width * channels; }
  bool fromFiles() const { return !files.empty(); }
};

/// The bytes of `path`, inflated when it is gzip-compressed (it starts with
/// the gzip magic bytes); otherwise as they are.
bool readMaybeCompressed(const std::string &path, std::string &bytes,
                         std::string &error);
/// Inflates gzip data; `name` is used in errors.
bool gunzip(const std::string &compressed, const std::string &name,
            std::string &bytes, std::string &error);

/// IDX images: unsigned bytes, 3 dimensions (N, H, W) or 4 (N, H, W, C).
bool parseIdxImages(const std::string &bytes, const std::string &name,
                    Dataset &images, std::string &error);
/// IDX labels: unsigned bytes, 1 dimension (N).
bool parseIdxLabels(const std::string &bytes, const std::string &name,
                    std::vector<uint8_t> &labels, std::string &error);
/// An images file and its labels file; `classes` is the largest label + 1
/// unless given (then every label must be below it).
bool readIdx(const std::string &imagesPath, const std::string &labelsPath,
             Dataset &dataset, std::string &error, int64_t classes = 0);

/// CIFAR-10 binary batches: records of one label byte (0..9) and 3072
/// pixel bytes (3 planes of 32 × 32), appended to `dataset` in order.
bool parseCifar10(const std::string &bytes, const std::string &name,
                  Dataset &dataset, std::string &error);
bool readCifar10(const std::vector<std::string> &paths, Dataset &dataset,
                 std::string &error);

/// Where Debian's dataset-fashion-mnist puts the files.
const char *defaultFashionMnistDirectory();
/// The "train" or "test" split of Fashion-MNIST in `directory`
/// ({train,t10k}-{images-idx3,labels-idx1}-ubyte, with or without .gz).
bool readFashionMnist(const std::string &directory, const std::string &split,
                      Dataset &dataset, std::string &error);

/// Images in NumPy arrays: `imagesPath` (N, H, W, C) or (N, H, W), uint8
/// (scaled by 1/255) or float32 (as they are); `labelsPath` (N) of int32,
/// int64, uint8 or float32 whole numbers. `classes` as readIdx.
bool readNpyDataset(const std::string &imagesPath, const std::string &labelsPath,
                    Dataset &dataset, std::string &error, int64_t classes = 0);

/// A folder of images, one subfolder per class (sorted by name: label i is
/// the i-th), files .jpg/.jpeg/.png at any depth below it (others are
/// skipped and counted). Each file's header is read and checked now (its
/// format and size); its pixels are decoded when a batch needs them, to
/// `height` × `width` × `channels`. An empty class folder, an unreadable or
/// misnamed file is an error naming it.
bool readImageFolder(const std::string &directory, int64_t height, int64_t width,
                     int64_t channels, Dataset &dataset, std::string &error);

/// Per-channel mean and standard deviation of the pixels scaled to [0, 1]
/// (of the values as they are for a float data set; ImageNet's for one of
/// files, which are not all read to measure them).
void channelStatistics(const Dataset &dataset, std::vector<float> &mean,
                       std::vector<float> &stddev);

/// Training-time augmentation: a random crop of the image padded by `pad`
/// zero pixels on every side, and a random horizontal flip; for a data set
/// of files, `resizedCrop` takes torchvision's RandomResizedCrop box instead
/// of the evaluation's centre crop.
struct Augmentation {
  int pad = 0;
  bool flip = false;
  bool resizedCrop = false;
};

/// Assembles examples `indices` into `images` (N × H × W × C floats,
/// normalised by `mean` and `stddev` per channel) and `labels`. Fails only
/// for a data set of files, naming the file that cannot be read or decoded.
bool assembleBatch(const Dataset &dataset, const std::vector<size_t> &indices,
                   const std::vector<float> &mean,
                   const std::vector<float> &stddev,
                   const Augmentation &augmentation, std::mt19937_64 &rng,
                   float *images, int32_t *labels, std::string &error);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_DATASETS_H
