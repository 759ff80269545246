//===- KernelCosts.cpp - the cost model's view of formed kernels ----------===//

#include "codegen/latency/KernelCosts.h"

#include "codegen/KernelCalls.h"
#include "dialect/QuadraOps.h"

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
    samples.push_back(std::move(s));
  }
  return samples;
}

} // namespace qdsl::codegen
