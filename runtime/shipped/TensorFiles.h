//===- TensorFiles.h - safetensors and NumPy .npy files ---------*- C++ -*-===//
//
// Weights are safetensors files (an 8-byte little-endian header length, a
// JSON header of name -> {dtype, shape, data_offsets}, then the raw data);
// inputs and outputs are NumPy .npy arrays. Only float32 data is accepted
// (F32 / '<f4'). Every reader checks sizes and offsets against the file and
// reports the first problem, naming the file and the tensor; writers go
// through a temporary file and a rename, so a reader never sees half a file.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_TENSORFILES_H
#define QDSL_RUNTIME_SHIPPED_TENSORFILES_H

#include "Tensor.h"

#include <cstdint>
#include <string>

namespace qdsl::rt {

using Metadata = std::map<std::string, std::string>;

bool readSafetensors(const std::string &path, TensorMap &tensors,
                     std::string &error, Metadata *metadata = nullptr);
/// The same for a file's bytes already in memory; `name` is used in errors.
bool parseSafetensors(const std::string &bytes, const std::string &name,
                      TensorMap &tensors, std::string &error,
                      Metadata *metadata = nullptr);
bool writeSafetensors(const std::string &path, const TensorMap &tensors,
                      const Metadata &metadata, std::string &error);

bool readNpy(const std::string &path, Tensor &tensor, std::string &error);

/// A .npy array of any little-endian numeric type: its header, and its data
/// as the file holds it (at `dataOffset` of the file's bytes).
struct NpyArray {
  char kind = 'f';  // NumPy's kind: f(loat), i(nt), u(nsigned), b(ool)
  int itemSize = 4;
  std::vector<int64_t> shape;
  size_t dataOffset = 0;

  /// "float32", "int64", ...
  std::string typeName() const;
  /// The data of `bytes`, the file this header was read from.
  const char *data(const std::string &bytes) const { return bytes.data() + dataOffset; }
  size_t dataBytes(const std::string &bytes) const { return bytes.size() - dataOffset; }
};
/// Reads and checks the header (the data's size against the shape); the
/// data stays in `bytes`.
bool parseNpyArray(const std::string &bytes, const std::string &name, NpyArray &array,
                   std::string &error);

/// Class labels, one per example: a 1-D .npy array of int32, int64, uint8,
/// or float32 holding whole numbers (checked).
bool readNpyLabels(const std::string &path, std::vector<int64_t> &labels, std::string &error);
bool parseNpy(const std::string &bytes, const std::string &name, Tensor &tensor,
              std::string &error);
bool writeNpy(const std::string &path, const Tensor &tensor, std::string &error);

/// False, with an error naming `path` and the element, when `tensor` (read
/// from it) holds a NaN or an infinity: a model's inputs must be finite.
bool isFinite(const Tensor &tensor, const std::string &path, std::string &error);

/// False, with an error naming `path`, when `metadata` says the file holds
/// the weights of another model than `model` (qdsl.model).
bool isOfModel(const Metadata &metadata, const std::string &model, const std::string &path,
               std::string &error);

/// What a pipe or device (a file whose size is not known before reading
/// it, e.g. `--input <(...)`, or /dev/zero by mistake) may give a reader at
/// most unless it says less.
inline constexpr uint64_t kMaxStreamBytes = uint64_t(1) << 30;

/// The whole of `path`, refused before anything is allocated when a regular
/// file is larger than `limit` bytes; a pipe or device is read up to
/// min(`limit`, kMaxStreamBytes) and refused beyond; a FIFO that nothing
/// writes reads as empty rather than blocking. The error names `path` and
/// says why it cannot be read.
bool readFileBytes(const std::string &path, std::string &bytes, std::string &error,
                   uint64_t limit = UINT64_MAX);

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// synced and renamed over it (special files are written through; see
/// docs/RELIABILITY.md).
bool writeFileAtomically(const std::string &path, const std::string &bytes,
                         std::string &error);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_TENSORFILES_H
