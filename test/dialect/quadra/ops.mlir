// RUN: qdsl-opt %s | FileCheck %s
// RUN: qdsl-opt %s --mlir-print-op-generic | qdsl-opt | FileCheck %s

// Every op and attribute prints in its custom form and parses back (lit runs
// qdsl-opt with --verify-roundtrip as well).

// CHECK-LABEL: func.func @weights
func.func @weights() -> (tensor<4x4x3x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<2x2xf32>, tensor<3xf32>) {
  // CHECK: %stem.conv.weight = quadra.weight "stem.conv.weight" trunc_normal(0.02) : tensor<4x4x3x8xf32>
  %0 = quadra.weight "stem.conv.weight" trunc_normal(0.02) : tensor<4x4x3x8xf32>
  // CHECK: quadra.weight "b" zeros : tensor<8xf32>
  %1 = quadra.weight "b" zeros : tensor<8xf32>
  // CHECK: quadra.weight "g" constant(1.0e-06) : tensor<8xf32>
  %2 = quadra.weight "g" constant(1.0e-6) : tensor<8xf32>
  // CHECK: quadra.weight "n" ones : tensor<8xf32>
  %3 = quadra.weight "n" ones : tensor<8xf32>
  // CHECK: quadra.weight "u" uniform(0.5) {note = "kept"} : tensor<2x2xf32>
  %4 = quadra.weight "u" uniform(0.5) {note = "kept"} : tensor<2x2xf32>
  // CHECK: quadra.weight "w" normal(1.0) : tensor<3xf32>
  %5 = quadra.weight "w" normal(1.0) : tensor<3xf32>
  return %0, %1, %2, %3, %4, %5 : tensor<4x4x3x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<2x2xf32>, tensor<3xf32>
}

