// RUN: qdsl-opt %s --quadra-form-kernels --split-input-file | FileCheck %s
// RUN: qdsl-opt %s --quadra-form-kernels=target=opencl --split-input-file | FileCheck %s
// RUN: qdsl-opt %s --quadra-form-kernels=target=cuda --split-input-file | FileCheck %s --check-prefix=CUDA
// RUN: not qdsl-opt %s --quadra-form-kernels=target=tpu -o /dev/null 2>&1 | FileCheck %s --check-prefix=TARGET

// TARGET: quadra-form-kernels: unknown target 'tpu'; expected one of x86-64-avx2, x86-64-avx512, arm64-a76, opencl, cuda

// The spatial half of a QuadraBlock is one kernel. Its inputs are the values
// the chain reads from outside, each once: the block input (normalised and
// added back), then the weights.
// CHECK-LABEL: func.func @quadra_half
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x8x8x16xf32>)
// CHECK: %[[K:.*]] = quadra.kernel "stages.0.0/ln_qdwconv_scale_residual" family "ln_qdwconv_scale_residual" (%[[X]], %s, %o, %w, %g)
// CHECK-NEXT: ^bb0(%[[A0:[^:]*]]: tensor<?x8x8x16xf32>, %{{.*}}):
// CHECK-NEXT: %[[N:.*]] = quadra.layernorm %[[A0]]
// CHECK-NEXT: %[[Q:.*]] = quadra.qdwconv %[[N]]
// CHECK-NEXT: %[[L:.*]] = quadra.layerscale %[[Q]]
// CHECK-NEXT: %[[R:.*]] = quadra.add %[[A0]], %[[L]]
// CHECK-NEXT: quadra.yield %[[R]]
// CHECK: return %[[K]]
func.func @quadra_half(%x: tensor<?x8x8x16xf32>) -> tensor<?x8x8x16xf32> {
  %s = quadra.weight "s" ones : tensor<16xf32>
  %o = quadra.weight "o" zeros : tensor<16xf32>
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<3x3x16xf32>
  %g = quadra.weight "g" constant(1.0e-06) : tensor<16xf32>
  %0 = quadra.layernorm %x, %s, %o eps 1.0e-06 : (tensor<?x8x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<?x8x8x16xf32> loc("stages.0.0/norm1")
  %1 = quadra.qdwconv %0, %w, %w, %w stride [1, 1] pad [1, 1] : (tensor<?x8x8x16xf32>, tensor<3x3x16xf32>, tensor<3x3x16xf32>, tensor<3x3x16xf32>) -> tensor<?x8x8x16xf32> loc("stages.0.0/QuadraConv")
  %2 = quadra.layerscale %1, %g : (tensor<?x8x8x16xf32>, tensor<16xf32>) -> tensor<?x8x8x16xf32> loc("stages.0.0/gamma1")
  %3 = quadra.add %x, %2 : tensor<?x8x8x16xf32> loc("stages.0.0/add0")
  return %3 : tensor<?x8x8x16xf32>
}

// -----

// The MLP whole: layernorm → linear → gelu → linear → layerscale → add is
// one kernel on the CPU targets; the residual is its input again.
// CHECK-LABEL: func.func @mlp
// CHECK-SAME: (%[[X:[^:]*]]: tensor<2x8xf32>)
// CHECK: %[[K:.*]] = quadra.kernel "kernel/ln_mlp_scale_residual" family "ln_mlp_scale_residual" (%[[X]], %s, %o, %w1, %w2, %g)
// CHECK-NEXT: ^bb0(%[[A0:[^:]*]]: tensor<2x8xf32>, %{{.*}}):
// CHECK-NEXT: %[[N:.*]] = quadra.layernorm %[[A0]]
// CHECK-NEXT: %[[E:.*]] = quadra.linear %[[N]]
// CHECK-NEXT: %[[H:.*]] = quadra.gelu %[[E]]
// CHECK-NEXT: %[[C:.*]] = quadra.linear %[[H]]
// CHECK-NEXT: %[[L:.*]] = quadra.layerscale %[[C]]
// CHECK-NEXT: %[[R:.*]] = quadra.add %[[L]], %[[A0]]
// CHECK-NEXT: quadra.yield %[[R]]
// CHECK-NOT: quadra.kernel
// CHECK: return %[[K]]
// On the cuda target the layer norm stays a kernel of its own: the matmul
// that does the rest cannot normalise its input.
// CUDA-LABEL: func.func @mlp
// CUDA: %[[N:.*]] = quadra.kernel "kernel/layernorm" family "layernorm" (%{{.*}}, %s, %o)
// CUDA: %[[K1:.*]] = quadra.kernel "kernel/pwconv_gelu" family "pwconv_gelu" (%[[N]], %w1)
// CUDA: quadra.kernel "kernel/pwconv_scale_residual" family "pwconv_scale_residual" (%[[K1]], %w2, %g, %{{.*}})
func.func @mlp(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %s = quadra.weight "s" ones : tensor<8xf32>
  %o = quadra.weight "o" zeros : tensor<8xf32>
  %w1 = quadra.weight "w1" trunc_normal(0.02) : tensor<8x32xf32>
  %w2 = quadra.weight "w2" trunc_normal(0.02) : tensor<32x8xf32>
  %g = quadra.weight "g" constant(1.0e-06) : tensor<8xf32>
  %0 = quadra.layernorm %x, %s, %o eps 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %1 = quadra.linear %0, %w1 : (tensor<2x8xf32>, tensor<8x32xf32>) -> tensor<2x32xf32>
  %2 = quadra.gelu %1 : tensor<2x32xf32>
  %3 = quadra.linear %2, %w2 : (tensor<2x32xf32>, tensor<32x8xf32>) -> tensor<2x8xf32>
  %4 = quadra.layerscale %3, %g : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %5 = quadra.add %4, %x : tensor<2x8xf32>
  return %5 : tensor<2x8xf32>
}

// -----

// When something else reads the hidden tensor (a training step's backward
// reads it for the contracting layer's weight gradient), the MLP stays two
// kernels: the expanding half, then the contracting half.
// CHECK-LABEL: func.func @mlp_hidden_read
// CHECK-SAME: (%[[X:[^:]*]]: tensor<2x8xf32>)
// CHECK: %[[K1:.*]] = quadra.kernel "kernel/ln_pwconv_gelu" family "ln_pwconv_gelu" (%[[X]], %s, %o, %w1)
// CHECK: %[[K2:.*]] = quadra.kernel "kernel/pwconv_scale_residual" family "pwconv_scale_residual" (%[[K1]], %w2, %g, %[[X]])
// CHECK-NOT: ln_mlp_scale_residual
// CHECK: return %[[K2]], %[[K1]]
func.func @mlp_hidden_read(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x32xf32>) {
  %s = quadra.weight "s" ones : tensor<8xf32>
  %o = quadra.weight "o" zeros : tensor<8xf32>
  %w1 = quadra.weight "w1" trunc_normal(0.02) : tensor<8x32xf32>
  %w2 = quadra.weight "w2" trunc_normal(0.02) : tensor<32x8xf32>
  %g = quadra.weight "g" constant(1.0e-06) : tensor<8xf32>
  %0 = quadra.layernorm %x, %s, %o eps 1.0e-06 : (tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %1 = quadra.linear %0, %w1 : (tensor<2x8xf32>, tensor<8x32xf32>) -> tensor<2x32xf32>
  %2 = quadra.gelu %1 : tensor<2x32xf32>
  %3 = quadra.linear %2, %w2 : (tensor<2x32xf32>, tensor<32x8xf32>) -> tensor<2x8xf32>
  %4 = quadra.layerscale %3, %g : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %5 = quadra.add %4, %x : tensor<2x8xf32>
  return %5, %2 : tensor<2x8xf32>, tensor<2x32xf32>
}

// -----

// A chain whose middle value has another user is not fused: the gelu's
// input is also returned, so linear and gelu become kernels of their own,
// and the identity disappears.
// CHECK-LABEL: func.func @shared
// CHECK: %[[L:.*]] = quadra.kernel "kernel/linear" family "linear"
// CHECK: %[[G:.*]] = quadra.kernel "kernel/gelu" family "gelu" (%[[L]])
// CHECK-NOT: quadra.identity
// CHECK: return %[[G]], %[[L]]
func.func @shared(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %w = quadra.weight "w" trunc_normal(0.02) : tensor<8x8xf32>
  %0 = quadra.linear %x, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %1 = quadra.gelu %0 : tensor<2x8xf32>
  %2 = quadra.identity %1 : tensor<2x8xf32>
  return %2, %0 : tensor<2x8xf32>, tensor<2x8xf32>
}

// -----

// Two singletons of one family in one layer get numbered names; the ops of
// a search candidate form kernels inside their region.
// CHECK-LABEL: func.func @names
// CHECK: quadra.kernel "l/relu" family "relu"
// CHECK: quadra.kernel "l/relu#1" family "relu"
// CHECK: quadra.choice
// CHECK: candidate "a"
// CHECK: quadra.kernel "c/gelu" family "gelu"
func.func @names(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %0 = quadra.relu %x : tensor<2x8xf32> loc("l/r0")
  %1 = quadra.gelu %0 : tensor<2x8xf32> loc("l/g0")
  %2 = quadra.relu %1 : tensor<2x8xf32> loc("l/r1")
  %3 = quadra.choice "c" %2 : tensor<2x8xf32> -> tensor<2x8xf32>
  candidate "a" {
  ^bb0(%in: tensor<2x8xf32>):
    %g = quadra.gelu %in : tensor<2x8xf32> loc("c/g")
    quadra.yield %g : tensor<2x8xf32>
  }
  return %3 : tensor<2x8xf32>
}

// -----

// Backward ops become kernels too; a layer norm's gradient is one kernel
// with its three results, and the forward output the backward pass reads
// (%n) keeps its layer norm out of the pointwise kernel.
// CHECK-LABEL: func.func @backward
func.func @backward(%x: tensor<?x4xf32>, %dy: tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?x8xf32>) {
  %s = quadra.weight "n.weight" ones : tensor<4xf32>
  %o = quadra.weight "n.bias" zeros : tensor<4xf32>
  %w = quadra.weight "fc.weight" trunc_normal(0.02) : tensor<4x8xf32>
  // CHECK: quadra.kernel "kernel/layernorm" family "layernorm"
  %n = quadra.layernorm %x, %s, %o eps 1.0e-06 : (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  // CHECK: quadra.kernel "kernel/linear" family "linear"
  %y = quadra.linear %n, %w : (tensor<?x4xf32>, tensor<4x8xf32>) -> tensor<?x8xf32>
  // CHECK: %[[G:.*]]:3 = quadra.kernel "kernel/layernorm_grad" family "layernorm_grad" {{.*}} -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>)
  // CHECK: quadra.yield %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>
  %dx, %ds, %do = quadra.layernorm_grad %n, %s, %dy eps 1.0e-06 : (tensor<?x4xf32>, tensor<4xf32>, tensor<?x4xf32>) -> (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>)
  // CHECK: return %[[G]]#0, %[[G]]#1, %[[G]]#2
  return %dx, %ds, %do, %y : tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?x8xf32>
}

// -----

// In a training step the backward ops of a stride-1 qdwconv become one
// kernel: inputs x, dy, xa, xb and the three filters; outputs dx, the
// three filter gradients, then the three bias gradients. The sum of dx
// with the gradient of x's other use, tagged with the same forward op,
// stays outside.
// CHECK-LABEL: func.func @qdwconv_backward
// CHECK: %[[B:.*]]:7 = quadra.kernel "kernel/qdwconv_grad" family "qdwconv_grad" (%{{.*}}, %{{.*}}, %[[XA:[a-z0-9]+]], %[[XB:[a-z0-9]+]], %[[WA:[a-z0-9.]+]], %[[WB:[a-z0-9.]+]], %[[WC:[a-z0-9.]+]])
// CHECK-COUNT-2: quadra.mul
// CHECK-COUNT-3: quadra.dwconv_grad_input
// CHECK: quadra.yield
// CHECK: %[[SUM:.*]] = quadra.kernel "kernel/add" family "add" (%[[B]]#0, %{{.*}})
// CHECK: return %[[SUM]], %[[B]]#1, %[[B]]#2, %[[B]]#3, %[[B]]#4, %[[B]]#5, %[[B]]#6
func.func @qdwconv_backward(%x: tensor<?x4x4x8xf32>, %g: tensor<?x4x4x8xf32>) -> (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<?x4x4x8xf32>) attributes {quadra.gradients = ["wa", "wb", "wc", "ba", "bb", "bc"]} {
  %wa = quadra.weight "wa" trunc_normal(0.02) : tensor<3x3x8xf32>
  %wb = quadra.weight "wb" trunc_normal(0.02) : tensor<3x3x8xf32>
  %wc = quadra.weight "wc" trunc_normal(0.02) : tensor<3x3x8xf32>
  %ba = quadra.weight "ba" zeros : tensor<8xf32>
  %bb = quadra.weight "bb" zeros : tensor<8xf32>
  %bc = quadra.weight "bc" zeros : tensor<8xf32>
  %xa = quadra.dwconv %x, %wa, %ba stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<8xf32>) -> tensor<?x4x4x8xf32>
  %xb = quadra.dwconv %x, %wb, %bb stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<8xf32>) -> tensor<?x4x4x8xf32>
  %y = quadra.qdwconv %x, %wa, %wb, %wc bias(%ba, %bb, %bc) stride [1, 1] pad [1, 1] : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x4x4x8xf32>
  %ga = quadra.mul %g, %xb {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32>
  %gb = quadra.mul %g, %xa {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32>
  %ia = quadra.dwconv_grad_input %ga, %wa stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>) -> tensor<?x4x4x8xf32>
  %ib = quadra.dwconv_grad_input %gb, %wb stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>) -> tensor<?x4x4x8xf32>
  %s = quadra.add %ia, %ib {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32>
  %ic = quadra.dwconv_grad_input %g, %wc stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>) -> tensor<?x4x4x8xf32>
  %dx = quadra.add %s, %ic {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32>
  %dwa = quadra.dwconv_grad_filter %x, %ga stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<?x4x4x8xf32>) -> tensor<3x3x8xf32>
  %dba = quadra.channel_sum %ga {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32> -> tensor<8xf32>
  %dwb = quadra.dwconv_grad_filter %x, %gb stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<?x4x4x8xf32>) -> tensor<3x3x8xf32>
  %dbb = quadra.channel_sum %gb {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32> -> tensor<8xf32>
  %dwc = quadra.dwconv_grad_filter %x, %g stride [1, 1] pad [1, 1] {quadra.backward_of = 6 : i64} : (tensor<?x4x4x8xf32>, tensor<?x4x4x8xf32>) -> tensor<3x3x8xf32>
  %dbc = quadra.channel_sum %g {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32> -> tensor<8xf32>
  %dx_total = quadra.add %dx, %g {quadra.backward_of = 6 : i64} : tensor<?x4x4x8xf32>
  return %dx_total, %dwa, %dwb, %dwc, %dba, %dbb, %dbc, %y : tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<?x4x4x8xf32>
}

// -----

// When a product escapes (here it is returned), the ops stay kernels of
// their own: the fused kernel never writes ga.
// CHECK-LABEL: func.func @qdwconv_backward_escapes
// CHECK-NOT: qdwconv_grad
// CHECK: family "mul"
// CHECK: family "dwconv_grad_filter"
func.func @qdwconv_backward_escapes(%x: tensor<?x4x4x8xf32>, %g: tensor<?x4x4x8xf32>) -> (tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<?x4x4x8xf32>) attributes {quadra.gradients = ["wa", "wb", "wc"]} {
  %wa = quadra.weight "wa" trunc_normal(0.02) : tensor<3x3x8xf32>
  %wb = quadra.weight "wb" trunc_normal(0.02) : tensor<3x3x8xf32>
  %wc = quadra.weight "wc" trunc_normal(0.02) : tensor<3x3x8xf32>
  %xa = quadra.dwconv %x, %wa stride [1, 1] pad [1, 1] {quadra.backward_of = 3 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>) -> tensor<?x4x4x8xf32>
  %xb = quadra.dwconv %x, %wb stride [1, 1] pad [1, 1] {quadra.backward_of = 3 : i64} : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>) -> tensor<?x4x4x8xf32>
  %y = quadra.qdwconv %x, %wa, %wb, %wc stride [1, 1] pad [1, 1] : (tensor<?x4x4x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>) -> tensor<?x4x4x8xf32>
  %ga = quadra.mul %g, %xb {quadra.backward_of = 3 : i64} : tensor<?x4x4x8xf32>
  %gb = quadra.mul %g, %xa {quadra.backward_of = 3 : i64} : tensor<?x4x4x8xf32>
  %dwa = quadra.dwconv_grad_filter %x, %ga stride [1, 1] pad [1, 1] {quadra.backward_of = 3 : i64} : (tensor<?x4x4x8xf32>, tensor<?x4x4x8xf32>) -> tensor<3x3x8xf32>
  %dwb = quadra.dwconv_grad_filter %x, %gb stride [1, 1] pad [1, 1] {quadra.backward_of = 3 : i64} : (tensor<?x4x4x8xf32>, tensor<?x4x4x8xf32>) -> tensor<3x3x8xf32>
  %dwc = quadra.dwconv_grad_filter %x, %g stride [1, 1] pad [1, 1] {quadra.backward_of = 3 : i64} : (tensor<?x4x4x8xf32>, tensor<?x4x4x8xf32>) -> tensor<3x3x8xf32>
  return %dwa, %dwb, %dwc, %ga : tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<3x3x8xf32>, tensor<?x4x4x8xf32>
}
