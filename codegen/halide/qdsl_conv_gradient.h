// What the two convolution-gradient generators (conv_grad_input,
// conv_grad_filter) share.
#ifndef QDSL_CONV_GRADIENT_H
#define QDSL_CONV_GRADIENT_H

#include "qdsl_gradient_common.h"

namespace qdsl_gen {

// The parameters both convolution gradients share: the forward
// convolution's channels, groups and window, and its input's size.
template <typename T>
class ConvGradient : public Generator<T> {
public:
    GeneratorParam<bool> depthwise{"depthwise", true};
    GeneratorParam<int> groups{"groups", 1};
    GeneratorParam<int> in_channels{"in_channels", 64};
    GeneratorParam<int> out_channels{"out_channels", 64};
    GeneratorParam<int> kernel_h{"kernel_h", 3}, kernel_w{"kernel_w", 3};
    GeneratorParam<int> stride_h{"stride_h", 1}, stride_w{"stride_w", 1};
    GeneratorParam<int> pad_h{"pad_h", 1}, pad_w{"pad_w", 1};
    // The forward input's spatial size.
    GeneratorParam<int> height{"height", 56}, width{"width", 56};

protected:
    struct Window {
        int CI, CO, KH, KW, SH, SW, PH, PW, H, W, OH, OW;
    };
    Window window() const {
        Window w;
        w.CI = in_channels, w.CO = out_channels, w.KH = kernel_h, w.KW = kernel_w;
        w.SH = stride_h, w.SW = stride_w, w.PH = pad_h, w.PW = pad_w;
        w.H = height, w.W = width;
        w.OH = (w.H + 2 * w.PH - w.KH) / w.SH + 1;
        w.OW = (w.W + 2 * w.PW - w.KW) / w.SW + 1;
        return w;
    }
};

}  // namespace qdsl_gen

#endif  // QDSL_CONV_GRADIENT_H
