//===- ReferenceExecutor.cpp - run a quadra model op by op ----------------===//

#include "runtime/reference/ReferenceExecutor.h"

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <type_traits>
#include <set>

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::rt {

namespace {

InitSpec toSpec(InitializerAttr init) {
  InitSpec spec;
  spec.value = init.getValueAsDouble();
  switch (init.getKind()) {
  case quadra::InitKind::Zeros: spec.kind = rt::InitKind::Zeros; break;
  case quadra::InitKind::Ones: spec.kind = rt::InitKind::Ones; break;
  case quadra::InitKind::Constant: spec.kind = rt::InitKind::Constant; break;
  case quadra::InitKind::Normal: spec.kind = rt::InitKind::Normal; break;
  case quadra::InitKind::TruncNormal: spec.kind = rt::InitKind::TruncNormal; break;
  case quadra::InitKind::Uniform: spec.kind = rt::InitKind::Uniform; break;
  }
  return spec;
}

/// Index helpers for an NHWC tensor.
struct NHWC {
  int64_t n, h, w, c;
  explicit NHWC(const std::vector<int64_t> &shape)
      : n(shape[0]), h(shape[1]), w(shape[2]), c(shape[3]) {}
  explicit NHWC(const Array &t) : NHWC(t.shape) {}
  size_t at(int64_t i, int64_t y, int64_t x, int64_t ch) const {
    return ((static_cast<size_t>(i) * h + y) * w + x) * c + ch;
  }
};

/// A sliding-window layer: its filter size, stride, padding and output size.
struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t outH, outW;
};

Window windowOf(ArrayRef<int64_t> filterShape, ArrayRef<int64_t> stride,
                ArrayRef<int64_t> padding, ArrayRef<int64_t> inputShape) {
  Window w{filterShape[0], filterShape[1], stride[0], stride[1],
           padding[0],     padding[1],     0,         0};
  w.outH = (inputShape[1] + 2 * w.ph - w.kh) / w.sh + 1;
  w.outW = (inputShape[2] + 2 * w.pw - w.kw) / w.sw + 1;
  return w;
}

/// Visits every (output position, filter tap) pair of a convolution whose
/// tap falls inside the input: f(inputIndex, filterIndex, outputIndex).
/// The forward pass and both gradients are this one loop nest.
template <typename F>
void forEachTap(const NHWC &in, const Window &w, int64_t groups, int64_t cout, F f) {
  int64_t cinPerGroup = in.c / groups, coutPerGroup = cout / groups;
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t oy = 0; oy < w.outH; ++oy)
      for (int64_t ox = 0; ox < w.outW; ++ox)
        for (int64_t ky = 0; ky < w.kh; ++ky) {
          int64_t iy = oy * w.sh - w.ph + ky;
          if (iy < 0 || iy >= in.h)
            continue;
          for (int64_t kx = 0; kx < w.kw; ++kx) {
            int64_t ix = ox * w.sw - w.pw + kx;
            if (ix < 0 || ix >= in.w)
              continue;
            size_t outBase = ((size_t(i) * w.outH + oy) * w.outW + ox) * cout;
            size_t inBase = in.at(i, iy, ix, 0);
            size_t tapBase = size_t(ky * w.kw + kx) * cinPerGroup * cout;
            for (int64_t g = 0, co = 0; g < groups; ++g)
              for (int64_t k = 0; k < coutPerGroup; ++k, ++co)
                for (int64_t ci = 0; ci < cinPerGroup; ++ci)
                  f(inBase + g * cinPerGroup + ci, tapBase + size_t(ci) * cout + co,
                    outBase + co);
          }
        }
}

Array conv2d(const Array &x, const Array &filter, const Array *bias, const Window &w,
             int64_t groups) {
  NHWC in(x);
  int64_t cout = filter.shape[3];
  Array y({in.n, w.outH, w.outW, cout});
  if (bias)
    for (size_t i = 0; i < y.size(); ++i)
      y.data[i] = bias->data[i % cout];
  forEachTap(in, w, groups, cout, [&](size_t xi, size_t fi, size_t yi) {
    y.data[yi] += x.data[xi] * filter.data[fi];
  });
  return y;
}

