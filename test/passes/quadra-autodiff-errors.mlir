// RUN: qdsl-opt %s --split-input-file --verify-diagnostics --quadra-autodiff -o /dev/null

// Every kind of op without a gradient rule is named at once, each with the
// first place it is used.
// expected-error @+1 {{cannot differentiate 'Searched': no gradient rule for 'quadra.choice', 'quadra.kernel'}}
func.func @Searched(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  // expected-note @+1 {{'quadra.choice' is used here}}
  %c = quadra.choice "layers.0" %x : tensor<?x4xf32> -> tensor<?x4xf32>
  candidate "relu" {
  ^bb0(%in: tensor<?x4xf32>):
    %r = quadra.relu %in : tensor<?x4xf32>
    quadra.yield %r : tensor<?x4xf32>
  }
  candidate "gelu" {
  ^bb0(%in: tensor<?x4xf32>):
    %g = quadra.gelu %in : tensor<?x4xf32>
    quadra.yield %g : tensor<?x4xf32>
  }
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<4x3xf32>
  // expected-note @+1 {{'quadra.kernel' is used here}}
  %y = quadra.kernel "head/linear" family "linear" (%c, %w) : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32> {
  ^bb0(%a: tensor<?x4xf32>, %b: tensor<4x3xf32>):
    %l = quadra.linear %a, %b : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
    quadra.yield %l : tensor<?x3xf32>
  }
  return %y : tensor<?x3xf32>
}

// -----

// Training needs [N, K] logits.
// expected-error @+1 {{cannot train 'Features': a model takes one input batch and returns [N, K] logits, this function has type '(tensor<?x6x6x4xf32>) -> tensor<?x6x6x4xf32>'}}
func.func @Features(%x: tensor<?x6x6x4xf32>) -> tensor<?x6x6x4xf32> {
  %y = quadra.relu %x : tensor<?x6x6x4xf32>
  return %y : tensor<?x6x6x4xf32>
}

// -----

// A weight that nothing reads would never train.
// expected-error @+1 {{cannot train 'Unused': weight 'spare' does not reach the logits, so it gets no gradient}}
func.func @Unused(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<4x3xf32>
  %spare = quadra.weight "spare" zeros : tensor<3xf32>
  %y = quadra.linear %x, %w : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}
