"""Synthetic stand-ins for Ditto's files, for tests and ``write-test-models`` (NOT real models).

:func:`write_test_hubert` writes a small ONNX graph with the signature of the released
``hubert_streaming_fix_kv.onnx`` (``input_values`` float32 [1, 6480] -> ``encoding_out``
[20, 1024]) so that the real onnxruntime code path runs without the 1.4 GB file::

    frames  = the 20 windows of 400 samples, hop 320, of the chunk   (a Conv1d, kernel 400, stride 320)
    hidden  = tanh(frames @ W.T + b)                                   [20, C]
    out     = hidden @ P + q                                           [20, 1024]

with seeded Gaussian weights (W scaled by 1/sqrt(400), P by 1/sqrt(C)).  Its output is
meaningless as speech features.

:func:`write_test_ditto` writes a whole synthetic Ditto release tree (a small LMDM of the project's
own :class:`~.network.MotionDecoder` with seeded weights, the cfg pickle, the test graph), so that
``animate --generator ditto`` runs offline.  :func:`write_ditto_renderer` lays a LivePortrait ``.pth`` folder out as Ditto's renderer
(Ditto's file names, ``stitch_network.pth`` holding only ``retarget_shoulder``).
"""

import os
import shutil
from pathlib import Path

import numpy as np

from ..liveportrait.loader import DITTO_NAMES
from ..motion.ditto.hubert import CHUNK_SAMPLES, FEATURE_DIM, INPUT_NAME, OUTPUT_NAME
from ..safeio import atomic_path

WINDOW = 400
HOP = 320
FRAMES = (CHUNK_SAMPLES - WINDOW) // HOP + 1  # 20
OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.10


def hubert_test_graph(seed=0, channels=32):
    """The synthetic encoder as an ``onnx.ModelProto`` (~0.2 MB for 32 channels)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    weights = {
        "frame_weight": (rng.standard_normal((channels, 1, WINDOW)) / np.sqrt(WINDOW)).astype(np.float32),
        "frame_bias": (0.1 * rng.standard_normal(channels)).astype(np.float32),
        "projection": (rng.standard_normal((channels, FEATURE_DIM)) / np.sqrt(channels)).astype(np.float32),
        "projection_bias": (0.1 * rng.standard_normal(FEATURE_DIM)).astype(np.float32),
        "signal_shape": np.array([1, 1, CHUNK_SAMPLES], dtype=np.int64),
        "batch_axis": np.array([0], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Reshape", [INPUT_NAME, "signal_shape"], ["signal"]),
        helper.make_node("Conv", ["signal", "frame_weight", "frame_bias"], ["framed"],
                         kernel_shape=[WINDOW], strides=[HOP]),                        # [1, C, 20]
        helper.make_node("Tanh", ["framed"], ["activated"]),
        helper.make_node("Squeeze", ["activated", "batch_axis"], ["per_channel"]),      # [C, 20]
        helper.make_node("Transpose", ["per_channel"], ["hidden"], perm=[1, 0]),        # [20, C]
        helper.make_node("MatMul", ["hidden", "projection"], ["projected"]),
        helper.make_node("Add", ["projected", "projection_bias"], [OUTPUT_NAME]),       # [20, 1024]
    ]
    graph = helper.make_graph(
        nodes, "ditto_hubert_test_graph",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, CHUNK_SAMPLES])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [FRAMES, FEATURE_DIM])],
        initializer=[numpy_helper.from_array(v, name=k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="playmate write-test-models (SYNTHETIC)")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_test_hubert(path, seed=0, channels=32):
    """Write the synthetic encoder to ``path`` (atomically); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(hubert_test_graph(seed, channels).SerializeToString())
    return path


def write_ditto_renderer(liveportrait_folder, out_folder):
    """LivePortrait's flat ``.pth`` files -> Ditto's renderer files in ``out_folder`` (the four
    networks hard-linked or copied under Ditto's names; the stitching file reduced to
    ``retarget_shoulder``, as Ditto's release may ship it).  Returns ``out_folder``."""
    import torch
    src, out = Path(liveportrait_folder), Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    for stem, name in DITTO_NAMES.items():
        source, target = src / (stem + ".pth"), out / name
        if stem == "stitching_retargeting_module":
            full = torch.load(str(source), map_location="cpu", weights_only=True)
            with atomic_path(target) as tmp:
                torch.save({"retarget_shoulder": full["retarget_shoulder"]}, str(tmp))
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system
            shutil.copyfile(source, target)
    return out


def write_test_ditto(root, seed=0, width=64, ffn=128, n_layers=2, n_cond_layers=1, sampling_timesteps=50):
    """A synthetic Ditto tree under ``root`` (the release's file layout; every size is read back from
    the tensors): ``ditto_pytorch/models/lmdm_v0.4_hubert.pth`` ({"model_state_dict": ...}, a
    ``width``-wide LMDM with the release's motion 265 / condition 1103 / window 80, default init of the
    project's network under ``torch.manual_seed(seed)``), ``ditto_cfg/v0.4_hubert_cfg_pytorch.pkl``
    (the release's structure, ``default_kwargs`` = the code defaults) and the test HuBERT graph.
    Returns ``root``."""
    import pickle
    from collections import OrderedDict

    import torch

    from ..motion.ditto.checkpoint import LMDM_NAME
    from ..motion.ditto.config import CFG_NAME
    from ..motion.ditto.files import CFG, HUBERT, LMDM
    from ..motion.ditto.network import LMDMSizes, MotionDecoder
    root = Path(root)
    torch.manual_seed(seed)
    net = MotionDecoder(LMDMSizes(width=width, ffn=ffn, n_layers=n_layers, n_cond_layers=n_cond_layers))
    freqs = 1.0 / 10000 ** (torch.arange(0, width, 2, dtype=torch.float32) / width)
    state = OrderedDict((k, freqs.clone() if k.endswith("rotary.freqs") else v.detach().clone())
                        for k, v in net.state_dict().items())
    assert Path(LMDM).name == LMDM_NAME and Path(CFG).name == CFG_NAME
    (root / LMDM).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / LMDM) as tmp:
        torch.save({"model_state_dict": state, "synthetic": "random init, NOT Ditto's weights"}, str(tmp))
    from .ditto import cfg_dict
    cfg = cfg_dict({"sampling_timesteps": int(sampling_timesteps)})
    (root / CFG).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / CFG) as tmp:
        tmp.write_bytes(pickle.dumps(cfg, protocol=4))
    (root / HUBERT).parent.mkdir(parents=True, exist_ok=True)
    write_test_hubert(root / HUBERT, seed=seed)
    return root
