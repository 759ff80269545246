//===- TensorFilesFuzzer.cpp - libFuzzer target for weights and arrays ----===//
//
// Feeds arbitrary bytes to the safetensors and .npy readers that every
// weights file and input goes through, in qdsl and in generated projects:
// they must refuse malformed files with an error, never crash, hang or
// allocate what the file merely claims.
//
//===----------------------------------------------------------------------===//

#include "runtime/TensorFiles.h"

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
  qdsl::rt::Tensor tensor;
  if (qdsl::rt::parseNpy(bytes, "fuzz.npy", tensor, error) &&
      tensor.data.size() != qdsl::rt::Tensor::numElements(tensor.shape))
    __builtin_trap();
  return 0;
}
