//===- QuadraDialect.td - the quadra dialect ---------------*- tablegen -*-===//
//
// The dialect in which qdsl represents QuadraNet models and search spaces.
//
//===----------------------------------------------------------------------===//

#ifndef QUADRA_DIALECT_TD
#define QUADRA_DIALECT_TD

include "mlir/IR/OpBase.td"

def Quadra_Dialect : Dialect {
  let name = "quadra";
  let cppNamespace = "::qdsl::quadra";
  let summary = "Quadratic neural networks: layers, weights and search spaces";
  let description = [{
    The `quadra` dialect describes a neural network as a dataflow of layer ops
    on NHWC tensors (batch, height, width, channels). Every trainable tensor is
    an explicit `quadra.weight` value with a name and an initialiser, so a
    module states exactly which parameters a model has and how they start.

    The quadratic operators of QuadraNet (`quadra.qdwconv`, `quadra.qlinear`)
    are first-class ops; passes can expand them into linear primitives and fuse
    them back. `quadra.choice` holds the candidates of one searchable layer of a
    neural-architecture search space, one region per candidate.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasCanonicalizer = 0;
}

class Quadra_Op<string mnemonic, list<Trait> traits = []>
    : Op<Quadra_Dialect, mnemonic, traits>;

#endif // QUADRA_DIALECT_TD
