"""The pack as a ComfyUI user meets it: node names and categories, the README's node table, the text
in descriptions and tooltips, how errors read in ComfyUI's dialog, what the nodes say about the empty
values core nodes hand them, and the registry metadata (comfy-cli's own validation)."""

import ast
import os
import pickle
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from nodetools import call

import nodes
from playmate.errors import InputError, ModelFileError, PlaymateError

DISPLAY = re.compile(r"^Playmate( [A-Z&][A-Za-z&-]*)+$")        # "Playmate Render To Video File"
CATEGORY = re.compile(r"^Playmate/[A-Z][A-Za-z-]*( [A-Z][A-Za-z-]*)*$")  # "Playmate/Controls"


def test_one_naming_style_for_display_names_and_categories():
    names = nodes.NODE_DISPLAY_NAME_MAPPINGS
    assert set(names) == set(nodes.NODE_CLASS_MAPPINGS) and len(names) == 25
    bad = {k: v for k, v in names.items() if not DISPLAY.match(v) or "(" in v}
    assert not bad, bad
    assert len(set(names.values())) == len(names)  # no two nodes share a name
    categories = {cls.CATEGORY for cls in nodes.NODE_CLASS_MAPPINGS.values()}
    assert all(CATEGORY.match(c) for c in categories), categories
    assert categories == {"Playmate/Loaders", "Playmate/Face", "Playmate/Audio", "Playmate/Motion",
                          "Playmate/Emotion", "Playmate/Controls", "Playmate/Render", "Playmate/All-In-One"}
    # saved graphs refer to class ids and input names: these stay as they were
    assert {"Playmate", "PlaymateRender", "PlaymateRenderToVideo", "PlaymateSource",
            "PlaymateEditPortraitVideo", "PlaymateBlinks"} <= set(names)


def _readme_node_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Nodes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert rows[0].replace(" ", "") == "|node|does|" and set(rows[1]) <= set("|-")
    return [row.strip("|").split("|")[0].strip() for row in rows[2:]]


def test_readme_node_table_lists_exactly_the_display_names():
    listed = _readme_node_table()
    assert len(listed) == len(set(listed)), "a node is listed twice"
    names = set(nodes.NODE_DISPLAY_NAME_MAPPINGS.values())
    assert set(listed) == names, {"not in README": names - set(listed), "not a node": set(listed) - names}


INTERNAL = re.compile(r"\bissues?\b|\bTODO\b|\bFIXME\b|\bXXX\b|#\d+|\w+\.py\b|\b(?:playmate|nodes|tests|tools|"
                      r"workflows)/[\w/]*\.|\bplaymate\.[a-z_]+\.|\bnodes\.[a-z_]+|\bpytest\b|\bgit\b", re.I)


def _user_texts():
    """(node, field, text) for every description, tooltip and combo choice a user sees."""
    for node_id, cls in nodes.NODE_CLASS_MAPPINGS.items():
        yield node_id, "DESCRIPTION", cls.DESCRIPTION
        for section, inputs in cls.INPUT_TYPES().items():
            for name, (kind, options) in inputs.items():
                yield node_id, name, options.get("tooltip", "")
                for choice in kind if isinstance(kind, list) else ():
                    yield node_id, name + " choice", str(choice)


def test_no_internal_references_in_descriptions_and_tooltips():
    texts = list(_user_texts())
    assert len(texts) > 150
    hits = [(node, field, text) for node, field, text in texts if INTERNAL.search(text)]
    assert not hits, hits
    # the pattern does catch what it is for
    for planted in ("see issue 10", "TODO: faster", "as nodes/render.py does", "playmate.motion.controls.x"):
        assert INTERNAL.search(planted), planted


