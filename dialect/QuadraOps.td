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
    : Quadra_Op<mnemonic, !listconcat(traits, [Pure, InferTypeOpAdaptor,
        DeclareOpInterfaceMethods<Quadra_GradientOpInterface>])>;

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
    : Quadra_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType,
        DeclareOpInterfaceMethods<Quadra_GradientOpInterface>])> {
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
        [Pure, SameOperandsAndResultType, Commutative,
         DeclareOpInterfaceMethods<Quadra_GradientOpInterface>])> {
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
// Loss and gradients
//
// What --quadra-autodiff builds the backward pass from, besides the forward
// ops themselves. Each op is the adjoint of a forward op (or a piece of it);
// dialect/QuadraGradients.cpp holds the rules that use them.
//===----------------------------------------------------------------------===//

def Quadra_Labels : 1DTensorOf<[I32]>;
def Quadra_Scalar : 0DTensorOf<[F32]>;

// The root of every backward pass: --quadra-autodiff starts from
// quadra.softmax_cross_entropy_grad rather than through a gradient rule.
def Quadra_SoftmaxCrossEntropyOp : Quadra_Op<"softmax_cross_entropy", [
    Pure, InferTypeOpAdaptor]> {
  let summary = "Mean softmax cross-entropy of logits against class labels";
  let description = [{
    `logits` is [N, K], `labels` [N] class indices. With label smoothing ε
    the target of an example is (1 − ε) on its label plus ε / K on every
    class; the result is the mean over the batch of −Σ_k target_k ·
    log softmax(logits)_k.

    ```mlir
    %loss = quadra.softmax_cross_entropy %logits, %labels smoothing 0.1
        : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Quadra_Tensor:$logits, Quadra_Labels:$labels,
                       F64Attr:$smoothing);
  let results = (outs Quadra_Scalar:$loss);
  let assemblyFormat = [{
    $logits `,` $labels `smoothing` custom<ShortFloat>($smoothing) attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

// Gradient ops have no gradients of their own: qdsl differentiates once.
class Quadra_GradOp<string mnemonic, list<Trait> traits = []>
    : Quadra_Op<mnemonic, !listconcat(traits, [Pure])>;

def Quadra_SoftmaxCrossEntropyGradOp
    : Quadra_GradOp<"softmax_cross_entropy_grad", [InferTypeOpAdaptor]> {
  let summary = "Gradient of quadra.softmax_cross_entropy for its logits";
  let description = [{
    `(softmax(logits) − target) / N`, with the smoothed target of
    `quadra.softmax_cross_entropy`: the gradient of the mean loss.
  }];
  let arguments = (ins Quadra_Tensor:$logits, Quadra_Labels:$labels,
                       F64Attr:$smoothing);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $logits `,` $labels `smoothing` custom<ShortFloat>($smoothing)
    attr-dict `:` functional-type(operands, results)
  }];
}

def Quadra_Conv2DGradInputOp : Quadra_GradOp<"conv2d_grad_input"> {
  let summary = "Gradient of quadra.conv2d for its input";
  let description = [{
    The transposed convolution of `dy` with `filter`: each input position
    receives the gradients of the outputs whose window covered it. The
    result type is the forward input's, which a strided convolution does not
    determine; the verifier checks that it is consistent.
  }];
  let arguments = (ins Quadra_Tensor:$dy, Quadra_Tensor:$filter,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding,
                       I64Attr:$groups);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $dy `,` $filter `stride` $stride `pad` $padding `groups` $groups attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Quadra_Conv2DGradFilterOp : Quadra_GradOp<"conv2d_grad_filter"> {
  let summary = "Gradient of quadra.conv2d for its filter";
  let description = [{
    `dW[ky, kx, ci, co] = Σ_{n, y, x} x[n, y·s + ky − p, x·s + kx − p, g·Cin/g + ci] ·
    dy[n, y, x, co]`; the result has the filter's type.
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$dy,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding,
                       I64Attr:$groups);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $dy `stride` $stride `pad` $padding `groups` $groups attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Quadra_DepthwiseConv2DGradInputOp : Quadra_GradOp<"dwconv_grad_input"> {
  let summary = "Gradient of quadra.dwconv for its input";
  let description = [{
    The transposed depthwise convolution of `dy` with `filter` ([kh, kw, C]);
    the result type is the forward input's (checked by the verifier).
  }];
  let arguments = (ins Quadra_Tensor:$dy, Quadra_Tensor:$filter,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $dy `,` $filter `stride` $stride `pad` $padding attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Quadra_DepthwiseConv2DGradFilterOp : Quadra_GradOp<"dwconv_grad_filter"> {
  let summary = "Gradient of quadra.dwconv for its filter";
  let description = [{
    `dW[ky, kx, c] = Σ_{n, y, x} x[n, y·s + ky − p, x·s + kx − p, c] · dy[n, y, x, c]`.
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$dy,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $dy `stride` $stride `pad` $padding attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Quadra_LinearGradInputOp
    : Quadra_GradOp<"linear_grad_input", [InferTypeOpAdaptor]> {
  let summary = "Gradient of quadra.linear for its input: dy · Wᵀ";
  let arguments = (ins Quadra_Tensor:$dy, Quadra_Tensor:$weight);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $dy `,` $weight attr-dict `:` functional-type(operands, results)
  }];
}

def Quadra_LinearGradWeightOp
    : Quadra_GradOp<"linear_grad_weight", [InferTypeOpAdaptor]> {
  let summary = "Gradient of quadra.linear for its weight: Σ_rows xᵀ · dy";
  let description = [{
    `dW[i, o] = Σ_r x[r, i] · dy[r, o]` over every position r of the
    leading axes; the result is [C_in, C_out].
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$dy);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $dy attr-dict `:` functional-type(operands, results)
  }];
}

def Quadra_ChannelSumOp : Quadra_GradOp<"channel_sum", [InferTypeOpAdaptor]> {
  let summary = "Sum over every axis but the last";
  let description = [{
    [..., C] → [C]: the gradient of a per-channel bias, scale or offset
    from the gradient of the tensor it was broadcast over.
  }];
  let arguments = (ins Quadra_Tensor:$input);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Quadra_LayerNormGradOp
    : Quadra_GradOp<"layernorm_grad", [InferTypeOpAdaptor]> {
  let summary = "Gradients of quadra.layernorm for its input, scale and offset";
  let description = [{
    With x̂ the normalised input and σ its standard deviation at each
    position: `dx = (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) / σ` where `ĝ = dy ⊙
    scale`, `dscale = Σ dy ⊙ x̂`, `doffset = Σ dy` (sums over positions).
    x̂ and σ are recomputed from `input`.
  }];
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$scale,
                       Quadra_Tensor:$dy, F64Attr:$epsilon);
  let results = (outs Quadra_Tensor:$dinput, Quadra_Tensor:$dscale,
                      Quadra_Tensor:$doffset);
  let assemblyFormat = [{
    $input `,` $scale `,` $dy `eps` custom<ShortFloat>($epsilon) attr-dict
    `:` functional-type(operands, results)
  }];
}

def Quadra_GeluGradOp
    : Quadra_GradOp<"gelu_grad", [SameOperandsAndResultType]> {
  let summary = "Gradient of quadra.gelu: dy · (Φ(x) + x · φ(x))";
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$dy);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$input `,` $dy attr-dict `:` type($result)";
}

def Quadra_ReluGradOp
    : Quadra_GradOp<"relu_grad", [SameOperandsAndResultType]> {
  let summary = "Gradient of quadra.relu: dy where the input is positive, else 0";
  let arguments = (ins Quadra_Tensor:$input, Quadra_Tensor:$dy);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$input `,` $dy attr-dict `:` type($result)";
}

def Quadra_GlobalAvgPoolGradOp : Quadra_GradOp<"avgpool_grad"> {
  let summary = "Gradient of quadra.avgpool: dy / (H·W) at every position";
  let description = [{
    [N, C] → [N, H, W, C]; the result type is the forward input's (checked
    by the verifier).
  }];
  let arguments = (ins Quadra_Tensor:$dy);
  let results = (outs Quadra_Tensor:$result);
  let assemblyFormat = "$dy attr-dict `:` type($dy) `->` type($result)";
  let hasVerifier = 1;
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
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, StrAttr:$name,
                       StrAttr:$family);
  // Most kernels have one result; a backward kernel may have several (a
  // layer norm's gradient for its input, scale and offset).
  let results = (outs Variadic<AnyRankedTensor>:$outputs);
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
  let description = [{
    A candidate yields exactly one value; a kernel yields one value per
    result.
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$values);
  let assemblyFormat = "$values attr-dict `:` type($values)";
}

#endif // QUADRA_OPS_TD
