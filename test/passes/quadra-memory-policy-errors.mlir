// RUN: qdsl-opt %s --split-input-file --verify-diagnostics --quadra-memory-policy=policy=paper -o /dev/null

// A value marked for recomputation must say which forward op it serves.
func.func @Step(%x: tensor<?x4xf32>, %labels: tensor<?xi32>) -> (tensor<f32>, tensor<4x3xf32>) attributes {quadra.gradients = ["w"]} {
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<4x3xf32>
  %y = quadra.linear %x, %w : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %loss = quadra.softmax_cross_entropy %y, %labels smoothing 0.0 : (tensor<?x3xf32>, tensor<?xi32>) -> tensor<f32>
  // expected-error @+1 {{a recomputed value needs 'quadra.backward_of', the position of one of the 3 forward ops}}
  %again = quadra.linear %x, %w {quadra.recompute} : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %dw = quadra.linear_grad_weight %x, %again {quadra.backward_of = 1 : i64} : (tensor<?x4xf32>, tensor<?x3xf32>) -> tensor<4x3xf32>
  return %loss, %dw : tensor<f32>, tensor<4x3xf32>
}

// -----

// ... and its operands must exist before that forward op.
func.func @Late(%x: tensor<?x4xf32>, %labels: tensor<?xi32>) -> (tensor<f32>, tensor<4x3xf32>) attributes {quadra.gradients = ["w"]} {
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<4x3xf32>
  %y = quadra.linear %x, %w : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %loss = quadra.softmax_cross_entropy %y, %labels smoothing 0.0 : (tensor<?x3xf32>, tensor<?xi32>) -> tensor<f32>
  // expected-error @+1 {{cannot compute this value in the forward pass: an operand is defined after forward op 0}}
  %again = quadra.linear %x, %w {quadra.recompute, quadra.backward_of = 0 : i64} : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %dw = quadra.linear_grad_weight %x, %again {quadra.backward_of = 1 : i64} : (tensor<?x4xf32>, tensor<?x3xf32>) -> tensor<4x3xf32>
  return %loss, %dw : tensor<f32>, tensor<4x3xf32>
}
