//===- Pipelines.cpp - the pass pipelines qdsl runs ------------------------===//

#include "passes/Pipelines.h"

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace qdsl::quadra {

KernelOptionSet::KernelOptionSet(PassOptions &parent)
    : target(parent, "target",
             llvm::cl::desc("Target whose fusion rules apply (x86-64-avx2, x86-64-avx512, arm64-a76, opencl, cuda)"),
             llvm::cl::init(codegen::kDefaultTarget)),
      expandQDWConv(parent, "expand-qdwconv",
                    llvm::cl::desc("Expand every qdwconv first (the unfused baseline)"),
                    llvm::cl::init(false)) {}

TrainStepOptionSet::TrainStepOptionSet(PassOptions &parent)
    : policy(parent, "memory-policy",
             llvm::cl::desc("keep-all, paper or min-memory (the default)"),
             llvm::cl::init(kDefaultMemoryPolicy)),
      labelSmoothing(parent, "label-smoothing",
                     llvm::cl::desc("Label smoothing ε of the loss, in [0, 1)"),
                     llvm::cl::init(0.0)) {}

namespace {

void addKernelPasses(OpPassManager &pm, const KernelOptionSet &options) {
  if (options.expandQDWConv)
    pm.addPass(createQuadraExpandQDWConv());
  pm.addPass(createCanonicalizerPass());
  QuadraFormKernelsOptions form;
  form.target = options.target;
  pm.addPass(createQuadraFormKernels(form));
}

void addTrainStepPasses(OpPassManager &pm, const TrainStepOptionSet &options) {
  // A tape of primitive ops: keep-all plans the expanded qdwconvs.
  if (options.policy == MemoryPolicy::KeepAll)
    pm.addPass(createQuadraExpandQDWConv());
  QuadraAutodiffOptions autodiff;
  autodiff.labelSmoothing = options.labelSmoothing;
  pm.addPass(createQuadraAutodiff(autodiff));
  QuadraMemoryPolicyOptions memory;
  memory.policy = options.policy;
  pm.addNestedPass<func::FuncOp>(createQuadraMemoryPolicy(memory));
  // Nothing to do unless the model is a supernet (gate weights).
  pm.addNestedPass<func::FuncOp>(createQuadraRecomputeGatePaths());
}

} // namespace

void buildKernelPipeline(OpPassManager &pm, const KernelPipelineOptions &options) {
  addKernelPasses(pm, options.kernels);
}

void buildArchitecturePipeline(OpPassManager &pm, const ArchitecturePipelineOptions &options) {
  // No picks and no seed: a model, whatever else its file holds.
  if (!options.picks.empty() || options.seed >= 0) {
    // The pass copies the picks when it is created.
    SmallVector<int64_t> picks(options.picks.begin(), options.picks.end());
    QuadraFixChoicesOptions fix;
    fix.picks = picks;
    fix.seed = options.seed;
    pm.addPass(createQuadraFixChoices(fix));
  }
  addKernelPasses(pm, options.kernels);
}

void buildTrainStepPipeline(OpPassManager &pm, const TrainStepPipelineOptions &options) {
  addTrainStepPasses(pm, options.step);
}

void buildTrainKernelPipeline(OpPassManager &pm, const TrainKernelPipelineOptions &options) {
  addTrainStepPasses(pm, options.step);
  addKernelPasses(pm, options.kernels);
}

void registerQuadraPipelines() {
  PassPipelineRegistration<KernelPipelineOptions>(
      "quadra-kernel-pipeline",
      "Form the target's kernels: [expand-qdwconv] canonicalize form-kernels "
      "(qdsl compile --target)",
      buildKernelPipeline);
  PassPipelineRegistration<ArchitecturePipelineOptions>(
      "quadra-architecture-pipeline",
      "Fix every choice of a search space, then form kernels (qdsl estimate, profile)",
      buildArchitecturePipeline);
  PassPipelineRegistration<TrainStepPipelineOptions>(
      "quadra-train-step-pipeline",
      "Build each model's training step under a memory policy (qdsl compile --train)",
      buildTrainStepPipeline);
  PassPipelineRegistration<TrainKernelPipelineOptions>(
      "quadra-train-kernel-pipeline",
      "Build each model's training step, then form kernels (qdsl compile --train "
      "--target)",
      buildTrainKernelPipeline);
}

LogicalResult formKernels(ModuleOp module, llvm::StringRef target, bool expandQDWConv) {
  PassManager pm(module.getContext());
  KernelPipelineOptions options;
  options.kernels.target = target.str();
  options.kernels.expandQDWConv = expandQDWConv;
  buildKernelPipeline(pm, options);
  return pm.run(module);
}

LogicalResult fixChoices(ModuleOp module, ArrayRef<int64_t> picks, int64_t seed) {
  PassManager pm(module.getContext());
  QuadraFixChoicesOptions fix;
  fix.picks = picks;
  fix.seed = seed;
  pm.addPass(createQuadraFixChoices(fix));
  return pm.run(module);
}

LogicalResult makeSupernet(ModuleOp module) {
  PassManager pm(module.getContext());
  pm.addPass(createQuadraSupernet());
  return pm.run(module);
}

FailureOr<OwningOpRef<ModuleOp>> formArchitecture(ModuleOp module, ArrayRef<int64_t> picks,
                                                   llvm::StringRef target) {
  OwningOpRef<ModuleOp> copy(module.clone());
  PassManager pm(module.getContext());
  ArchitecturePipelineOptions options;
  options.picks = picks;
  options.kernels.target = target.str();
  buildArchitecturePipeline(pm, options);
  if (failed(pm.run(*copy)))
    return failure();
  return copy;
}

FailureOr<TrainingStep> buildTrainingStep(func::FuncOp model, MemoryPolicy policy,
                                          double labelSmoothing) {
  TrainingStep result;
  result.module = ModuleOp::create(model.getLoc());
  OpBuilder builder(model.getContext());
  builder.setInsertionPointToEnd(result.module->getBody());
  builder.clone(*model);
  PassManager pm(model.getContext());
  TrainStepPipelineOptions options;
  options.step.policy = policy;
  options.step.labelSmoothing = labelSmoothing;
  buildTrainStepPipeline(pm, options);
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
