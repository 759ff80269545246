//===- Autodiff.cpp - a model's training step from its ops' gradient rules ===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAAUTODIFF
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {


/// Reports every kind of op in `model` that has no gradient rule, with the
/// first place each occurs.
LogicalResult checkRules(func::FuncOp model) {
  llvm::MapVector<StringRef, Operation *> missing;
  for (Operation &op : model.getBody().front()) {
    if (isa<WeightOp, func::ReturnOp, GradientOpInterface>(op))
      continue;
    missing.insert({op.getName().getStringRef(), &op});
  }
  if (missing.empty())
    return success();
  std::string names;
  for (auto [name, op] : missing)
    names += (names.empty() ? "'" : ", '") + name.str() + "'";
  InFlightDiagnostic diag = model.emitError("cannot differentiate '")
                            << model.getSymName() << "': no gradient rule for " << names;
  for (auto [name, op] : missing)
    diag.attachNote(op->getLoc()) << "'" << name << "' is used here";
  return failure();
}

LogicalResult differentiate(func::FuncOp model, double smoothing) {
  FunctionType type = model.getFunctionType();
  auto logitsType =
      type.getNumResults() == 1 ? dyn_cast<RankedTensorType>(type.getResult(0)) : nullptr;
  if (type.getNumInputs() != 1 || !logitsType || logitsType.getRank() != 2)
    return model.emitError("cannot train '")
           << model.getSymName() << "': a model takes one input batch and returns [N, K] "
           << "logits, this function has type " << type;
  if (failed(checkRules(model)))
    return failure();

  MLIRContext *context = model.getContext();
  OpBuilder builder(context);
  builder.setInsertionPointAfter(model);
  auto labelsType =
      RankedTensorType::get({logitsType.getDimSize(0)}, IntegerType::get(context, 32));
  Location loc = model.getLoc();
  auto step = builder.create<func::FuncOp>(
      loc, (model.getSymName() + "_train_step").str(),
      FunctionType::get(context, {type.getInput(0), labelsType}, {}));
  Block *body = step.addEntryBlock();
  builder.setInsertionPointToStart(body);

  // The forward pass, and which values depend on a weight.
  IRMapping forward;
  forward.map(model.getArgument(0), body->getArgument(0));
  llvm::DenseSet<Value> active;
  SmallVector<WeightOp> weights;
  Value logits;
  for (Operation &op : model.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      logits = forward.lookup(ret.getOperand(0));
      break;
    }
    Operation *copy = builder.clone(op, forward);
    if (auto weight = dyn_cast<WeightOp>(copy)) {
      weights.push_back(weight);
      active.insert(weight.getResult());
    } else if (llvm::any_of(copy->getOperands(),
                            [&](Value v) { return active.contains(v); })) {
      active.insert(copy->getResult(0));
    }
  }
  if (!logits)
    return model.emitError("'") << model.getSymName() << "' ends without a return";

  // The backward pass, from the loss back to the weights.
  FloatAttr smoothingAttr = builder.getF64FloatAttr(smoothing);
  Value loss =
      builder.create<SoftmaxCrossEntropyOp>(loc, logits, body->getArgument(1), smoothingAttr);
  llvm::DenseMap<Value, Value> gradient;
  gradient[logits] = builder.create<SoftmaxCrossEntropyGradOp>(
      loc, logits, body->getArgument(1), smoothingAttr);
  SmallVector<Operation *> forwardOps;
  llvm::DenseMap<Operation *, int64_t> position;
  for (Operation &op : *body)
    if (&op != loss.getDefiningOp() && !isa<SoftmaxCrossEntropyGradOp>(op)) {
      position[&op] = forwardOps.size();
      forwardOps.push_back(&op);
    }
  for (Operation *op : llvm::reverse(forwardOps)) {
    auto rule = dyn_cast<GradientOpInterface>(op);
    if (!rule)
      continue;
    Value g = gradient.lookup(op->getResult(0));
    if (!g)
      continue;
    SmallVector<bool> wanted;
    for (Value operand : op->getOperands())
      wanted.push_back(active.contains(operand));
    SmallVector<Value> operandGradients;
    Operation *last = &body->back();
    if (failed(rule.buildGradients(builder, g, wanted, operandGradients)))
      return op->emitError("the gradient rule of '") << op->getName() << "' failed";
    // In a supernet, the backward ops of a candidate's op belong to its path;
    // a sum of gradients belongs to the path of the value it is the
    // gradient of (none for a choice's input), so that it runs whenever
    // that value's gradient is needed.
    if (Attribute path = op->getAttr(kPathAttr))
      for (Operation *made = last->getNextNode(); made; made = made->getNextNode())
        made->setAttr(kPathAttr, path);
    for (auto [operand, dOperand] : llvm::zip(op->getOperands(), operandGradients)) {
      if (!dOperand)
        continue;
      Value &sum = gradient[operand];
      if (!sum) {
        sum = dOperand;
        continue;
      }
      auto add = builder.create<AddOp>(op->getLoc(), sum, dOperand);
      if (Operation *def = operand.getDefiningOp(); def && def->hasAttr(kPathAttr))
        add->setAttr(kPathAttr, def->getAttr(kPathAttr));
      sum = add.getResult();
    }
    // Which forward op each backward op serves: the memory planner keeps a
    // tape's tensors until then, and kernel formation can group by it.
    auto index = builder.getI64IntegerAttr(position.lookup(op));
    for (Operation *made = last->getNextNode(); made; made = made->getNextNode())
      made->setAttr(kBackwardOfAttr, index);
  }

  SmallVector<Value> results = {loss, logits};
  SmallVector<Attribute> names;
  for (WeightOp weight : weights) {
    Value g = gradient.lookup(weight.getResult());
    if (!g)
      return model.emitError("cannot train '")
             << model.getSymName() << "': weight '" << weight.getName()
             << "' does not reach the logits, so it gets no gradient";
    results.push_back(g);
    names.push_back(weight.getNameAttr());
  }
  builder.create<func::ReturnOp>(loc, results);
  step.setFunctionType(FunctionType::get(context, {type.getInput(0), labelsType},
                                         TypeRange(ValueRange(results))));
  step->setAttr(kGradientsAttr, builder.getArrayAttr(names));
  step->setAttr(kTrainStepOfAttr, builder.getStringAttr(model.getSymName()));
  return success();
}

struct QuadraAutodiff : qdsl::quadra::impl::QuadraAutodiffBase<QuadraAutodiff> {
  using QuadraAutodiffBase::QuadraAutodiffBase;

  void runOnOperation() override {
    if (!(labelSmoothing >= 0.0 && labelSmoothing < 1.0)) {
      getOperation().emitError("label smoothing must be in [0, 1), got ") << labelSmoothing;
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> models;
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (!f.isExternal() && !f->hasAttr(kGradientsAttr))
        models.push_back(f);
    bool ok = true;
    for (func::FuncOp model : models)
      ok &= succeeded(differentiate(model, labelSmoothing));
    if (!ok)
      signalPassFailure();
  }
};

} // namespace
