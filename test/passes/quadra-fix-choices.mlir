// RUN: qdsl-opt %s --split-input-file --quadra-fix-choices="picks=1,0" | FileCheck %s
// RUN: qdsl-opt %s --split-input-file --quadra-fix-choices="seed=7" | FileCheck %s --check-prefix=SEED
// RUN: not qdsl-opt %s --quadra-fix-choices="picks=0" 2>&1 | FileCheck %s --check-prefix=COUNT

// --quadra-fix-choices: a search space becomes one architecture; each
// choice is replaced by the ops of the picked candidate, in order.

// CHECK-LABEL: func.func @Space
// CHECK-SAME: quadra.kind = "model", quadra.picks = array<i64: 1, 0>
// CHECK-NOT: quadra.choice
// CHECK: %[[GELU:.*]] = quadra.gelu %arg0
// CHECK-NEXT: %[[RELU:.*]] = quadra.relu %[[GELU]]
// CHECK-NEXT: return %[[RELU]]
// SEED-NOT: quadra.choice
// SEED: return
func.func @Space(%x: tensor<?x8x8x4xf32>) -> tensor<?x8x8x4xf32> attributes {quadra.kind = "space"} {
  %0 = quadra.choice "stages.0.0" %x : tensor<?x8x8x4xf32> -> tensor<?x8x8x4xf32>
  candidate "relu" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    %r = quadra.relu %in : tensor<?x8x8x4xf32>
    quadra.yield %r : tensor<?x8x8x4xf32>
  }
  candidate "gelu" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    %g = quadra.gelu %in : tensor<?x8x8x4xf32>
    quadra.yield %g : tensor<?x8x8x4xf32>
  }
  %1 = quadra.choice "stages.0.1" %0 : tensor<?x8x8x4xf32> -> tensor<?x8x8x4xf32>
  candidate "relu" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    %r = quadra.relu %in : tensor<?x8x8x4xf32>
    quadra.yield %r : tensor<?x8x8x4xf32>
  }
  candidate "identity" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    quadra.yield %in : tensor<?x8x8x4xf32>
  }
  return %1 : tensor<?x8x8x4xf32>
}

// The number of picks must match; an index out of range is in
// quadra-fix-choices-errors.mlir.
// COUNT: error: quadra-fix-choices got 1 picks for 2 choices (stages.0.0, stages.0.1)
