//===- ReferenceExecutor.cpp - run a quadra model op by op ----------------===//

#include "runtime/ReferenceExecutor.h"

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
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
  explicit NHWC(const Tensor &t)
      : n(t.shape[0]), h(t.shape[1]), w(t.shape[2]), c(t.shape[3]) {}
  size_t at(int64_t i, int64_t y, int64_t x, int64_t ch) const {
    return ((static_cast<size_t>(i) * h + y) * w + x) * c + ch;
  }
};

/// A sliding-window layer: output size and the input position of a tap.
struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t outH, outW;
};

Window windowOf(ArrayRef<int64_t> filterShape, ArrayRef<int64_t> stride,
                ArrayRef<int64_t> padding, const Tensor &input) {
  Window w{filterShape[0], filterShape[1], stride[0], stride[1],
           padding[0],     padding[1],     0,         0};
  w.outH = (input.shape[1] + 2 * w.ph - w.kh) / w.sh + 1;
  w.outW = (input.shape[2] + 2 * w.pw - w.kw) / w.sw + 1;
  return w;
}

/// y[..., o] = bias[o] + Σ_i x[..., i] · weight[i, o]
Tensor linear(const Tensor &x, const Tensor &weight, const Tensor *bias) {
  int64_t cin = weight.shape[0], cout = weight.shape[1];
  std::vector<int64_t> shape = x.shape;
  shape.back() = cout;
  Tensor y(shape);
  size_t rows = x.size() / cin;
  std::vector<double> acc(cout);
  for (size_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < cout; ++o)
      acc[o] = bias ? bias->data[o] : 0.0;
    const float *row = &x.data[r * cin];
    for (int64_t i = 0; i < cin; ++i) {
      double v = row[i];
      const float *wrow = &weight.data[i * cout];
      for (int64_t o = 0; o < cout; ++o)
        acc[o] += v * wrow[o];
    }
    for (int64_t o = 0; o < cout; ++o)
      y.data[r * cout + o] = static_cast<float>(acc[o]);
  }
  return y;
}

Tensor quadratic(const Tensor &a, const Tensor &b, const Tensor &c) {
  Tensor y(a.shape);
  for (size_t i = 0; i < y.size(); ++i)
    y.data[i] = static_cast<float>(double(a.data[i]) * b.data[i] + c.data[i]);
  return y;
}

Tensor conv2d(const Tensor &x, const Tensor &filter, const Tensor *bias,
              const Window &w, int64_t groups) {
  NHWC in(x);
  int64_t cinPerGroup = filter.shape[2], cout = filter.shape[3];
  int64_t coutPerGroup = cout / groups;
  Tensor y({in.n, w.outH, w.outW, cout});
  NHWC out(y);
  for (int64_t i = 0; i < in.n; ++i)
    for (int64_t oy = 0; oy < w.outH; ++oy)
      for (int64_t ox = 0; ox < w.outW; ++ox)
        for (int64_t co = 0; co < cout; ++co) {
          int64_t g = co / coutPerGroup;
          double sum = bias ? bias->data[co] : 0.0;
          for (int64_t ky = 0; ky < w.kh; ++ky) {
            int64_t iy = oy * w.sh - w.ph + ky;
            if (iy < 0 || iy >= in.h)
              continue;
            for (int64_t kx = 0; kx < w.kw; ++kx) {
              int64_t ix = ox * w.sw - w.pw + kx;
              if (ix < 0 || ix >= in.w)
                continue;
              for (int64_t ci = 0; ci < cinPerGroup; ++ci)
                sum += double(x.data[in.at(i, iy, ix, g * cinPerGroup + ci)]) *
                       filter.data[((ky * w.kw + kx) * cinPerGroup + ci) * cout + co];
            }
          }
          y.data[out.at(i, oy, ox, co)] = static_cast<float>(sum);
        }
  return y;
}

