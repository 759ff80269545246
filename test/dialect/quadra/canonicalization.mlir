// RUN: qdsl-opt %s --canonicalize --split-input-file | FileCheck %s

// identity folds to its input.
// CHECK-LABEL: func.func @identity
// CHECK-SAME: (%[[X:.*]]: tensor<2x4xf32>)
// CHECK-NEXT: return %[[X]]
func.func @identity(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.identity %x : tensor<2x4xf32>
  %1 = quadra.identity %0 : tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}

// -----

// relu is idempotent.
// CHECK-LABEL: func.func @relu_relu
// CHECK: %[[R:.*]] = quadra.relu
// CHECK-NOT: quadra.relu
// CHECK: return %[[R]]
func.func @relu_relu(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.relu %x : tensor<2x4xf32>
  %1 = quadra.relu %0 : tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}

// -----

// gelu is not: gelu(gelu(x)) stays.
// CHECK-LABEL: func.func @gelu_gelu
// CHECK: quadra.gelu
// CHECK: quadra.gelu
func.func @gelu_gelu(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.gelu %x : tensor<2x4xf32>
  %1 = quadra.gelu %0 : tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}

// -----

// Unused weights and layers go away; they have no effect.
// CHECK-LABEL: func.func @dead
// CHECK-NOT: quadra.
// CHECK: return
func.func @dead(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<4x4xf32>
  %0 = quadra.linear %x, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  return %x : tensor<2x4xf32>
}

// -----

// A choice with one candidate is that candidate, spliced in place; its
// weights come along.
// CHECK-LABEL: func.func @single_candidate
// CHECK-SAME: (%[[X:.*]]: tensor<2x4xf32>)
// CHECK-NOT: quadra.choice
// CHECK: %[[W:.*]] = quadra.weight "l.w"
// CHECK: %[[Y:.*]] = quadra.linear %[[X]], %[[W]]
// CHECK: return %[[Y]]
func.func @single_candidate(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "only" {
  ^bb0(%in: tensor<2x4xf32>):
    %w = quadra.weight "l.w" trunc_normal(0.02) : tensor<4x4xf32>
    %y = quadra.linear %in, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    quadra.yield %y : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}

// -----

// A one-candidate skip choice disappears entirely.
// CHECK-LABEL: func.func @single_skip
// CHECK-SAME: (%[[X:.*]]: tensor<2x4xf32>)
// CHECK-NEXT: return %[[X]]
func.func @single_skip(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "identity" {
  ^bb0(%in: tensor<2x4xf32>):
    %y = quadra.identity %in : tensor<2x4xf32>
    quadra.yield %y : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}

// -----

// Two candidates stay a choice; their insides are canonicalised.
// CHECK-LABEL: func.func @two_candidates
// CHECK: quadra.choice
// CHECK: candidate "relu"
// CHECK: candidate "identity"
// CHECK-NEXT: ^bb0(%[[IN:.*]]: tensor<2x4xf32>):
// CHECK-NEXT: quadra.yield %[[IN]]
func.func @two_candidates(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "relu" {
  ^bb0(%in: tensor<2x4xf32>):
    %y = quadra.relu %in : tensor<2x4xf32>
    quadra.yield %y : tensor<2x4xf32>
  }
  candidate "identity" {
  ^bb0(%in: tensor<2x4xf32>):
    %y = quadra.identity %in : tensor<2x4xf32>
    quadra.yield %y : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}
