//===- KernelCosts.cpp - the cost model's view of formed kernels ----------===//

#include "codegen/latency/KernelCosts.h"

#include "codegen/KernelCalls.h"
#include "dialect/QuadraOps.h"

#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::codegen {

namespace {

/// Bytes of a tensor of `type` with a dynamic batch of `batch`.
double tensorBytes(Type type, int64_t batch) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return 0;
  double n = static_cast<double>(tensor.getElementTypeBitWidth()) / 8;
  for (int64_t d : tensor.getShape())
    n *= static_cast<double>(ShapedType::isDynamic(d) ? batch : d);
  return n;
}

/// The sample of a kernel that is part of a fused one: the ops it would
/// hold, what it reads from outside them and writes.
cost::KernelSample partSample(const KernelPart &part, int64_t batch) {
  cost::KernelSample s;
  s.name = part.call.name;
  s.family = part.call.family;
  s.configuration = part.call.configuration();
  s.batch = batch;
  llvm::DenseSet<Operation *> inside(part.ops.begin(), part.ops.end());
  llvm::DenseSet<Value> read;
  for (Operation *op : part.ops) {
    if (auto cost = llvm::dyn_cast<CostOpInterface>(op))
      if (FailureOr<uint64_t> macs = cost.getMacs(batch); succeeded(macs))
        s.macs += static_cast<double>(*macs);
    for (Value operand : op->getOperands())
      if (!inside.count(operand.getDefiningOp()) && read.insert(operand).second)
        s.bytes += tensorBytes(operand.getType(), batch);
  }
  for (Value result : part.ops.back()->getResults())
    s.bytes += tensorBytes(result.getType(), batch);
  for (const auto &[name, value] : part.call.params) {
    double v;
    if (!llvm::StringRef(value).getAsDouble(v))
      s.params.push_back({name, v});
  }
  return s;
}

} // namespace

FailureOr<std::vector<cost::KernelSample>>
kernelSamples(func::FuncOp function, const Target &target, int64_t batch) {
  std::vector<cost::KernelSample> samples;
  for (Operation &op : function.getBody().front()) {
    auto kernel = llvm::dyn_cast<KernelOp>(op);
    if (!kernel) {
      if (llvm::isa<WeightOp, func::ReturnOp>(op))
        continue;
      return op.emitError("the latency model needs every op inside a quadra.kernel; "
                          "run --quadra-form-kernels first");
    }
    FailureOr<KernelCall> call = describeKernel(kernel, target);
    if (failed(call))
      return failure();
    FailureOr<uint64_t> macs = kernel.getMacs(batch);
    if (failed(macs))
      return kernel.emitError("cannot count the MACs of kernel '")
             << kernel.getName() << "'";
    cost::KernelSample s;
    s.name = kernel.getName().str();
    s.family = kernel.getFamily().str();
    s.configuration = call->configuration();
    s.batch = batch;
    s.macs = static_cast<double>(*macs);
    for (Value input : kernel.getInputs())
      s.bytes += tensorBytes(input.getType(), batch);
    for (Value output : kernel.getOutputs())
      s.bytes += tensorBytes(output.getType(), batch);
    for (const auto &[name, value] : call->params) {
      double v;
      if (!llvm::StringRef(value).getAsDouble(v))
        s.params.push_back({name, v});
    }
    for (const KernelPart &part : describeParts(kernel, target))
      s.parts.push_back(partSample(part, batch));
    samples.push_back(std::move(s));
  }
  return samples;
}

} // namespace qdsl::codegen