/// A depthwise convolution is a grouped one with a group per channel; its
/// [kh, kw, C] filter is the [kh, kw, 1, C] filter of that convolution.
Tensor depthwise(const Tensor &x, const Tensor &filter, const Tensor *bias,
                 const Window &w) {
  Tensor grouped = filter;
  grouped.shape = {filter.shape[0], filter.shape[1], 1, filter.shape[2]};
  return conv2d(x, grouped, bias, w, filter.shape[2]);
}

Tensor layerNorm(const Tensor &x, const Tensor &scale, const Tensor &offset,
                 double eps) {
  int64_t c = x.shape.back();
  Tensor y(x.shape);
  for (size_t r = 0; r < x.size() / c; ++r) {
    const float *row = &x.data[r * c];
    double mean = 0, var = 0;
    for (int64_t i = 0; i < c; ++i)
      mean += row[i];
    mean /= c;
    for (int64_t i = 0; i < c; ++i)
      var += (row[i] - mean) * (row[i] - mean);
    var /= c;
    double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < c; ++i)
      y.data[r * c + i] =
          static_cast<float>((row[i] - mean) * inv * scale.data[i] + offset.data[i]);
  }
  return y;
}

template <typename F> Tensor map(const Tensor &x, F f) {
  Tensor y(x.shape);
  for (size_t i = 0; i < x.size(); ++i)
    y.data[i] = static_cast<float>(f(double(x.data[i]), i));
  return y;
}

std::vector<int64_t> shapeOf(Type type) {
  auto tensor = llvm::cast<RankedTensorType>(type);
  return std::vector<int64_t>(tensor.getShape().begin(), tensor.getShape().end());
}

} // namespace

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

