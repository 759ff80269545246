// RUN: qdsl-opt %s --split-input-file --verify-diagnostics

func.func @conv_rank(%x: tensor<8x8x3xf32>, %w: tensor<3x3x3x8xf32>) {
  // expected-error @+2 {{conv2d: the input must have rank 4 (NHWC), got f32[8, 8, 3]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1] groups 1 : (tensor<8x8x3xf32>, tensor<3x3x3x8xf32>) -> tensor<8x8x8xf32>
  return
}

// -----

func.func @conv_channels(%x: tensor<1x8x8x6xf32>, %w: tensor<3x3x4x8xf32>) {
  // expected-error @+2 {{conv2d: the input has 6 channels, so with groups = 1 the filter needs 6 input channels per group, but f32[3, 3, 4, 8] has 4}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1] groups 1 : (tensor<1x8x8x6xf32>, tensor<3x3x4x8xf32>) -> tensor<1x8x8x8xf32>
  return
}

// -----

func.func @conv_groups(%x: tensor<1x8x8x6xf32>, %w: tensor<3x3x2x8xf32>) {
  // expected-error @+2 {{conv2d: the input's 6 channels do not divide into 4 groups}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1] groups 4 : (tensor<1x8x8x6xf32>, tensor<3x3x2x8xf32>) -> tensor<1x8x8x8xf32>
  return
}

// -----

func.func @conv_zero_groups(%x: tensor<1x8x8x6xf32>, %w: tensor<3x3x6x8xf32>) {
  // expected-error @+2 {{conv2d: groups must be at least 1, got 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1] groups 0 : (tensor<1x8x8x6xf32>, tensor<3x3x6x8xf32>) -> tensor<1x8x8x8xf32>
  return
}

// -----

func.func @conv_stride(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) {
  // expected-error @+2 {{conv2d: stride must be between 1 and 1048576, got 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [0, 1] pad [1, 1] groups 1 : (tensor<1x8x8x3xf32>, tensor<3x3x3x8xf32>) -> tensor<1x8x8x8xf32>
  return
}

// -----

func.func @conv_padding_arity(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) {
  // expected-error @+2 {{conv2d: padding must have 2 values [ph, pw], got 4}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1, 1, 1] groups 1 : (tensor<1x8x8x3xf32>, tensor<3x3x3x8xf32>) -> tensor<1x8x8x8xf32>
  return
}

// -----

func.func @conv_window(%x: tensor<1x2x2x3xf32>, %w: tensor<5x5x3x8xf32>) {
  // expected-error @+2 {{conv2d: the kernel (5) is larger than the padded input height (2 + 2·0 = 2)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [0, 0] groups 1 : (tensor<1x2x2x3xf32>, tensor<5x5x3x8xf32>) -> tensor<1x1x1x8xf32>
  return
}

// -----

func.func @conv_bias(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{conv2d: the bias has 4 elements but the layer has 8 channels}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w, %b stride [1, 1] pad [1, 1] groups 1 : (tensor<1x8x8x3xf32>, tensor<3x3x3x8xf32>, tensor<4xf32>) -> tensor<1x8x8x8xf32>
  return
}

// -----

func.func @conv_result(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x8xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{'quadra.conv2d' op inferred type(s) 'tensor<1x8x8x8xf32>' are incompatible with return type(s) of operation 'tensor<1x4x4x8xf32>'}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1] groups 1 : (tensor<1x8x8x3xf32>, tensor<3x3x3x8xf32>) -> tensor<1x4x4x8xf32>
  return
}

// -----

func.func @conv_element_type(%x: tensor<1x8x8x3xf16>, %w: tensor<3x3x3x8xf32>) {
  // expected-error @+2 {{conv2d: the filter has element type 'f32' but the input has 'f16'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.conv2d %x, %w stride [1, 1] pad [1, 1] groups 1 : (tensor<1x8x8x3xf16>, tensor<3x3x3x8xf32>) -> tensor<1x8x8x8xf16>
  return
}

// -----

