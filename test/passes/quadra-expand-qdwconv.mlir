// RUN: qdsl-opt %s --quadra-expand-qdwconv --split-input-file | FileCheck %s

// A qdwconv becomes three dwconvs over the same input, each with its own
// filter and bias, a mul of the first two and an add of the third.
// CHECK-LABEL: func.func @with_biases
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x14x14x8xf32>
// CHECK-DAG: %[[WA:.*]] = quadra.weight "wa"
// CHECK-DAG: %[[WB:.*]] = quadra.weight "wb"
// CHECK-DAG: %[[WC:.*]] = quadra.weight "wc"
// CHECK-DAG: %[[BA:.*]] = quadra.weight "ba"
// CHECK-DAG: %[[BB:.*]] = quadra.weight "bb"
// CHECK-DAG: %[[BC:.*]] = quadra.weight "bc"
// CHECK: %[[XA:.*]] = quadra.dwconv %[[X]], %[[WA]], %[[BA]] stride [2, 2] pad [3, 3] : {{.*}} -> tensor<?x7x7x8xf32>
// CHECK: %[[XB:.*]] = quadra.dwconv %[[X]], %[[WB]], %[[BB]] stride [2, 2] pad [3, 3]
// CHECK: %[[XC:.*]] = quadra.dwconv %[[X]], %[[WC]], %[[BC]] stride [2, 2] pad [3, 3]
// CHECK: %[[P:.*]] = quadra.mul %[[XA]], %[[XB]] : tensor<?x7x7x8xf32>
// CHECK: %[[Y:.*]] = quadra.add %[[P]], %[[XC]] : tensor<?x7x7x8xf32>
// CHECK-NOT: quadra.qdwconv
// CHECK: return %[[Y]]
func.func @with_biases(%x: tensor<?x14x14x8xf32>) -> tensor<?x7x7x8xf32> {
  %wa = quadra.weight "wa" trunc_normal(0.02) : tensor<7x7x8xf32>
  %wb = quadra.weight "wb" trunc_normal(0.02) : tensor<7x7x8xf32>
  %wc = quadra.weight "wc" trunc_normal(0.02) : tensor<7x7x8xf32>
  %ba = quadra.weight "ba" zeros : tensor<8xf32>
  %bb = quadra.weight "bb" zeros : tensor<8xf32>
  %bc = quadra.weight "bc" zeros : tensor<8xf32>
  %y = quadra.qdwconv %x, %wa, %wb, %wc bias(%ba, %bb, %bc) stride [2, 2] pad [3, 3] : (tensor<?x14x14x8xf32>, tensor<7x7x8xf32>, tensor<7x7x8xf32>, tensor<7x7x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x7x7x8xf32>
  return %y : tensor<?x7x7x8xf32>
}

// -----

// Without biases, the dwconvs have none.
// CHECK-LABEL: func.func @without_biases
// CHECK: quadra.dwconv %{{[^,]*}}, %{{[^ ]*}} stride [1, 1] pad [1, 1] : (tensor<2x5x5x4xf32>, tensor<3x3x4xf32>) -> tensor<2x5x5x4xf32>
// CHECK: quadra.dwconv %{{[^,]*}}, %{{[^ ]*}} stride
// CHECK: quadra.dwconv %{{[^,]*}}, %{{[^ ]*}} stride
// CHECK: quadra.mul
// CHECK: quadra.add
func.func @without_biases(%x: tensor<2x5x5x4xf32>, %w: tensor<3x3x4xf32>) -> tensor<2x5x5x4xf32> {
  %y = quadra.qdwconv %x, %w, %w, %w stride [1, 1] pad [1, 1] : (tensor<2x5x5x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>) -> tensor<2x5x5x4xf32>
  return %y : tensor<2x5x5x4xf32>
}

// -----

// Inside search candidates too; other ops are left alone.
// CHECK-LABEL: func.func @in_choice
// CHECK: quadra.choice
// CHECK: candidate "q"
// CHECK-COUNT-3: quadra.dwconv
// CHECK: candidate "relu"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: quadra.relu
func.func @in_choice(%x: tensor<2x5x5x4xf32>, %w: tensor<3x3x4xf32>) -> tensor<2x5x5x4xf32> {
  %0 = quadra.choice "l" %x : tensor<2x5x5x4xf32> -> tensor<2x5x5x4xf32>
  candidate "q" {
  ^bb0(%in: tensor<2x5x5x4xf32>):
    %y = quadra.qdwconv %in, %w, %w, %w stride [1, 1] pad [1, 1] : (tensor<2x5x5x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>) -> tensor<2x5x5x4xf32>
    quadra.yield %y : tensor<2x5x5x4xf32>
  }
  candidate "relu" {
  ^bb0(%in: tensor<2x5x5x4xf32>):
    %y = quadra.relu %in : tensor<2x5x5x4xf32>
    quadra.yield %y : tensor<2x5x5x4xf32>
  }
  return %0 : tensor<2x5x5x4xf32>
}

// -----

// Expanding then fusing gives back the op it started from.
// RUN: qdsl-opt %s --quadra-expand-qdwconv --quadra-fuse-qdwconv --split-input-file | FileCheck %s --check-prefix=ROUNDTRIP
// ROUNDTRIP-LABEL: func.func @with_biases
// ROUNDTRIP-NOT: quadra.dwconv
// ROUNDTRIP: quadra.qdwconv %{{.*}}, %wa, %wb, %wc bias(%ba, %bb, %bc) stride [2, 2] pad [3, 3]
// ROUNDTRIP-NOT: quadra.dwconv
// ROUNDTRIP-LABEL: func.func @without_biases
// ROUNDTRIP: quadra.qdwconv %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} stride [1, 1] pad [1, 1]
// ROUNDTRIP-LABEL: func.func @in_choice
// ROUNDTRIP: quadra.qdwconv
func.func @placeholder() {
  return
}