# ------------------------------------------------------------------------------------------ errors
def _comfy_full_type_name():
    """ComfyUI's own ``execution.full_type_name`` when a ComfyUI checkout is at $COMFYUI_PATH (it names
    the exception type in the error dialog); taken from its source, since importing execution.py
    needs all of ComfyUI."""
    path = Path(os.environ.get("COMFYUI_PATH", "/nonexistent")) / "execution.py"
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "full_type_name"]
    scope = {}
    exec(compile(ast.Module(body=[func], type_ignores=[]), str(path), "exec"), scope)  # noqa: S102
    return scope["full_type_name"]


@pytest.mark.parametrize("cls", [PlaymateError, InputError, ModelFileError])
def test_errors_read_as_a_plain_class_name_and_one_line(cls):
    """ComfyUI titles its error dialog ``module.qualname`` except for module 'builtins'
    (execution.full_type_name); a traceback's last line follows the same rule."""
    exc = cls("Playmate Audio Features: input 'audio' got no audio: connect Load Audio.")
    assert cls.__module__ == "builtins" and cls.__qualname__ == cls.__name__
    line = traceback.format_exception_only(cls, exc)
    assert line == ["%s: Playmate Audio Features: input 'audio' got no audio: connect Load Audio.\n" % cls.__name__]
    full_type_name = _comfy_full_type_name()
    if full_type_name is not None:
        assert full_type_name(cls) == cls.__name__
    # still the same classes: except clauses, isinstance and pickling (worker processes) keep working
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls and again.args == exc.args and isinstance(again, PlaymateError)
    with pytest.raises(PlaymateError):
        raise exc


def test_comfyui_formats_our_error_with_its_own_code_when_a_checkout_is_there():
    if _comfy_full_type_name() is None:
        pytest.skip("no ComfyUI checkout at $COMFYUI_PATH (its execution.full_type_name is read from there)")
    assert _comfy_full_type_name()(InputError) == "InputError"
    assert _comfy_full_type_name()(ValueError) == "ValueError"
    import json
    assert _comfy_full_type_name()(json.JSONDecodeError) == "json.decoder.JSONDecodeError"  # others: their path
    # pytest's outcome exceptions use the same 'builtins' module for the same reason
    assert _comfy_full_type_name()(pytest.fail.Exception) == "Failed"


# ------------------------------------------------------- empty values that core nodes produce
NO_AUDIO = None                                          # Get Video Components: a video without sound
NO_FRAMES = torch.zeros(0, 3, 0, 0)                      # Get Video Components: a video without frames
EMPTY_AUDIO = {"waveform": torch.zeros(1, 2, 0), "sample_rate": 44100}


def _one_line_error(node_id, kwargs, names_input, fix_word):
    with pytest.raises(InputError) as info:
        call(node_id, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id] + ": input '%s' " % names_input), message
    assert fix_word in message, message
    return message


def test_audio_features_without_sound_says_what_to_connect():
    message = _one_line_error("PlaymateAudioFeatures", dict(audio=NO_AUDIO, fps=25.0), "audio", "Load Audio")
    assert "video without sound" in message
    message = _one_line_error("PlaymateAudioFeatures", dict(audio=EMPTY_AUDIO, fps=25.0), "audio", "Load Audio")
    assert "no samples" in message and "(1, 2, 0)" in message
    message = _one_line_error("PlaymateAudioFeatures", dict(audio=torch.zeros(1, 1, 10), fps=25.0), "audio",
                              "Load Audio")
    assert "Tensor, not an AUDIO value" in message


def test_nodes_that_need_audio_say_so_for_none_and_empty_audio():
    silence = dict(motion=None, threshold_db=-30.0, hold=0.2, attack=0.08, release=0.25, mouth_expression="keep")
    for audio in (NO_AUDIO, EMPTY_AUDIO):
        _one_line_error("PlaymateSilenceRelax", dict(silence, audio=audio), "audio", "Load Audio")
        _one_line_error("PlaymateEmotionFromAudio", dict(reference_audio=audio, audio_encoder=None,
                                                         emotion_space="(no files yet)", temperature=0.05),
                        "reference_audio", "Load Audio")
    image = torch.rand(1, 64, 64, 3)
    spec = nodes.NODE_CLASS_MAPPINGS["Playmate"].INPUT_TYPES()["required"]
    defaults = {k: v[1]["default"] for k, v in spec.items() if "default" in v[1]}
    all_in_one = dict(defaults, image=image, generator=spec["generator"][0][0])
    _one_line_error("Playmate", dict(all_in_one, audio=NO_AUDIO), "audio", "Load Audio")
    _one_line_error("Playmate", dict(all_in_one, image=NO_FRAMES, audio=EMPTY_AUDIO), "image", "Load Image")