Array conv2dGradInput(const Array &dy, const Array &filter, const Window &w,
                      int64_t groups, const std::vector<int64_t> &inputShape) {
  Array dx(inputShape);
  forEachTap(NHWC(inputShape), w, groups, filter.shape[3],
             [&](size_t xi, size_t fi, size_t yi) {
               dx.data[xi] += dy.data[yi] * filter.data[fi];
             });
  return dx;
}

Array conv2dGradFilter(const Array &x, const Array &dy, const Window &w, int64_t groups,
                       const std::vector<int64_t> &filterShape) {
  Array df(filterShape);
  forEachTap(NHWC(x), w, groups, filterShape[3], [&](size_t xi, size_t fi, size_t yi) {
    df.data[fi] += x.data[xi] * dy.data[yi];
  });
  return df;
}

/// A depthwise filter [kh, kw, C] is the [kh, kw, 1, C] filter of a
/// convolution with one group per channel.
std::vector<int64_t> groupedShape(const std::vector<int64_t> &depthwise) {
  return {depthwise[0], depthwise[1], 1, depthwise[2]};
}

Array depthwise(const Array &x, const Array &filter, const Array *bias,
                const Window &w) {
  Array grouped = filter;
  grouped.shape = groupedShape(filter.shape);
  return conv2d(x, grouped, bias, w, filter.shape[2]);
}

/// y[..., o] = bias[o] + Σ_i x[..., i] · weight[i, o]
Array linear(const Array &x, const Array &weight, const Array *bias) {
  int64_t cin = weight.shape[0], cout = weight.shape[1];
  std::vector<int64_t> shape = x.shape;
  shape.back() = cout;
  Array y(shape);
  size_t rows = x.size() / cin;
  for (size_t r = 0; r < rows; ++r) {
    double *out = &y.data[r * cout];
    for (int64_t o = 0; o < cout; ++o)
      out[o] = bias ? bias->data[o] : 0.0;
    for (int64_t i = 0; i < cin; ++i) {
      double v = x.data[r * cin + i];
      const double *wrow = &weight.data[i * cout];
      for (int64_t o = 0; o < cout; ++o)
        out[o] += v * wrow[o];
    }
  }
  return y;
}

Array quadratic(const Array &a, const Array &b, const Array &c) {
  Array y(a.shape);
  for (size_t i = 0; i < y.size(); ++i)
    y.data[i] = a.data[i] * b.data[i] + c.data[i];
  return y;
}

/// Mean and 1 / sqrt(variance + eps) of each row of the last axis.
void rowStatistics(const Array &x, double eps, std::vector<double> &mean,
                   std::vector<double> &inv) {
  int64_t c = x.shape.back();
  size_t rows = x.size() / c;
  mean.assign(rows, 0.0);
  inv.assign(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    const double *row = &x.data[r * c];
    double m = 0, var = 0;
    for (int64_t i = 0; i < c; ++i)
      m += row[i];
    m /= c;
    for (int64_t i = 0; i < c; ++i)
      var += (row[i] - m) * (row[i] - m);
    var /= c;
    mean[r] = m;
    inv[r] = 1.0 / std::sqrt(var + eps);
  }
}

Array layerNorm(const Array &x, const Array &scale, const Array &offset, double eps) {
  int64_t c = x.shape.back();
  std::vector<double> mean, inv;
  rowStatistics(x, eps, mean, inv);
  Array y(x.shape);
  for (size_t i = 0; i < x.size(); ++i) {
    size_t r = i / c, k = i % c;
    y.data[i] = (x.data[i] - mean[r]) * inv[r] * scale.data[k] + offset.data[k];
  }
  return y;
}

void layerNormGrad(const Array &x, const Array &scale, const Array &dy, double eps,
                   Array &dx, Array &dscale, Array &doffset) {
  int64_t c = x.shape.back();
  std::vector<double> mean, inv;
  rowStatistics(x, eps, mean, inv);
  dx = Array(x.shape);
  dscale = Array({c});
  doffset = Array({c});
  std::vector<double> xhat(c), g(c);
  for (size_t r = 0; r < x.size() / c; ++r) {
    double meanG = 0, meanGX = 0;
    for (int64_t k = 0; k < c; ++k) {
      size_t i = r * c + k;
      xhat[k] = (x.data[i] - mean[r]) * inv[r];
      g[k] = dy.data[i] * scale.data[k];
      meanG += g[k];
      meanGX += g[k] * xhat[k];
      dscale.data[k] += dy.data[i] * xhat[k];
      doffset.data[k] += dy.data[i];
    }
    meanG /= c;
    meanGX /= c;
    for (int64_t k = 0; k < c; ++k)
      dx.data[r * c + k] = inv[r] * (g[k] - meanG - xhat[k] * meanGX);
  }
}

