"""Which motion generator a file is, and loading it.

* Playmate generators: one ``.safetensors`` whose metadata says ``format: playmate-generator``.
* JoyVASA (public): ``motion_generator_hubert_chinese.pt`` (+ ``motion_template.pkl``), or the
  safetensors conversion we write next to them, or a folder holding them.
"""

from pathlib import Path

from ..errors import ModelFileError

JOYVASA_FOLDER = "joyvasa"


def generator_kind(path):
    """'playmate' or 'joyvasa' for a file or folder, else ModelFileError."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("**/motion_generator*.pt")) or any(path.glob("**/motion_generator*.safetensors")):
            return "joyvasa"
        raise ModelFileError("The folder '%s' holds no motion generator: put a Playmate .safetensors "
                             "or the JoyVASA files (motion_generator_hubert_chinese.pt, "
                             "motion_template.pkl) there." % path)
    if path.suffix == ".pt" or path.name.startswith("motion_generator"):
        return "joyvasa"
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        if not path.is_file():
            raise ModelFileError("Motion generator '%s' does not exist." % path)
        try:
            with safe_open(str(path), framework="pt") as f:
                fmt = (f.metadata() or {}).get("format", "")
        except Exception as exc:
            raise ModelFileError("'%s' is not a readable safetensors file (%s): re-download it." % (path, exc)) from None
        if fmt.startswith("playmate"):
            return "playmate"
        if fmt.startswith("joyvasa"):
            return "joyvasa"
        raise ModelFileError("'%s' is not a motion generator (metadata format %r): choose a Playmate "
                             "generator or the JoyVASA checkpoint." % (path, fmt))
    raise ModelFileError("'%s' is not a motion generator file (.safetensors or JoyVASA .pt)." % path)


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
    folder = Path(models_dir) / "playmate"
    own = sorted(p for p in folder.glob("*.safetensors") if generator_kind(p) == "playmate") if folder.is_dir() else []
    if own:
        return own[0]
    return folder / JOYVASA_FOLDER
