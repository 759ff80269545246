// RUN: qdsl-opt %s --split-input-file --verify-diagnostics --quadra-print-stats -o /dev/null

// Only the batch may be dynamic.
func.func @dynamic(%x: tensor<?x?x8x3xf32>) -> tensor<?x?x8x3xf32> {
  // expected-error @+1 {{cannot count the size of f32[?, ?, 8, 3]: only the leading (batch) dimension may be dynamic}}
  %0 = quadra.relu %x : tensor<?x?x8x3xf32>
  return %0 : tensor<?x?x8x3xf32>
}

// -----

// A function without a body has nothing to count.
// expected-error @+1 {{'external' has no body to count}}
func.func private @external(%x: tensor<2x3xf32>) -> tensor<2x3xf32>
