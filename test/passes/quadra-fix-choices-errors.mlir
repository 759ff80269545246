// RUN: qdsl-opt %s --split-input-file --quadra-fix-choices="picks=5" -verify-diagnostics

// A pick out of range names the layer and lists its candidates.
func.func @Space(%x: tensor<?x8x8x4xf32>) -> tensor<?x8x8x4xf32> attributes {quadra.kind = "space"} {
  // expected-error @+1 {{pick 5 for layer 'stages.0.0' is out of range; its 2 candidates are 0 = relu, 1 = identity}}
  %0 = quadra.choice "stages.0.0" %x : tensor<?x8x8x4xf32> -> tensor<?x8x8x4xf32>
  candidate "relu" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    %r = quadra.relu %in : tensor<?x8x8x4xf32>
    quadra.yield %r : tensor<?x8x8x4xf32>
  }
  candidate "identity" {
  ^bb0(%in: tensor<?x8x8x4xf32>):
    quadra.yield %in : tensor<?x8x8x4xf32>
  }
  return %0 : tensor<?x8x8x4xf32>
}
