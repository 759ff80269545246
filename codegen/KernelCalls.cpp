//===- KernelCalls.cpp - how each kernel calls its implementation ---------===//

#include "codegen/KernelCalls.h"

#include "codegen/KernelFamilies.h"

#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace qdsl::quadra;
using qdsl::contract::Activation;

namespace qdsl::codegen {

std::string KernelCall::configuration() const {
  std::string key = implementation;
  for (const auto &[name, value] : params)
    key += " " + name + "=" + value;
  return key;
}

int linearPanel(int64_t outChannels, bool quadratic, const Target &target) {
  const int v = target.vectorFloats;
  if (outChannels % v != 0)
    return static_cast<int>(outChannels);
  // 12 accumulators: 3 vectors × 4 rows or 2 vectors × 6 rows; the
  // quadratic layer's three sums need one vector each.
  for (int vectors : quadratic ? std::initializer_list<int>{1}
                               : std::initializer_list<int>{3, 2, 1})
    if (outChannels % (vectors * v) == 0)
      return vectors * v;
  return v;
}

bool isBatched(Value value) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  return type.getRank() >= 1 && type.isDynamicDim(0);
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }
std::string str(bool v) { return v ? "true" : "false"; }
/// An implementation's `activation` or `activation_grad` parameter.
std::string str(Activation a) { return std::to_string(static_cast<int>(a)); }
std::string strFloat(double v) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%.9g", v);
  return s;
}

/// Product of all but the last dimension of an example (or of the tensor
/// when it has no batch).
int64_t rowsPerExample(Value v) {
  auto shape = llvm::cast<RankedTensorType>(v.getType()).getShape();
  int64_t rows = 1;
  for (size_t i = isBatched(v) ? 1 : 0; i + 1 < shape.size(); ++i)
    rows *= shape[i];
  return rows;
}

int64_t dim(Value v, int i) {
  auto shape = llvm::cast<RankedTensorType>(v.getType()).getShape();
  return shape[i < 0 ? shape.size() + i : i];
}

} // namespace

namespace describers {

/// Reads a kernel's ops in order and resolves their operands to the
/// kernel's inputs.
class KernelReader {
public:
  KernelReader(KernelOp kernel) : kernel(kernel) {
    for (Operation &op : kernel.getKernelOps())
      ops.push_back(&op);
  }
  /// Reads only `ops`, some of the kernel's.
  KernelReader(KernelOp kernel, std::vector<Operation *> ops)
      : kernel(kernel), ops(std::move(ops)) {}

  /// The next op if it has type T (and consumes it), else null.
  template <typename T> T take() {
    if (next < ops.size())
      if (auto op = llvm::dyn_cast<T>(ops[next])) {
        ++next;
        return op;
      }
    return T();
  }
  bool done() const { return next == ops.size(); }

  /// The kernel input an inner value comes from (null for a value computed
  /// inside the kernel).
  Value outer(Value inner) const {
    if (auto arg = llvm::dyn_cast<BlockArgument>(inner))
      if (arg.getOwner()->getParentOp() == kernel.getOperation())
        return kernel.getInputs()[arg.getArgNumber()];
    return Value();
  }

  KernelArgument activation(Value inner, View view) const {
    return KernelArgument{view, outer(inner), "", 0, false, ""};
  }

  /// A weight operand; fails (returns false) when it is not a weight.
  bool weight(Value inner, View view, KernelArgument &arg, int panel = 0) const {
    Value v = outer(inner);
    auto w = v ? v.getDefiningOp<WeightOp>() : WeightOp();
    if (!w)
      return false;
    arg = KernelArgument{view, Value(), w.getName().str(), panel, false, ""};
    return true;
  }

  std::string describe() const {
    std::string s;
    for (Operation *op : ops)
      s += (s.empty() ? "" : ", ") + op->getName().getStringRef().str();
    return s;
  }

  mutable KernelOp kernel;

private:
  std::vector<Operation *> ops;
  size_t next = 0;
};

/// Accumulates a call; any weight that is not a quadra.weight fails it.
struct CallBuilder {
  KernelReader &reader;
  KernelCall &call;
  const Target &target;
  bool ok = true;

