"""F: the appearance feature extractor (``appearance_feature_extractor.pth``).

RGB image [B,3,256,256] in [0,1] -> appearance volume f_s [B,32,16,64,64]
(channels x depth x height x width).  Architecture (official models.yaml values):

    first        conv3x3 3->64, BN, ReLU                      256x256
    down_blocks  2x (conv3x3, BN, ReLU, 2x2 avg pool)  64->128->256, 64x64
    second       conv1x1 256->512
    view         512 channels = 32 channels x 16 depth
    resblocks_3d 6 pre-activation 3-D residual blocks named "3dr0".."3dr5"
"""

from collections import OrderedDict

from torch import nn

from .blocks import ConvBNAct, ResBlock3d


class AppearanceFeatureExtractor(nn.Module):
    def __init__(self, image_channel=3, block_expansion=64, num_down_blocks=2, max_features=512,
                 reshape_channel=32, reshape_depth=16, num_resblocks=6):
        super().__init__()
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth
        self.first = ConvBNAct(image_channel, block_expansion)
        widths = [min(max_features, block_expansion * 2 ** i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            ConvBNAct(widths[i], widths[i + 1], pool=2) for i in range(num_down_blocks))
        self.second = nn.Conv2d(widths[-1], max_features, 1)
        self.resblocks_3d = nn.Sequential(OrderedDict(
            ("3dr%d" % i, ResBlock3d(reshape_channel)) for i in range(num_resblocks)))

    def forward(self, image):
        x = self.first(image)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)
        b, _, h, w = x.shape
        return self.resblocks_3d(x.reshape(b, self.reshape_channel, self.reshape_depth, h, w))