func.func @dwconv_channels(%x: tensor<1x8x8x4xf32>, %w: tensor<3x3x8xf32>) {
  // expected-error @+2 {{dwconv: the input has 4 channels but the filter f32[3, 3, 8] is for 8}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.dwconv %x, %w stride [1, 1] pad [1, 1] : (tensor<1x8x8x4xf32>, tensor<3x3x8xf32>) -> tensor<1x8x8x4xf32>
  return
}

// -----

func.func @dwconv_filter_rank(%x: tensor<1x8x8x4xf32>, %w: tensor<3x3x1x4xf32>) {
  // expected-error @+2 {{dwconv: the filter must have rank 3 [kh, kw, C], got f32[3, 3, 1, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.dwconv %x, %w stride [1, 1] pad [1, 1] : (tensor<1x8x8x4xf32>, tensor<3x3x1x4xf32>) -> tensor<1x8x8x4xf32>
  return
}

// -----

func.func @qdwconv_filters_differ(%x: tensor<1x8x8x4xf32>, %a: tensor<3x3x4xf32>, %c: tensor<5x5x4xf32>) {
  // expected-error @+2 {{qdwconv: the three weights must have one type, got f32[3, 3, 4], f32[3, 3, 4] and f32[5, 5, 4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.qdwconv %x, %a, %a, %c stride [1, 1] pad [1, 1] : (tensor<1x8x8x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<5x5x4xf32>) -> tensor<1x8x8x4xf32>
  return
}

// -----

