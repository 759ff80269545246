//===- TensorFilesFuzzer.cpp - libFuzzer target for the file readers ------===//
//
// Feeds arbitrary bytes to the safetensors and .npy readers that every
// weights file and input goes through, to the checkpoint reader, and to the
// data set readers (IDX, gzip, CIFAR-10, any .npy array, the headers of a
// folder's JPEG and PNG files) that training goes through: they
// must refuse malformed files with an error, never crash, hang or allocate
// what the file merely claims.
//
//===----------------------------------------------------------------------===//

#include "runtime/shipped/Datasets.h"
#include "runtime/shipped/Images.h"
#include "runtime/shipped/Optimizer.h"
#include "runtime/shipped/TensorFiles.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string bytes(reinterpret_cast<const char *>(data), size);
  std::string error;
  qdsl::rt::TensorMap tensors;
  qdsl::rt::Metadata metadata;
  if (qdsl::rt::parseSafetensors(bytes, "fuzz.safetensors", tensors, error, &metadata))
    for (const auto &[name, tensor] : tensors)
      if (tensor.data.size() != qdsl::rt::Tensor::numElements(tensor.shape))
        __builtin_trap();
  qdsl::rt::Checkpoint checkpoint;
  if (qdsl::rt::parseCheckpoint(bytes, "fuzz.checkpoint", checkpoint, error))
    for (const auto &[name, w] : checkpoint.weights)
      if (qdsl::rt::firstNonFinite(w.data) != w.data.size())
        __builtin_trap();  // a loaded checkpoint's weights are finite
  qdsl::rt::Tensor tensor;
  if (qdsl::rt::parseNpy(bytes, "fuzz.npy", tensor, error) &&
      tensor.data.size() != qdsl::rt::Tensor::numElements(tensor.shape))
    __builtin_trap();
  qdsl::rt::NpyArray array;
  if (qdsl::rt::parseNpyArray(bytes, "fuzz.npy", array, error) &&
      array.dataBytes(bytes) !=
          qdsl::rt::Tensor::numElements(array.shape) * size_t(array.itemSize))
    __builtin_trap();
  // An image header the scan accepts announces 1 to 2^28 pixels.
  int64_t height = 0, width = 0;
  if (qdsl::rt::probeImage(bytes, "fuzz.jpg", height, width, error) &&
      !(height >= 1 && width >= 1 && height * width <= (int64_t(1) << 28)))
    __builtin_trap();

  std::string inflated;
  const std::string &raw =
      qdsl::rt::gunzip(bytes, "fuzz.gz", inflated, error) ? inflated : bytes;
  qdsl::rt::Dataset images;
  if (qdsl::rt::parseIdxImages(raw, "fuzz-images", images, error) &&
      images.pixels.size() != size_t(images.count) * images.exampleBytes())
    __builtin_trap();
  std::vector<uint8_t> labels;
  qdsl::rt::parseIdxLabels(raw, "fuzz-labels", labels, error);
  qdsl::rt::Dataset cifar;
  if (qdsl::rt::parseCifar10(raw, "fuzz.bin", cifar, error) &&
      cifar.pixels.size() != size_t(cifar.count) * 3072)
    __builtin_trap();
  return 0;
}
