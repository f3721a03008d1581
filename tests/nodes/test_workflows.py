"""The example workflows: example_workflows/*.json (editor format, with a .jpg thumbnail each: the
template browser's folder) and workflows/api/*.json (API format).

Checked against the captured core node definitions plus our live node classes with the offline
validator (workflows/validate.py); the API twins must be what the editor exports from the UI
files; the files must be what ``python workflows/build.py`` writes; each workflow must show
what it is named after; and each must open readable in a browser window: zoom, nothing outside
the view or overlapping once the media previews have loaded, a note saying what to load.
"""

import copy
import importlib.util
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nodes.loaders import DITTO_CHOICE
from workflows.validate import FRONTEND_NODES, ui_widget_slots, validate_api_workflow, validate_ui_workflow

ROOT = Path(__file__).resolve().parents[2]
UI_DIR = ROOT / "example_workflows"
API_DIR = ROOT / "workflows" / "api"
MEDIA_DIR = ROOT / "example_media"

_spec = importlib.util.spec_from_file_location("playmate_workflows_build", ROOT / "workflows" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

INFO, FILES = build.node_definitions()
NAMES = sorted(p.stem for p in API_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def built():
    return build.build_all(INFO, FILES)


def load_ui(name):
    return json.loads(build.ui_path(name).read_text(encoding="utf-8"))


def load_api(name):
    return json.loads((API_DIR / (name + ".json")).read_text(encoding="utf-8"))


def ui_to_api(workflow):
    """What the editor's "Export (API)" makes of a UI workflow (no subgraphs, no muted nodes)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_NODES:
            continue
        info = INFO[node["type"]]
        linked = {s["name"]: links[s["link"]] for s in node.get("inputs", []) if s.get("link") is not None}
        inputs = {name: value for (kind, name), value in zip(ui_widget_slots(node["type"], info),
                                                            node.get("widgets_values", []))
                  if kind == "value" and name not in linked}
        inputs.update({name: [str(link[1]), link[2]] for name, link in linked.items()})
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"],
                                   "_meta": {"title": node.get("title") or info["display_name"]}}
    return prompt


# ---------------------------------------------------------------------------------------------
# Files


def test_every_workflow_has_both_formats_and_a_builder_entry():
    assert len(NAMES) >= 9
    assert NAMES == sorted(build.WORKFLOWS)
    assert sorted(p.name for p in UI_DIR.glob("*.json")) == sorted(build.ui_path(n).name for n in NAMES)
    assert not list((ROOT / "workflows").glob("*.json"))  # one folder for the template browser


def test_files_are_what_the_builder_writes(built):
    texts, thumbs = build.expected_files(built, INFO)
    stale = [str(path.relative_to(ROOT)) for path in build.stale_files(texts, thumbs)]
    assert not stale, "out of date (run python workflows/build.py): %s" % stale
    assert build.extra_files(texts, thumbs) == []


def test_widget_values_follow_the_node_definitions():
    """A changed default in INPUT_TYPES changes the built workflows (no copied values)."""
    info = copy.deepcopy(INFO)
    info["PlaymateRender"]["input"]["required"]["batch_size"][1]["default"] = 9
    ui, api = build.build_all(info, FILES)["playmate_image_audio_to_video"]
    render = next(n for n in ui["nodes"] if n["type"] == "PlaymateRender")
    assert render["widgets_values"] == [True, True, 9]  # stitching (default), paste_back (set), batch_size
    assert [n["inputs"]["batch_size"] for n in api.values() if n["class_type"] == "PlaymateRender"] == [9]


# ---------------------------------------------------------------------------------------------
# Validity


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_is_valid(name):
    workflow = load_ui(name)
    assert validate_ui_workflow(workflow, INFO, FILES) == []
    assert any(n["type"] == "Note" for n in workflow["nodes"])
    assert set(workflow["extra"]["ds"]) == {"scale", "offset"}


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_is_valid_and_is_the_ui_export(name):
    prompt = load_api(name)
    assert validate_api_workflow(prompt, INFO, FILES) == []
    assert prompt == ui_to_api(load_ui(name))


def test_a_wrong_widget_value_fails_validation():
    workflow = load_ui("playmate_image_audio_to_video")
    sampler = next(n for n in workflow["nodes"] if n["type"] == "PlaymateSampleMotion")
    sampler["widgets_values"][0] = "ecstatic"
    errors = validate_ui_workflow(workflow, INFO, FILES)
    assert len(errors) == 1 and "emotion" in errors[0] and "'ecstatic'" in errors[0]

    prompt = load_api("playmate_image_audio_to_video")
    render = next(n for n in prompt.values() if n["class_type"] == "PlaymateRender")
    render["inputs"]["batch_size"] = 0
    errors = validate_api_workflow(prompt, INFO, FILES)
    assert len(errors) == 1 and "batch_size" in errors[0] and "below the minimum 1" in errors[0]


# ---------------------------------------------------------------------------------------------
# How a workflow looks when it is opened

# What each frontend shows of the canvas in a 1600x1000 browser window, in the canvas element's own
# pixels (extra.ds is relative to it), measured with tests/nodes/shoot_frontend.py: 1.27.10 (ComfyUI
# 0.3.64's) gives the canvas 1536x922 beside its sidebar and below its bars; 1.58.1 gives it the whole
# window and floats a 64 px sidebar and about 60 px of breadcrumb / Run bar over it.
VIEWS = {"1.27.10": (0, 0, 1536, 922), "1.58.1": (64, 60, 1600, 1000)}
TITLE_H = 30  # a node's title bar sits above its pos


def grown_size(node):
    """The node's size once its media preview has loaded, as the frontend sizes it: LoadImage
    grows to at least the image top (~94 px: 2 output rows, file combo, upload button) + 220 px;
    LoadVideo adds a video widget as wide as the node and as tall as the aspect ratio makes it
    (fitDimensionsToNodeWidth), here a portrait 9:16 clip, below ~84 px of output row and widgets."""
    width, height = node["size"]
    if node["type"] == "LoadImage":
        height = max(height, 94 + 220)
    elif node["type"] == "LoadVideo":
        height = max(height, 84 + width * 16 / 9)
    return width, height


def boxes(workflow):
    """``[(left, top, right, bottom, node)]`` in canvas units, title bar included, previews loaded."""
    out = []
    for node in workflow["nodes"]:
        width, height = grown_size(node)
        x, y = node["pos"]
        out.append((x, y - TITLE_H, x + width, y + height, node))
    return out


def overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a, b):
    """Box ``a`` lies within box ``b``."""
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


def group_box(group):
    x, y, w, h = group["bounding"]
    return (x, y, x + w, y + h)


@pytest.mark.parametrize("name", NAMES)
def test_opens_at_a_readable_zoom_with_everything_in_view(name):
    workflow = load_ui(name)
    ds = workflow["extra"]["ds"]
    scale, (dx, dy) = ds["scale"], ds["offset"]
    assert 0.6 <= scale <= 1.0, (name, scale)
    items = [b[:4] for b in boxes(workflow)] + [group_box(g) for g in workflow["groups"]]
    for left, top, right, bottom in items:  # the editor draws canvas p at screen (p + offset) * scale
        screen = ((left + dx) * scale, (top + dy) * scale, (right + dx) * scale, (bottom + dy) * scale)
        for frontend, view in VIEWS.items():
            assert inside(screen, view), (name, frontend, screen)


@pytest.mark.parametrize("name", NAMES)
def test_nodes_do_not_overlap_once_media_previews_have_loaded(name):
    found = boxes(load_ui(name))
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            assert not overlap(a, b), (name, a[4]["id"], b[4]["id"])


def test_a_loaded_video_preview_grows_the_node_past_its_saved_size():
    video = {"type": "LoadVideo", "pos": [0, 30], "size": [320, 330]}
    below = {"type": "GetVideoComponents", "pos": [0, 440], "size": [320, 78]}
    (a, b) = boxes({"nodes": [video, below]})
    assert a[3] == 30 + 84 + 320 * 16 / 9 and overlap(a, b)  # the old layout: 330 px, then the next node


@pytest.mark.parametrize("name", NAMES)
def test_groups_enclose_their_nodes_and_no_others(name):
    workflow = load_ui(name)
    found = boxes(workflow)
    for group in workflow["groups"]:
        box = group_box(group)
        members = [b for b in found if inside(b, box)]
        assert members, (name, group["title"])
        # a node partly inside would be dragged along or not depending on where it is grabbed
        assert all(inside(b, box) for b in found if overlap(b, box)), (name, group["title"])
    for i, a in enumerate(workflow["groups"]):
        for b in workflow["groups"][i + 1:]:
            assert not overlap(group_box(a), group_box(b)), (name, a["title"], b["title"])


def notes_of(workflow):
    return [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in ("Note", "MarkdownNote")]


MEDIA_INPUTS = {"LoadImage": "image", "LoadAudio": "audio", "LoadVideo": "file"}


def test_the_examples_use_the_bundled_media_or_name_the_user_s_own():
    used = {n["widgets_values"][0]
            for name in NAMES for n in load_ui(name)["nodes"] if n["type"] in MEDIA_INPUTS}
    bundled = {f for f in used if (MEDIA_DIR / f).is_file()}
    assert bundled == {"astronaut.jpg", "speech.wav"}
    assert used - bundled == {"two_people.jpg", "long_speech.wav", "driving.mp4", "talking_portrait.mp4"}


@pytest.mark.parametrize("name", NAMES)
def test_note_says_what_to_load_and_what_to_pick_instead(name):
    workflow = load_ui(name)
    (note,) = notes_of(workflow)
    lines = note.split("\n")
    for node in workflow["nodes"]:
        if node["type"] not in MEDIA_INPUTS:
            continue
        file_name = node["widgets_values"][0]
        (line,) = [line for line in lines if file_name in line]
        if (MEDIA_DIR / file_name).is_file():
            assert "included" in line and "not included" not in line, line
        else:
            assert "not included" in line and "pick your own" in line, line
    assert "ComfyUI/input" in note
    assert len(lines[0]) > 40  # what the workflow shows comes first


INTERNAL = [r"\bissues?\b", r"#\d", r"\.py\b", r"\bplaymate_[a-z_]+\b", r"\btests?/", r"\bTODO\b", r"\bFIXME\b",
            r"github", r"\bPR\b", r"\bplaymate\.\w", r"/work/"]


def internal_references(text):
    return [p for p in INTERNAL if re.search(p, text, re.IGNORECASE if p != r"\bPR\b" else 0)]


def test_internal_reference_check_finds_them():
    assert internal_references("fixed in issue #12, see workflows/build.py") == [r"\bissues?\b", r"#\d", r"\.py\b"]
    assert internal_references("see playmate_two_faces") and not internal_references("Playmate 08 - Two faces")


@pytest.mark.parametrize("name", NAMES)
def test_user_visible_text_has_no_internal_references(name):
    workflow = load_ui(name)
    texts = notes_of(workflow) + [n.get("title", "") for n in workflow["nodes"]]
    texts += [g["title"] for g in workflow["groups"]] + [build.ui_path(name).stem]
    for text in texts:
        assert not internal_references(text), (name, text)


def test_template_titles_are_readable_and_the_main_workflow_comes_first():
    titles = sorted(p.stem for p in UI_DIR.glob("*.json"))
    assert titles[0] == build.ui_path("playmate_image_audio_to_video").stem
    for title in titles:  # shown as is by the template browser, and part of its URLs
        assert re.fullmatch(r"Playmate \d\d - [A-Z][a-z]+( [A-Za-z]+)+", title), title


@pytest.mark.parametrize("name", NAMES)
def test_thumbnail_is_drawn_from_the_current_layout(name, built):
    path = build.thumbnail_path(name)
    assert path.parent == build.ui_path(name).parent and path.stem == build.ui_path(name).stem
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (512, 512)
        stored = np.asarray(image.convert("RGB"), dtype=np.float32)
    spec = build.thumbnail_spec(built[name][0], build.WORKFLOWS[name][0], INFO)
    assert build.stamp_of(path) == build.thumbnail_stamp(spec)
    fresh = np.asarray(Image.open(io.BytesIO(build.thumbnail_jpeg(spec))).convert("RGB"), dtype=np.float32)
    assert np.abs(fresh - stored).mean() < 3.0
    other = next(n for n in NAMES if n != name)
    other_spec = build.thumbnail_spec(built[other][0], build.WORKFLOWS[other][0], INFO)
    assert build.thumbnail_stamp(other_spec) != build.thumbnail_stamp(spec)
    different = np.asarray(build.render_thumbnail(other_spec), dtype=np.float32)
    assert np.abs(different - stored).mean() > 6.0  # the comparison above can fail


@pytest.mark.parametrize("name", NAMES)
def test_no_model_metadata_and_the_public_generator(name):
    """The editor's missing-model check looks up listed files in model folders: our loaders find
    .pth or .safetensors and download on first use, so nothing is listed."""
    workflow = load_ui(name)
    assert "models" not in workflow and "models" not in workflow.get("extra", {})
    assert all("models" not in n.get("properties", {}) for n in workflow["nodes"])
    assert ".safetensors" not in json.dumps(workflow["nodes"]) + json.dumps(load_api(name))
    for node in load_api(name).values():
        if node["class_type"] in ("PlaymateLoadMotionGenerator", "Playmate"):
            assert node["inputs"]["generator"] == DITTO_CHOICE


# ---------------------------------------------------------------------------------------------
# Content: each workflow shows what it is named after


def nodes_of(prompt, class_type):
    return {nid: n for nid, n in prompt.items() if n["class_type"] == class_type}


def one(prompt, class_type):
    (node,) = nodes_of(prompt, class_type).values()
    return node


def source_type(prompt, link):
    return prompt[link[0]]["class_type"], link[1]


def chain_to(prompt, node, *inputs):
    """Class types met following ``inputs`` (one input name per hop) upstream from ``node``."""
    types = []
    for name in inputs:
        node = prompt[node["inputs"][name][0]]
        types.append(node["class_type"])
    return types


def test_image_audio_to_video_content():
    p = load_api("playmate_image_audio_to_video")
    assert one(p, "PlaymateSampleMotion")["inputs"]["emotion"] == "happy"
    render = one(p, "PlaymateRender")["inputs"]
    assert render["paste_back"] is True and source_type(p, render["audio"]) == ("LoadAudio", 0)
    video = one(p, "CreateVideo")["inputs"]
    assert source_type(p, video["fps"]) == ("PlaymateRender", 2)
    assert source_type(p, video["audio"]) == ("PlaymateRender", 1)
    assert chain_to(p, one(p, "SaveVideo"), "video", "images", "motion", "audio_features", "audio") == [
        "CreateVideo", "PlaymateRender", "PlaymateSampleMotion", "PlaymateAudioFeatures", "LoadAudio"]
    assert source_type(p, one(p, "PlaymateAudioFeatures")["inputs"]["audio_encoder"]) == ("PlaymateLoadAudioEncoder", 0)


def test_all_in_one_content():
    p = load_api("playmate_all_in_one")
    assert chain_to(p, one(p, "SaveVideo"), "video", "images", "image") == ["CreateVideo", "Playmate", "LoadImage"]
    assert one(p, "Playmate")["inputs"]["generator"] == build.DITTO  # public, emotion control, auto-download


def test_emotion_sweep_content():
    p = load_api("playmate_emotion_sweep")
    samplers = nodes_of(p, "PlaymateSampleMotion").values()
    emotions = [n["inputs"]["emotion"] for n in samplers]
    assert len(emotions) >= 3 and len(set(emotions)) == len(emotions)
    assert len({n["inputs"]["seed"] for n in samplers}) == 1
    assert len(nodes_of(p, "PlaymateSource")) == len(nodes_of(p, "PlaymateAudioFeatures")) == 1
    saves = nodes_of(p, "SaveVideo").values()
    assert sorted(chain_to(p, s, "video", "images", "motion")[-1] for s in saves) == ["PlaymateSampleMotion"] * 3
    assert len({s["inputs"]["filename_prefix"] for s in saves}) == 3


def test_video_driven_content():
    p = load_api("playmate_video_driven")
    assert source_type(p, one(p, "CreateVideo")["inputs"]["fps"]) == ("GetVideoComponents", 2)
    assert source_type(p, one(p, "PlaymateMotionFromVideo")["inputs"]["fps"]) == ("GetVideoComponents", 2)
    assert chain_to(p, one(p, "SaveVideo"), "video", "images", "motion", "motion", "images", "video") == [
        "CreateVideo", "PlaymateRender", "PlaymateSmoothMotion", "PlaymateMotionFromVideo", "GetVideoComponents",
        "LoadVideo"]


def test_eye_lip_retargeting_content():
    p = load_api("playmate_eye_lip_retargeting")
    assert chain_to(p, one(p, "PlaymateRender"), "motion", "motion", "motion", "motion") == [
        "PlaymateSilenceRelax", "PlaymateBlinks", "PlaymateRetargetEyesLips", "PlaymateSampleMotion"]
    assert one(p, "PlaymateRetargetEyesLips")["inputs"]["eye_mode"] == "constant"


def test_paste_back_full_photo_content():
    p = load_api("playmate_paste_back_full_photo")
    assert one(p, "PlaymateRender")["inputs"]["paste_back"] is False
    assert chain_to(p, one(p, "SaveVideo"), "video", "images", "images") == [
        "CreateVideo", "PlaymatePasteBack", "PlaymateRender"]


def test_long_audio_content():
    p = load_api("playmate_long_audio")
    node = one(p, "PlaymateRenderToVideo")["inputs"]
    assert source_type(p, node["audio"]) == ("LoadAudio", 0) and node["paste_back"] is True
    assert not nodes_of(p, "CreateVideo") and not nodes_of(p, "PlaymateRender")


def test_two_faces_content():
    p = load_api("playmate_two_faces")
    sources = nodes_of(p, "PlaymateSource")
    assert sorted(n["inputs"]["face_index"] for n in sources.values()) == [0, 1]
    assert len({n["inputs"]["image"][0] for n in sources.values()}) == 1  # one photo
    final = p[one(p, "CreateVideo")["inputs"]["images"][0]]
    assert final["class_type"] == "PlaymatePasteBack"
    first = p[final["inputs"]["background"][0]]
    assert first["class_type"] == "PlaymatePasteBack" and "background" not in first["inputs"]
    assert {final["inputs"]["source"][0], first["inputs"]["source"][0]} == set(sources)


def test_expression_editor_content():
    p = load_api("playmate_expression_editor")
    editors = nodes_of(p, "PlaymateExpressionEditor").values()
    assert editors and all("motion" not in n["inputs"] and "source" in n["inputs"] for n in editors)
    assert any(n["inputs"]["envelope"] and n["inputs"]["num_frames"] > 1 for n in editors)
    assert nodes_of(p, "SaveImage") and nodes_of(p, "SaveVideo")


def test_portrait_video_edit_content():
    p = load_api("playmate_portrait_video_edit")
    edit = one(p, "PlaymateEditPortraitVideo")["inputs"]
    assert source_type(p, edit["images"]) == ("GetVideoComponents", 0)
    assert source_type(p, edit["audio"]) == ("GetVideoComponents", 1)
    assert edit["head_rotation"] is False  # the video keeps its own head motion
    # the motion has one frame per video frame: speech features at the video's fps
    assert source_type(p, one(p, "PlaymateAudioFeatures")["inputs"]["fps"]) == ("GetVideoComponents", 2)
    assert chain_to(p, one(p, "SaveVideo"), "video", "images", "motion", "audio_features", "audio", "video") == [
        "CreateVideo", "PlaymateEditPortraitVideo", "PlaymateSampleMotion", "PlaymateAudioFeatures",
        "GetVideoComponents", "LoadVideo"]
    video = one(p, "CreateVideo")["inputs"]
    assert source_type(p, video["fps"]) == ("PlaymateEditPortraitVideo", 2)
    assert source_type(p, video["audio"]) == ("PlaymateEditPortraitVideo", 1)