func.func @qdwconv_two_biases(%x: tensor<1x8x8x4xf32>, %a: tensor<3x3x4xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{qdwconv: expected no biases or three (for xa, xb and xc), got 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.qdwconv %x, %a, %a, %a bias(%b, %b) stride [1, 1] pad [1, 1] : (tensor<1x8x8x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x8x8x4xf32>
  return
}

// -----

func.func @qdwconv_bias_size(%x: tensor<1x8x8x4xf32>, %a: tensor<3x3x4xf32>, %b: tensor<4xf32>, %c: tensor<5xf32>) {
  // expected-error @+2 {{qdwconv: the third bias has 5 elements but the layer has 4 channels}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.qdwconv %x, %a, %a, %a bias(%b, %b, %c) stride [1, 1] pad [1, 1] : (tensor<1x8x8x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<5xf32>) -> tensor<1x8x8x4xf32>
  return
}

// -----

func.func @linear_channels(%x: tensor<2x10xf32>, %w: tensor<9x3xf32>) {
  // expected-error @+2 {{linear: the input has 10 channels but the weight f32[9, 3] is for 9}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.linear %x, %w : (tensor<2x10xf32>, tensor<9x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @qlinear_channels(%x: tensor<2x10xf32>, %w: tensor<9x3xf32>) {
  // expected-error @+2 {{qlinear: the input has 10 channels but the weights f32[9, 3] are for 9}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.qlinear %x, %w, %w, %w : (tensor<2x10xf32>, tensor<9x3xf32>, tensor<9x3xf32>, tensor<9x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @layernorm_scale(%x: tensor<2x10xf32>, %s: tensor<8xf32>) {
  // expected-error @+2 {{layernorm: the scale has 8 elements but the layer has 10 channels}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.layernorm %x, %s, %s eps 1.0e-6 : (tensor<2x10xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x10xf32>
  return
}

// -----

func.func @layernorm_eps(%x: tensor<2x10xf32>, %s: tensor<10xf32>) {
  // expected-error @+2 {{layernorm: epsilon must be in (0, 1], got 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.layernorm %x, %s, %s eps 0.0 : (tensor<2x10xf32>, tensor<10xf32>, tensor<10xf32>) -> tensor<2x10xf32>
  return
}

// -----

func.func @layerscale_size(%x: tensor<2x10xf32>, %s: tensor<1xf32>) {
  // expected-error @+2 {{layerscale: the scale has 1 elements but the layer has 10 channels}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.layerscale %x, %s : (tensor<2x10xf32>, tensor<1xf32>) -> tensor<2x10xf32>
  return
}

// -----

func.func @avgpool_rank(%x: tensor<2x10xf32>) {
  // expected-error @+2 {{avgpool: the input must have rank 4 (NHWC), got f32[2, 10]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = quadra.avgpool %x : tensor<2x10xf32> -> tensor<2x10xf32>
  return
}

// -----

func.func @add_generic(%x: tensor<2x10xf32>, %y: tensor<2x11xf32>) {
  // expected-error @+1 {{'quadra.add' op requires the same type for all operands and results}}
  %0 = "quadra.add"(%x, %y) : (tensor<2x10xf32>, tensor<2x11xf32>) -> tensor<2x10xf32>
  return
}

// -----

func.func @weight_dynamic() {
  // expected-error @+1 {{'quadra.weight' op weight 'w' must have a static shape, got f32[?, 3]}}
  %0 = quadra.weight "w" zeros : tensor<?x3xf32>
  return
}

// -----

func.func @weight_empty_dim() {
  // expected-error @+1 {{'quadra.weight' op weight 'w' has an empty dimension: f32[0, 3]}}
  %0 = quadra.weight "w" zeros : tensor<0x3xf32>
  return
}

// -----

func.func @weight_no_name() {
  // expected-error @+1 {{a weight needs a non-empty name}}
  %0 = quadra.weight "" zeros : tensor<3xf32>
  return
}

// -----

func.func @weight_bad_std() {
  // expected-error @+1 {{trunc_normal needs a positive standard deviation, got -1.0}}
  %0 = quadra.weight "w" trunc_normal(-1.0) : tensor<3xf32>
  return
}

// -----

func.func @weight_unknown_init() {
  // expected-error @+1 {{unknown initialiser 'gaussian'; expected zeros, ones, constant, normal, trunc_normal or uniform}}
  %0 = quadra.weight "w" gaussian(1.0) : tensor<3xf32>
  return
}

// -----

func.func @choice_no_candidate(%x: tensor<2x4xf32>) {
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  // expected-error @+1 {{expected at least one 'candidate'}}
  return
}

// -----

func.func @choice_yield_type(%x: tensor<2x4xf32>, %y: tensor<2x5xf32>) {
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "a" {
  ^bb0(%in: tensor<2x4xf32>):
    // expected-error @+1 {{'quadra.yield' op yields f32[2, 5] but the layer's result is f32[2, 4]}}
    quadra.yield %y : tensor<2x5xf32>
  }
  return
}

// -----

func.func @choice_duplicate(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{'quadra.choice' op has two candidates named 'a'}}
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "a" {
  ^bb0(%in: tensor<2x4xf32>):
    quadra.yield %in : tensor<2x4xf32>
  }
  candidate "a" {
  ^bb0(%in: tensor<2x4xf32>):
    quadra.yield %in : tensor<2x4xf32>
  }
  return
}

// -----

func.func @choice_argument(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{'quadra.choice' op candidate 'a' must take exactly one argument of the input type 'tensor<2x4xf32>'}}
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "a" {
  ^bb0(%in: tensor<2x5xf32>):
    quadra.yield %x : tensor<2x4xf32>
  }
  return
}

// -----

func.func @yield_outside(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{'quadra.yield' op expects parent op to be one of 'quadra.choice, quadra.kernel'}}
  quadra.yield %x : tensor<2x4xf32>
}

// -----

func.func @kernel_yields_fewer(%x: tensor<?x4xf32>, %s: tensor<4xf32>) -> tensor<?x4xf32> {
  %0:2 = quadra.kernel "k" family "f" (%x, %s) : (tensor<?x4xf32>, tensor<4xf32>) -> (tensor<?x4xf32>, tensor<4xf32>) {
  ^bb0(%a: tensor<?x4xf32>, %b: tensor<4xf32>):
    // expected-error @+1 {{'quadra.yield' op yields (f32[?, 4]) but the kernel's results are (f32[?, 4], f32[4])}}
    quadra.yield %a : tensor<?x4xf32>
  }
  return %0#0 : tensor<?x4xf32>
}

// -----

func.func @candidate_yields_two(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = quadra.choice "l" %x : tensor<2x4xf32> -> tensor<2x4xf32>
  candidate "a" {
  ^bb0(%in: tensor<2x4xf32>):
    // expected-error @+1 {{'quadra.yield' op must yield exactly one value in a candidate}}
    quadra.yield %in, %in : tensor<2x4xf32>, tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}
