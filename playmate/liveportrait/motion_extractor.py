"""M: the motion extractor (``motion_extractor.pth``): ConvNeXt-V2-tiny plus seven linear heads.

RGB image [B,3,256,256] in [0,1] -> raw outputs (all flat, float):

    pitch, yaw, roll  [B,66]  head-pose logits over 66 bins of 3 degrees
                              (degrees = 3 * sum_i i*softmax_i - 97.5, see keypoints.headpose_degrees)
    t                 [B,3]   translation (only x, y are used by transform_keypoint)
    exp               [B,63]  expression deformation delta (21 x 3)
    scale             [B,1]   scale s
    kp                [B,63]  canonical keypoints x_c (21 x 3)

Backbone: stem conv4x4/4 + channels-first LayerNorm; stages of depths 3/3/9/3 and widths
96/192/384/768, separated by channels-first LayerNorm + conv2x2/2.  Each block:
depthwise conv7x7 -> (NHWC) LayerNorm -> Linear x4 -> GELU -> GRN -> Linear -> + input.
Then global average pooling and a final LayerNorm.  All LayerNorms use eps 1e-6.
State_dict keys start with ``detector.`` as in the official file.
"""

import torch
import torch.nn.functional as F
from torch import nn

HEADS = {"kp": 63, "scale": 1, "pitch": 66, "yaw": 66, "roll": 66, "t": 3, "exp": 63}


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (biased variance, eps inside the sqrt)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation over H, W of an NHWC tensor (ConvNeXt-V2)."""

    def __init__(self, channels):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, in_chans=3, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), num_kp=21):
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        self.downsample_layers = nn.ModuleList([stem] + [
            nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
            for i in range(3)])
        self.stages = nn.ModuleList(
            nn.Sequential(*[Block(dim) for _ in range(depth)]) for depth, dim in zip(depths, dims))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        sizes = dict(HEADS, kp=3 * num_kp, exp=3 * num_kp)
        for name, size in sizes.items():  # registration order = official state_dict order
            setattr(self, "fc_" + name, nn.Linear(dims[-1], size))
        self.head_names = tuple(sizes)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        x = self.norm(x.mean((-2, -1)))
        return {name: getattr(self, "fc_" + name)(x) for name in self.head_names}


class MotionExtractor(nn.Module):
    """Wrapper giving the official ``detector.`` key prefix; forward returns the raw head outputs."""

    def __init__(self, num_kp=21, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        self.detector = ConvNeXtV2(depths=depths, dims=dims, num_kp=num_kp)

    def forward(self, image):
        return self.detector(image)