template <typename F> Array map(const Array &x, F f) {
  Array y(x.shape);
  for (size_t i = 0; i < x.size(); ++i)
    y.data[i] = f(x.data[i], i);
  return y;
}

Array channelSum(const Array &x) {
  int64_t c = x.shape.back();
  Array y({c});
  for (size_t i = 0; i < x.size(); ++i)
    y.data[i % c] += x.data[i];
  return y;
}

/// Softmax cross-entropy with label smoothing: the mean loss, and its
/// gradient for the logits when `dlogits` is given.
bool softmaxCrossEntropy(const Array &logits, const Array &labels, double smoothing,
                         double &loss, Array *dlogits, std::string &error) {
  int64_t n = logits.shape[0], k = logits.shape[1];
  if (dlogits)
    *dlogits = Array(logits.shape);
  loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    double label = labels.data[i];
    if (!(label >= 0 && label < double(k)) || label != std::floor(label)) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", label);
      error = "label " + std::string(text) + " of example " + std::to_string(i) +
              " is not a class of the " + std::to_string(k) + " logits";
      return false;
    }
    const double *row = &logits.data[i * k];
    double largest = *std::max_element(row, row + k), sum = 0;
    for (int64_t j = 0; j < k; ++j)
      sum += std::exp(row[j] - largest);
    double logSum = largest + std::log(sum);
    for (int64_t j = 0; j < k; ++j) {
      double target = smoothing / k + (j == int64_t(label) ? 1.0 - smoothing : 0.0);
      loss -= target * (row[j] - logSum);
      if (dlogits)
        dlogits->data[i * k + j] = (std::exp(row[j] - logSum) - target) / n;
    }
  }
  loss /= n;
  return true;
}

std::vector<int64_t> shapeOf(Type type) {
  auto tensor = llvm::cast<RankedTensorType>(type);
  return std::vector<int64_t>(tensor.getShape().begin(), tensor.getShape().end());
}

/// A result's shape: its static type with the batch of `like` where the
/// type leaves it open.
std::vector<int64_t> shapeOf(Type type, const Array &like) {
  std::vector<int64_t> shape = shapeOf(type);
  if (!shape.empty() && ShapedType::isDynamic(shape[0]))
    shape[0] = like.shape[0];
  return shape;
}

} // namespace

Array toArray(const Tensor &t) {
  Array a(t.shape);
  std::copy(t.data.begin(), t.data.end(), a.data.begin());
  return a;
}

Tensor toTensor(const Array &a) {
  Tensor t(a.shape);
  for (size_t i = 0; i < a.size(); ++i)
    t.data[i] = static_cast<float>(a.data[i]);
  return t;
}

std::vector<WeightInfo> listWeights(func::FuncOp model) {
  std::vector<WeightInfo> weights;
  model.walk([&](WeightOp op) {
    weights.push_back({op.getName().str(), shapeOf(op.getType()),
                       toSpec(op.getInit())});
  });
  return weights;
}

TensorMap initializeWeights(func::FuncOp model, uint64_t seed) {
  TensorMap weights;
  for (const WeightInfo &w : listWeights(model))
    weights[w.name] = initializeTensor(w.name, w.shape, w.init, seed);
  return weights;
}

std::vector<TensorSpec> weightShapes(func::FuncOp model) {
  std::vector<TensorSpec> shapes;
  for (WeightInfo &w : listWeights(model))
    shapes.push_back({std::move(w.name), std::move(w.shape)});
  return shapes;
}

bool modelWeights(func::FuncOp model, const std::string &path, uint64_t seed,
                  TensorMap &weights, std::string &error) {
  if (path.empty()) {
    weights = initializeWeights(model, seed);
    return true;
  }
  Metadata metadata;
  if (!readSafetensors(path, weights, error, &metadata) ||
      !isOfModel(metadata, model.getSymName().str(), path, error))
    return false;
  std::vector<std::string> problems = weightProblems(weightShapes(model), weights);
  if (problems.empty())
    return true;
  error = describeMisfit(path, model.getSymName().str(), listProblems(problems));
  return false;
}

