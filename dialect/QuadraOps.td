//===- QuadraOps.td - quadra operations --------------------*- tablegen -*-===//

#ifndef QUADRA_OPS_TD
#define QUADRA_OPS_TD

include "dialect/QuadraDialect.td"
include "dialect/QuadraAttributes.td"
include "dialect/QuadraInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/OpAsmInterface.td"

def Quadra_Tensor : RankedTensorOf<[AnyFloat]>;

// Ops whose result type follows from their operands. The shape rules live in
// QuadraShapes.cpp and are shared with the front end, so a .qd file and a
// hand-written module get the same diagnostics.
class Quadra_LayerOp<string mnemonic, list<Trait> traits = []>
    : Quadra_Op<mnemonic, !listconcat(traits, [Pure, InferTypeOpAdaptor])>;

// Ops that count multiply-accumulates.
class Quadra_ComputeOp<string mnemonic, list<Trait> traits = []>
    : Quadra_LayerOp<mnemonic, !listconcat(traits,
        [DeclareOpInterfaceMethods<Quadra_CostOpInterface>])>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def Quadra_WeightOp : Quadra_Op<"weight", [
    Pure, DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmResultNames"]>]> {
  let summary = "A named trainable tensor and its initialiser";
  let description = [{
    Declares one parameter tensor of the model. `name` is its path in the
    model (for example `stages.2.5.QuadraConv.wa`) and is the key under which
    weights files store it; the shape is the result type (always static) and
    `init` says how training starts from it.

    ```mlir
    %wa = quadra.weight "stages.0.0.QuadraConv.wa" trunc_normal(0.02) : tensor<7x7x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, Quadra_InitializerAttr:$init);
  let results = (outs Quadra_Tensor:$result);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of scalar parameters this weight holds.
    int64_t getNumElements() { return getType().getNumElements(); }
    ::mlir::RankedTensorType getType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getResult().getType());
    }
  }];
}

//===----------------------------------------------------------------------===//
// Convolutions
//===----------------------------------------------------------------------===//

def Quadra_Conv2DOp : Quadra_ComputeOp<"conv2d"> {
  let summary = "2-D convolution over an NHWC tensor";
  let description = [{
    `filter` is laid out HWIO: [kh, kw, C_in / groups, C_out]; `bias`, when
    present, is [C_out]. `stride` is [sh, sw]; `padding` [ph, pw] adds that
    many zeros on both sides of each spatial axis. The output has
    ⌊(H + 2·ph − kh) / sh⌋ + 1 rows (likewise columns) and C_out channels.

    ```mlir
    %y = quadra.conv2d %x, %w, %b stride [4, 4] pad [0, 0] groups 1
        : (tensor<?x224x224x3xf32>, tensor<4x4x3x64xf32>, tensor<64xf32>)
        -> tensor<?x56x56x64xf32>
    ```
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$filter,
                       Optional<Quadra_Tensor>:$bias,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding,
                       I64Attr:$groups);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $filter (`,` $bias^)? `stride` $stride `pad` $padding
    `groups` $groups attr-dict `:` functional-type(operands, results)
  }];
}

def Quadra_DepthwiseConv2DOp : Quadra_ComputeOp<"dwconv"> {
  let summary = "Depthwise 2-D convolution over an NHWC tensor";
  let description = [{
    One kh×kw filter per channel: `filter` is [kh, kw, C], `bias` is [C].
    Stride and padding as in `quadra.conv2d`; channels are preserved.

    ```mlir
    %y = quadra.dwconv %x, %w, %b stride [1, 1] pad [3, 3]
        : (tensor<?x56x56x64xf32>, tensor<7x7x64xf32>, tensor<64xf32>)
        -> tensor<?x56x56x64xf32>
    ```
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$filter,
                       Optional<Quadra_Tensor>:$bias,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $filter (`,` $bias^)? `stride` $stride `pad` $padding
    attr-dict `:` functional-type(operands, results)
  }];
}

def Quadra_QuadraticDepthwiseConv2DOp : Quadra_ComputeOp<"qdwconv"> {
  let summary = "Quadratic depthwise convolution (Wa⊛x)⊙(Wb⊛x) + Wc⊛x";
  let description = [{
    QuadraNet's spatial mixing operator: three depthwise convolutions of the
    same input with filters `wa`, `wb`, `wc` (each [kh, kw, C]), combined as
    `xa ⊙ xb + xc`. `biases`, when present, are exactly three [C] tensors
    added to xa, xb and xc. Stride and padding apply to all three.

    ```mlir
    %y = quadra.qdwconv %x, %wa, %wb, %wc bias(%ba, %bb, %bc)
        stride [1, 1] pad [3, 3]
        : (tensor<?x56x56x64xf32>, tensor<7x7x64xf32>, tensor<7x7x64xf32>,
           tensor<7x7x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>)
        -> tensor<?x56x56x64xf32>
    ```
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$wa,
                       Quadra_Tensor:$wb, Quadra_Tensor:$wc,
                       Variadic<Quadra_Tensor>:$biases,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $wa `,` $wb `,` $wc (`bias` `(` $biases^ `)`)?
    `stride` $stride `pad` $padding attr-dict
    `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Channel mixing
//===----------------------------------------------------------------------===//

def Quadra_LinearOp : Quadra_ComputeOp<"linear"> {
  let summary = "Affine map over the last (channel) axis; a pointwise conv";
  let description = [{
    `y[..., o] = Σ_i x[..., i] · weight[i, o] + bias[o]`, applied at every
    position of the leading axes, so on an NHWC tensor it is a 1×1
    convolution. `weight` is [C_in, C_out]; `bias`, when present, [C_out].

    ```mlir
    %y = quadra.linear %x, %w, %b
        : (tensor<?x56x56x64xf32>, tensor<64x256xf32>, tensor<256xf32>)
        -> tensor<?x56x56x256xf32>
    ```
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$weight,
                       Optional<Quadra_Tensor>:$bias);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict
    `:` functional-type(operands, results)
  }];
}

def Quadra_QuadraticLinearOp : Quadra_ComputeOp<"qlinear"> {
  let summary = "Quadratic linear layer (Wa x)⊙(Wb x) + Wc x";
  let description = [{
    A layer of QuadraNet's low-rank quadratic neurons over the last axis:
    three [C_in, C_out] weights; `biases`, when present, are three [C_out]
    tensors added to the three products before they are combined.

    ```mlir
    %y = quadra.qlinear %x, %wa, %wb, %wc bias(%ba, %bb, %bc)
        : (tensor<?x2xf32>, tensor<2x1xf32>, tensor<2x1xf32>, tensor<2x1xf32>,
           tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x1xf32>
    ```
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$wa,
                       Quadra_Tensor:$wb, Quadra_Tensor:$wc,
                       Variadic<Quadra_Tensor>:$biases);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $wa `,` $wb `,` $wc (`bias` `(` $biases^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Normalisation, activation and scaling
//===----------------------------------------------------------------------===//

def Quadra_LayerNormOp : Quadra_LayerOp<"layernorm"> {
  let summary = "Layer normalisation over the last (channel) axis";
  let description = [{
    `y = (x − mean) / sqrt(var + epsilon) · scale + offset`, the statistics
    taken over the last axis at every position; `scale` and `offset` are [C].
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$scale,
                       Quadra_Tensor:$offset, F64Attr:$epsilon);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $scale `,` $offset `eps` custom<ShortFloat>($epsilon) attr-dict
    `:` functional-type(operands, results)
  }];
}

def Quadra_LayerScaleOp : Quadra_LayerOp<"layerscale"> {
  let summary = "Per-channel scaling by a learned vector";
  let description = [{
    `y[..., c] = x[..., c] · scale[c]`; `scale` is [C]. QuadraNet initialises
    it small (1e-6) so that each residual branch starts close to identity.
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$scale);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $scale attr-dict `:` functional-type(operands, results)
  }];
}

class Quadra_UnaryOp<string mnemonic, list<Trait> traits = []>
    : Quadra_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType])> {
  let arguments = (ins Quadra_Tensor:$input);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Quadra_GeluOp : Quadra_UnaryOp<"gelu"> {
  let summary = "Gaussian error linear unit, exact (erf) form";
  let description = [{ `y = x · Φ(x) = x/2 · (1 + erf(x / √2))`, elementwise. }];
}

def Quadra_ReluOp : Quadra_UnaryOp<"relu"> {
  let summary = "Rectified linear unit";
  let description = [{ `y = max(x, 0)`, elementwise. }];
  let hasFolder = 1;
}

def Quadra_IdentityOp : Quadra_UnaryOp<"identity"> {
  let summary = "Passes its input through";
  let description = [{
    Kept by the front end so that a skip candidate of a search space is an op
    like any other; canonicalisation folds it away.
  }];
  let hasFolder = 1;
}

class Quadra_BinaryOp<string mnemonic, list<Trait> traits = []>
    : Quadra_Op<mnemonic, !listconcat(traits,
        [Pure, SameOperandsAndResultType, Commutative])> {
  let arguments = (ins Quadra_Tensor:$lhs, Quadra_Tensor:$rhs);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Quadra_AddOp : Quadra_BinaryOp<"add"> {
  let summary = "Elementwise sum; the residual connection";
  let description = [{ `y = lhs + rhs`; both operands have the same type. }];
}

def Quadra_MulOp : Quadra_BinaryOp<"mul"> {
  let summary = "Elementwise (Hadamard) product";
  let description = [{ `y = lhs ⊙ rhs`; both operands have the same type. }];
}

def Quadra_GlobalAvgPoolOp : Quadra_LayerOp<"avgpool"> {
  let summary = "Global average pooling over height and width";
  let description = [{ [N, H, W, C] → [N, C]: the mean over all positions. }];
  let arguments = (ins Quadra_Tensor:$input);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

//===----------------------------------------------------------------------===//
// Search spaces
//===----------------------------------------------------------------------===//

def Quadra_ChoiceOp : Quadra_Op<"choice", [RecursiveMemoryEffects]> {
  let summary = "One searchable layer: exactly one candidate region runs";
  let description = [{
    Each region is a candidate implementation of the same layer: it takes the
    layer input as its only block argument and yields a value of the result
    type. `candidates` names them (for reports and for fixing a choice after
    search); weights a candidate needs are declared inside its region.

    ```mlir
    %y = quadra.choice "stages.2.0" %x : tensor<?x14x14x256xf32> -> tensor<?x14x14x256xf32>
    candidate "quadra(k = 3, expand = 2)" {
    ^bb0(%in: tensor<?x14x14x256xf32>):
      ...
      quadra.yield %out : tensor<?x14x14x256xf32>
    }
    candidate "skip" {
    ^bb0(%in: tensor<?x14x14x256xf32>):
      quadra.yield %in : tensor<?x14x14x256xf32>
    }
    ```
  }];
  let arguments = (ins Quadra_Tensor:$input, StrAttr:$layer,
                       StrArrayAttr:$candidates);
  let results = (outs Quadra_Tensor:$result);
  let regions = (region VariadicRegion<SizedRegion<1>>:$alternatives);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

def Quadra_KernelOp : Quadra_Op<"kernel", [
    IsolatedFromAbove, RecursiveMemoryEffects,
    DeclareOpInterfaceMethods<Quadra_CostOpInterface>]> {
  let summary = "Ops fused into one generated function";
  let description = [{
    The unit of code generation and of latency cost: the ops of the region
    run as one kernel that reads its inputs (activations and weights) once
    and writes only its result, keeping every intermediate in registers or
    cache. `family` names the fusion rule that formed it and selects its
    code generator; `name` is unique in the model. The region's arguments
    are the operands, in order; it ends with `quadra.yield`.

    ```mlir
    %3 = quadra.kernel "stages.0.0/ln_pwconv_gelu" family "ln_pwconv_gelu"
        (%x, %g, %b, %w, %bias) : (...) -> tensor<?x56x56x256xf32> {
    ^bb0(%a0: ..., ...):
      ...
      quadra.yield %r : tensor<?x56x56x256xf32>
    }
    ```
  }];
  let arguments = (ins Variadic<Quadra_Tensor>:$inputs, StrAttr:$name,
                       StrAttr:$family);
  let results = (outs Quadra_Tensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The ops of the kernel, in order, without the terminator.
    auto getKernelOps() {
      return getBody().front().without_terminator();
    }
  }];
}

def Quadra_YieldOp : Quadra_Op<"yield", [
    Pure, Terminator, ReturnLike, ParentOneOf<["ChoiceOp", "KernelOp"]>]> {
  let summary = "Ends a candidate of quadra.choice or the body of a quadra.kernel";
  let arguments = (ins Quadra_Tensor:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

#endif // QUADRA_OPS_TD
