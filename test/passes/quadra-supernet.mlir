// RUN: qdsl-opt %s --split-input-file --quadra-supernet --verify-diagnostics | FileCheck %s

// --quadra-supernet: every candidate inlined and tagged with its path, the
// outputs summed through one gate weight per candidate; the layers are
// recorded on the function.

// CHECK-LABEL: func.func @Space
// CHECK-SAME: quadra.kind = "model"
// CHECK-SAME: quadra.supernet = [{candidates = ["relu", "gelu"], gates = ["stages.0.0.candidates.0.gate", "stages.0.0.candidates.1.gate"], layer = "stages.0.0"}, {candidates = ["relu", "identity"], gates = ["stages.0.1.candidates.0.gate", "stages.0.1.candidates.1.gate"], layer = "stages.0.1"}]
// CHECK-NOT: quadra.choice
// CHECK: %[[R:.*]] = quadra.relu %arg0 {quadra.path = array<i64: 0, 0>}
// CHECK: %[[G0:.*]] = quadra.weight "stages.0.0.candidates.0.gate" ones : tensor<4xf32>
// CHECK: %[[S0:.*]] = quadra.layerscale %[[R]], %[[G0]] {quadra.gate = array<i64: 0, 0>}
// CHECK: %[[E:.*]] = quadra.gelu %arg0 {quadra.path = array<i64: 0, 1>}
// CHECK: %[[G1:.*]] = quadra.weight "stages.0.0.candidates.1.gate" ones
// CHECK: %[[S1:.*]] = quadra.layerscale %[[E]], %[[G1]] {quadra.gate = array<i64: 0, 1>}
// CHECK: %[[Y:.*]] = quadra.add %[[S0]], %[[S1]]
// CHECK: quadra.relu %[[Y]] {quadra.path = array<i64: 1, 0>}
// The identity candidate gates the choice's input.
// CHECK: %[[G3:.*]] = quadra.weight "stages.0.1.candidates.1.gate"
// CHECK: quadra.layerscale %[[Y]], %[[G3]] {quadra.gate = array<i64: 1, 1>}
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

// -----

// A model without choices is left alone.
// CHECK-LABEL: func.func @Model
// CHECK-NOT: quadra.supernet
func.func @Model(%x: tensor<?x4xf32>) -> tensor<?x4xf32> attributes {quadra.kind = "model"} {
  %r = quadra.relu %x : tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// -----

func.func @Nested(%x: tensor<?x4xf32>) -> tensor<?x4xf32> attributes {quadra.kind = "space"} {
  %0 = quadra.choice "layers.0" %x : tensor<?x4xf32> -> tensor<?x4xf32>
  candidate "inner" {
  ^bb0(%in: tensor<?x4xf32>):
    // expected-error @+1 {{a supernet needs every choice at the top level: layer 'layers.0.inner' is a choice inside a candidate of 'layers.0'}}
    %c = quadra.choice "layers.0.inner" %in : tensor<?x4xf32> -> tensor<?x4xf32>
    candidate "relu" {
    ^bb0(%a: tensor<?x4xf32>):
      %r = quadra.relu %a : tensor<?x4xf32>
      quadra.yield %r : tensor<?x4xf32>
    }
    quadra.yield %c : tensor<?x4xf32>
  }
  return %0 : tensor<?x4xf32>
}