  void param(const std::string &name, const std::string &value) {
    call.params.push_back({name, value});
  }
  /// An argument and its role (the CUDA kernels' tensor field).
  void input(Value inner, View view, const char *role) {
    KernelArgument arg = reader.activation(inner, view);
    ok = ok && arg.activation;
    arg.role = role;
    call.inputs.push_back(arg);
  }
  void weight(Value inner, View view, const char *role, int panel = 0,
              bool transposed = false) {
    KernelArgument arg;
    ok = ok && reader.weight(inner, view, arg, panel);
    arg.transposed = transposed;
    arg.role = role;
    call.inputs.push_back(arg);
  }
  void output(View view, const char *role) {
    call.outputViews.push_back(view);
    call.outputRoles.push_back(role);
  }
};

/// The roles of a quadratic layer's three biases, in order.
const char *const kQuadraticBiases[] = {"ba", "bb", "bc"};
const char *const kQuadraticLinearBiases[] = {"bias", "bb", "bc"};

namespace {
/// The residual of `x + scaled` (either order): the operand of `add` that is
/// not `scaled`; null when `scaled` is neither.
Value residualOf(AddOp add, Value scaled) {
  if (add.getLhs() == scaled)
    return add.getRhs();
  if (add.getRhs() == scaled)
    return add.getLhs();
  return Value();
}

/// The depthwise kernel's channels and window.
void depthwiseWindow(CallBuilder &b, Value input, ArrayRef<int64_t> filterShape,
                     ArrayRef<int64_t> stride, ArrayRef<int64_t> padding) {
  b.call.implementation = "depthwise";
  b.param("channels", str(dim(input, -1)));
  b.param("kernel_h", str(filterShape[0]));
  b.param("kernel_w", str(filterShape[1]));
  b.param("stride_h", str(stride[0]));
  b.param("stride_w", str(stride[1]));
  b.param("pad_h", str(padding[0]));
  b.param("pad_w", str(padding[1]));
}
} // namespace

/// [layernorm] (qdwconv | dwconv) [layerscale add].
bool describeDepthwise(KernelReader &r, CallBuilder &b) {
  auto ln = r.take<LayerNormOp>();
  Value input = ln ? ln.getInput() : Value();
  auto qdw = r.take<QuadraticDepthwiseConv2DOp>();
  auto dw = qdw ? DepthwiseConv2DOp() : r.take<DepthwiseConv2DOp>();
  if (!qdw && !dw)
    return false;
  Operation *conv = qdw ? qdw.getOperation() : dw.getOperation();
  Value convInput = conv->getOperand(0);
  if (ln && convInput != ln.getResult())
    return false;
  if (!ln)
    input = convInput;
  auto scale = r.take<LayerScaleOp>();
  auto add = scale ? r.take<AddOp>() : AddOp();
  if ((scale && !add) || !r.done())
    return false;
  if (scale && scale.getInput() != conv->getResult(0))
    return false;
  Value residual = add ? residualOf(add, scale.getResult()) : Value();
  if (add && !residual)
    return false;
  auto filterShape =
      llvm::cast<RankedTensorType>(conv->getOperand(1).getType()).getShape();
  ArrayRef<int64_t> stride = qdw ? qdw.getStride() : dw.getStride();
  ArrayRef<int64_t> padding = qdw ? qdw.getPadding() : dw.getPadding();
  bool hasBias = qdw ? !qdw.getBiases().empty() : static_cast<bool>(dw.getBias());

  depthwiseWindow(b, input, filterShape, stride, padding);
  b.param("norm", str(static_cast<bool>(ln)));
  if (ln)
    b.param("eps", strFloat(ln.getEpsilon().convertToDouble()));
  b.param("quadratic", str(static_cast<bool>(qdw)));
  b.param("bias", str(hasBias));
  b.param("scale_residual", str(static_cast<bool>(scale)));
  b.param("height", str(dim(input, 1)));
  b.param("width", str(dim(input, 2)));

  b.input(input, View::Image, "x");
  if (ln) {
    b.weight(ln.getScale(), View::Weight, "ln_scale");
    b.weight(ln.getOffset(), View::Weight, "ln_offset");
  }
  if (qdw) {
    b.weight(qdw.getWa(), View::Weight, "wa");
    b.weight(qdw.getWb(), View::Weight, "wb");
    b.weight(qdw.getWc(), View::Weight, "wc");
    for (auto [i, bias] : llvm::enumerate(qdw.getBiases()))
      b.weight(bias, View::Weight, kQuadraticBiases[i]);
  } else {
    b.weight(dw.getFilter(), View::Weight, "wa");
    if (dw.getBias())
      b.weight(dw.getBias(), View::Weight, "ba");
  }
  if (scale) {
    b.weight(scale.getScale(), View::Weight, "gamma");
    b.input(residual, View::Image, "residual");
  }
  b.output(View::Image, "y");
  return true;
}

/// [layernorm] (linear | qlinear) [gelu | relu] [layerscale add].
bool describePointwise(KernelReader &r, CallBuilder &b) {
  auto ln = r.take<LayerNormOp>();
  auto lin = r.take<LinearOp>();
  auto qlin = lin ? QuadraticLinearOp() : r.take<QuadraticLinearOp>();
  if (!lin && !qlin)
    return false;
  Operation *layer = lin ? lin.getOperation() : qlin.getOperation();
  Value input = ln ? ln.getInput() : layer->getOperand(0);
  if (ln && layer->getOperand(0) != ln.getResult())
    return false;
  Value last = layer->getResult(0);
  Activation activation = Activation::None;
  if (auto gelu = r.take<GeluOp>()) {
    activation = Activation::Gelu;
    if (gelu.getInput() != last)
      return false;
    last = gelu.getResult();
  } else if (auto relu = r.take<ReluOp>()) {
    activation = Activation::Relu;
    if (relu.getInput() != last)
      return false;
    last = relu.getResult();
  }
  auto scale = r.take<LayerScaleOp>();
  auto add = scale ? r.take<AddOp>() : AddOp();
  if ((scale && !add) || !r.done() || (scale && scale.getInput() != last))
    return false;
  Value residual = add ? residualOf(add, scale.getResult()) : Value();
  if (add && !residual)
    return false;

  int64_t cin = dim(input, -1), cout = dim(layer->getResult(0), -1);
  bool quadratic = static_cast<bool>(qlin);
  bool hasBias = lin ? static_cast<bool>(lin.getBias()) : !qlin.getBiases().empty();
  int panel = linearPanel(cout, quadratic, b.target);
  b.call.implementation = "pointwise";
  b.param("in_channels", str(cin));
  b.param("out_channels", str(cout));
  b.param("norm", str(static_cast<bool>(ln)));
  if (ln)
    b.param("eps", strFloat(ln.getEpsilon().convertToDouble()));
  b.param("quadratic", str(quadratic));
  b.param("bias", str(hasBias));
  b.param("activation", str(activation));
  b.param("scale_residual", str(static_cast<bool>(scale)));
  b.param("panel", str(static_cast<int64_t>(panel)));
  b.param("rows", str(rowsPerExample(input) * 8));

  b.input(input, View::Rows, "x");
  if (ln) {
    b.weight(ln.getScale(), View::Weight, "ln_scale");
    b.weight(ln.getOffset(), View::Weight, "ln_offset");
  }
  if (lin) {
    b.weight(lin.getWeight(), View::PackedWeight, "w", panel);
    if (lin.getBias())
      b.weight(lin.getBias(), View::Weight, "bias");
  } else {
    b.weight(qlin.getWa(), View::PackedWeight, "w", panel);
    b.weight(qlin.getWb(), View::PackedWeight, "wb", panel);
    b.weight(qlin.getWc(), View::PackedWeight, "wc", panel);
    for (auto [i, bias] : llvm::enumerate(qlin.getBiases()))
      b.weight(bias, View::Weight, kQuadraticLinearBiases[i]);
  }
  if (scale) {
    b.weight(scale.getScale(), View::Weight, "gamma");
    b.input(residual, View::Rows, "residual");
  }
  b.output(View::Rows, "y");
  return true;
}

/// layernorm linear gelu linear layerscale add: the channel MLP of a block
/// in one kernel (codegen/halide/mlp_generator.cpp).
bool describeMLP(KernelReader &r, CallBuilder &b) {
  auto ln = r.take<LayerNormOp>();
  auto expand = r.take<LinearOp>();
  auto gelu = r.take<GeluOp>();
  auto contract = r.take<LinearOp>();
  auto scale = r.take<LayerScaleOp>();
  auto add = r.take<AddOp>();
  if (!ln || !expand || !gelu || !contract || !scale || !add || !r.done() ||
      expand.getInput() != ln.getResult() || gelu.getInput() != expand.getResult() ||
      contract.getInput() != gelu.getResult() || scale.getInput() != contract.getResult())
    return false;
  Value residual = residualOf(add, scale.getResult());
  if (!residual)
    return false;
  Value input = ln.getInput();
  int64_t channels = dim(input, -1), hidden = dim(expand.getResult(), -1);
  if (dim(contract.getResult(), -1) != channels)
    return false;
  // In a training step the kernel also returns the contracting product
  // and the pre-GELU tensor where the backward pass reads them
  // (FusionRule::sideOutputs), in that order.
  auto yielded = r.kernel.getBody().front().getTerminator()->getOperands();
  bool keepProduct = llvm::is_contained(yielded, contract.getResult());
  bool keepPre = llvm::is_contained(yielded, expand.getResult());
  if (yielded.size() != 1u + keepProduct + keepPre || yielded.front() != add.getResult() ||
      (keepProduct && yielded[1] != contract.getResult()))
    return false;
  int panel = linearPanel(hidden, false, b.target);
  int panel2 = linearPanel(channels, false, b.target);
  b.call.implementation = "mlp";
  b.param("channels", str(channels));
  b.param("hidden", str(hidden));
  b.param("eps", strFloat(ln.getEpsilon().convertToDouble()));
  b.param("bias", str(static_cast<bool>(expand.getBias())));
  b.param("bias2", str(static_cast<bool>(contract.getBias())));
  b.param("panel", str(static_cast<int64_t>(panel)));
  b.param("panel2", str(static_cast<int64_t>(panel2)));
  b.param("keep_product", str(keepProduct));
  b.param("keep_pre", str(keepPre));
  b.param("rows", str(rowsPerExample(input) * 8));

  b.input(input, View::Rows, "x");
  b.weight(ln.getScale(), View::Weight, "ln_scale");
  b.weight(ln.getOffset(), View::Weight, "ln_offset");
  b.weight(expand.getWeight(), View::PackedWeight, "w", panel);
  if (expand.getBias())
    b.weight(expand.getBias(), View::Weight, "bias");
  b.weight(contract.getWeight(), View::PackedWeight, "w2", panel2);
  if (contract.getBias())
    b.weight(contract.getBias(), View::Weight, "bias2");
  b.weight(scale.getScale(), View::Weight, "gamma");
  b.input(residual, View::Rows, "residual");
  b.output(View::Rows, "y");
  if (keepProduct)
    b.output(View::Rows, "product");
  if (keepPre)
    b.output(View::Rows, "pre");
  return true;
}

/// [layernorm] conv2d [layernorm].
bool describeConv(KernelReader &r, CallBuilder &b) {
  auto lnIn = r.take<LayerNormOp>();
  auto conv = r.take<Conv2DOp>();
  if (!conv || (lnIn && conv.getInput() != lnIn.getResult()))
    return false;
  auto lnOut = r.take<LayerNormOp>();
  if (!r.done() || (lnOut && lnOut.getInput() != conv.getResult()))
    return false;
  Value input = lnIn ? lnIn.getInput() : conv.getInput();
  auto filter = llvm::cast<RankedTensorType>(conv.getFilter().getType()).getShape();
  b.call.implementation = "conv";
  b.param("in_channels", str(dim(input, -1)));
  b.param("out_channels", str(filter[3]));
  b.param("kernel_h", str(filter[0]));
  b.param("kernel_w", str(filter[1]));
  b.param("stride_h", str(conv.getStride()[0]));
  b.param("stride_w", str(conv.getStride()[1]));
  b.param("pad_h", str(conv.getPadding()[0]));
  b.param("pad_w", str(conv.getPadding()[1]));
  b.param("groups", str(static_cast<int64_t>(conv.getGroups())));
  b.param("bias", str(static_cast<bool>(conv.getBias())));
  b.param("norm_input", str(static_cast<bool>(lnIn)));
  if (lnIn)
    b.param("eps_input", strFloat(lnIn.getEpsilon().convertToDouble()));
  b.param("norm_output", str(static_cast<bool>(lnOut)));
  if (lnOut)
    b.param("eps_output", strFloat(lnOut.getEpsilon().convertToDouble()));
  b.param("height", str(dim(input, 1)));
  b.param("width", str(dim(input, 2)));

  b.input(input, View::Image, "x");
  if (lnIn) {
    b.weight(lnIn.getScale(), View::Weight, "in_scale");
    b.weight(lnIn.getOffset(), View::Weight, "in_offset");
  }
  b.weight(conv.getFilter(), View::Weight, "filter");
  if (conv.getBias())
    b.weight(conv.getBias(), View::Weight, "bias");
  if (lnOut) {
    b.weight(lnOut.getScale(), View::Weight, "out_scale");
    b.weight(lnOut.getOffset(), View::Weight, "out_offset");
  }
  b.output(View::Image, "y");
  return true;
}

/// avgpool layernorm linear.
bool describeHead(KernelReader &r, CallBuilder &b) {
  auto pool = r.take<GlobalAvgPoolOp>();
  auto ln = pool ? r.take<LayerNormOp>() : LayerNormOp();
  auto lin = ln ? r.take<LinearOp>() : LinearOp();
  if (!lin || !r.done() || ln.getInput() != pool.getResult() ||
      lin.getInput() != ln.getResult())
    return false;
  b.call.implementation = "head";
  b.param("channels", str(dim(pool.getInput(), -1)));
  b.param("classes", str(dim(lin.getResult(), -1)));
  b.param("eps", strFloat(ln.getEpsilon().convertToDouble()));
  b.param("bias", str(static_cast<bool>(lin.getBias())));
  b.input(pool.getInput(), View::Image, "x");
  b.weight(ln.getScale(), View::Weight, "ln_scale");
  b.weight(ln.getOffset(), View::Weight, "ln_offset");
  b.weight(lin.getWeight(), View::Weight, "w");
  if (lin.getBias())
    b.weight(lin.getBias(), View::Weight, "bias");
  b.output(View::Rows, "y");
  return true;
}

/// The global average pool on its own.
bool describeAvgPool(KernelReader &r, CallBuilder &b) {
  auto pool = r.take<GlobalAvgPoolOp>();
  if (!pool || !r.done())
    return false;
  b.call.implementation = "avgpool";
  b.param("channels", str(dim(pool.getInput(), -1)));
  b.input(pool.getInput(), View::Image, "x");
  b.output(View::Rows, "y");
  return true;
}

/// One op that touches each element once.
bool describeElementwise(KernelReader &r, CallBuilder &b) {
  b.call.implementation = "elementwise";
  b.output(View::Rows, "y");
  if (auto ln = r.take<LayerNormOp>()) {
    b.param("op", "layernorm");
    b.param("channels", str(dim(ln.getInput(), -1)));
    b.param("eps", strFloat(ln.getEpsilon().convertToDouble()));
    b.input(ln.getInput(), View::Rows, "x");
    b.weight(ln.getScale(), View::Weight, "scale");
    b.weight(ln.getOffset(), View::Weight, "offset");
  } else if (auto gelu = r.take<GeluOp>()) {
    b.param("op", "gelu");
    b.param("channels", str(dim(gelu.getInput(), -1)));
    b.input(gelu.getInput(), View::Rows, "x");
  } else if (auto relu = r.take<ReluOp>()) {
    b.param("op", "relu");
    b.param("channels", str(dim(relu.getInput(), -1)));
    b.input(relu.getInput(), View::Rows, "x");
  } else if (auto scale = r.take<LayerScaleOp>()) {
    b.param("op", "layerscale");
    b.param("channels", str(dim(scale.getInput(), -1)));
    b.input(scale.getInput(), View::Rows, "x");
    b.weight(scale.getScale(), View::Weight, "scale");
  } else if (auto add = r.take<AddOp>()) {
    b.param("op", "add");
    b.param("channels", str(dim(add.getLhs(), -1)));
    b.input(add.getLhs(), View::Rows, "x");
    b.input(add.getRhs(), View::Rows, "other");
  } else if (auto mul = r.take<MulOp>()) {
    b.param("op", "mul");
    b.param("channels", str(dim(mul.getLhs(), -1)));
    b.input(mul.getLhs(), View::Rows, "x");
    b.input(mul.getRhs(), View::Rows, "other");
  } else {
    return false;
  }
  return r.done();
}

namespace {
/// The parameters both convolution gradients take: depthwise (groups 0)
/// or dense in groups, the forward convolution's channels and window, and
/// its input's size.
void convolutionGradient(CallBuilder &b, const char *implementation, int64_t groups, Value in,
                         Value out, ArrayRef<int64_t> kernel, ArrayRef<int64_t> stride,
                         ArrayRef<int64_t> padding) {
  b.call.implementation = implementation;
  b.param("depthwise", str(groups == 0));
  if (groups != 0)
    b.param("groups", str(groups));
  b.param("in_channels", str(dim(in, -1)));
  b.param("out_channels", str(dim(out, -1)));
  b.param("kernel_h", str(kernel[0]));
  b.param("kernel_w", str(kernel[1]));
  b.param("stride_h", str(stride[0]));
  b.param("stride_w", str(stride[1]));
  b.param("pad_h", str(padding[0]));
  b.param("pad_w", str(padding[1]));
  b.param("height", str(dim(in, 1)));
  b.param("width", str(dim(in, 2)));
}

ArrayRef<int64_t> shapeOf(Value v) { return llvm::cast<RankedTensorType>(v.getType()).getShape(); }
} // namespace

/// layernorm_grad: dx, dscale and doffset.
bool describeLayerNormGrad(KernelReader &r, CallBuilder &b) {
  auto ln = r.take<LayerNormGradOp>();
  if (!ln || !r.done())
    return false;
  b.call.implementation = "layernorm_grad";
  b.param("channels", str(dim(ln.getInput(), -1)));
  b.param("eps", strFloat(ln.getEpsilon().convertToDouble()));
  b.input(ln.getInput(), View::Rows, "x");
  b.weight(ln.getScale(), View::Weight, "scale");
  b.input(ln.getDy(), View::Rows, "dy");
  b.output(View::Rows, "dx");
  b.output(View::Tensor, "dscale");
  b.output(View::Tensor, "doffset");
  return true;
}

/// gelu_grad or relu_grad on its own.
bool describeActivationGrad(KernelReader &r, CallBuilder &b) {
  Value input, dy;
  const char *op = nullptr;
  if (auto gelu = r.take<GeluGradOp>())
    op = "gelu", input = gelu.getInput(), dy = gelu.getDy();
  else if (auto relu = r.take<ReluGradOp>())
    op = "relu", input = relu.getInput(), dy = relu.getDy();
  if (!op || !r.done())
    return false;
  b.call.implementation = "activation_grad";
  b.param("op", op);
  b.param("channels", str(dim(input, -1)));
  b.input(input, View::Rows, "x");
  b.input(dy, View::Rows, "dy");
  b.output(View::Rows, "y");
  return true;
}

bool describeChannelSum(KernelReader &r, CallBuilder &b) {
  auto sum = r.take<ChannelSumOp>();
  if (!sum || !r.done())
    return false;
  b.call.implementation = "channel_sum";
  b.param("channels", str(dim(sum.getInput(), -1)));
  b.input(sum.getInput(), View::Rows, "x");
  b.output(View::Tensor, "y");
  return true;
}

bool describeLinearGradWeight(KernelReader &r, CallBuilder &b) {
  auto lw = r.take<LinearGradWeightOp>();
  if (!lw || !r.done())
    return false;
  b.call.implementation = "linear_grad_weight";
  b.param("in_channels", str(dim(lw.getInput(), -1)));
  b.param("out_channels", str(dim(lw.getDy(), -1)));
  b.input(lw.getInput(), View::Rows, "x");
  b.input(lw.getDy(), View::Rows, "dy");
  b.output(View::Tensor, "y");
  return true;
}

/// linear_grad_input [gelu_grad | relu_grad]: dx = dy · Wᵀ, the forward
/// product with the transposed weight, times the derivative of the
/// activation before the layer when its gradient follows.
bool describeLinearGradInput(KernelReader &r, CallBuilder &b) {
  auto li = r.take<LinearGradInputOp>();
  if (!li)
    return false;
  int64_t cin = dim(li.getResult(), -1), cout = dim(li.getDy(), -1);
  int panel = linearPanel(cin, false, b.target);
  Value pre;
  Activation activation = Activation::None;
  if (auto gelu = r.take<GeluGradOp>()) {
    if (gelu.getDy() != li.getResult())
      return false;
    pre = gelu.getInput();
    activation = Activation::Gelu;
  } else if (auto relu = r.take<ReluGradOp>()) {
    if (relu.getDy() != li.getResult())
      return false;
    pre = relu.getInput();
    activation = Activation::Relu;
  }
  if (!r.done())
    return false;
  b.call.implementation = "pointwise";
  b.param("in_channels", str(cout));
  b.param("out_channels", str(cin));
  b.param("norm", str(false));
  b.param("quadratic", str(false));
  b.param("bias", str(false));
  b.param("activation", str(Activation::None));
  b.param("scale_residual", str(false));
  b.param("activation_grad", str(activation));
  b.param("panel", str(int64_t(panel)));
  b.param("rows", str(rowsPerExample(li.getDy()) * 8));
  b.input(li.getDy(), View::Rows, "x");
  b.weight(li.getWeight(), View::PackedWeight, "w", panel, /*transposed=*/true);
  if (pre)
    b.input(pre, View::Rows, "pre");
  b.output(View::Rows, "y");
  return true;
}

/// dwconv_grad_input: with stride 1 the input gradient is dy convolved with
/// the filter turned by 180° and padded by k − 1 − pad, which the forward
/// depthwise generator computes; otherwise the convolution gradient
/// generator.
bool describeDepthwiseGradInput(KernelReader &r, CallBuilder &b) {
  auto dwi = r.take<DepthwiseConv2DGradInputOp>();
  if (!dwi || !r.done())
    return false;
  ArrayRef<int64_t> kernel = shapeOf(dwi.getFilter());
  ArrayRef<int64_t> stride = dwi.getStride(), padding = dwi.getPadding();
  if (stride[0] == 1 && stride[1] == 1 && padding[0] < kernel[0] && padding[1] < kernel[1]) {
    int64_t flippedPadding[2] = {kernel[0] - 1 - padding[0], kernel[1] - 1 - padding[1]};
    depthwiseWindow(b, dwi.getDy(), kernel, stride, flippedPadding);
    for (const char *off : {"norm", "quadratic", "bias", "scale_residual"})
      b.param(off, str(false));
    b.param("flip_filter", str(true));
    b.param("height", str(dim(dwi.getDy(), 1)));
    b.param("width", str(dim(dwi.getDy(), 2)));
  } else {
    convolutionGradient(b, "conv_grad_input", 0, dwi.getResult(), dwi.getDy(), kernel, stride,
                        padding);
  }
  // The depthwise kernel reads the gradient as its input and the filter as
  // its first; the convolution gradient kernel names them as they are.
  const bool flipped = b.call.implementation == "depthwise";
  b.input(dwi.getDy(), View::Image, flipped ? "x" : "dy");
  b.weight(dwi.getFilter(), View::Weight, flipped ? "wa" : "filter");
  b.output(View::Image, "y");
  return true;
}

bool describeConvGradInput(KernelReader &r, CallBuilder &b) {
  auto ci = r.take<Conv2DGradInputOp>();
  if (!ci || !r.done())
    return false;
  convolutionGradient(b, "conv_grad_input", ci.getGroups(), ci.getResult(), ci.getDy(),
                      shapeOf(ci.getFilter()), ci.getStride(), ci.getPadding());
  b.input(ci.getDy(), View::Image, "dy");
  b.weight(ci.getFilter(), View::Weight, "filter");
  b.output(View::Image, "y");
  return true;
}

bool describeDepthwiseGradFilter(KernelReader &r, CallBuilder &b) {
  auto dwf = r.take<DepthwiseConv2DGradFilterOp>();
  if (!dwf || !r.done())
    return false;
  convolutionGradient(b, "conv_grad_filter", 0, dwf.getInput(), dwf.getDy(),
                      shapeOf(dwf.getResult()), dwf.getStride(), dwf.getPadding());
  b.input(dwf.getInput(), View::Image, "x");
  b.input(dwf.getDy(), View::Image, "dy");
  b.output(View::Tensor, "y");
  return true;
}

bool describeConvGradFilter(KernelReader &r, CallBuilder &b) {
  auto cf = r.take<Conv2DGradFilterOp>();
  if (!cf || !r.done())
    return false;
  convolutionGradient(b, "conv_grad_filter", cf.getGroups(), cf.getInput(), cf.getDy(),
                      shapeOf(cf.getResult()), cf.getStride(), cf.getPadding());
  b.input(cf.getInput(), View::Image, "x");
  b.input(cf.getDy(), View::Image, "dy");
  b.output(View::Tensor, "y");
  return true;
}

bool describeAvgPoolGrad(KernelReader &r, CallBuilder &b) {
  auto pool = r.take<GlobalAvgPoolGradOp>();
  if (!pool || !r.done())
    return false;
  b.call.implementation = "avgpool_grad";
  b.param("channels", str(dim(pool.getResult(), -1)));
  b.param("height", str(dim(pool.getResult(), 1)));
  b.param("width", str(dim(pool.getResult(), 2)));
  b.input(pool.getDy(), View::Rows, "dy");
  b.output(View::Image, "y");
  return true;
}

/// softmax_cross_entropy (the loss) or softmax_cross_entropy_grad (its
/// gradient for the logits): one generator.
bool describeSoftmaxCrossEntropy(KernelReader &r, CallBuilder &b) {
  Value logits, labels;
  double smoothing = 0;
  bool gradient = false;
  if (auto loss = r.take<SoftmaxCrossEntropyOp>()) {
    logits = loss.getLogits(), labels = loss.getLabels();
    smoothing = loss.getSmoothing().convertToDouble();
  } else if (auto grad = r.take<SoftmaxCrossEntropyGradOp>()) {
    logits = grad.getLogits(), labels = grad.getLabels();
    smoothing = grad.getSmoothing().convertToDouble();
    gradient = true;
  }
  if (!logits || !r.done())
    return false;
  b.call.implementation = "softmax_cross_entropy";
  b.param("classes", str(dim(logits, -1)));
  b.param("smoothing", strFloat(smoothing));
  b.param("gradient", str(gradient));
  b.input(logits, View::Rows, "logits");
  b.input(labels, View::Labels, "labels");
  b.output(gradient ? View::Rows : View::Tensor, "y");
  return true;
}

/// The whole backward pass of a stride-1 qdwconv, as --quadra-form-kernels
/// groups it: inputs x, dy, xa, xb, wa, wb, wc; outputs dx (when its body
/// has input gradients), the three filter gradients, then the three bias
/// gradients (when it has channel sums).
bool describeQDWConvGrad(KernelReader &r, CallBuilder &b) {
  KernelOp kernel = r.kernel;
  if (kernel.getInputs().size() != 7)
    return false;
  DepthwiseConv2DGradFilterOp filterGrad;
  bool inputGrad = false, bias = false;
  for (Operation &op : kernel.getKernelOps()) {
    if (auto gf = llvm::dyn_cast<DepthwiseConv2DGradFilterOp>(op))
      filterGrad = gf;
    inputGrad |= llvm::isa<DepthwiseConv2DGradInputOp>(op);
    bias |= llvm::isa<ChannelSumOp>(op);
  }
  if (!filterGrad)
    return false;
  Block &body = kernel.getBody().front();
  Value x = body.getArgument(0);
  auto filterShape = llvm::cast<RankedTensorType>(filterGrad.getType()).getShape();
  b.call.implementation = "qdwconv_grad";
  b.param("channels", str(dim(x, -1)));
  b.param("kernel_h", str(filterShape[0]));
  b.param("kernel_w", str(filterShape[1]));
  b.param("pad_h", str(filterGrad.getPadding()[0]));
  b.param("pad_w", str(filterGrad.getPadding()[1]));
  b.param("height", str(dim(x, 1)));
  b.param("width", str(dim(x, 2)));
  b.param("bias", str(bias));
  b.param("input_grad", str(inputGrad));
  static const char *const kInputs[] = {"x", "dy", "xa", "xb", "wa", "wb", "wc"};
  for (unsigned i = 0; i < 4; ++i)
    b.input(body.getArgument(i), View::Image, kInputs[i]);
  for (unsigned i = 4; i < 7; ++i)
    b.weight(body.getArgument(i), View::Weight, kInputs[i]);
  if (inputGrad)
    b.output(View::Image, "dx");
  for (const char *name : {"dwa", "dwb", "dwc", "dba", "dbb", "dbc"})
    if (bias || name[1] == 'w')
      b.output(View::Tensor, name);
  return true;
}

} // namespace describers

