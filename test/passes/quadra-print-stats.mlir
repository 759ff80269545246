// RUN: qdsl-opt %s --quadra-print-stats=batch=2 -o /dev/null | FileCheck %s
// RUN: qdsl-opt %s --quadra-print-stats -o /dev/null | FileCheck %s --check-prefix=ONE

// Layers come from the op names before the '/'; each row sums its ops.
// conv2d: 2·4·4·8 outputs × (2·2·3) MACs = 3072; its weights 2·2·3·8 + 8 = 104.
// qdwconv: 2·4·4·8 outputs × (3·3·3 + 1) = 7168; weights 3·(3·3·8) + 3·8 = 240.
// linear: 2·4·4·5 outputs × 8 = 1280; weights 8·5 + 5 = 45.
// CHECK-LABEL: model: f32[2, 8, 8, 3] -> f32[2, 4, 4, 5], batch 2
// CHECK-NEXT: layer  output              params  MACs  activations
// CHECK-NEXT: stem   f32[2, 4, 4, 8]        104  3072  1.0 KiB
// CHECK-NEXT: block  f32[2, 4, 4, 8]        240  7168  1.0 KiB
// CHECK-NEXT: head   f32[2, 4, 4, 5]         45  1280  640 B
// CHECK-NEXT: total                         389  11520  2.6 KiB
// Peak: input (1536 B) + stem output (1024) while the conv runs, then
// stem output + qdwconv output, then qdwconv output + head output.
// CHECK-NEXT: params 389, MACs 11.52 K, forward activations 2.6 KiB (peak live 2.5 KiB)
// ONE: batch 1
// ONE: total 389 5760
func.func @model(%x: tensor<?x8x8x3xf32>) -> tensor<?x4x4x5xf32> {
  %w = quadra.weight "stem.weight" trunc_normal(0.02) : tensor<2x2x3x8xf32> loc(#stem)
  %b = quadra.weight "stem.bias" zeros : tensor<8xf32> loc(#stem)
  %0 = quadra.conv2d %x, %w, %b stride [2, 2] pad [0, 0] groups 1 : (tensor<?x8x8x3xf32>, tensor<2x2x3x8xf32>, tensor<8xf32>) -> tensor<?x4x4x8xf32> loc(#stem)
  %wa = quadra.weight "block.wa" trunc_normal(0.02) : tensor<3x3x8xf32> loc(#block)
  %ba = quadra.weight "block.ba" zeros : tensor<8xf32> loc(#block)
  %1 = quadra.qdwconv %0, %wa, %wa, %wa bias(%ba, %ba, %ba) stride [1, 1] pad [1, 1] : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x4x4x8xf32> loc(#block)
  %wb = quadra.weight "block.wb" trunc_normal(0.02) : tensor<3x3x8xf32> loc(#block)
  %wc = quadra.weight "block.wc" trunc_normal(0.02) : tensor<3x3x8xf32> loc(#block)
  %bb = quadra.weight "block.bb" zeros : tensor<8xf32> loc(#block)
  %bc = quadra.weight "block.bc" zeros : tensor<8xf32> loc(#block)
  %hw = quadra.weight "head.weight" trunc_normal(0.02) : tensor<8x5xf32> loc(#head)
  %hb = quadra.weight "head.bias" zeros : tensor<5xf32> loc(#head)
  %2 = quadra.linear %1, %hw, %hb : (tensor<?x4x4x8xf32>, tensor<8x5xf32>, tensor<5xf32>) -> tensor<?x4x4x5xf32> loc(#head)
  return %2 : tensor<?x4x4x5xf32>
}
#stem = loc("stem/conv")
#block = loc("block/QuadraConv")
#head = loc("head")
