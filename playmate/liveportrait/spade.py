"""G: the SPADE decoder (``spade_generator.pth``).

Input: the warped feature map [B,256,64,64] (W's ``out``); it is both the decoder's input and the
SPADE "segmentation map" that modulates every normalisation.  Output: RGB [B,3,512,512] in (0,1).

    fc           conv3x3 256->512                                   64x64
    G_middle_0-5 SPADE residual blocks 512->512                     64x64
    up_0         nearest x2, SPADE residual block 512->256          128x128
    up_1         nearest x2, SPADE residual block 256->64           256x256
    conv_img.0   LeakyReLU 0.2, conv3x3 64->12, pixel shuffle x2, sigmoid -> 512x512

SPADE(x, seg) = InstanceNorm(x) * (1 + gamma(a)) + beta(a),  a = ReLU(conv3x3(seg resized to x
by nearest neighbour)); InstanceNorm without affine, eps 1e-5, per-sample statistics.
Residual block: shortcut = conv_s(SPADE_s(x)) when the width changes (1x1, no bias) else x;
out = shortcut + conv_1(lrelu(SPADE_1(conv_0(lrelu(SPADE_0(x)))))), LeakyReLU slope 0.2.

conv_0 / conv_1 / conv_s carry spectral norm: the file stores ``weight_orig``, ``weight_u``,
``weight_v`` and the effective weight is weight_orig / sigma, sigma = u . (W v) with W the
weight reshaped to [out, -1] (eval mode: no power iteration; sigma is computed in float32).
"""

import torch
import torch.nn.functional as F
from torch import nn


class SpectralNormConv2d(nn.Module):
    """Conv2d whose weight is ``weight_orig / (weight_u . (weight_orig.view(out, -1) @ weight_v))``."""

    def __init__(self, cin, cout, kernel_size, bias=True):
        super().__init__()
        if bias:
            self.bias = nn.Parameter(torch.zeros(cout))
        else:
            self.register_parameter("bias", None)
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel_size, kernel_size))
        self.register_buffer("weight_u", torch.empty(cout))
        self.register_buffer("weight_v", torch.empty(cin * kernel_size * kernel_size))
        self.padding = kernel_size // 2

    def weight(self):
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            w = self.weight_orig.float()
            sigma = torch.dot(self.weight_u.float(), torch.mv(w.reshape(w.shape[0], -1), self.weight_v.float()))
            return (w / sigma).to(self.weight_orig.dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Spatially adaptive normalisation; ``seg`` must already have x's spatial size."""

    def __init__(self, channels, label_channels, hidden=128):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x, seg):
        actv = self.mlp_shared(seg)
        return F.instance_norm(x, eps=1e-5) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin, fout, label_channels, hidden=128):
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = SpectralNormConv2d(fin, fmiddle, 3)
        self.conv_1 = SpectralNormConv2d(fmiddle, fout, 3)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(fin, fout, 1, bias=False)
        self.norm_0 = SPADE(fin, label_channels, hidden)
        self.norm_1 = SPADE(fmiddle, label_channels, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_channels, hidden)

    def forward(self, x, seg):
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    def __init__(self, label_channels=256, out_channels=64, upscale=2, hidden=128, num_middle=6):
        super().__init__()
        label = label_channels
        self.fc = nn.Conv2d(label, 2 * label, 3, padding=1)
        self.middle_names = ["G_middle_%d" % i for i in range(num_middle)]
        for name in self.middle_names:
            setattr(self, name, SPADEResnetBlock(2 * label, 2 * label, label, hidden))
        self.up_0 = SPADEResnetBlock(2 * label, label, label, hidden)
        self.up_1 = SPADEResnetBlock(label, out_channels, label, hidden)
        self.conv_img = nn.Sequential(nn.Conv2d(out_channels, 3 * upscale ** 2, 3, padding=1),
                                      nn.PixelShuffle(upscale))

    def forward(self, feature):
        seg = feature
        x = self.fc(feature)
        for name in self.middle_names:
            x = getattr(self, name)(x, seg)
        for block in (self.up_0, self.up_1):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            seg = F.interpolate(seg, scale_factor=2, mode="nearest")
            x = block(x, seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)).float())
