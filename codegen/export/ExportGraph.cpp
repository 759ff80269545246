//===- ExportGraph.cpp - a model as a graph of framework ops --------------===//

#include "codegen/export/ExportGraph.h"

#include "dialect/QuadraOps.h"
#include "runtime/reference/PyTorchInterop.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::exporter {

namespace {

constexpr std::array<int64_t, 4> kToChannelsLast = {0, 2, 3, 1};
constexpr std::array<int64_t, 4> kToChannelsFirst = {0, 3, 1, 2};

/// A tensor of the model in the layouts built so far: an image tensor may
/// exist channels-first, channels-last or both; any other has one form,
/// its channels last.
struct Forms {
  std::string first, last;
};

class Lowering {
public:
  Lowering(GraphBuilder &builder, std::string &error) : builder(builder), error(error) {}

  bool run(func::FuncOp model) {
    Block &body = model.getBody().front();
    if (body.getNumArguments() != 1)
      return fail(model, "the model takes " + std::to_string(body.getNumArguments()) +
                             " inputs; exported models take one");
    BlockArgument x = body.getArgument(0);
    std::string name = builder.input(exportedInputShape(model));
    (isImage(x) ? forms[x].first : forms[x].last) = name;
    std::string lastLayer;
    for (Operation &op : body.getOperations()) {
      if (llvm::isa<WeightOp>(op))
        continue;
      if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
        if (ret.getNumOperands() != 1)
          return fail(&op, "the model returns " + std::to_string(ret.getNumOperands()) +
                               " values; exported models return one");
        Value result = ret.getOperand(0);
        builder.output(isImage(result) ? channelsFirst(result) : channelsLast(result));
        return true;
      }
      std::string layer = getLayerName(op.getLoc());
      if (!layer.empty() && layer != lastLayer) {
        builder.beginLayer(layer);
        lastLayer = layer;
      }
      if (!lower(op))
        return false;
    }
    return fail(model, "the model has no return");
  }

private:
  bool fail(Operation *op, const std::string &message) {
    std::string layer = getLayerName(op->getLoc());
    error = (layer.empty() ? "" : "layer '" + layer + "': ") + message;
    return false;
  }

  static bool isImage(Value v) {
    return llvm::cast<RankedTensorType>(v.getType()).getRank() == 4;
  }

  /// The PyTorch name of the weight `v`, or "" when `v` is not a weight.
  static std::string weightName(Value v) {
    auto weight = v.getDefiningOp<WeightOp>();
    return weight ? rt::toPyTorchName(weight.getName().str()) : std::string();
  }

  std::string channelsFirst(Value v) {
    Forms &f = forms[v];
    if (f.first.empty())
      f.first = builder.transpose(f.last, kToChannelsFirst);
    return f.first;
  }
  std::string channelsLast(Value v) {
    Forms &f = forms[v];
    if (f.last.empty())
      f.last = builder.transpose(f.first, kToChannelsLast);
    return f.last;
  }

  /// A weight operand's name; false (with the error) when it is computed.
  bool weight(Operation *op, Value v, std::string &name) {
    name = weightName(v);
    if (name.empty())
      return fail(op, "'" + op->getName().getStringRef().str() +
                          "' reads a computed tensor where a weight is expected; exported "
                          "models read weights there");
    return true;
  }
  bool optionalWeight(Operation *op, Value v, std::optional<std::string> &name) {
    if (!v)
      return true;
    std::string found;
    if (!weight(op, v, found))
      return false;
    name = found;
    return true;
  }

  bool convolution(Operation *op, Value filter, Value bias, ArrayRef<int64_t> stride,
                   ArrayRef<int64_t> padding, int64_t groups, bool depthwise,
                   std::string &result) {
    Convolution conv;
    if (!weight(op, filter, conv.weight) || !optionalWeight(op, bias, conv.bias))
      return false;
    auto shape = llvm::cast<RankedTensorType>(filter.getType()).getShape();
    conv.kernel = {shape[0], shape[1]};
    conv.stride = {stride[0], stride[1]};
    conv.padding = {padding[0], padding[1]};
    conv.groups = depthwise ? shape[2] : groups;
    result = builder.convolution(channelsFirst(op->getOperand(0)), conv);
    return true;
  }

  /// (a ⊙ b) + c, in the layout `a` and `b` were built in.
  std::string quadratic(const std::string &a, const std::string &b, const std::string &c) {
    return builder.add(builder.multiply(a, b), c);
  }

