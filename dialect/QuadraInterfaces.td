//===- QuadraInterfaces.td - quadra op interfaces ----------*- tablegen -*-===//

#ifndef QUADRA_INTERFACES_TD
#define QUADRA_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Quadra_CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::qdsl::quadra";
  let description = [{
    The arithmetic cost of a layer op, declared next to the op so that every
    tool (statistics, kernel formation, the latency model) counts the same way.
    A multiply-accumulate (MAC) is one multiplication whose product is summed
    into a result; normalisation, activation and elementwise additions count
    none, as in the FLOP counters that papers report (fvcore, thop).
  }];
  let methods = [
    InterfaceMethod<[{
        Multiply-accumulates of one execution with `batch` substituted for a
        dynamic leading dimension. Fails when another dimension is dynamic or
        the count overflows 64 bits.
      }],
      "::mlir::FailureOr<uint64_t>", "getMacs", (ins "int64_t":$batch)>,
  ];
}

def Quadra_GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::qdsl::quadra";
  let description = [{
    The op's gradient rule: how the gradient of a loss with respect to its
    result becomes gradients with respect to its operands, built as quadra
    ops. Each op declares the interface next to its definition and has its
    rule in dialect/QuadraGradients.cpp; `--quadra-autodiff` chains the rules
    backwards through a model and refuses a model holding an op without one.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds, at the builder's insertion point, the gradients of the
        operands whose `wanted` flag is set, given `resultGradient` (of the
        result's type). `operandGradients` receives one value per operand,
        null where none is wanted.
      }],
      "::llvm::LogicalResult", "buildGradients",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Value":$resultGradient,
           "::llvm::ArrayRef<bool>":$wanted,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGradients)>,
  ];
}

#endif // QUADRA_INTERFACES_TD