bool runReference(func::FuncOp model, const TensorMap &weights,
                  const Tensor &input, Tensor &output, std::string &error) {
  if (model.isExternal() || model.getNumArguments() != 1 ||
      model.getNumResults() != 1) {
    error = "'" + model.getSymName().str() +
            "' is not a model: it must take one tensor and return one";
    return false;
  }
  if (std::vector<std::string> problems = weightProblems(weightShapes(model), weights);
      !problems.empty()) {
    error = listProblems(problems);
    return false;
  }
  ArrayMap exact;
  for (const auto &[name, tensor] : weights)
    exact[name] = toArray(tensor);
  std::vector<Array> results;
  if (!evaluate(model, exact, {toArray(input)}, results, error))
    return false;
  output = toTensor(results[0]);
  return true;
}

namespace {

/// Runs one function op by op: one `compute` per op kind, each filling the
/// op's results (`out`, one array per result) or failing with `error`.
class Interpreter {
public:
  Interpreter(const ArrayMap &weights, std::string &error) : weights(weights), error(error) {}

  bool run(func::FuncOp function, const std::vector<Array> &arguments,
           std::vector<Array> &results);

private:
  using Results = SmallVector<Array, 1>;

  bool checkArguments(func::FuncOp function, const std::vector<Array> &arguments);
  /// Dispatches to the op's `compute`; false with `error` set for an op
  /// the executor does not know or one that fails.
  bool computeOp(Operation &op, Results &out);

  bool compute(WeightOp op, Results &out);
  bool compute(Conv2DOp op, Results &out);
  bool compute(DepthwiseConv2DOp op, Results &out);
  bool compute(QuadraticDepthwiseConv2DOp op, Results &out);
  bool compute(LinearOp op, Results &out);
  bool compute(QuadraticLinearOp op, Results &out);
  bool compute(LayerNormOp op, Results &out);
  bool compute(LayerScaleOp op, Results &out);
  bool compute(GeluOp op, Results &out);
  bool compute(ReluOp op, Results &out);
  bool compute(IdentityOp op, Results &out);
  bool compute(AddOp op, Results &out);
  bool compute(MulOp op, Results &out);
  bool compute(GlobalAvgPoolOp op, Results &out);
  // The backward pass.
  bool compute(SoftmaxCrossEntropyOp op, Results &out);
  bool compute(SoftmaxCrossEntropyGradOp op, Results &out);
  // Both convolutions' gradients: a dense one in its groups, a depthwise
  // one's [kh, kw, C] filter as [kh, kw, 1, C] in C groups.
  template <typename Op> bool computeGradInput(Op op, Results &out);
  template <typename Op> bool computeGradFilter(Op op, Results &out);
  bool compute(LinearGradInputOp op, Results &out);
  bool compute(LinearGradWeightOp op, Results &out);
  bool compute(ChannelSumOp op, Results &out);
  bool compute(LayerNormGradOp op, Results &out);
  bool compute(GeluGradOp op, Results &out);
  bool compute(ReluGradOp op, Results &out);
  bool compute(GlobalAvgPoolGradOp op, Results &out);

  const Array &get(Value v) const { return values.find(v)->second; }
  const Array *optional(Value v) const { return v ? &values.find(v)->second : nullptr; }
  Window window(Value filter, ArrayRef<int64_t> stride, ArrayRef<int64_t> padding,
                const std::vector<int64_t> &input) const {
    return windowOf(shapeOf(filter.getType()), stride, padding, input);
  }