// CHECK-LABEL: func.func @convolutions
func.func @convolutions(%x: tensor<?x32x32x3xf32>, %w: tensor<4x4x3x8xf32>, %b: tensor<8xf32>,
                        %dw: tensor<7x7x8xf32>, %g: tensor<3x3x2x8xf32>) -> tensor<?x4x4x8xf32> {
  // CHECK: quadra.conv2d %{{.*}}, %{{.*}}, %{{.*}} stride [4, 4] pad [0, 0] groups 1 : (tensor<?x32x32x3xf32>, tensor<4x4x3x8xf32>, tensor<8xf32>) -> tensor<?x8x8x8xf32>
  %0 = quadra.conv2d %x, %w, %b stride [4, 4] pad [0, 0] groups 1 : (tensor<?x32x32x3xf32>, tensor<4x4x3x8xf32>, tensor<8xf32>) -> tensor<?x8x8x8xf32>
  // CHECK: quadra.dwconv %{{.*}}, %{{.*}} stride [1, 1] pad [3, 3] : (tensor<?x8x8x8xf32>, tensor<7x7x8xf32>) -> tensor<?x8x8x8xf32>
  %1 = quadra.dwconv %0, %dw stride [1, 1] pad [3, 3] : (tensor<?x8x8x8xf32>, tensor<7x7x8xf32>) -> tensor<?x8x8x8xf32>
  // CHECK: quadra.qdwconv %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} bias(%{{.*}}, %{{.*}}, %{{.*}}) stride [2, 2] pad [3, 3]
  %2 = quadra.qdwconv %1, %dw, %dw, %dw bias(%b, %b, %b) stride [2, 2] pad [3, 3] : (tensor<?x8x8x8xf32>, tensor<7x7x8xf32>, tensor<7x7x8xf32>, tensor<7x7x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x4x4x8xf32>
  // A grouped convolution: 8 input channels in 4 groups of 2.
  // CHECK: quadra.conv2d %{{.*}}, %{{.*}} stride [1, 1] pad [1, 1] groups 4
  %3 = quadra.conv2d %2, %g stride [1, 1] pad [1, 1] groups 4 : (tensor<?x4x4x8xf32>, tensor<3x3x2x8xf32>) -> tensor<?x4x4x8xf32>
  return %3 : tensor<?x4x4x8xf32>
}

// CHECK-LABEL: func.func @channel_mixing
func.func @channel_mixing(%x: tensor<2x5x5x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>,
                          %v: tensor<8xf32>, %q: tensor<16x4xf32>, %qb: tensor<4xf32>) -> tensor<2x4xf32> {
  // CHECK: quadra.layernorm %{{.*}}, %{{.*}}, %{{.*}} eps 1.0e-06 : (tensor<2x5x5x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x5x8xf32>
  %0 = quadra.layernorm %x, %v, %v eps 1.0e-6 : (tensor<2x5x5x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x5x8xf32>
  // CHECK: quadra.layerscale %{{.*}}, %{{.*}} : (tensor<2x5x5x8xf32>, tensor<8xf32>) -> tensor<2x5x5x8xf32>
  %1 = quadra.layerscale %0, %v : (tensor<2x5x5x8xf32>, tensor<8xf32>) -> tensor<2x5x5x8xf32>
  // CHECK: quadra.add %{{.*}}, %{{.*}} : tensor<2x5x5x8xf32>
  %2 = quadra.add %x, %1 : tensor<2x5x5x8xf32>
  // CHECK: quadra.mul %{{.*}}, %{{.*}} : tensor<2x5x5x8xf32>
  %3 = quadra.mul %2, %2 : tensor<2x5x5x8xf32>
  // CHECK: quadra.linear %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x5x5x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x5x5x16xf32>
  %4 = quadra.linear %3, %w, %b : (tensor<2x5x5x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x5x5x16xf32>
  // CHECK: quadra.gelu %{{.*}} : tensor<2x5x5x16xf32>
  %5 = quadra.gelu %4 : tensor<2x5x5x16xf32>
  // CHECK: quadra.relu %{{.*}} : tensor<2x5x5x16xf32>
  %6 = quadra.relu %5 : tensor<2x5x5x16xf32>
  // CHECK: quadra.identity %{{.*}} : tensor<2x5x5x16xf32>
  %7 = quadra.identity %6 : tensor<2x5x5x16xf32>
  // CHECK: quadra.avgpool %{{.*}} : tensor<2x5x5x16xf32> -> tensor<2x16xf32>
  %8 = quadra.avgpool %7 : tensor<2x5x5x16xf32> -> tensor<2x16xf32>
  // CHECK: quadra.qlinear %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} bias(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x16xf32>, tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %9 = quadra.qlinear %8, %q, %q, %q bias(%qb, %qb, %qb) : (tensor<2x16xf32>, tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return %9 : tensor<2x4xf32>
}

// CHECK-LABEL: func.func @choice
func.func @choice(%x: tensor<?x8x8x4xf32>) -> tensor<?x8x8x4xf32> {
  // CHECK: quadra.choice "stages.0.0" %{{.*}} : tensor<?x8x8x4xf32> -> tensor<?x8x8x4xf32>
  // CHECK-NEXT: candidate "relu" {
  // CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<?x8x8x4xf32>):
  // CHECK-NEXT: %[[R:.*]] = quadra.relu %[[A]]
  // CHECK-NEXT: quadra.yield %[[R]] : tensor<?x8x8x4xf32>
  // CHECK: candidate "identity" {
  %0 = quadra.choice "stages.0.0" %x : tensor<?x8x8x4xf32> -> tensor<?x8x8x4xf32>
  candidate "relu" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    %r = quadra.relu %in : tensor<?x8x8x4xf32>
    quadra.yield %r : tensor<?x8x8x4xf32>
  }
  candidate "identity" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    quadra.yield %in : tensor<?x8x8x4xf32>
  }
  return %0 : tensor<?x8x8x4xf32>
}

// CHECK-LABEL: func.func @attribute
// CHECK: attributes {init = #quadra.init<trunc_normal(0.02)>}
func.func @attribute() attributes {init = #quadra.init<trunc_normal(0.02)>} {
  return
}

// A backward kernel with several results: a layer norm's gradient for its
// input, scale and offset; its labels operand is an integer tensor.
// CHECK-LABEL: func.func @kernel_results
func.func @kernel_results(%x: tensor<?x4xf32>, %s: tensor<4xf32>, %dy: tensor<?x4xf32>)
    -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>) {
  // CHECK: %{{.*}}:3 = quadra.kernel "n/layernorm_grad" family "layernorm_grad" (%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<?x4xf32>, tensor<4xf32>, tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>)
  // CHECK: quadra.yield %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>
  %0:3 = quadra.kernel "n/layernorm_grad" family "layernorm_grad" (%x, %s, %dy) : (tensor<?x4xf32>, tensor<4xf32>, tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>) {
  ^bb0(%a: tensor<?x4xf32>, %b: tensor<4xf32>, %c: tensor<?x4xf32>):
    %dx, %ds, %do = quadra.layernorm_grad %a, %b, %c eps 1.0e-06 : (tensor<?x4xf32>, tensor<4xf32>, tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>)
    quadra.yield %dx, %ds, %do : tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>
  }
  return %0#0, %0#1, %0#2 : tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @kernel_labels
func.func @kernel_labels(%logits: tensor<?x3xf32>, %labels: tensor<?xi32>) -> tensor<f32> {
  // CHECK: quadra.kernel "loss" family "softmax_cross_entropy" (%{{.*}}, %{{.*}}) : (tensor<?x3xf32>, tensor<?xi32>) -> tensor<f32>
  %0 = quadra.kernel "loss" family "softmax_cross_entropy" (%logits, %labels) : (tensor<?x3xf32>, tensor<?xi32>) -> tensor<f32> {
  ^bb0(%a: tensor<?x3xf32>, %b: tensor<?xi32>):
    %l = quadra.softmax_cross_entropy %a, %b smoothing 0.1 : (tensor<?x3xf32>, tensor<?xi32>) -> tensor<f32>
    quadra.yield %l : tensor<f32>
  }
  return %0 : tensor<f32>
}
