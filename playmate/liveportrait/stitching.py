"""The stitching and retargeting MLPs (``stitching_retargeting_module.pth``).

All three are ``Linear -> ReLU -> ... -> Linear`` stacks stored as ``mlp.<N>`` (Linear layers
at the even indices, ReLUs at the odd ones):

    stitching  (file key retarget_shoulder)  126 -> 128 -> 128 -> 64 -> 65
               input concat(kp_src.flat, kp_drv.flat); output 63 keypoint offsets + (dx, dy)
    lip        (file key retarget_mouth)      65 -> 128 -> 128 -> 64 -> 63
               input concat(kp_src.flat, [lip ratio of source, target lip ratio])
    eye        (file key retarget_eye)        66 -> 256 -> 256 -> 128 -> 128 -> 64 -> 63
               input concat(kp_src.flat, [left, right eye ratio of source, target eye ratio])

See keypoints.py for how the outputs are applied.
"""

from torch import nn

SIZES = {
    "stitching": (126, (128, 128, 64), 65),
    "lip": (65, (128, 128, 64), 63),
    "eye": (66, (256, 256, 128, 128, 64), 63),
}


class StitchingRetargetingMLP(nn.Module):
    def __init__(self, input_size, hidden_sizes, output_size):
        super().__init__()
        widths = [input_size, *hidden_sizes]
        layers = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(cin, cout), nn.ReLU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(widths[-1], output_size))

    def forward(self, x):
        return self.mlp(x)


def make_mlp(kind):
    """kind: "stitching", "lip" or "eye" (official models.yaml sizes)."""
    input_size, hidden, output_size = SIZES[kind]
    return StitchingRetargetingMLP(input_size, hidden, output_size)