  const ArrayMap &weights;
  std::string &error;
  llvm::DenseMap<Value, Array> values;
};

/// The groups of a convolution gradient op; none for a depthwise one.
template <typename Op> std::optional<int64_t> groupsOf(Op op) {
  if constexpr (std::is_same_v<Op, Conv2DGradInputOp> || std::is_same_v<Op, Conv2DGradFilterOp>)
    return static_cast<int64_t>(op.getGroups());
  return std::nullopt;
}

template <typename Op> bool Interpreter::computeGradInput(Op op, Results &out) {
  const Array &dy = get(op.getDy());
  std::vector<int64_t> shape = shapeOf(op.getType(), dy);
  std::optional<int64_t> groups = groupsOf(op);
  Array filter = get(op.getFilter());
  if (!groups)
    filter.shape = groupedShape(filter.shape);
  out[0] = conv2dGradInput(dy, filter,
                           window(op.getFilter(), op.getStride(), op.getPadding(), shape),
                           groups.value_or(shape.back()), shape);
  return true;
}

template <typename Op> bool Interpreter::computeGradFilter(Op op, Results &out) {
  const Array &x = get(op.getInput());
  std::vector<int64_t> shape = shapeOf(op.getType());
  std::optional<int64_t> groups = groupsOf(op);
  out[0] = conv2dGradFilter(x, get(op.getDy()),
                            windowOf(shape, op.getStride(), op.getPadding(), x.shape),
                            groups.value_or(shape.back()), groups ? shape : groupedShape(shape));
  out[0].shape = shape;
  return true;
}

bool Interpreter::checkArguments(func::FuncOp function, const std::vector<Array> &arguments) {
  if (function.isExternal() || function.getNumArguments() != arguments.size()) {
    error = "'" + function.getSymName().str() + "' takes " +
            std::to_string(function.getNumArguments()) + " arguments, not " +
            std::to_string(arguments.size());
    return false;
  }
  int64_t batch = -1;
  for (auto [i, argument] : llvm::enumerate(arguments)) {
    auto type = llvm::cast<RankedTensorType>(function.getArgument(i).getType());
    bool fits = static_cast<int64_t>(argument.shape.size()) == type.getRank();
    for (int64_t d = 0; fits && d < type.getRank(); ++d)
      fits = type.isDynamicDim(d) ? argument.shape[d] >= 1
                                  : argument.shape[d] == type.getDimSize(d);
    if (fits && type.getRank() > 0 && type.isDynamicDim(0)) {
      fits = batch < 0 || argument.shape[0] == batch;
      batch = argument.shape[0];
    }
    if (!fits) {
      error = arguments.size() == 1
                  ? "the input has shape " + describeShape(argument.shape) +
                        " but the model expects " + describeType(type) + " (? is the batch)"
                  : "argument " + std::to_string(i) + " has shape " +
                        describeShape(argument.shape) + " but '" +
                        function.getSymName().str() + "' expects " + describeType(type) +
                        " (? is the batch, the same for every argument)";
      return false;
    }
  }
  return true;
}

bool Interpreter::run(func::FuncOp function, const std::vector<Array> &arguments,
                      std::vector<Array> &results) {
  if (!checkArguments(function, arguments))
    return false;
  // Each value is freed after its last use.
  Block &body = function.getBody().front();
  llvm::DenseMap<Operation *, unsigned> position;
  unsigned index = 0;
  for (Operation &op : body)
    position[&op] = index++;
  llvm::DenseMap<Operation *, SmallVector<Value>> dying;
  auto noteLastUse = [&](Value v) {
    Operation *last = nullptr;
    for (Operation *user : v.getUsers())
      if (!last || position[user] > position[last])
        last = user;
    if (last)
      dying[last].push_back(v);
  };
  for (auto [i, argument] : llvm::enumerate(arguments)) {
    values[function.getArgument(i)] = argument;
    noteLastUse(function.getArgument(i));
  }
  for (Operation &op : body) {
    if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
      results.clear();
      for (Value v : ret.getOperands())
        results.push_back(get(v));
      return true;
    }
    if (auto choice = llvm::dyn_cast<ChoiceOp>(op)) {
      error = "layer '" + choice.getLayer().str() +
              "' is a search choice; fix a candidate before running the model";
      return false;
    }
    Results out(op.getNumResults());
    if (!computeOp(op, out))
      return false;
    for (auto [v, array] : llvm::zip(op.getResults(), out)) {
      values[v] = std::move(array);
      noteLastUse(v);
    }
    for (Value v : dying.lookup(&op))
      values.erase(v);
  }
  error = "'" + function.getSymName().str() + "' ends without a return";
  return false;
}

