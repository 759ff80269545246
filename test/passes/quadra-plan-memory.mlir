// RUN: qdsl-opt %s --quadra-autodiff --quadra-plan-memory=batch=4 -o /dev/null | FileCheck %s
// RUN: qdsl-opt %s --quadra-autodiff --quadra-memory-policy=policy=min-memory --quadra-plan-memory=batch=4 -o /dev/null | FileCheck %s --check-prefix=POLICY
// RUN: qdsl-opt %s --quadra-plan-memory=batch=4 -o /dev/null | count 0
// (Without --quadra-autodiff there is no training step, so nothing to plan.)

// Two linear layers at batch 4, every tensor a multiple of 64 bytes:
//   x 256 [args..9]   labels 64 [..6]   h 256 [2..8]   logits 64 [4..end]
//   loss 64 [5..end]  dlogits 64 [6..8]  dh 256 [7..9]  dw2 256 [8..end]
//   dw 1024 [9..end]
// At the last op (dw), x, logits, loss, dh, dw2 and dw are live: 1920
// bytes, and the arena packs every tensor into exactly that. Parameters:
// (16·16 + 16·4) floats = 1280 bytes, and AdamW's two moments twice that.
// CHECK: Two_train_step at batch 4, policy none: 9 tensors
// CHECK-NEXT: arena 1920 B (1.9 KiB), at least 1920 B (1.9 KiB) live at once
// CHECK-NEXT: parameters 1280 B (1.2 KiB), optimiser state 2560 B (2.5 KiB)
// CHECK-NEXT: peak 5760 B (5.6 KiB)
// min-memory keeps h: the 16 → 16 layer does not expand.
// POLICY: Two_train_step at batch 4, policy min-memory: 9 tensors
// POLICY-NEXT: arena 1920 B (1.9 KiB)
func.func @Two(%x: tensor<?x16xf32>) -> tensor<?x4xf32> {
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<16x16xf32>
  %h = quadra.linear %x, %w : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
  %w2 = quadra.weight "w2" trunc_normal(0.02) : tensor<16x4xf32>
  %logits = quadra.linear %h, %w2 : (tensor<?x16xf32>, tensor<16x4xf32>) -> tensor<?x4xf32>
  return %logits : tensor<?x4xf32>
}
