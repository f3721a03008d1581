"""The example workflows: workflows/*.json (editor format) and workflows/api/*.json (API format).

Checked against the captured core node definitions plus our live node classes with the offline
validator (workflows/validate.py); the API twins must be what the editor exports from the UI
files; the files must be what ``python workflows/build.py`` writes; and each workflow must show
what it is named after.
"""

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from workflows.validate import FRONTEND_NODES, ui_widget_slots, validate_api_workflow, validate_ui_workflow

ROOT = Path(__file__).resolve().parents[2]
UI_DIR = ROOT / "workflows"
API_DIR = UI_DIR / "api"

_spec = importlib.util.spec_from_file_location("playmate_workflows_build", UI_DIR / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

INFO, FILES = build.node_definitions()
NAMES = sorted(p.stem for p in UI_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def built():
    return build.build_all(INFO, FILES)


def load_ui(name):
    return json.loads((UI_DIR / (name + ".json")).read_text(encoding="utf-8"))


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
    assert NAMES == sorted(p.stem for p in API_DIR.glob("*.json"))
    assert NAMES == sorted(build.WORKFLOWS)


def test_files_are_what_the_builder_writes(built):
    stale = [str(path.relative_to(ROOT)) for path, text in build.expected_files(built).items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    assert not stale, "out of date (run python workflows/build.py): %s" % stale


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


def test_nodes_do_not_overlap_in_the_editor():
    for name in NAMES:
        boxes = [(n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1], n["id"])
                 for n in load_ui(name)["nodes"]]  # the 30 px title bar sits above pos
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (name, a[4], b[4])


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
    assert sorted(chain_to(p, s, "video", "images", "motion")[-1] for s in saves) == ["PlaymateSampleMotion"] * 4
    assert len({s["inputs"]["filename_prefix"] for s in saves}) == 4


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
