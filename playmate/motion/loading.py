"""Which motion generator a file is, and loading it.

* Playmate generators: one ``.safetensors`` whose metadata says ``format: playmate-generator``.
* JoyVASA (public): ``motion_generator_hubert_chinese.pt`` (+ ``motion_template.pkl``), or the
  safetensors conversion we write next to them, or a folder holding them.
* Ditto (public): the Hugging Face tree ``ditto_cfg/...pkl`` + ``ditto_pytorch/...`` under a folder
  named ``ditto`` (or holding those sub-folders), or its ``lmdm_v0.4_hubert.pth``.
"""

from pathlib import Path

from ..errors import ModelFileError

JOYVASA_FOLDER = "joyvasa"
DITTO_FOLDER = "ditto"          # models/ditto (ComfyUI/models/ditto)
KINDS = ("playmate", "joyvasa", "ditto")


def looks_like_ditto(path):
    """A Ditto release folder (named ``ditto`` or holding ``ditto_cfg`` / ``ditto_pytorch``), its
    ``ditto_pytorch`` folder, or its LMDM checkpoint."""
    from .ditto.checkpoint import LMDM_NAME
    path = Path(path)
    if path.name == LMDM_NAME:
        return True
    if path.suffix:
        return False
    return (path.name in (DITTO_FOLDER, "ditto_pytorch") or (path / "ditto_cfg").is_dir()
            or (path / "ditto_pytorch").is_dir())


def generator_kind(path):
    """'playmate', 'joyvasa' or 'ditto' for a file or folder, else ModelFileError.

    A folder (present or not) is a Ditto release folder when named ``ditto`` (or holding Ditto's
    sub-folders), else a JoyVASA release folder: missing files are downloaded into it.
    """
    from .joyvasa import looks_like_joyvasa
    path = Path(path)
    if path.is_dir() and path.suffix in (".safetensors", ".pt", ".pth", ".pkl"):
        raise ModelFileError("Expected the motion generator file '%s' but found a folder there: remove or "
                             "rename it, or choose the generator file itself." % path)
    if looks_like_ditto(path):
        return "ditto"
    if path.is_dir() or not path.suffix or looks_like_joyvasa(path):
        return "joyvasa"
    if path.suffix != ".safetensors":
        raise ModelFileError("'%s' is not a motion generator file (.safetensors or JoyVASA .pt)." % path)
    if not path.is_file():
        raise ModelFileError("Motion generator '%s' does not exist: check the path or put the file there." % path)
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            fmt = (f.metadata() or {}).get("format", "")
    except Exception as exc:
        raise ModelFileError("'%s' is not a readable safetensors file (%s): re-download it." % (path, exc)) from None
    if fmt.startswith("playmate"):
        return "playmate"
    raise ModelFileError("'%s' is not a motion generator (metadata format %r): choose a Playmate "
                         "generator or the JoyVASA checkpoint." % (path, fmt))


def load_generator(path, device="cpu", extra_roots=()):
    """The generator at ``path`` (``extra_roots``: more folders searched for Ditto's files)."""
    kind = generator_kind(path)
    if kind == "playmate":
        from .playmate_gen import load_playmate
        return load_playmate(path, device=device)
    if kind == "ditto":
        from .ditto.generator import load_release
        return load_release(path, extra_roots, device=device)
    from .joyvasa import load_joyvasa
    return load_joyvasa(path, device=device)


def default_generator_path(models_dir):
    """The generator used when none is named: Ditto when its files are in models/ditto (the public
    generator with emotion control), else a Playmate checkpoint in models/playmate, else JoyVASA.

    JoyVASA's files are downloaded into models/playmate/joyvasa/ when missing (or an error says
    which files to put there).
    """
    from ..models import model_folder
    from .ditto.checkpoint import LMDM_NAME
    ditto = model_folder("ditto", models_dir)
    if ditto.is_dir() and any(ditto.rglob(LMDM_NAME)):
        return ditto
    folder = model_folder("playmate", models_dir)
    own = sorted(p for p in folder.glob("*.safetensors") if generator_kind(p) == "playmate") if folder.is_dir() else []
    if own:
        return own[0]
    return folder / JOYVASA_FOLDER


def generator_path(name, models_dir):
    """A ``--generator`` value -> path: a kind's name ("ditto", "joyvasa", "playmate" = the default
    file of that kind under ``models_dir``), else the path itself."""
    models_dir = Path(models_dir)
    if name in (None, "", "auto"):
        return default_generator_path(models_dir)
    if name == "ditto":
        return models_dir / DITTO_FOLDER
    if name == "joyvasa":
        return models_dir / "playmate" / JOYVASA_FOLDER
    if name == "playmate":
        own = sorted((models_dir / "playmate").glob("*.safetensors"))
        own = [p for p in own if generator_kind(p) == "playmate"]
        if not own:
            raise ModelFileError("No Playmate generator in %s: train one (python -m playmate.train) or use "
                                 "--generator ditto." % (models_dir / "playmate"))
        return own[0]
    return Path(name)
