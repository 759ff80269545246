// RUN: qdsl-opt %s --split-input-file --verify-diagnostics

// The result type of a transposed convolution must be an input that the
// forward convolution maps to the gradient's shape.
func.func @wrong_input(%dy: tensor<?x7x7x8xf32>, %w: tensor<3x3x4x8xf32>) -> tensor<?x16x16x4xf32> {
  // expected-error @+1 {{the forward convolution of this result type gives 'tensor<?x8x8x8xf32>', not the gradient's type 'tensor<?x7x7x8xf32>'}}
  %dx = quadra.conv2d_grad_input %dy, %w stride [2, 2] pad [1, 1] groups 1 : (tensor<?x7x7x8xf32>, tensor<3x3x4x8xf32>) -> tensor<?x16x16x4xf32>
  return %dx : tensor<?x16x16x4xf32>
}

// -----

func.func @wrong_filter(%x: tensor<?x8x8x4xf32>, %dy: tensor<?x8x8x4xf32>) -> tensor<5x5x4xf32> {
  // expected-error @+1 {{the forward depthwise convolution of this result type gives 'tensor<?x6x6x4xf32>', not the gradient's type 'tensor<?x8x8x4xf32>'}}
  %dw = quadra.dwconv_grad_filter %x, %dy stride [1, 1] pad [1, 1] : (tensor<?x8x8x4xf32>, tensor<?x8x8x4xf32>) -> tensor<5x5x4xf32>
  return %dw : tensor<5x5x4xf32>
}

// -----

func.func @wrong_pool(%dy: tensor<?x8xf32>) -> tensor<?x7x7x4xf32> {
  // expected-error @+1 {{the forward average pooling of this result type gives 'tensor<?x4xf32>', not the gradient's type 'tensor<?x8xf32>'}}
  %dx = quadra.avgpool_grad %dy : tensor<?x8xf32> -> tensor<?x7x7x4xf32>
  return %dx : tensor<?x7x7x4xf32>
}

// -----

func.func @smoothing(%logits: tensor<?x10xf32>, %labels: tensor<?xi32>) -> tensor<f32> {
  // expected-error @+1 {{label smoothing must be in [0, 1), got 1}}
  %loss = quadra.softmax_cross_entropy %logits, %labels smoothing 1.0 : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

func.func @labels(%logits: tensor<4x10xf32>, %labels: tensor<3xi32>) -> tensor<f32> {
  // expected-error @+2 {{softmax_cross_entropy: labels i32[3] do not match the batch of logits f32[4, 10]}}
  // expected-error @+1 {{failed to infer returned types}}
  %loss = quadra.softmax_cross_entropy %logits, %labels smoothing 0.0 : (tensor<4x10xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}
