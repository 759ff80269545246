//===- QuadraAttributes.td - quadra attributes -------------*- tablegen -*-===//

#ifndef QUADRA_ATTRIBUTES_TD
#define QUADRA_ATTRIBUTES_TD

include "dialect/QuadraDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Quadra_InitKind : I32EnumAttr<"InitKind", "how a weight is initialised", [
    I32EnumAttrCase<"Zeros", 0, "zeros">,
    I32EnumAttrCase<"Ones", 1, "ones">,
    I32EnumAttrCase<"Constant", 2, "constant">,
    I32EnumAttrCase<"Normal", 3, "normal">,
    I32EnumAttrCase<"TruncNormal", 4, "trunc_normal">,
    I32EnumAttrCase<"Uniform", 5, "uniform">
  ]> {
  let cppNamespace = "::qdsl::quadra";
  let genSpecializedAttr = 0;
}

def Quadra_InitializerAttr : AttrDef<Quadra_Dialect, "Initializer"> {
  let mnemonic = "init";
  let summary = "How a weight gets its first value";
  let description = [{
    `zeros`, `ones`, `constant(v)` (every element v), `normal(std)` (mean 0),
    `trunc_normal(std)` (mean 0, resampled beyond two standard deviations) or
    `uniform(bound)` (uniform in [-bound, bound]). Written
    `#quadra.init<trunc_normal(0.02)>` on its own and `trunc_normal(0.02)`
    inside `quadra.weight`.
  }];
  let parameters = (ins "InitKind":$kind, APFloatParameter<"">:$value);
  let builders = [
    AttrBuilder<(ins "InitKind":$kind, CArg<"double", "0.0">:$value), [{
      return $_get($_ctxt, kind, ::llvm::APFloat(value));
    }]>
  ];
  let skipDefaultBuilders = 1;
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    double getValueAsDouble() const { return getValue().convertToDouble(); }
    /// Whether this kind takes a value in parentheses.
    static bool kindHasValue(InitKind kind);
    /// Prints `kind(value)` or `kind`, without the attribute's own brackets.
    void printBody(::mlir::AsmPrinter &printer) const;
    /// Parses what printBody prints.
    static ::mlir::FailureOr<InitializerAttr> parseBody(::mlir::AsmParser &parser);
  }];
}

#endif // QUADRA_ATTRIBUTES_TD
