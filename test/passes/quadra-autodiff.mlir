// RUN: qdsl-opt %s --quadra-autodiff=label-smoothing=0.1 --split-input-file | FileCheck %s
// RUN: qdsl-opt %s --quadra-autodiff=label-smoothing=0.1 --split-input-file | qdsl-opt --split-input-file | FileCheck %s
// RUN: not qdsl-opt %s --quadra-autodiff=label-smoothing=1.5 --split-input-file 2>&1 | FileCheck %s --check-prefix=SMOOTHING

// A quadratic layer, a layer norm and a linear head. The training step
// returns the loss, the logits and one gradient per weight in declaration
// order; the qdwconv's backward recomputes xa and xb from its input, and
// the input, which no weight reaches, gets no gradient.
// CHECK-LABEL: func.func @Net(
// CHECK-LABEL: func.func @Net_train_step
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x6x6x4xf32>, %[[LABELS:[^:]*]]: tensor<?xi32>)
// CHECK-SAME: -> (tensor<f32>, tensor<?x3xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x3xf32>)
// CHECK-SAME: quadra.gradients = ["wa", "wb", "wc", "g", "b", "w"]
// CHECK-SAME: quadra.train_step_of = "Net"
// CHECK: %[[Y:.*]] = quadra.qdwconv %[[X]]
// CHECK: %[[N:.*]] = quadra.layernorm %[[Y]], %[[G:[^,]*]], %[[B:[^ ]*]] eps
// CHECK: %[[P:.*]] = quadra.avgpool %[[N]]
// CHECK: %[[LOGITS:.*]] = quadra.linear %[[P]], %[[W:[^ ]*]] :
// CHECK: %[[LOSS:.*]] = quadra.softmax_cross_entropy %[[LOGITS]], %[[LABELS]] smoothing 0.1
// CHECK: %[[DL:.*]] = quadra.softmax_cross_entropy_grad %[[LOGITS]], %[[LABELS]] smoothing 0.1
// CHECK: %[[DP:.*]] = quadra.linear_grad_input %[[DL]], %[[W]]
// CHECK: %[[DW:.*]] = quadra.linear_grad_weight %[[P]], %[[DL]]
// CHECK: %[[DN:.*]] = quadra.avgpool_grad %[[DP]] {{.*}}: tensor<?x4xf32> -> tensor<?x6x6x4xf32>
// CHECK: %[[DY:.*]], %[[DG:.*]], %[[DB:.*]] = quadra.layernorm_grad %[[Y]], %[[G]], %[[DN]] eps
// CHECK: %[[XA:.*]] = quadra.dwconv %[[X]], %[[WA:[^ ]*]] stride [1, 1] pad [1, 1]
// CHECK: %[[XB:.*]] = quadra.dwconv %[[X]], %[[WB:[^ ]*]] stride [1, 1] pad [1, 1]
// CHECK: %[[GA:.*]] = quadra.mul %[[DY]], %[[XB]]
// CHECK: %[[GB:.*]] = quadra.mul %[[DY]], %[[XA]]
// CHECK-NOT: dwconv_grad_input
// CHECK: %[[DWA:.*]] = quadra.dwconv_grad_filter %[[X]], %[[GA]]
// CHECK: %[[DWB:.*]] = quadra.dwconv_grad_filter %[[X]], %[[GB]]
// CHECK: %[[DWC:.*]] = quadra.dwconv_grad_filter %[[X]], %[[DY]]
// CHECK: return %[[LOSS]], %[[LOGITS]], %[[DWA]], %[[DWB]], %[[DWC]], %[[DG]], %[[DB]], %[[DW]]
func.func @Net(%x: tensor<?x6x6x4xf32>) -> tensor<?x3xf32> {
  %wa = quadra.weight "wa" trunc_normal(0.02) : tensor<3x3x4xf32>
  %wb = quadra.weight "wb" trunc_normal(0.02) : tensor<3x3x4xf32>
  %wc = quadra.weight "wc" trunc_normal(0.02) : tensor<3x3x4xf32>
  %y = quadra.qdwconv %x, %wa, %wb, %wc stride [1, 1] pad [1, 1] : (tensor<?x6x6x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>) -> tensor<?x6x6x4xf32>
  %g = quadra.weight "g" ones : tensor<4xf32>
  %b = quadra.weight "b" zeros : tensor<4xf32>
  %n = quadra.layernorm %y, %g, %b eps 1.0e-06 : (tensor<?x6x6x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<?x6x6x4xf32>
  %p = quadra.avgpool %n : tensor<?x6x6x4xf32> -> tensor<?x4xf32>
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<4x3xf32>
  %logits = quadra.linear %p, %w : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  return %logits : tensor<?x3xf32>
}

// -----

// A value read twice (a residual) gets the sum of both gradients; a weight
// read twice likewise.
// CHECK-LABEL: func.func @Residual_train_step
// CHECK: %[[H:.*]] = quadra.linear %{{.*}}, %[[W1:[^ ]*]] :
// CHECK: %[[S:.*]] = quadra.layerscale %[[H]], %[[GAMMA:[^ ]*]] :
// CHECK: %[[R:.*]] = quadra.add %[[H]], %[[S]]
// CHECK: %[[LOGITS:.*]] = quadra.linear %[[R]], %[[W1]] :
// CHECK: %[[DL:.*]] = quadra.softmax_cross_entropy_grad %[[LOGITS]]
// CHECK: %[[DR:.*]] = quadra.linear_grad_input %[[DL]], %[[W1]]
// CHECK: %[[DW1B:.*]] = quadra.linear_grad_weight %[[R]], %[[DL]]
// CHECK: %[[DS:.*]] = quadra.layerscale %[[DR]], %[[GAMMA]]
// CHECK: %[[DGAMMA_P:.*]] = quadra.mul %[[DR]], %[[H]]
// CHECK: %[[DGAMMA:.*]] = quadra.channel_sum %[[DGAMMA_P]]
// CHECK: %[[DH:.*]] = quadra.add %[[DR]], %[[DS]]
// CHECK: %[[DW1A:.*]] = quadra.linear_grad_weight %{{.*}}, %[[DH]]
// CHECK: %[[DW1:.*]] = quadra.add %[[DW1B]], %[[DW1A]]
// CHECK: return %{{.*}}, %[[LOGITS]], %[[DW1]], %[[DGAMMA]]
func.func @Residual(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
  %w1 = quadra.weight "w1" trunc_normal(0.02) : tensor<3x3xf32>
  %h = quadra.linear %x, %w1 : (tensor<?x3xf32>, tensor<3x3xf32>) -> tensor<?x3xf32>
  %gamma = quadra.weight "gamma" constant(1.0e-06) : tensor<3xf32>
  %s = quadra.layerscale %h, %gamma : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  %r = quadra.add %h, %s : tensor<?x3xf32>
  %logits = quadra.linear %r, %w1 : (tensor<?x3xf32>, tensor<3x3xf32>) -> tensor<?x3xf32>
  return %logits : tensor<?x3xf32>
}

// SMOOTHING: error: label smoothing must be in [0, 1), got 1.5
