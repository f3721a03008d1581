"""Which motion generator a file is, and loading it.

* Playmate generators: one ``.safetensors`` whose metadata says ``format: playmate-generator``.
* JoyVASA (public): ``motion_generator_hubert_chinese.pt`` (+ ``motion_template.pkl``), or the
  safetensors conversion we write next to them, or a folder holding them.
"""

from pathlib import Path

from ..errors import ModelFileError

JOYVASA_FOLDER = "joyvasa"


def generator_kind(path):
    """'playmate' or 'joyvasa' for a file or folder, else ModelFileError.

    A folder (present or not) is a JoyVASA release folder: missing files are downloaded into it.
    """
    from .joyvasa import looks_like_joyvasa
    path = Path(path)
    if path.is_dir() and path.suffix in (".safetensors", ".pt", ".pth", ".pkl"):
        raise ModelFileError("Expected the motion generator file '%s' but found a folder there: remove or "
                             "rename it, or choose the generator file itself." % path)
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


def load_generator(path, device="cpu"):
    kind = generator_kind(path)
    if kind == "playmate":
        from .playmate_gen import load_playmate
        return load_playmate(path, device=device)
    from .joyvasa import load_joyvasa
    return load_joyvasa(path, device=device)


def default_generator_path(models_dir):
    """The generator used when none is named: a Playmate checkpoint in models/playmate, else JoyVASA.

    JoyVASA's files are downloaded into models/playmate/joyvasa/ when missing (or an error says
    which files to put there).
    """
    from ..models import model_folder
    folder = model_folder("playmate", models_dir)
    own = sorted(p for p in folder.glob("*.safetensors") if generator_kind(p) == "playmate") if folder.is_dir() else []
    if own:
        return own[0]
    return folder / JOYVASA_FOLDER
