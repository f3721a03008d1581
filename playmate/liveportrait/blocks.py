"""Convolution blocks shared by the appearance extractor (F) and the warping module (W).

Layer names (``conv``, ``norm``) follow the official checkpoints, so a block's
state_dict keys are ``<block>.conv.weight``, ``<block>.norm.running_mean`` ...
BatchNorm always runs with its running statistics (the networks are inference-only).
"""

import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Module):
    """[nearest upsample] -> conv (padding keeps the size) -> BatchNorm -> (leaky) ReLU -> [avg pool].

    dims:            2 (Conv2d/BatchNorm2d) or 3 (Conv3d/BatchNorm3d)
    negative_slope:  0 for ReLU, 0.01 for the official ``nn.LeakyReLU()``
    upsample / pool: None or a scale / kernel per spatial dim, e.g. (1, 2, 2) for 3-D
                     blocks that keep the depth (the official Up/DownBlock3d), 2 for 2-D.
    """

    def __init__(self, cin, cout, kernel_size=3, dims=2, negative_slope=0.0, upsample=None, pool=None):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        self.conv = conv(cin, cout, kernel_size, padding=kernel_size // 2)
        self.norm = norm(cout)
        self.negative_slope = negative_slope
        self.upsample = upsample
        self.pool = pool

    def forward(self, x):
        if self.upsample is not None:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        x = self.norm(self.conv(x))
        x = F.leaky_relu(x, self.negative_slope) if self.negative_slope else F.relu(x)
        if self.pool is not None:
            x = (F.avg_pool2d if x.dim() == 4 else F.avg_pool3d)(x, self.pool)
        return x


class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))
