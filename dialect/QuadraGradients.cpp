//===- QuadraGradients.cpp - the gradient rule of every quadra op ---------===//
//
// One rule per op (GradientOpInterface::buildGradients): given the gradient
// G of the op's result, build the gradients of the operands that need one,
// as quadra ops. --quadra-autodiff chains them backwards through a model.
//
// The quadratic ops recompute their filter responses xa and xb from x
// (QUADRANET.md, Eq. 8): the backward pass of a qdwconv keeps nothing but its
// input, and the memory planner may later choose to keep xa and xb instead.
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
  v.getDefiningOp()->setAttr("quadra.recompute", UnitAttr::get(v.getContext()));
}

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

// y = xa ⊙ xb + xc: G⊙xb flows into xa's filter and bias, G⊙xa into xb's,
// G into xc's, and all three back into x through their filters.
LogicalResult QuadraticDepthwiseConv2DOp::buildGradients(
    OpBuilder &builder, Value g, ArrayRef<bool> wanted, SmallVectorImpl<Value> &grads) {
  Gradients r(builder, *this, wanted, grads);
  bool biased = !getBiases().empty();
  Value filters[3] = {getWa(), getWb(), getWc()};
  Value ga, gb;
  if (r.wantsAny({0, 1, 2}) || (biased && r.wantsAny({4, 5}))) {
    auto response = [&](unsigned i) {
      return r.make<DepthwiseConv2DOp>(getInput(), filters[i],
                                       biased ? getBiases()[i] : Value(), getStride(),
                                       getPadding());
    };
    Value xa = response(0), xb = response(1);
    markRecomputed(xa);
    markRecomputed(xb);
    ga = r.mul(g, xb);
    gb = r.mul(g, xa);
  }
  Value branch[3] = {ga, gb, g};
  r.set(0, [&] {
    Value dx;
    for (unsigned i = 0; i < 3; ++i) {
      Value part = r.make<DepthwiseConv2DGradInputOp>(getInput().getType(), branch[i],
                                                      filters[i], getStride(), getPadding());
      dx = dx ? r.sum(dx, part) : part;
    }
    return dx;
  });
  for (unsigned i = 0; i < 3; ++i) {
    r.set(1 + i, [&] {
      return r.make<DepthwiseConv2DGradFilterOp>(filters[i].getType(), getInput(),
                                                 branch[i], getStride(), getPadding());
    });
    if (biased)
      r.set(4 + i, [&] { return r.channelSum(branch[i]); });
  }
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
  bool biased = !getBiases().empty();
  Value weights[3] = {getWa(), getWb(), getWc()};
  Value ga, gb;
  if (r.wantsAny({0, 1, 2}) || (biased && r.wantsAny({4, 5}))) {
    auto product = [&](unsigned i) {
      return r.make<LinearOp>(getInput(), weights[i], biased ? getBiases()[i] : Value());
    };
    Value pa = product(0), pb = product(1);
    markRecomputed(pa);
    markRecomputed(pb);
    ga = r.mul(g, pb);
    gb = r.mul(g, pa);
  }
  Value branch[3] = {ga, gb, g};
  r.set(0, [&] {
    Value dx;
    for (unsigned i = 0; i < 3; ++i) {
      Value part = r.make<LinearGradInputOp>(branch[i], weights[i]);
      dx = dx ? r.sum(dx, part) : part;
    }
    return dx;
  });
  for (unsigned i = 0; i < 3; ++i) {
    r.set(1 + i, [&] { return r.make<LinearGradWeightOp>(getInput(), branch[i]); });
    if (biased)
      r.set(4 + i, [&] { return r.channelSum(branch[i]); });
  }
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