bool Interpreter::computeOp(Operation &op, Results &out) {
  std::optional<bool> done =
      llvm::TypeSwitch<Operation *, std::optional<bool>>(&op)
          .Case<WeightOp, Conv2DOp, DepthwiseConv2DOp, QuadraticDepthwiseConv2DOp, LinearOp,
                QuadraticLinearOp, LayerNormOp, LayerScaleOp, GeluOp, ReluOp, IdentityOp, AddOp,
                MulOp, GlobalAvgPoolOp, SoftmaxCrossEntropyOp, SoftmaxCrossEntropyGradOp,
                LinearGradInputOp, LinearGradWeightOp, ChannelSumOp, LayerNormGradOp,
                GeluGradOp, ReluGradOp, GlobalAvgPoolGradOp>(
              [&](auto typed) -> std::optional<bool> { return compute(typed, out); })
          .Case<Conv2DGradInputOp, DepthwiseConv2DGradInputOp>(
              [&](auto typed) -> std::optional<bool> { return computeGradInput(typed, out); })
          .Case<Conv2DGradFilterOp, DepthwiseConv2DGradFilterOp>(
              [&](auto typed) -> std::optional<bool> { return computeGradFilter(typed, out); })
          .Default([](Operation *) -> std::optional<bool> { return std::nullopt; });
  if (!done) {
    error = "the reference executor cannot run '" + op.getName().getStringRef().str() + "'";
    return false;
  }
  return *done;
}

bool Interpreter::compute(WeightOp w, Results &out) {
  auto it = weights.find(w.getName().str());
  if (it == weights.end()) {
    error = "missing tensor '" + w.getName().str() + "'";
    return false;
  }
  out[0] = it->second;
  return true;
}

bool Interpreter::compute(Conv2DOp c, Results &out) {
  const Array &x = get(c.getInput());
  out[0] = conv2d(x, get(c.getFilter()), optional(c.getBias()),
                  window(c.getFilter(), c.getStride(), c.getPadding(), x.shape),
                  static_cast<int64_t>(c.getGroups()));
  return true;
}

bool Interpreter::compute(DepthwiseConv2DOp c, Results &out) {
  const Array &x = get(c.getInput());
  out[0] = depthwise(x, get(c.getFilter()), optional(c.getBias()),
                     window(c.getFilter(), c.getStride(), c.getPadding(), x.shape));
  return true;
}

bool Interpreter::compute(QuadraticDepthwiseConv2DOp c, Results &out) {
  const Array &x = get(c.getInput());
  Window w = window(c.getWa(), c.getStride(), c.getPadding(), x.shape);
  auto bias = [&](unsigned i) { return c.getBiases().empty() ? nullptr : &get(c.getBiases()[i]); };
  out[0] = quadratic(depthwise(x, get(c.getWa()), bias(0), w),
                     depthwise(x, get(c.getWb()), bias(1), w),
                     depthwise(x, get(c.getWc()), bias(2), w));
  return true;
}

bool Interpreter::compute(LinearOp l, Results &out) {
  out[0] = linear(get(l.getInput()), get(l.getWeight()), optional(l.getBias()));
  return true;
}

bool Interpreter::compute(QuadraticLinearOp l, Results &out) {
  auto bias = [&](unsigned i) { return l.getBiases().empty() ? nullptr : &get(l.getBiases()[i]); };
  const Array &x = get(l.getInput());
  out[0] = quadratic(linear(x, get(l.getWa()), bias(0)), linear(x, get(l.getWb()), bias(1)),
                     linear(x, get(l.getWc()), bias(2)));
  return true;
}

bool Interpreter::compute(LayerNormOp l, Results &out) {
  out[0] = layerNorm(get(l.getInput()), get(l.getScale()), get(l.getOffset()),
                     l.getEpsilon().convertToDouble());
  return true;
}

bool Interpreter::compute(LayerScaleOp l, Results &out) {
  const Array &scale = get(l.getScale());
  int64_t c = scale.shape[0];
  out[0] = map(get(l.getInput()), [&](double v, size_t i) { return v * scale.data[i % c]; });
  return true;
}

bool Interpreter::compute(GeluOp g, Results &out) {
  out[0] = map(get(g.getInput()),
               [](double v, size_t) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); });
  return true;
}

bool Interpreter::compute(ReluOp r, Results &out) {
  out[0] = map(get(r.getInput()), [](double v, size_t) { return v > 0 ? v : 0.0; });
  return true;
}

bool Interpreter::compute(IdentityOp i, Results &out) {
  out[0] = get(i.getInput());
  return true;
}

bool Interpreter::compute(AddOp a, Results &out) {
  const Array &rhs = get(a.getRhs());
  out[0] = map(get(a.getLhs()), [&](double v, size_t i) { return v + rhs.data[i]; });
  return true;
}