def test_nodes_that_need_frames_say_so_for_a_video_without_frames():
    (lp,) = call("PlaymateLoadLivePortrait", precision="fp32")   # a handle: nothing loads before the checks
    crop = dict(face_index=0, face_order="largest", crop_scale=2.3, crop_shift_x=0.0, crop_shift_y=-0.125)
    message = _one_line_error("PlaymateSource", dict(crop, liveportrait=lp, image=NO_FRAMES), "image", "Load Image")
    assert "empty: no frames" in message and "(0, 3, 0, 0)" in message
    _one_line_error("PlaymateSource", dict(crop, liveportrait=lp, image=None), "image", "Load Image")
    _one_line_error("PlaymateMotionFromVideo", dict(liveportrait=lp, images=NO_FRAMES, fps=25.0, face_index=0),
                    "images", "Get Video Components")
    edit = dict(crop, liveportrait=lp, images=NO_FRAMES, motion=None, head_rotation=False, stitching=True,
                batch_size=8)
    _one_line_error("PlaymateEditPortraitVideo", edit, "images", "Get Video Components")
    _one_line_error("PlaymateEditPortraitVideo", dict(edit, images=torch.rand(2, 32, 32, 3), audio=EMPTY_AUDIO),
                    "audio", "disconnect")
    _one_line_error("PlaymatePasteBack", dict(source=None, images=NO_FRAMES), "images", "Playmate Render")
    _one_line_error("PlaymateRender", dict(liveportrait=lp, source=None, motion=None, stitching=True,
                                           paste_back=False, batch_size=8, audio=EMPTY_AUDIO), "audio", "disconnect")


# ---------------------------------------------------------------------------------- registry
def _comfy_cli():
    exe = shutil.which("comfy")
    if exe is None:
        pytest.fail("comfy-cli is missing: pip install -r requirements-test.txt")
    return exe


def test_registry_metadata_passes_comfy_cli_validation(tmp_path):
    """`comfy node validate` (comfy-cli, offline: it parses pyproject.toml and runs its ruff security
    rules on the pack; publishing itself needs the network and a token) on a copy of the pack's
    tracked files, so that build outputs or untracked files of a checkout do not count."""
    exe = _comfy_cli()
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    pack = tmp_path / "pack"
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file():
            (pack / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, pack / rel)
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    done = subprocess.run([exe, "--skip-prompt", "--no-enable-telemetry", "node", "validate"], cwd=pack, env=env,
                          capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "All validation checks passed" in out and "Security warnings" not in out, out

    from comfy_cli.registry.config_parser import extract_node_configuration
    config = extract_node_configuration(str(pack / "pyproject.toml"))
    import playmate
    assert config.project.version == playmate.__version__ and re.match(r"^\d+\.\d+\.\d+$", config.project.version)
    repo = config.project.urls.repository
    assert re.match(r"^https://github\.com/[\w.-]+/[\w.-]+$", repo), repo
    assert config.tool_comfy.publisher_id and config.tool_comfy.display_name
    # the icon is a file of this repository, addressed on the repository's default branch
    owner_name = repo.split("github.com/", 1)[1]
    prefix = "https://raw.githubusercontent.com/%s/main/" % owner_name
    assert config.tool_comfy.icon.startswith(prefix), config.tool_comfy.icon
    icon = ROOT / config.tool_comfy.icon[len(prefix):]
    from PIL import Image
    with Image.open(icon) as im:
        assert im.format == "PNG" and im.size[0] == im.size[1] <= 400