  bool lower(Operation &op) {
    Operation *o = &op;
    return llvm::TypeSwitch<Operation *, bool>(o)
        .Case<Conv2DOp>([&](Conv2DOp c) {
          std::string y;
          if (!convolution(o, c.getFilter(), c.getBias(), c.getStride(), c.getPadding(),
                           static_cast<int64_t>(c.getGroups()), false, y))
            return false;
          forms[c.getResult()].first = y;
          return true;
        })
        .Case<DepthwiseConv2DOp>([&](DepthwiseConv2DOp c) {
          std::string y;
          if (!convolution(o, c.getFilter(), c.getBias(), c.getStride(), c.getPadding(), 0,
                           true, y))
            return false;
          forms[c.getResult()].first = y;
          return true;
        })
        .Case<QuadraticDepthwiseConv2DOp>([&](QuadraticDepthwiseConv2DOp c) {
          auto bias = [&](unsigned i) { return c.getBiases().empty() ? Value() : c.getBiases()[i]; };
          std::string a, b, cc;
          if (!convolution(o, c.getWa(), bias(0), c.getStride(), c.getPadding(), 0, true, a) ||
              !convolution(o, c.getWb(), bias(1), c.getStride(), c.getPadding(), 0, true, b) ||
              !convolution(o, c.getWc(), bias(2), c.getStride(), c.getPadding(), 0, true, cc))
            return false;
          forms[c.getResult()].first = quadratic(a, b, cc);
          return true;
        })
        .Case<LinearOp>([&](LinearOp l) {
          std::string w;
          std::optional<std::string> b;
          if (!weight(o, l.getWeight(), w) || !optionalWeight(o, l.getBias(), b))
            return false;
          forms[l.getResult()].last = builder.linear(channelsLast(l.getInput()), w, b);
          return true;
        })
        .Case<QuadraticLinearOp>([&](QuadraticLinearOp l) {
          std::string x = channelsLast(l.getInput());
          std::string parts[3];
          Value weights[3] = {l.getWa(), l.getWb(), l.getWc()};
          for (unsigned i = 0; i < 3; ++i) {
            std::string w;
            std::optional<std::string> b;
            if (!weight(o, weights[i], w) ||
                !optionalWeight(o, l.getBiases().empty() ? Value() : l.getBiases()[i], b))
              return false;
            parts[i] = builder.linear(x, w, b);
          }
          forms[l.getResult()].last = quadratic(parts[0], parts[1], parts[2]);
          return true;
        })
        .Case<LayerNormOp>([&](LayerNormOp l) {
          std::string scale, offset;
          if (!weight(o, l.getScale(), scale) || !weight(o, l.getOffset(), offset))
            return false;
          forms[l.getResult()].last = builder.layerNorm(channelsLast(l.getInput()), scale,
                                                        offset, l.getEpsilon().convertToDouble());
          return true;
        })
        .Case<LayerScaleOp>([&](LayerScaleOp l) {
          std::string scale;
          if (!weight(o, l.getScale(), scale))
            return false;
          forms[l.getResult()].last = builder.scale(channelsLast(l.getInput()), scale);
          return true;
        })
        .Case<GeluOp, ReluOp, IdentityOp>([&](Operation *unary) {
          Value x = unary->getOperand(0);
          const Forms in = forms[x];
          Forms out;
          auto apply = [&](const std::string &v) {
            if (v.empty())
              return v;
            if (llvm::isa<GeluOp>(unary))
              return builder.gelu(v);
            if (llvm::isa<ReluOp>(unary))
              return builder.relu(v);
            return v;
          };
          // One form is computed: the channels-last one when both exist.
          if (!in.last.empty())
            out.last = apply(in.last);
          else
            out.first = apply(in.first);
          forms[unary->getResult(0)] = out;
          return true;
        })
        .Case<AddOp, MulOp>([&](Operation *binary) {
          Value lhs = binary->getOperand(0), rhs = binary->getOperand(1);
          const Forms l = forms[lhs], r = forms[rhs];
          // In a form both operands have, else in the left operand's.
          bool last = (!l.last.empty() && !r.last.empty()) ||
                      ((l.first.empty() || r.first.empty()) && !l.last.empty());
          std::string a = last ? channelsLast(lhs) : channelsFirst(lhs);
          std::string b = last ? channelsLast(rhs) : channelsFirst(rhs);
          std::string y = llvm::isa<AddOp>(binary) ? builder.add(a, b) : builder.multiply(a, b);
          Forms out;
          (last ? out.last : out.first) = y;
          forms[binary->getResult(0)] = out;
          return true;
        })
        .Case<GlobalAvgPoolOp>([&](GlobalAvgPoolOp p) {
          forms[p.getResult()].last = builder.globalAveragePool(channelsFirst(p.getInput()));
          return true;
        })
        .Case<ChoiceOp>([&](ChoiceOp) {
          return fail(o, "this is a choice of a search space: export one architecture of it "
                         "(--choices, or the derived.qd of a search)");
        })
        .Default([&](Operation *other) {
          return fail(other, "'" + other->getName().getStringRef().str() +
                                 "' has no exported form (exported models hold the ops of "
                                 "inference only)");
        });
  }

  GraphBuilder &builder;
  std::string &error;
  llvm::DenseMap<Value, Forms> forms;
};

} // namespace

std::vector<int64_t> exportedInputShape(func::FuncOp model) {
  auto type = llvm::cast<RankedTensorType>(model.getArgumentTypes()[0]);
  std::vector<int64_t> shape(type.getShape().begin() + 1, type.getShape().end());
  if (shape.size() == 3)
    return {shape[2], shape[0], shape[1]};
  return shape;
}

bool lowerModel(func::FuncOp model, GraphBuilder &builder, std::string &error) {
  return Lowering(builder, error).run(model);
}

} // namespace qdsl::exporter
