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

#endif // QUADRA_INTERFACES_TD
