// RUN: qdsl-opt %s --quadra-fuse-qdwconv --split-input-file | FileCheck %s

// The pattern as a user writes it with primitives.
// CHECK-LABEL: func.func @fuse
// CHECK-SAME: (%[[X:[^:]*]]: tensor<2x8x8x4xf32>, %[[A:[^:]*]]: tensor<3x3x4xf32>, %[[B:[^:]*]]: tensor<3x3x4xf32>, %[[C:[^:]*]]: tensor<3x3x4xf32>
// CHECK-NEXT: %[[Y:.*]] = quadra.qdwconv %[[X]], %[[A]], %[[B]], %[[C]] stride [1, 1] pad [1, 1]
// CHECK-NEXT: return %[[Y]]
func.func @fuse(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>, %b: tensor<3x3x4xf32>, %c: tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %b stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %c stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Either operand order of the add and of the mul; the filters keep their
// roles: the mul's operands are wa and wb, the add's other operand wc.
// CHECK-LABEL: func.func @swapped
// CHECK-SAME: (%[[X:[^:]*]]: tensor<2x8x8x4xf32>, %[[A:[^:]*]]: tensor<3x3x4xf32>, %[[B:[^:]*]]: tensor<3x3x4xf32>, %[[C:[^:]*]]: tensor<3x3x4xf32>, %[[V:[^:]*]]: tensor<4xf32>
// CHECK-NEXT: %[[Y:.*]] = quadra.qdwconv %[[X]], %[[B]], %[[A]], %[[C]] bias(%[[V]], %[[V]], %[[V]]) stride [2, 2] pad [0, 0]
// CHECK-NEXT: return %[[Y]]
func.func @swapped(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>, %b: tensor<3x3x4xf32>, %c: tensor<3x3x4xf32>, %v: tensor<4xf32>) -> tensor<2x3x3x4xf32> {
  %xc = quadra.dwconv %x, %c, %v stride [2, 2] pad [0, 0] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>) -> tensor<2x3x3x4xf32>
  %xa = quadra.dwconv %x, %a, %v stride [2, 2] pad [0, 0] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>) -> tensor<2x3x3x4xf32>
  %xb = quadra.dwconv %x, %b, %v stride [2, 2] pad [0, 0] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>) -> tensor<2x3x3x4xf32>
  %p = quadra.mul %xb, %xa : tensor<2x3x3x4xf32>
  %y = quadra.add %xc, %p : tensor<2x3x3x4xf32>
  return %y : tensor<2x3x3x4xf32>
}

// -----

// One dwconv squared is still the pattern, with wa = wb.
// CHECK-LABEL: func.func @square
// CHECK-SAME: (%[[X:[^:]*]]: tensor<2x8x8x4xf32>, %[[A:[^:]*]]: tensor<3x3x4xf32>, %[[C:[^:]*]]: tensor<3x3x4xf32>
// CHECK-NEXT: quadra.qdwconv %[[X]], %[[A]], %[[A]], %[[C]]
func.func @square(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>, %c: tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %c stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xa : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Not fused: the convolutions read different inputs.
// CHECK-LABEL: func.func @different_inputs
// CHECK-NOT: quadra.qdwconv
// CHECK-COUNT-3: quadra.dwconv
func.func @different_inputs(%x: tensor<2x8x8x4xf32>, %z: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %z, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Not fused: the filters differ in shape (padding chosen so shapes agree).
// CHECK-LABEL: func.func @different_kernels
// CHECK-NOT: quadra.qdwconv
func.func @different_kernels(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>, %c: tensor<5x5x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %c stride [1, 1] pad [2, 2] : (tensor<2x8x8x4xf32>, tensor<5x5x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Not fused: same filter and output shapes, but xc steps with another
// stride and padding.
// CHECK-LABEL: func.func @different_windows
// CHECK-NOT: quadra.qdwconv
func.func @different_windows(%x: tensor<2x4x4x4xf32>, %a: tensor<1x1x4xf32>) -> tensor<2x4x4x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [0, 0] : (tensor<2x4x4x4xf32>, tensor<1x1x4xf32>) -> tensor<2x4x4x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [0, 0] : (tensor<2x4x4x4xf32>, tensor<1x1x4xf32>) -> tensor<2x4x4x4xf32>
  %xc = quadra.dwconv %x, %a stride [2, 2] pad [2, 2] : (tensor<2x4x4x4xf32>, tensor<1x1x4xf32>) -> tensor<2x4x4x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x4x4x4xf32>
  %y = quadra.add %p, %xc : tensor<2x4x4x4xf32>
  return %y : tensor<2x4x4x4xf32>
}

// -----

// Not fused: only some convolutions have a bias.
// CHECK-LABEL: func.func @mixed_biases
// CHECK-NOT: quadra.qdwconv
func.func @mixed_biases(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>, %v: tensor<4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a, %v stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Not fused: xa is also returned.
// CHECK-LABEL: func.func @xa_escapes
// CHECK-NOT: quadra.qdwconv
func.func @xa_escapes(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>) -> (tensor<2x8x8x4xf32>, tensor<2x8x8x4xf32>) {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  return %y, %xa : tensor<2x8x8x4xf32>, tensor<2x8x8x4xf32>
}

// -----

// Not fused: the product xa⊙xb feeds another op.
// CHECK-LABEL: func.func @product_escapes
// CHECK-NOT: quadra.qdwconv
func.func @product_escapes(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  %z = quadra.mul %y, %p : tensor<2x8x8x4xf32>
  return %z : tensor<2x8x8x4xf32>
}

// -----

// Not fused: xc is also the left factor (xa⊙xb + xa is not this pattern's
// shape once xa has two users).
// CHECK-LABEL: func.func @xc_is_xa
// CHECK-NOT: quadra.qdwconv
func.func @xc_is_xa(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xa : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Not fused: a plain sum of products of other ops.
// CHECK-LABEL: func.func @not_convolutions
// CHECK-NOT: quadra.qdwconv
func.func @not_convolutions(%x: tensor<2x8x8x4xf32>) -> tensor<2x8x8x4xf32> {
  %g = quadra.gelu %x : tensor<2x8x8x4xf32>
  %p = quadra.mul %g, %g : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %x : tensor<2x8x8x4xf32>
  return %y : tensor<2x8x8x4xf32>
}

// -----

// Two patterns in a row both fuse; the first result feeds the second.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Q1:.*]] = quadra.qdwconv %arg0
// CHECK: %[[Q2:.*]] = quadra.qdwconv %[[Q1]]
// CHECK: return %[[Q2]]
func.func @chain(%x: tensor<2x8x8x4xf32>, %a: tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32> {
  %xa = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xb = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %xc = quadra.dwconv %x, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %p = quadra.mul %xa, %xb : tensor<2x8x8x4xf32>
  %y = quadra.add %p, %xc : tensor<2x8x8x4xf32>
  %ya = quadra.dwconv %y, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %yb = quadra.dwconv %y, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %yc = quadra.dwconv %y, %a stride [1, 1] pad [1, 1] : (tensor<2x8x8x4xf32>, tensor<3x3x4xf32>) -> tensor<2x8x8x4xf32>
  %q = quadra.mul %ya, %yb : tensor<2x8x8x4xf32>
  %z = quadra.add %yc, %q : tensor<2x8x8x4xf32>
  return %z : tensor<2x8x8x4xf32>
}
