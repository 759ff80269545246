//===- QuadraGradients.cpp - the gradient rule of every quadra op ---------===//
//
// One rule per op (GradientOpInterface::buildGradients): given the gradient
// G of the op's result, build the gradients of the operands that need one,
// as quadra ops. --quadra-autodiff chains them backwards through a model.
//
// The quadratic ops recompute their filter responses xa and xb from x
// (docs/MATHS.md, section 5): the backward pass of a qdwconv keeps nothing
// but its input, and the memory planner may later choose to keep xa and xb
// instead.
//
//===----------------------------------------------------------------------===//

#include "dialect/QuadraOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace qdsl::quadra;

namespace {

/// Collects operand gradients in operand order.
class Gradients {
public:
  Gradients(OpBuilder &builder, Operation *op, ArrayRef<bool> wanted,
            SmallVectorImpl<Value> &out)
      : builder(builder), loc(op->getLoc()), wanted(wanted), out(out) {
    out.assign(op->getNumOperands(), Value());
  }

  bool wants(unsigned operand) const { return wanted[operand]; }
  bool wantsAny(ArrayRef<unsigned> operands) const {
    return llvm::any_of(operands, [&](unsigned i) { return wanted[i]; });
  }
  /// Sets operand `i`'s gradient to what `build` makes, when it is wanted.
  template <typename F> void set(unsigned i, F build) {
    if (wanted[i])
      out[i] = build();
  }

  template <typename OpTy, typename... Args> Value make(Args &&...args) {
    return builder.create<OpTy>(loc, std::forward<Args>(args)...).getResult();
  }
  Value sum(Value a, Value b) { return make<AddOp>(a, b); }
  Value mul(Value a, Value b) { return make<MulOp>(a, b); }
  Value channelSum(Value g) { return make<ChannelSumOp>(g); }

  OpBuilder &builder;
  Location loc;

private:
  ArrayRef<bool> wanted;
  SmallVectorImpl<Value> &out;
};

/// A forward value the backward pass computes again rather than keeping:
/// the memory policy decides whether it stays that way.
void markRecomputed(Value v) {
  v.getDefiningOp()->setAttr(kRecomputeAttr, UnitAttr::get(v.getContext()));
}

/// The rule shared by the quadratic ops, y = xa ⊙ xb + xc with each of
/// xa, xb, xc a linear map of x (a depthwise convolution or a linear
/// layer): G⊙xb flows into xa's weight and bias, G⊙xa into xb's, G into
/// xc's, and all three back into x. Operands: x, wa, wb, wc, then the
/// three biases if any.
struct QuadraticBranches {
  Value weights[3];
  ValueRange biases;

  /// `response(w, bias)` recomputes a branch; `gradInput(g, w)` and
  /// `gradWeight(g, w)` are the map's adjoints.
  template <typename Response, typename GradInput, typename GradWeight>
  void build(Gradients &r, Value g, Response response, GradInput gradInput,
             GradWeight gradWeight) {
    bool biased = !biases.empty();
    Value ga, gb;
    if (r.wantsAny({0, 1, 2}) || (biased && r.wantsAny({4, 5}))) {
      Value xa = response(weights[0], biased ? biases[0] : Value());
      Value xb = response(weights[1], biased ? biases[1] : Value());
      markRecomputed(xa);
      markRecomputed(xb);
      ga = r.mul(g, xb);
      gb = r.mul(g, xa);
    }
    Value branch[3] = {ga, gb, g};
    r.set(0, [&] {
      Value dx;
      for (unsigned i = 0; i < 3; ++i) {
        Value part = gradInput(branch[i], weights[i]);
        dx = dx ? r.sum(dx, part) : part;
      }
      return dx;
    });
    for (unsigned i = 0; i < 3; ++i) {
      r.set(1 + i, [&] { return gradWeight(branch[i], weights[i]); });
      if (biased)
        r.set(4 + i, [&] { return r.channelSum(branch[i]); });
    }
  }
};

} // namespace

LogicalResult Conv2DOp::buildGradients(OpBuilder &builder, Value g,
                                       ArrayRef<bool> wanted,
                                       SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] {
    return r.make<Conv2DGradInputOp>(getInput().getType(), g, getFilter(), getStride(),
                                     getPadding(), getGroups());
  });
  r.set(1, [&] {
    return r.make<Conv2DGradFilterOp>(getFilter().getType(), getInput(), g, getStride(),
                                      getPadding(), getGroups());
  });
  if (getBias())
    r.set(2, [&] { return r.channelSum(g); });
  return success();
}

