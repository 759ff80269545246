//===- PyTorchInterop.cpp - weights in the public QuadraNet's layout ------===//

#include "runtime/reference/PyTorchInterop.h"

#include "dialect/QuadraOps.h"
#include "runtime/reference/ReferenceExecutor.h"

#include "llvm/ADT/StringRef.h"

#include <regex>
#include <set>

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::rt {

namespace {

/// How the op reading a weight lays it out, relative to PyTorch.
enum class Layout { Same, Conv, Depthwise, Linear };

Layout layoutOf(WeightOp weight) {
  for (OpOperand &use : weight->getUses()) {
    Operation *user = use.getOwner();
    unsigned index = use.getOperandNumber();
    if (llvm::isa<Conv2DOp>(user) && index == 1)
      return Layout::Conv;
    if (llvm::isa<DepthwiseConv2DOp>(user) && index == 1)
      return Layout::Depthwise;
    if (llvm::isa<QuadraticDepthwiseConv2DOp>(user) && index >= 1 && index <= 3)
      return Layout::Depthwise;
    if (llvm::isa<LinearOp>(user) && index == 1)
      return Layout::Linear;
    if (llvm::isa<QuadraticLinearOp>(user) && index >= 1 && index <= 3)
      return Layout::Linear;
  }
  return Layout::Same;
}

/// PyTorch's shape of a qdsl weight.
std::vector<int64_t> pytorchShape(const std::vector<int64_t> &s, Layout layout) {
  switch (layout) {
  case Layout::Conv: return {s[3], s[2], s[0], s[1]};      // HWIO → OIHW
  case Layout::Depthwise: return {s[2], 1, s[0], s[1]};    // [kh,kw,C] → [C,1,kh,kw]
  case Layout::Linear: return {s[1], s[0]};                // [in,out] → [out,in]
  case Layout::Same: return s;
  }
  return s;
}

/// Copies `from` (qdsl layout `shape`) into PyTorch's layout, or back.
Tensor convert(const Tensor &from, const std::vector<int64_t> &qdslShape,
               Layout layout, bool toPyTorch) {
  Tensor to(toPyTorch ? pytorchShape(qdslShape, layout) : qdslShape);
  const std::vector<int64_t> &s = qdslShape;
  auto copy = [&](size_t qdslIndex, size_t torchIndex) {
    if (toPyTorch)
      to.data[torchIndex] = from.data[qdslIndex];
    else
      to.data[qdslIndex] = from.data[torchIndex];
  };
  switch (layout) {
  case Layout::Same:
    to.data = from.data;
    break;
  case Layout::Conv: {
    int64_t kh = s[0], kw = s[1], ci = s[2], co = s[3];
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t x = 0; x < kw; ++x)
        for (int64_t i = 0; i < ci; ++i)
          for (int64_t o = 0; o < co; ++o)
            copy(((y * kw + x) * ci + i) * co + o, ((o * ci + i) * kh + y) * kw + x);
    break;
  }
  case Layout::Depthwise: {
    int64_t kh = s[0], kw = s[1], c = s[2];
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t x = 0; x < kw; ++x)
        for (int64_t ch = 0; ch < c; ++ch)
          copy((y * kw + x) * c + ch, (ch * kh + y) * kw + x);
    break;
  }
  case Layout::Linear: {
    int64_t in = s[0], out = s[1];
    for (int64_t i = 0; i < in; ++i)
      for (int64_t o = 0; o < out; ++o)
        copy(i * out + o, o * in + i);
    break;
  }
  }
  return to;
}

struct Rename {
  std::regex pattern;
  std::string replacement;
};

