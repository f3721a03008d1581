"""LivePortrait networks (F, M, W, G, stitching/retargeting MLPs), keypoint maths and loading."""
