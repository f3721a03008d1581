"""W: the warping module (``warping_module.pth``).

Inputs: the source appearance volume f_s [Bf,32,16,64,64] (Bf = B, or 1 to share one source
across a batch of driving frames) and the source / driving keypoints [B,21,3] in normalised
volume coordinates (x right, y down, z into the volume, all in [-1, 1]).

Dense motion network (``dense_motion_network.*``):
  1. compress f_s to 4 channels (conv1x1, BN, ReLU);
  2. 22 candidate backward flows ("sparse motions"): the identity grid, and for every keypoint k
     the identity grid translated by kp_src[k] - kp_drv[k];
  3. sample the compressed volume with each flow; add a heatmap channel per flow: the difference
     of Gaussians exp(-|g - kp|^2 / (2 * 0.01)) centred on the driving and on the source point
     (zeros for the identity flow) -> 22 x (1 + 4) = 110 channels;
  4. a 3-D hourglass (5 down / 5 up blocks, depth kept at 16, skip concatenations) -> 142 ch;
  5. ``mask``: conv7x7x7 -> softmax over the 22 flows; the dense flow ("deformation",
     [B,16,64,64,3], grid_sample coordinates x, y, z) is the mask-weighted sum of the flows;
  6. ``occlusion``: depth folded into channels (142*16), conv7x7 -> sigmoid -> [B,1,64,64].
Then f_s is sampled with the deformation, depth folded into channels (512), ``third``
(conv3x3, BN, LeakyReLU 0.01) and ``fourth`` (conv1x1) give 256 channels, multiplied by the
occlusion map: the input of the SPADE decoder.

Conventions that matter for parity: the identity grid spans [-1, 1] inclusive
(2*i/(n-1) - 1) while every grid_sample uses ``align_corners=False`` (trilinear, zero padding).
The geometric part (flows, heatmaps, softmax, sampling) always runs in float32, also inside an
autocast region; only the convolutions follow the autocast dtype.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBNAct

KP_VARIANCE = 0.01


def coordinate_grid(depth, height, width, like):
    """Identity grid [D,H,W,3] with (x, y, z) = 2*index/(size-1) - 1 (x along W, z along D)."""
    axes = [2 * (torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)) - 1
            for n in (width, height, depth)]
    z, y, x = torch.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def gaussian_heatmaps(kp, grid, variance=KP_VARIANCE):
    """Unnormalised Gaussians centred on every keypoint: kp [B,K,3], grid [D,H,W,3] -> [B,K,D,H,W]."""
    diff = grid - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


def sample_volume(volume, grids, align_corners=False):
    """Trilinear sampling of ``volume`` [Bv,C,D,H,W] at N grids per batch item.

    grids: [B,N,d,h,w,3] (x, y, z in [-1, 1]); Bv is B or 1 (one volume for the whole batch).
    Returns [B,N,C,d,h,w].  The N (and, for Bv == 1, the B) grids are stacked along the output
    depth of a single grid_sample call, so the volume is never copied per grid.
    """
    b, n, d, h, w, _ = grids.shape
    c = volume.shape[1]
    if volume.shape[0] == b:
        out = F.grid_sample(volume, grids.reshape(b, n * d, h, w, 3), align_corners=align_corners)
        return out.reshape(b, c, n, d, h, w).transpose(1, 2)
    if volume.shape[0] != 1:
        raise ValueError("volume batch %d does not match %d keypoint sets" % (volume.shape[0], b))
    out = F.grid_sample(volume, grids.reshape(1, b * n * d, h, w, 3), align_corners=align_corners)
    return out.reshape(c, b, n, d, h, w).permute(1, 2, 0, 3, 4, 5)


class Encoder(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks, max_features):
        super().__init__()
        widths = [in_features] + [min(max_features, block_expansion * 2 ** (i + 1)) for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(
            ConvBNAct(widths[i], widths[i + 1], dims=3, pool=(1, 2, 2)) for i in range(num_blocks))

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks, max_features, kernel_size=3):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            cout = min(max_features, block_expansion * 2 ** i)
            blocks.append(ConvBNAct(cin, cout, dims=3, upsample=(1, 2, 2)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm3d(self.out_filters)

    def forward(self, skips):
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1])):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks, max_features, kernel_size=3):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, kernel_size)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


class DenseMotionNetwork(nn.Module):
    def __init__(self, num_kp=21, feature_channel=32, block_expansion=32, max_features=1024,
                 num_blocks=5, reshape_depth=16, compress=4, mask_kernel=7, occlusion_kernel=7, hourglass_kernel=3):
        super().__init__()
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features,
                                   hourglass_kernel)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, mask_kernel, padding=mask_kernel // 2)
        self.compress = nn.Conv3d(feature_channel, compress, 1)
        self.norm = nn.BatchNorm3d(compress)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, occlusion_kernel,
                                   padding=occlusion_kernel // 2)

    def forward(self, feature, kp_source, kp_driving, align_corners=False):
        """-> (deformation [B,D,H,W,3], occlusion map [B,1,H,W]); see the module docstring."""
        b = kp_driving.shape[0]
        d, h, w = feature.shape[2:]
        compressed = F.relu(self.norm(self.compress(feature)))
        with torch.autocast(feature.device.type, enabled=False):
            kp_source, kp_driving = kp_source.float(), kp_driving.float()
            grid = coordinate_grid(d, h, w, kp_source)
            moved = grid - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
            flows = torch.cat([grid.expand(b, 1, d, h, w, 3), moved], dim=1)       # [B,K+1,D,H,W,3]
            deformed = sample_volume(compressed.float(), flows, align_corners)      # [B,K+1,c,D,H,W]
            heat = gaussian_heatmaps(kp_driving, grid) - gaussian_heatmaps(kp_source, grid)
            heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1)
            x = torch.cat([heat.unsqueeze(2), deformed], dim=2).reshape(b, -1, d, h, w)
        prediction = self.hourglass(x.to(compressed.dtype))
        logits = self.mask(prediction)
        occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)).float())
        with torch.autocast(feature.device.type, enabled=False):
            mask = torch.softmax(logits.float(), dim=1)
            deformation = (flows * mask.unsqueeze(-1)).sum(dim=1)
        return deformation, occlusion


class WarpingNetwork(nn.Module):
    """forward(feature_3d, kp_source, kp_driving) -> dict(out [B,256,64,64], occlusion_map, deformation).

    ``align_corners`` exists only so tests can show that the parity check catches the classic
    porting mistake; the official network (and the default) uses False.
    """

    def __init__(self, num_kp=21, feature_channels=512, out_channels=256, reshape_channel=32,
                 dense_motion_params=None):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, feature_channel=reshape_channel, **(dense_motion_params or {}))
        self.third = ConvBNAct(feature_channels, out_channels, negative_slope=0.01)
        self.fourth = nn.Conv2d(out_channels, out_channels, 1)
        self.align_corners = False

    def forward(self, feature_3d, kp_source, kp_driving):
        if feature_3d.shape[0] > 1 and feature_3d.stride(0) == 0:  # one source expanded over the batch
            feature_3d = feature_3d[:1]
        deformation, occlusion = self.dense_motion_network(
            feature_3d, kp_source, kp_driving, align_corners=self.align_corners)
        with torch.autocast(feature_3d.device.type, enabled=False):
            warped = sample_volume(feature_3d.float(), deformation[:, None], self.align_corners)[:, 0]
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.reshape(b, c * d, h, w).to(feature_3d.dtype)))
        return {"out": out * occlusion, "occlusion_map": occlusion, "deformation": deformation}