bool checkWeights(func::FuncOp model, const TensorMap &weights,
                  std::string &error) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  for (const WeightInfo &w : listWeights(model)) {
    expected.insert(w.name);
    auto it = weights.find(w.name);
    if (it == weights.end())
      problems.push_back("missing tensor '" + w.name + "' " +
                         describeShape(w.shape));
    else if (it->second.shape != w.shape)
      problems.push_back("tensor '" + w.name + "' has shape " +
                         describeShape(it->second.shape) + ", expected " +
                         describeShape(w.shape));
  }
  for (const auto &[name, tensor] : weights)
    if (!expected.count(name))
      problems.push_back("unexpected tensor '" + name + "' (the model has no "
                         "such weight)");
  if (problems.empty())
    return true;
  error = listProblems(problems);
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
  auto inputType = llvm::cast<RankedTensorType>(model.getArgument(0).getType());
  bool fits = static_cast<int64_t>(input.shape.size()) == inputType.getRank();
  for (int64_t i = 0; fits && i < inputType.getRank(); ++i)
    fits = inputType.isDynamicDim(i) ? input.shape[i] >= 1
                                     : input.shape[i] == inputType.getDimSize(i);
  if (!fits) {
    error = "the input has shape " + describeShape(input.shape) +
            " but the model expects " + describeType(inputType) +
            " (? is the batch)";
    return false;
  }
  if (!checkWeights(model, weights, error))
    return false;

  Block &body = model.getBody().front();
  llvm::DenseMap<Value, Tensor> values;
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
  values[model.getArgument(0)] = input;
  noteLastUse(model.getArgument(0));

  auto get = [&](Value v) -> const Tensor & { return values.find(v)->second; };
  auto optional = [&](Value v) -> const Tensor * {
    return v ? &values.find(v)->second : nullptr;
  };
  for (Operation &op : body) {
    if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
      output = get(ret.getOperand(0));
      return true;
    }
    if (llvm::isa<ChoiceOp>(op)) {
      error = "layer '" + llvm::cast<ChoiceOp>(op).getLayer().str() +
              "' is a search choice; fix a candidate before running the model";
      return false;
    }
    Tensor result;
    bool known = true;
    llvm::TypeSwitch<Operation *>(&op)
        .Case([&](WeightOp w) { result = weights.at(w.getName().str()); })
        .Case([&](Conv2DOp c) {
          const Tensor &x = get(c.getInput());
          result = conv2d(x, get(c.getFilter()), optional(c.getBias()),
                          windowOf(shapeOf(c.getFilter().getType()), c.getStride(),
                                   c.getPadding(), x),
                          static_cast<int64_t>(c.getGroups()));
        })
        .Case([&](DepthwiseConv2DOp c) {
          const Tensor &x = get(c.getInput());
          result = depthwise(x, get(c.getFilter()), optional(c.getBias()),
                             windowOf(shapeOf(c.getFilter().getType()),
                                      c.getStride(), c.getPadding(), x));
        })
        .Case([&](QuadraticDepthwiseConv2DOp c) {
          const Tensor &x = get(c.getInput());
          Window w = windowOf(shapeOf(c.getWa().getType()), c.getStride(),
                              c.getPadding(), x);
          auto bias = [&](unsigned i) {
            return c.getBiases().empty() ? nullptr : &get(c.getBiases()[i]);
          };
          result = quadratic(depthwise(x, get(c.getWa()), bias(0), w),
                             depthwise(x, get(c.getWb()), bias(1), w),
                             depthwise(x, get(c.getWc()), bias(2), w));
        })
        .Case([&](LinearOp l) {
          result = linear(get(l.getInput()), get(l.getWeight()),
                          optional(l.getBias()));
        })
        .Case([&](QuadraticLinearOp l) {
          auto bias = [&](unsigned i) {
            return l.getBiases().empty() ? nullptr : &get(l.getBiases()[i]);
          };
          const Tensor &x = get(l.getInput());
          result = quadratic(linear(x, get(l.getWa()), bias(0)),
                             linear(x, get(l.getWb()), bias(1)),
                             linear(x, get(l.getWc()), bias(2)));
        })
        .Case([&](LayerNormOp l) {
          result = layerNorm(get(l.getInput()), get(l.getScale()),
                             get(l.getOffset()), l.getEpsilon().convertToDouble());
        })
        .Case([&](LayerScaleOp l) {
          const Tensor &scale = get(l.getScale());
          int64_t c = scale.shape[0];
          result = map(get(l.getInput()),
                       [&](double v, size_t i) { return v * scale.data[i % c]; });
        })
        .Case([&](GeluOp g) {
          result = map(get(g.getInput()), [](double v, size_t) {
            return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
          });
        })
        .Case([&](ReluOp r) {
          result = map(get(r.getInput()),
                       [](double v, size_t) { return v > 0 ? v : 0.0; });
        })
        .Case([&](IdentityOp i) { result = get(i.getInput()); })
        .Case([&](AddOp a) {
          const Tensor &rhs = get(a.getRhs());
          result = map(get(a.getLhs()),
                       [&](double v, size_t i) { return v + rhs.data[i]; });
        })
        .Case([&](MulOp m) {
          const Tensor &rhs = get(m.getRhs());
          result = map(get(m.getLhs()),
                       [&](double v, size_t i) { return v * rhs.data[i]; });
        })
        .Case([&](GlobalAvgPoolOp p) {
          const Tensor &x = get(p.getInput());
          NHWC in(x);
          result = Tensor({in.n, in.c});
          for (int64_t i = 0; i < in.n; ++i)
            for (int64_t c = 0; c < in.c; ++c) {
              double sum = 0;
              for (int64_t y = 0; y < in.h; ++y)
                for (int64_t xx = 0; xx < in.w; ++xx)
                  sum += x.data[in.at(i, y, xx, c)];
              result.data[i * in.c + c] = static_cast<float>(sum / (in.h * in.w));
            }
        })
        .Default([&](Operation *) { known = false; });
    if (!known) {
      error = "the reference executor cannot run '" +
              op.getName().getStringRef().str() + "'";
      return false;
    }
    values[op.getResult(0)] = std::move(result);
    noteLastUse(op.getResult(0));
    for (Value v : dying.lookup(&op))
      values.erase(v);
  }
  error = "'" + model.getSymName().str() + "' ends without a return";
  return false;
}

} // namespace qdsl::rt