FailureOr<KernelCall> describeKernel(KernelOp kernel, const Target &target) {
  const KernelFamily *family = lookupKernelFamily(kernel.getFamily());
  const char *backEnd = target.backend == Backend::Cuda ? "CUDA kernel" : "Halide generator";
  if (!family || !implementsFamily(target.backend, *family))
    return kernel.emitError("no ")
           << backEnd << " implements kernel '" << kernel.getName() << "' of family '"
           << kernel.getFamily()
           << "' (codegen/KernelFamilies.cpp lists the families each back end implements)";
  KernelCall call;
  call.name = kernel.getName().str();
  call.family = kernel.getFamily().str();
  call.results.assign(kernel.getOutputs().begin(), kernel.getOutputs().end());
  describers::KernelReader reader(kernel);
  describers::CallBuilder builder{reader, call, target};
  if (!family->describe(reader, builder) || !builder.ok ||
      call.outputViews.size() != call.results.size())
    return kernel.emitError("kernel '")
           << kernel.getName() << "' of family '" << kernel.getFamily()
           << "' does not hold the ops its " << backEnd << " implements (ops: "
           << describers::KernelReader(kernel).describe()
           << "); its inputs must be model activations and quadra.weight values";
  assert(llvm::is_contained(family->implementations, call.implementation) &&
         "a describer chose an implementation its family does not list");
  return call;
}

std::vector<KernelPart> describeParts(KernelOp kernel, const Target &target) {
  const KernelFamily *family = lookupKernelFamily(kernel.getFamily());
  if (!family || family->parts.empty())
    return {};
  std::vector<Operation *> all;
  for (Operation &op : kernel.getKernelOps())
    all.push_back(&op);
  std::vector<KernelPart> parts;
  size_t next = 0;
  for (const auto &[name, count] : family->parts) {
    const KernelFamily *partFamily = lookupKernelFamily(name);
    if (!partFamily || next + count > all.size())
      return {};
    KernelPart part;
    part.ops.assign(all.begin() + next, all.begin() + next + count);
    next += count;
    part.call.name = kernel.getName().str() + "[" + name + "]";
    part.call.family = name;
    describers::KernelReader reader(kernel, part.ops);
    describers::CallBuilder builder{reader, part.call, target};
    // A part's activations may be values inside the fused kernel, so the
    // builder's check that they are kernel inputs does not apply.
    if (!partFamily->describe(reader, builder))
      return {};
    parts.push_back(std::move(part));
  }
  if (next != all.size())
    return {};
  return parts;
}

} // namespace qdsl::codegen
