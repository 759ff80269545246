//===- Passes.td - passes on the quadra dialect ------------*- tablegen -*-===//

#ifndef QUADRA_PASSES_TD
#define QUADRA_PASSES_TD

include "mlir/Pass/PassBase.td"

def QuadraExpandQDWConv : Pass<"quadra-expand-qdwconv"> {
  let summary = "Expand quadratic depthwise convolutions into linear primitives";
  let description = [{
    Rewrites every `quadra.qdwconv` into the computation it stands for: three
    `quadra.dwconv` (with their biases), a `quadra.mul` of the first two and a
    `quadra.add` of the third:

    ```
    y = qdwconv(x; wa, wb, wc)   ==>   y = dwconv(x; wa) ⊙ dwconv(x; wb) + dwconv(x; wc)
    ```

    The result materialises the four intermediate tensors (xa, xb, xa⊙xb, xc)
    that the fused op avoids; it is the unfused baseline for benchmarks and for
    targets without a fused kernel. `quadra-fuse-qdwconv` is its inverse.
  }];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraFuseQDWConv : Pass<"quadra-fuse-qdwconv"> {
  let summary = "Recognise (Wa⊛x)⊙(Wb⊛x) + Wc⊛x and fuse it into quadra.qdwconv";
  let description = [{
    Finds `add(mul(dwconv(x; wa), dwconv(x; wb)), dwconv(x; wc))`, in either
    operand order of the add and of the mul, and replaces it by one
    `quadra.qdwconv`, so that a model written with primitives gets the fused
    kernel and keeps no intermediate tensor.

    The pattern is left alone when it would change what is computed or lose a
    value that is still needed: when the three convolutions read different
    inputs, when their filters differ in shape or their stride or padding
    differ, when only some of them have a bias, or when xa, xb, xa⊙xb or xc
    has a use outside the pattern.
  }];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraFormKernels : Pass<"quadra-form-kernels"> {
  let summary = "Group ops into kernels by the target's fusion rules";
  let description = [{
    Walks each block in order and wraps every chain of ops that matches one
    of the target's fusion rules (codegen/Targets.cpp), such as layernorm →
    qdwconv → layerscale → add, into one `quadra.kernel`; every other layer
    op becomes a kernel of its own. In a chain, each op's result must have
    the next op as its only user, so no intermediate is needed outside the
    kernel. Weights stay outside as kernel inputs; `quadra.identity` is
    folded away. In a training step, the backward ops of each stride-1
    qdwconv (products, input and filter gradients, their sums and channel
    sums: what its gradient rule builds) become one `qdwconv_grad` kernel
    with inputs x, dy, xa, xb and the three filters and one output per
    gradient. The result is what code generation and the latency model
    work on.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"::qdsl::codegen::kDefaultTarget",
           "Target whose fusion rules apply (x86-64-avx2, arm64-a76, opencl)">,
  ];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraFixChoices : Pass<"quadra-fix-choices", "::mlir::ModuleOp"> {
  let summary = "Turn a search space into one architecture by fixing every choice";
  let description = [{
    Replaces each `quadra.choice` by the ops of one of its candidates, so
    that the space becomes a model code can be generated for. Choices are
    numbered in the order they appear in the module (the order of
    `qdsl stats`' search-space table): `picks` gives one candidate index per
    choice; with `seed` instead, every candidate is drawn uniformly from a
    generator seeded with it (the same seed always gives the same
    architecture). The wrong number of picks or an index out of range is an
    error on the choice, naming its layer and candidates.
  }];
  let options = [
    ListOption<"picks", "picks", "int64_t", "Candidate index of each choice, in order">,
    Option<"seed", "seed", "int64_t", /*default=*/"-1",
           "Draw every candidate at random from this seed (when >= 0)">,
  ];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraSupernet : Pass<"quadra-supernet", "::mlir::ModuleOp"> {
  let summary = "Turn a search space into a gated supernet with every candidate inlined";
  let description = [{
    Replaces each `quadra.choice` of layer l with K candidates by the ops of
    every candidate, each tagged `quadra.path = [l, c]`, and sums their
    outputs through gates:

    ```
    y = Σ_c layerscale(o_c, gate_c)      gate_c = weight "<l>.candidates.<c>.gate" : [C]
    ```

    The gates are weights like any other, so `--quadra-autodiff` derives
    ∂L/∂gate_c = channel_sum(dy ⊙ o_c), the binary-gate gradient of
    ProxylessNAS, with the gradients of the candidates' own weights. A
    search sets each gate vector to 1 or 0 (a sampled path) before a step,
    and the generated code skips the kernels of candidates whose gate is 0
    (docs/NAS.md). An identity candidate gates the choice's input. The
    function records its layers, candidates and gate weights in
    `quadra.supernet`. Choices nested inside candidates are an error.
  }];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraRecomputeGatePaths : Pass<"quadra-recompute-gate-paths", "::mlir::func::FuncOp"> {
  let summary = "In a supernet's training step, recompute each candidate's output for its gate gradient";
  let description = [{
    The architecture step of a search needs ∂L/∂gate_c for the two
    candidates it sampled, one of which did not run in the forward pass.
    This pass gives the gate gradient of each candidate (the product
    dy ⊙ o_c under channel_sum) its own copy of the candidate's forward ops,
    placed just before it in the backward pass and tagged
    `quadra.path = [l, c, 1]`: the generated code runs that copy only for
    the sampled candidates, from the choice's input, as ProxylessNAS
    recomputes them, so no candidate's activations are kept for it.
  }];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraPrintStats : Pass<"quadra-print-stats", "::mlir::ModuleOp"> {
  let summary = "Print parameters, MACs and activation memory of every model";
  let description = [{
    For every function of the module, prints one row per layer (the layer is
    the first part of an op's name location, before a `/`) with its output
    shape, parameters, multiply-accumulates and forward activation bytes, then
    the totals. This is what `qdsl stats` prints; the pass exists so that the
    counting rules are tested on hand-written IR.
  }];
  let options = [
    Option<"batch", "batch", "int64_t", /*default=*/"1",
           "Batch size substituted for a dynamic leading dimension">,
  ];
}

def QuadraAutodiff : Pass<"quadra-autodiff", "::mlir::ModuleOp"> {
  let summary = "Build each model's training step: loss, logits and weight gradients";
  let description = [{
    For every model `@M` (a function from an input batch to [N, K] logits)
    adds `@M_train_step(%x, %labels)`, which runs the model, takes the mean
    softmax cross-entropy of the logits against `%labels` (tensor<Nxi32>),
    and returns the loss, the logits and the gradient of the loss with
    respect to every weight, in the order the model declares its weights.
    The function's `quadra.gradients` attribute names them.

    The backward pass is built from each op's gradient rule
    (`GradientOpInterface`, dialect/QuadraGradients.cpp), in reverse order,
    summing the gradients of values with several uses. Only values that
    depend on a weight get gradients: nothing flows back into the input.
    A model holding an op without a rule (a search choice, a formed kernel)
    is an error that names every such op; so is a weight that does not reach
    the logits.
  }];
  let options = [
    Option<"labelSmoothing", "label-smoothing", "double", /*default=*/"0.0",
           "Label smoothing ε of the loss, in [0, 1)">,
  ];
  let dependentDialects = ["::qdsl::quadra::QuadraDialect"];
}

def QuadraMemoryPolicy : Pass<"quadra-memory-policy", "::mlir::func::FuncOp"> {
  let summary = "Decide per saved tensor of a training step: keep it or recompute it";
  let description = [{
    Works on the training steps --quadra-autodiff builds. The gradient rules
    mark the values they recompute (`quadra.recompute`: xa and xb of a
    qdwconv or qlinear); the policy decides:

    - `keep-all` and `paper`: each recomputed value is computed once in the
      forward pass, right after its operands, and kept for the backward
      pass. `keep-all` is meant for a model whose qdwconvs were expanded
      (--quadra-expand-qdwconv) before --quadra-autodiff, as a tape of
      primitive ops would store them; the planner then also keeps every op
      output until that op's backward has run.
    - `min-memory`: the recomputed values stay in the backward pass, and
      the outputs of layer norms, GELUs, (q)dwconvs and expanding linear
      layers of at most 147 input channels (no more MACs per element than
      a 7×7 qdwconv) that the backward pass reads are computed again just before
      it needs them, so the forward copies die as soon as the forward pass
      is done with them. These ops are a few percent of a QuadraBlock's
      MACs; other pointwise layers' outputs are kept.

    The step records the policy as `quadra.memory_policy`, which the
    memory planner reads.
  }];
  let options = [
    Option<"policy", "policy", "::qdsl::quadra::MemoryPolicy",
           /*default=*/"::qdsl::quadra::kDefaultMemoryPolicy",
           "keep-all, paper or min-memory (the default)">,
  ];
}

def QuadraPlanMemory : Pass<"quadra-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Print the static memory plan of every training step";
  let description = [{
    Gives every activation, gradient and loss tensor of each training step
    an offset in one arena from its lifetime in program order (largest
    first, each at the lowest offset free for its whole lifetime), and
    prints the arena's size, the most bytes live at once (a bound no plan
    beats), the parameters and AdamW's state. `qdsl stats --train` prints
    the same per policy.
  }];
  let options = [
    Option<"batch", "batch", "int64_t", /*default=*/"1",
           "Batch size substituted for a dynamic leading dimension">,
  ];
}

#endif // QUADRA_PASSES_TD