LogicalResult DepthwiseConv2DOp::buildGradients(OpBuilder &builder, Value g,
                                                ArrayRef<bool> wanted,
                                                SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] {
    return r.make<DepthwiseConv2DGradInputOp>(getInput().getType(), g, getFilter(),
                                              getStride(), getPadding());
  });
  r.set(1, [&] {
    return r.make<DepthwiseConv2DGradFilterOp>(getFilter().getType(), getInput(), g,
                                               getStride(), getPadding());
  });
  if (getBias())
    r.set(2, [&] { return r.channelSum(g); });
  return success();
}

LogicalResult QuadraticDepthwiseConv2DOp::buildGradients(
    OpBuilder &builder, Value g, ArrayRef<bool> wanted, SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  Value x = getInput();
  QuadraticBranches q{{getWa(), getWb(), getWc()}, getBiases()};
  q.build(
      r, g,
      [&](Value w, Value bias) {
        return r.make<DepthwiseConv2DOp>(x, w, bias, getStride(), getPadding());
      },
      [&](Value gi, Value w) {
        return r.make<DepthwiseConv2DGradInputOp>(x.getType(), gi, w, getStride(),
                                                  getPadding());
      },
      [&](Value gi, Value w) {
        return r.make<DepthwiseConv2DGradFilterOp>(w.getType(), x, gi, getStride(),
                                                   getPadding());
      });
  return success();
}

LogicalResult LinearOp::buildGradients(OpBuilder &builder, Value g,
                                       ArrayRef<bool> wanted,
                                       SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return r.make<LinearGradInputOp>(g, getWeight()); });
  r.set(1, [&] { return r.make<LinearGradWeightOp>(getInput(), g); });
  if (getBias())
    r.set(2, [&] { return r.channelSum(g); });
  return success();
}

LogicalResult QuadraticLinearOp::buildGradients(OpBuilder &builder, Value g,
                                                ArrayRef<bool> wanted,
                                                SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  Value x = getInput();
  QuadraticBranches q{{getWa(), getWb(), getWc()}, getBiases()};
  q.build(
      r, g, [&](Value w, Value bias) { return r.make<LinearOp>(x, w, bias); },
      [&](Value gi, Value w) { return r.make<LinearGradInputOp>(gi, w); },
      [&](Value gi, Value) { return r.make<LinearGradWeightOp>(x, gi); });
  return success();
}

LogicalResult LayerNormOp::buildGradients(OpBuilder &builder, Value g,
                                          ArrayRef<bool> wanted,
                                          SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  if (!r.wantsAny({0, 1, 2}))
    return success();
  auto backward = builder.create<LayerNormGradOp>(getLoc(), getInput(), getScale(), g,
                                                  getEpsilon());
  r.set(0, [&] { return backward.getDinput(); });
  r.set(1, [&] { return backward.getDscale(); });
  r.set(2, [&] { return backward.getDoffset(); });
  return success();
}

LogicalResult LayerScaleOp::buildGradients(OpBuilder &builder, Value g,
                                           ArrayRef<bool> wanted,
                                           SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return r.make<LayerScaleOp>(g, getScale()); });
  r.set(1, [&] { return r.channelSum(r.mul(g, getInput())); });
  return success();
}

LogicalResult GlobalAvgPoolOp::buildGradients(OpBuilder &builder, Value g,
                                              ArrayRef<bool> wanted,
                                              SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return r.make<GlobalAvgPoolGradOp>(getInput().getType(), g); });
  return success();
}

LogicalResult GeluOp::buildGradients(OpBuilder &builder, Value g, ArrayRef<bool> wanted,
                                     SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return r.make<GeluGradOp>(getInput(), g); });
  return success();
}

LogicalResult ReluOp::buildGradients(OpBuilder &builder, Value g, ArrayRef<bool> wanted,
                                     SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return r.make<ReluGradOp>(getInput(), g); });
  return success();
}

LogicalResult IdentityOp::buildGradients(OpBuilder &builder, Value g,
                                         ArrayRef<bool> wanted,
                                         SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return g; });
  return success();
}

LogicalResult AddOp::buildGradients(OpBuilder &builder, Value g, ArrayRef<bool> wanted,
                                    SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return g; });
  r.set(1, [&] { return g; });
  return success();
}

LogicalResult MulOp::buildGradients(OpBuilder &builder, Value g, ArrayRef<bool> wanted,
                                    SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  r.set(0, [&] { return r.mul(g, getRhs()); });
  r.set(1, [&] { return r.mul(g, getLhs()); });
  return success();
}