bool Interpreter::compute(MulOp m, Results &out) {
  const Array &rhs = get(m.getRhs());
  out[0] = map(get(m.getLhs()), [&](double v, size_t i) { return v * rhs.data[i]; });
  return true;
}

bool Interpreter::compute(GlobalAvgPoolOp p, Results &out) {
  const Array &x = get(p.getInput());
  NHWC in(x);
  Array &result = out[0] = Array({in.n, in.c});
  for (size_t i = 0; i < x.size(); ++i)
    result.data[(i / (in.h * in.w * in.c)) * in.c + i % in.c] += x.data[i] / double(in.h * in.w);
  return true;
}

bool Interpreter::compute(SoftmaxCrossEntropyOp l, Results &out) {
  double loss;
  out[0] = Array(std::vector<int64_t>{});
  if (!softmaxCrossEntropy(get(l.getLogits()), get(l.getLabels()),
                           l.getSmoothing().convertToDouble(), loss, nullptr, error))
    return false;
  out[0].data[0] = loss;
  return true;
}

bool Interpreter::compute(SoftmaxCrossEntropyGradOp l, Results &out) {
  double loss;
  return softmaxCrossEntropy(get(l.getLogits()), get(l.getLabels()),
                             l.getSmoothing().convertToDouble(), loss, &out[0], error);
}

bool Interpreter::compute(LinearGradInputOp l, Results &out) {
  const Array &dy = get(l.getDy()), &w = get(l.getWeight());
  int64_t cin = w.shape[0], cout = w.shape[1];
  Array &result = out[0] = Array(shapeOf(l.getType(), dy));
  for (size_t r = 0; r < dy.size() / cout; ++r)
    for (int64_t i = 0; i < cin; ++i) {
      double sum = 0;
      for (int64_t o = 0; o < cout; ++o)
        sum += dy.data[r * cout + o] * w.data[i * cout + o];
      result.data[r * cin + i] = sum;
    }
  return true;
}

bool Interpreter::compute(LinearGradWeightOp l, Results &out) {
  const Array &x = get(l.getInput()), &dy = get(l.getDy());
  Array &result = out[0] = Array(shapeOf(l.getType()));
  int64_t cin = result.shape[0], cout = result.shape[1];
  for (size_t r = 0; r < x.size() / cin; ++r)
    for (int64_t i = 0; i < cin; ++i)
      for (int64_t o = 0; o < cout; ++o)
        result.data[i * cout + o] += x.data[r * cin + i] * dy.data[r * cout + o];
  return true;
}

bool Interpreter::compute(ChannelSumOp c, Results &out) {
  out[0] = channelSum(get(c.getInput()));
  return true;
}

bool Interpreter::compute(LayerNormGradOp l, Results &out) {
  layerNormGrad(get(l.getInput()), get(l.getScale()), get(l.getDy()),
                l.getEpsilon().convertToDouble(), out[0], out[1], out[2]);
  return true;
}

bool Interpreter::compute(GeluGradOp g, Results &out) {
  const Array &dy = get(g.getDy());
  out[0] = map(get(g.getInput()), [&](double v, size_t i) {
    double cdf = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
    double pdf = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
    return dy.data[i] * (cdf + v * pdf);
  });
  return true;
}

bool Interpreter::compute(ReluGradOp r, Results &out) {
  const Array &dy = get(r.getDy());
  out[0] = map(get(r.getInput()), [&](double v, size_t i) { return v > 0 ? dy.data[i] : 0.0; });
  return true;
}

bool Interpreter::compute(GlobalAvgPoolGradOp p, Results &out) {
  const Array &dy = get(p.getDy());
  Array &result = out[0] = Array(shapeOf(p.getType(), dy));
  NHWC in(result);
  for (size_t i = 0; i < result.size(); ++i)
    result.data[i] = dy.data[(i / (in.h * in.w * in.c)) * in.c + i % in.c] / double(in.h * in.w);
  return true;
}

} // namespace

bool evaluate(func::FuncOp function, const ArrayMap &weights,
              const std::vector<Array> &arguments, std::vector<Array> &results,
              std::string &error) {
  return Interpreter(weights, error).run(function, arguments, results);
}

} // namespace qdsl::rt
