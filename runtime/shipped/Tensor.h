//===- Tensor.h - a dense float tensor for weights and data -----*- C++ -*-===//
//
// Shared by qdsl and by every project it generates (the files of
// runtime/shipped/ are copied there), so it uses only the C++ standard
// library.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_TENSOR_H
#define QDSL_RUNTIME_SHIPPED_TENSOR_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qdsl::rt {

/// Row-major float32 data with its shape.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape)
      : shape(std::move(shape)), data(numElements(this->shape), 0.0f) {}

  /// Product of the dimensions; 1 for a scalar.
  static size_t numElements(const std::vector<int64_t> &shape) {
    size_t n = 1;
    for (int64_t d : shape)
      n *= static_cast<size_t>(d);
    return n;
  }
  size_t size() const { return data.size(); }
};

/// Tensors by name, as in a weights file.
using TensorMap = std::map<std::string, Tensor>;

/// `[2, 3, 4]`
std::string describeShape(const std::vector<int64_t> &shape);

/// Problems found checking a weights file, one a line: the first `limit`
/// and a count of the rest, so a wrong file does not flood the terminal.
std::string listProblems(const std::vector<std::string> &problems,
                         size_t limit = 8);

/// The index of the first NaN or infinity in `values`; values.size() when
/// there is none.
size_t firstNonFinite(const std::vector<float> &values);

/// A tensor a model declares: its name and shape.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

/// What keeps `tensors` from holding exactly the tensors of `expected`:
/// every missing, misshapen, unexpected or not finite tensor, one a problem. The one
/// check of a weights file against a model, in qdsl and in generated code.
std::vector<std::string> weightProblems(const std::vector<TensorSpec> &expected,
                                        const TensorMap &tensors);

/// "'SOURCE' does not fit model MODEL:" and `problems` (as listProblems
/// writes them), one an indented line.
std::string describeMisfit(const std::string &source, const std::string &model,
                           const std::string &problems);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_TENSOR_H
