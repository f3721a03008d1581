"""Tests of the offline workflow validator (workflows/validate.py) on hand-written workflows.

Core node definitions come from workflows/data/comfy_core_object_info.json (captured from a live
ComfyUI 0.3.64 server); a few toy V1 classes cover seed/control widgets, forceInput, ``*`` and
comma-separated types.
"""

import copy

import pytest

from workflows.validate import (CORE_NODES, load_core_object_info, object_info_from_mappings,
                                types_compatible, ui_widget_slots, validate_api_workflow,
                                validate_ui_workflow)

CORE, CORE_FILES = load_core_object_info()


class ToySampler:
    """V1 node exercising the widget conventions (not part of the pack)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE,MASK",),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 32 - 1}),
                "steps": ("INT", {"default": 4, "min": 1, "max": 50, "control_after_generate": True}),
                "frames": ("INT", {"default": 1, "min": 1, "max": 100, "forceInput": True}),
                "mode": (["a", "b"],),
            },
            "optional": {
                "anything": ("*",),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("IMAGE", "INT")
    RETURN_NAMES = ("images", "count")
    FUNCTION = "run"
    CATEGORY = "Toy/sampling"
    DESCRIPTION = "toy"
    OUTPUT_TOOLTIPS = ("frames", "frame count")


class ToyCount:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "Toy"


TOY = object_info_from_mappings({"ToySampler": ToySampler, "ToyCount": ToyCount},
                                {"ToySampler": "Toy Sampler"}, python_module="custom_nodes.toy")
INFO = {**CORE, **TOY}


# ---------------------------------------------------------------------------------------------
# object_info_from_mappings


def test_object_info_shape_of_a_v1_class():
    assert TOY["ToySampler"] == {
        "input": {
            "required": {
                "image": ["IMAGE,MASK"],
                "seed": ["INT", {"default": 0, "min": 0, "max": 4294967295}],
                "steps": ["INT", {"default": 4, "min": 1, "max": 50, "control_after_generate": True}],
                "frames": ["INT", {"default": 1, "min": 1, "max": 100, "forceInput": True}],
                "mode": [["a", "b"]],
            },
            "optional": {"anything": ["*"], "strength": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0}]},
            "hidden": {"unique_id": "UNIQUE_ID"},
        },
        "input_order": {"required": ["image", "seed", "steps", "frames", "mode"],
                        "optional": ["anything", "strength"], "hidden": ["unique_id"]},
        "output": ["IMAGE", "INT"],
        "output_is_list": [False, False],
        "output_name": ["images", "count"],
        "name": "ToySampler",
        "display_name": "Toy Sampler",
        "description": "toy",
        "python_module": "custom_nodes.toy",
        "category": "Toy/sampling",
        "output_node": False,
        "output_tooltips": ["frames", "frame count"],
    }
    assert TOY["ToyCount"]["display_name"] == "ToyCount"
    assert TOY["ToyCount"]["output_name"] == ["INT"]
    assert TOY["ToyCount"]["description"] == ""


class MirrorImageScale:
    """ImageScale's V1 declarations as ComfyUI 0.3.64 ships them (nodes.py)."""

    upscale_methods = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    crop_methods = ["disabled", "center"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "upscale_method": (cls.upscale_methods,),
                             "width": ("INT", {"default": 512, "min": 0, "max": 16384, "step": 1}),
                             "height": ("INT", {"default": 512, "min": 0, "max": 16384, "step": 1}),
                             "crop": (cls.crop_methods,)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"


class MirrorSaveImage:
    """SaveImage's V1 declarations as ComfyUI 0.3.64 ships them (nodes.py)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "The images to save."}),
                             "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": CORE["SaveImage"][
                                 "input"]["required"]["filename_prefix"][1]["tooltip"]})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."


def test_object_info_matches_the_live_server_for_v1_core_nodes():
    ours = object_info_from_mappings({"ImageScale": MirrorImageScale, "SaveImage": MirrorSaveImage},
                                     {"ImageScale": "Upscale Image", "SaveImage": "Save Image"},
                                     python_module="nodes")
    assert ours["ImageScale"] == CORE["ImageScale"]
    assert ours["SaveImage"] == CORE["SaveImage"]
    assert list(ours["SaveImage"]) == list(CORE["SaveImage"])  # same key order as the server


def test_core_capture_names_its_version_and_holds_the_core_nodes():
    import json
    from workflows.validate import CORE_OBJECT_INFO
    data = json.loads(CORE_OBJECT_INFO.read_text())
    assert data["comfyui_version"] == "0.3.64"
    assert set(CORE) == set(CORE_NODES)
    assert CORE["CreateVideo"]["input"]["required"]["fps"][0] == "FLOAT"
    assert CORE["AudioEncoderEncode"]["output"] == ["AUDIO_ENCODER_OUTPUT"]
    assert CORE_FILES["LoadImage"] == ["image"]


def test_type_rules():
    assert types_compatible("IMAGE", "IMAGE")
    assert types_compatible("MASK", "IMAGE,MASK")
    assert types_compatible("AUDIO", "*")
    assert types_compatible("*", "VIDEO")
    assert types_compatible(["a", "b"], "COMBO")
    assert not types_compatible("MASK", "IMAGE")
    assert not types_compatible("FLOAT", "INT")


def test_widget_layout_follows_the_frontend():
    assert ui_widget_slots("ToySampler", TOY["ToySampler"]) == [
        ("value", "seed"), ("control", "seed"), ("value", "steps"), ("control", "steps"),
        ("value", "mode"), ("value", "strength")]
    assert ui_widget_slots("LoadImage", CORE["LoadImage"]) == [("value", "image"), ("ui", "upload")]
    assert ui_widget_slots("LoadAudio", CORE["LoadAudio"]) == [
        ("value", "audio"), ("ui", "audioUI"), ("ui", "upload")]
    assert ui_widget_slots("SaveAudio", CORE["SaveAudio"]) == [("value", "filename_prefix"), ("ui", "audioUI")]
    assert ui_widget_slots("CreateVideo", CORE["CreateVideo"]) == [("value", "fps")]


# ---------------------------------------------------------------------------------------------
# UI format


def ui_node(node_id, node_type, order, inputs=(), outputs=(), widgets=None, mode=0):
    """A node record as the editor writes it; inputs: (name, type, link), outputs: (name, type, links)."""
    node = {"id": node_id, "type": node_type, "pos": [100 * order, 100], "size": [300, 120],
            "flags": {}, "order": order, "mode": mode,
            "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
            "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
            "properties": {"Node name for S&R": node_type}}
    if widgets is not None:
        node["widgets_values"] = widgets
    return node


def talking_video_ui():
    """LoadImage -> ImageScale -> SaveImage / CreateVideo(+LoadAudio) -> SaveVideo."""
    return {
        "last_node_id": 6, "last_link_id": 5, "version": 0.4,
        "nodes": [
            ui_node(1, "LoadImage", 0, outputs=[("IMAGE", "IMAGE", [1]), ("MASK", "MASK", None)],
                    widgets=["portrait.png", "image"]),
            ui_node(2, "ImageScale", 1, inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2, 3])],
                    widgets=["lanczos", 512, 512, "center"]),
            ui_node(3, "SaveImage", 2, inputs=[("images", "IMAGE", 2)], widgets=["Playmate"]),
            ui_node(4, "LoadAudio", 3, outputs=[("AUDIO", "AUDIO", [4])], widgets=["speech.wav", None, None]),
            ui_node(5, "CreateVideo", 4, inputs=[("images", "IMAGE", 3), ("audio", "AUDIO", 4)],
                    outputs=[("VIDEO", "VIDEO", [5])], widgets=[25]),
            ui_node(6, "SaveVideo", 5, inputs=[("video", "VIDEO", 5)], widgets=["video/Playmate", "auto", "auto"]),
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 2, 0, 5, 0, "IMAGE"],
                  [4, 4, 0, 5, 1, "AUDIO"], [5, 5, 0, 6, 0, "VIDEO"]],
        "groups": [], "config": {}, "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}},
    }


def nodes_by_id(workflow):
    return {n["id"]: n for n in workflow["nodes"]}


def test_valid_ui_workflow_passes():
    assert validate_ui_workflow(talking_video_ui(), INFO) == []


def test_valid_ui_workflow_with_widget_sockets_passes():
    """The current frontend also lists every widget input as a socket with a 'widget' key."""
    wf = talking_video_ui()
    n = nodes_by_id(wf)
    n[1]["inputs"] = [{"name": "image", "type": "COMBO", "widget": {"name": "image"}, "link": None},
                      {"name": "upload", "type": "IMAGEUPLOAD", "widget": {"name": "upload"}, "link": None}]
    n[2]["inputs"] += [{"name": w, "type": t, "widget": {"name": w}, "link": None}
                       for w, t in [("upscale_method", "COMBO"), ("width", "INT"), ("height", "INT"), ("crop", "COMBO")]]
    n[6]["inputs"].append({"name": "filename_prefix", "type": "STRING", "widget": {"name": "filename_prefix"}, "link": None})
    assert validate_ui_workflow(wf, INFO) == []


def test_trailing_frontend_widgets_may_be_absent():
    wf = talking_video_ui()
    nodes_by_id(wf)[1]["widgets_values"] = ["portrait.png"]
    assert validate_ui_workflow(wf, INFO) == []


def test_wrong_combo_value_is_reported():
    wf = talking_video_ui()
    nodes_by_id(wf)[2]["widgets_values"][0] = "cubic"
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "upscale_method" in errors[0] and "'cubic'" in errors[0]


def test_out_of_range_int_is_reported():
    wf = talking_video_ui()
    nodes_by_id(wf)[2]["widgets_values"][1] = 20000
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "width" in errors[0] and "maximum 16384" in errors[0]


def test_out_of_range_float_and_wrong_value_type_are_reported():
    wf = talking_video_ui()
    nodes_by_id(wf)[5]["widgets_values"] = [0.5]
    nodes_by_id(wf)[2]["widgets_values"][2] = "512"
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 2
    assert any("fps" in e and "minimum 1.0" in e for e in errors)
    assert any("height" in e and "integer" in e for e in errors)


def test_wrong_widget_count_is_reported():
    wf = talking_video_ui()
    nodes_by_id(wf)[2]["widgets_values"] = ["lanczos", 512, 512]
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "widgets_values has 3 values, expected 4" in errors[0]


def test_type_mismatched_link_is_reported():
    wf = talking_video_ui()
    n = nodes_by_id(wf)
    n[1]["outputs"][0]["links"] = []
    n[1]["outputs"][1]["links"] = [1]
    wf["links"][0] = [1, 1, 1, 2, 0, "MASK"]
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1
    assert "MASK output 1 of node 1 (LoadImage) goes to input 'image' of node 2 (ImageScale), which takes IMAGE" in errors[0]


def test_missing_required_input_is_reported():
    wf = talking_video_ui()
    n = nodes_by_id(wf)
    n[3]["inputs"][0]["link"] = None
    n[2]["outputs"][0]["links"] = [3]
    wf["links"] = [link for link in wf["links"] if link[0] != 2]
    errors = validate_ui_workflow(wf, INFO)
    assert errors == ["node 3 (SaveImage): required input 'images' is not connected"]


def test_muted_node_may_miss_inputs():
    wf = talking_video_ui()
    n = nodes_by_id(wf)
    n[3]["mode"] = 2
    n[3]["inputs"][0]["link"] = None
    n[2]["outputs"][0]["links"] = [3]
    wf["links"] = [link for link in wf["links"] if link[0] != 2]
    assert validate_ui_workflow(wf, INFO) == []


def test_unknown_node_type_is_reported():
    wf = talking_video_ui()
    wf["nodes"].append(ui_node(7, "PlaymateNoSuchNode", 6, widgets=[]))
    wf["last_node_id"] = 7
    assert validate_ui_workflow(wf, INFO) == ["node 7 (PlaymateNoSuchNode): unknown node type"]


def test_editor_only_nodes_are_allowed_and_reroutes_are_followed():
    wf = talking_video_ui()
    n = nodes_by_id(wf)
    wf["nodes"].append(ui_node(7, "Note", 6, widgets=["Drop a portrait into Load Image."]))
    # route image -> Reroute(8) -> SaveImage
    wf["nodes"].append(ui_node(8, "Reroute", 7, inputs=[("", "*", 2)], outputs=[("", "IMAGE", [6])]))
    n[3]["inputs"][0]["link"] = 6
    wf["links"][1] = [2, 2, 0, 8, 0, "IMAGE"]
    wf["links"].append([6, 8, 0, 3, 0, "IMAGE"])
    wf["last_node_id"], wf["last_link_id"] = 8, 6
    assert validate_ui_workflow(wf, INFO) == []
    n = nodes_by_id(wf)
    # the reroute is fed the MASK instead: the mismatch shows at SaveImage
    n[1]["outputs"][1]["links"] = [7]
    n[8]["inputs"][0]["link"] = 7
    n[2]["outputs"][0]["links"] = [3]
    n[8]["outputs"][0]["type"] = "MASK"
    wf["links"][1] = [7, 1, 1, 8, 0, "MASK"]
    wf["links"][-1][5] = "MASK"
    wf["last_link_id"] = 7
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "MASK output 1 of node 1 (LoadImage) goes to input 'images'" in errors[0]


def test_inconsistent_link_records_are_reported():
    wf = talking_video_ui()
    nodes_by_id(wf)[6]["inputs"][0]["link"] = 4
    errors = validate_ui_workflow(wf, INFO)
    assert "node 6 (SaveVideo): input 'video' refers to link 4, which ends at node 5 slot 1" in errors
    assert "link 5: input 0 of node 6 does not refer to it" in errors
    wf = talking_video_ui()
    wf["links"][4] = [5, 5, 0, 9, 0, "VIDEO"]
    errors = validate_ui_workflow(wf, INFO)
    assert "link 5: connects node 5 to node 9; 9 does not exist" in errors


def test_document_shape_is_checked():
    wf = talking_video_ui()
    wf["version"] = 1
    del wf["last_link_id"]
    del nodes_by_id(wf)[3]["flags"]
    wf["last_node_id"] = 2
    errors = validate_ui_workflow(wf, INFO)
    assert "version must be 0.4 (the links-as-arrays format), got 1" in errors
    assert "missing top-level field 'last_link_id'" in errors
    assert "node 3 (SaveImage): missing field 'flags'" in errors
    assert "last_node_id 2 is below the largest node id 6" in errors


def test_file_inputs_accept_any_file_name_but_not_an_empty_one():
    wf = talking_video_ui()
    nodes_by_id(wf)[1]["widgets_values"][0] = "subdir/someone else.jpg"
    assert validate_ui_workflow(wf, INFO) == []
    nodes_by_id(wf)[1]["widgets_values"][0] = ""
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "widget 'image': expected a file name" in errors[0]


def toy_ui():
    """ToyCount -> ToySampler(frames socket) fed by LoadImage, ToySampler -> PreviewImage."""
    return {
        "last_node_id": 4, "last_link_id": 3, "version": 0.4,
        "nodes": [
            ui_node(1, "LoadImage", 0, outputs=[("IMAGE", "IMAGE", [1]), ("MASK", "MASK", None)],
                    widgets=["portrait.png", "image"]),
            ui_node(2, "ToyCount", 1, outputs=[("INT", "INT", [2])], widgets=[]),
            ui_node(3, "ToySampler", 2, inputs=[("image", "IMAGE,MASK", 1), ("frames", "INT", 2),
                                                ("anything", "*", None)],
                    outputs=[("images", "IMAGE", [3]), ("count", "INT", None)],
                    widgets=[7, "fixed", 4, "randomize", "a", 1.0]),
            ui_node(4, "PreviewImage", 3, inputs=[("images", "IMAGE", 3)], widgets=[]),
        ],
        "links": [[1, 1, 0, 3, 0, "IMAGE"], [2, 2, 0, 3, 1, "INT"], [3, 3, 0, 4, 0, "IMAGE"]],
        "groups": [], "config": {}, "extra": {},
    }


def test_seed_and_control_widgets():
    assert validate_ui_workflow(toy_ui(), INFO) == []
    wf = toy_ui()
    nodes_by_id(wf)[3]["widgets_values"] = [7, 4, "a", 1.0]  # control values left out
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "widgets_values has 4 values, expected 6" in errors[0]
    wf = toy_ui()
    nodes_by_id(wf)[3]["widgets_values"][1] = "sometimes"
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "control value after 'seed' is 'sometimes'" in errors[0]


def test_force_input_needs_a_link():
    wf = toy_ui()
    nodes_by_id(wf)[3]["inputs"][1]["link"] = None
    nodes_by_id(wf)[2]["outputs"][0]["links"] = []
    wf["links"] = [link for link in wf["links"] if link[0] != 2]
    assert validate_ui_workflow(wf, INFO) == ["node 3 (ToySampler): required input 'frames' is not connected"]


def test_widget_converted_to_socket():
    wf = toy_ui()
    n = nodes_by_id(wf)
    # ToyCount's INT drives 'steps'; the stale widget value is then not checked.
    n[3]["inputs"].append({"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 4})
    n[3]["widgets_values"][2] = 999
    n[2]["outputs"][0]["links"] = [2, 4]
    wf["links"].append([4, 2, 0, 3, 3, "INT"])
    wf["last_link_id"] = 4
    assert validate_ui_workflow(wf, INFO) == []
    # an IMAGE into the INT widget socket is a type error
    n[1]["outputs"][0]["links"] = [1, 4]
    n[2]["outputs"][0]["links"] = [2]
    wf["links"][-1] = [4, 1, 0, 3, 3, "IMAGE"]
    errors = validate_ui_workflow(wf, INFO)
    assert len(errors) == 1 and "goes to input 'steps' of node 3 (ToySampler), which takes INT" in errors[0]


def test_wildcard_and_type_list_inputs():
    wf = toy_ui()
    n = nodes_by_id(wf)
    # MASK into "IMAGE,MASK", MASK into "*"
    n[1]["outputs"][0]["links"] = []
    n[1]["outputs"][1]["links"] = [1, 4]
    wf["links"][0] = [1, 1, 1, 3, 0, "MASK"]
    n[3]["inputs"][2]["link"] = 4
    wf["links"].append([4, 1, 1, 3, 2, "MASK"])
    wf["last_link_id"] = 4
    assert validate_ui_workflow(wf, INFO) == []


def test_stale_socket_types_are_reported():
    wf = toy_ui()
    nodes_by_id(wf)[3]["outputs"][1]["type"] = "FLOAT"
    nodes_by_id(wf)[4]["inputs"].append({"name": "foo", "type": "IMAGE", "link": None})
    errors = validate_ui_workflow(wf, INFO)
    assert "node 3 (ToySampler): output 1 has type FLOAT, the node defines INT" in errors
    assert "node 4 (PreviewImage): has an input socket 'foo' that the node does not define" in errors
    assert len(errors) == 2


# ---------------------------------------------------------------------------------------------
# API format


def talking_video_api():
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "lanczos",
                                                      "width": 512, "height": 512, "crop": "center"}},
        "4": {"class_type": "LoadAudio", "inputs": {"audio": "speech.wav"}},
        "5": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "audio": ["4", 0], "fps": 25.0}},
        "6": {"class_type": "SaveVideo", "inputs": {"video": ["5", 0], "filename_prefix": "video/Playmate",
                                                     "format": "auto", "codec": "auto"},
              "_meta": {"title": "Save Video"}},
    }


def test_valid_api_workflow_passes():
    assert validate_api_workflow(talking_video_api(), INFO) == []


@pytest.mark.parametrize("change, expected", [
    (lambda p: p["2"]["inputs"].update(upscale_method="cubic"),
     "node 2 (ImageScale): input 'upscale_method': 'cubic' is not one of"),
    (lambda p: p["2"]["inputs"].update(width=-1),
     "node 2 (ImageScale): input 'width': -1 is below the minimum 0"),
    (lambda p: p["5"]["inputs"].update(fps="25"),
     "node 5 (CreateVideo): input 'fps': expected a number, got '25'"),
    (lambda p: p["5"]["inputs"].update(audio=["1", 1]),
     "node 5 (CreateVideo): input 'audio' takes AUDIO but is linked to MASK output 1 of node 1 (LoadImage)"),
    (lambda p: p["5"]["inputs"].update(images=["3", 0]),
     "node 5 (CreateVideo): input 'images' links to node 3, which does not exist"),
    (lambda p: p["5"]["inputs"].update(images=["2", 1]),
     "node 5 (CreateVideo): input 'images' links to output 1 of node 2 (ImageScale), which has 1 outputs"),
    (lambda p: p["6"]["inputs"].pop("video"),
     "node 6 (SaveVideo): required input 'video' is missing"),
    (lambda p: p["2"]["inputs"].update(scale=2),
     "node 2 (ImageScale): 'scale' is not an input of this node"),
    (lambda p: p.update({"7": {"class_type": "PlaymateNoSuchNode", "inputs": {}}}),
     "node 7 (PlaymateNoSuchNode): unknown node type"),
    (lambda p: p.pop("6"),
     "the prompt has no output node (e.g. SaveVideo, SaveImage, PreviewImage)"),
    (lambda p: p["2"]["inputs"].update(image=["5", 0]),
     "the links form a cycle through node"),
])
def test_api_errors(change, expected):
    prompt = copy.deepcopy(talking_video_api())
    change(prompt)
    errors = validate_api_workflow(prompt, INFO)
    assert any(e.startswith(expected) for e in errors), errors
    assert len(errors) <= 2, errors  # the cycle case also mistypes a link


def test_api_wildcard_and_type_list():
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "2": {"class_type": "ToyCount", "inputs": {}},
        "3": {"class_type": "ToySampler", "inputs": {"image": ["1", 1], "seed": 3, "steps": 4, "frames": ["2", 0],
                                                      "mode": "b", "anything": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    assert validate_api_workflow(prompt, INFO) == []
    prompt["3"]["inputs"]["frames"] = 5  # forceInput still accepts a constant in API format
    assert validate_api_workflow(prompt, INFO) == []
    prompt["3"]["inputs"]["image"] = 5
    assert validate_api_workflow(prompt, INFO) == [
        "node 3 (ToySampler): input 'image': a IMAGE,MASK input takes a link, not the value 5"]