const std::vector<Rename> &renames() {
  static const std::vector<Rename> rules = {
      {std::regex(R"(^stem\.conv\.(.*)$)"), "downsample_layers.0.0.$1"},
      {std::regex(R"(^stem\.norm\.(.*)$)"), "downsample_layers.0.1.$1"},
      {std::regex(R"(^head\.norm\.(.*)$)"), "norm.$1"},
      {std::regex(R"(^head\.fc\.(.*)$)"), "head.$1"},
      {std::regex(R"(^(.*)\.QuadraConv\.wa$)"), "$1.QuadraConv.conv1.weight"},
      {std::regex(R"(^(.*)\.QuadraConv\.wb$)"), "$1.QuadraConv.conv2.weight"},
      {std::regex(R"(^(.*)\.QuadraConv\.wc$)"), "$1.QuadraConv.conv3.weight"},
      {std::regex(R"(^(.*)\.QuadraConv\.ba$)"), "$1.QuadraConv.conv1.bias"},
      {std::regex(R"(^(.*)\.QuadraConv\.bb$)"), "$1.QuadraConv.conv2.bias"},
      {std::regex(R"(^(.*)\.QuadraConv\.bc$)"), "$1.QuadraConv.conv3.bias"},
  };
  return rules;
}

} // namespace

std::string toPyTorchName(const std::string &name) {
  // downsample.i is the reference's downsample_layers.(i+1), with the norm
  // first and the convolution second.
  static const std::regex downsample(R"(^downsample\.(\d+)\.(norm|conv)\.(.*)$)");
  std::smatch m;
  if (std::regex_match(name, m, downsample))
    return "downsample_layers." + std::to_string(std::stoi(m[1].str()) + 1) + "." +
           (m[2].str() == "norm" ? "0" : "1") + "." + m[3].str();
  for (const Rename &rule : renames())
    if (std::regex_match(name, rule.pattern))
      return std::regex_replace(name, rule.pattern, rule.replacement);
  return name;
}

std::vector<TensorSpec> pytorchWeightShapes(func::FuncOp model) {
  std::vector<TensorSpec> specs;
  model.walk([&](WeightOp w) {
    auto shape = w.getType().getShape();
    specs.push_back({toPyTorchName(w.getName().str()),
                     pytorchShape(std::vector<int64_t>(shape.begin(), shape.end()), layoutOf(w))});
  });
  return specs;
}

bool exportPyTorch(func::FuncOp model, const TensorMap &weights, TensorMap &state,
                   std::string &error) {
  if (std::vector<std::string> problems = weightProblems(weightShapes(model), weights);
      !problems.empty()) {
    error = listProblems(problems);
    return false;
  }
  bool ok = true;
  model.walk([&](WeightOp w) {
    std::string name = w.getName().str();
    std::string torch = toPyTorchName(name);
    auto shape = w.getType().getShape();
    if (state.count(torch)) {
      error = "two weights map to the PyTorch name '" + torch + "'";
      ok = false;
      return;
    }
    state[torch] = convert(weights.at(name), std::vector<int64_t>(shape.begin(), shape.end()),
                           layoutOf(w), /*toPyTorch=*/true);
  });
  return ok;
}

bool importPyTorch(func::FuncOp model, const TensorMap &state, TensorMap &weights,
                   std::string &error) {
  std::vector<std::string> problems;
  std::set<std::string> used;
  model.walk([&](WeightOp w) {
    std::string name = w.getName().str();
    std::string torch = toPyTorchName(name);
    auto shapeRef = w.getType().getShape();
    std::vector<int64_t> shape(shapeRef.begin(), shapeRef.end());
    Layout layout = layoutOf(w);
    std::vector<int64_t> expected = pytorchShape(shape, layout);
    auto it = state.find(torch);
    if (it == state.end()) {
      problems.push_back("missing tensor '" + torch + "' " + describeShape(expected) +
                         " (for " + name + ")");
      return;
    }
    used.insert(torch);
    if (it->second.shape != expected) {
      problems.push_back("tensor '" + torch + "' has shape " +
                         describeShape(it->second.shape) + ", expected " +
                         describeShape(expected));
      return;
    }
    weights[name] = convert(it->second, shape, layout, /*toPyTorch=*/false);
  });
  for (const auto &entry : state)
    if (!used.count(entry.first))
      problems.push_back("unexpected tensor '" + entry.first +
                         "' (no weight of the model maps to it)");
  if (problems.empty())
    return true;
  error = listProblems(problems);
  return false;
}

} // namespace qdsl::rt
