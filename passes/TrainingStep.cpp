//===- TrainingStep.cpp - a model's training step, built on its own -------===//

#include "passes/TrainingStep.h"

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;

namespace qdsl::quadra {

FailureOr<TrainingStep> buildTrainingStep(func::FuncOp model, llvm::StringRef policy,
                                          double labelSmoothing) {
  TrainingStep result;
  result.module = ModuleOp::create(model.getLoc());
  OpBuilder builder(model.getContext());
  builder.setInsertionPointToEnd(result.module->getBody());
  builder.clone(*model);
  PassManager pm(model.getContext());
  if (policy == "keep-all")
    pm.addPass(createQuadraExpandQDWConv());
  QuadraAutodiffOptions autodiff;
  autodiff.labelSmoothing = labelSmoothing;
  pm.addPass(createQuadraAutodiff(autodiff));
  QuadraMemoryPolicyOptions memory;
  memory.policy = policy.str();
  pm.addNestedPass<func::FuncOp>(createQuadraMemoryPolicy(memory));
  if (failed(pm.run(*result.module)))
    return failure();
  for (auto f : result.module->getOps<func::FuncOp>())
    if (f->hasAttr(kGradientsAttr))
      result.step = f;
  if (!result.step)
    return model.emitError("no training step was built for '") << model.getSymName() << "'";
  return result;
}

} // namespace qdsl::quadra
