//===- KernelCosts.h - the cost model's view of formed kernels --*- C++ -*-===//
//
// Turns the kernels of a function formed by --quadra-form-kernels into the
// samples the latency predictors take (codegen/latency/CostModel.h): family,
// configuration (the same string that names the compiled function),
// MACs, bytes moved and the generator's numeric parameters, at a batch.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_KERNELCOSTS_H
#define QDSL_CODEGEN_LATENCY_KERNELCOSTS_H

#include "codegen/latency/CostModel.h"
#include "codegen/Targets.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <vector>

namespace qdsl::codegen {

/// One sample per kernel of `function` (formed for `target`), in order.
mlir::FailureOr<std::vector<cost::KernelSample>>
kernelSamples(mlir::func::FuncOp function, const Target &target, int64_t batch);

} // namespace qdsl::codegen

#endif // QDSL_CODEGEN_LATENCY_KERNELCOSTS_H
