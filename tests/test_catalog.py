import json
from importlib import resources
from pathlib import Path

import pytest

from hiapi_notebook import catalog
from hiapi_notebook.catalog import CatalogError, estimate_cost, get_model, validate_input


def test_shipped_data_is_the_shared_catalogue():
    shipped = resources.files("hiapi_notebook").joinpath("data/models.json").read_text("utf-8")
    shared = Path(__file__).resolve().parents[2] / "shared" / "hiapi-models.json"
    if shared.exists():  # the shared folder sits beside the checkout on the project's machines
        assert json.loads(shipped) == json.loads(shared.read_text("utf-8"))


def test_model_specs_load_with_prompt_first():
    spec = get_model("seedance-2-0")
    assert spec.kind == "video"
    assert list(spec.fields)[0] == "prompt"
    assert spec.fields["prompt"].required
    duration = spec.fields["duration"]
    assert (duration.type, duration.default, duration.min, duration.max) == ("integer", 5, 4, 15)
    assert spec.fields["resolution"].enum == ["480p", "720p", "1080p"]
    assert spec.fields["reference_image_urls"].type == "string[]"


def test_outputs_come_from_the_catalogue_or_the_kind():
    assert get_model("happyhorse-1-0").outputs == ["video", "first_frame"]
    assert get_model("veo-3.1-fast/text-to-video").outputs == ["video", "first_frame"]
    assert get_model("Nano-Banana").outputs == ["image"]
    assert get_model("lyria-3.5").outputs == ["audio"]


def test_route_suffix_is_stripped_and_usable_routes_listed():
    spec = get_model("gpt-image-2/text-to-image@ext")
    assert spec.name == "gpt-image-2/text-to-image"
    assert spec.routes == ["default", "beta", "ext"]  # "pro" is retired
    assert get_model("gpt-image-2.5-flare@pro").name == "gpt-image-2.5-flare@pro"
    assert get_model("no-such-model") is None


def test_model_names_by_kind_current_before_legacy():
    names = catalog.model_names()
    assert names == [m.name for m in catalog.all_models()]
    assert "gpt-image-2/text-to-image" in names
    assert names.index("gpt-image-2/text-to-image") < names.index("gpt-image-2")  # legacy last
    assert "seedance-2-0" in catalog.model_names("video")
    assert "seedance-2-0" not in catalog.model_names("image")
    assert set(catalog.model_names("audio")) >= {"minimax-music-2.6", "lyria-3.5"}
    assert "grok-imagine/text-to-image" not in names  # seen only in third-party code
    assert get_model("grok-imagine/text-to-image").confirmed is False


def test_a_valid_input_passes():
    validate_input(
        "seedance-2-0",
        {
            "prompt": "a cyan glass data center",
            "duration": 8,
            "resolution": "1080p",
            "generate_audio": True,
            "reference_image_urls": "https://example.com/a.png",
        },
    )


def test_enum_error_names_the_field_and_lists_allowed_values():
    with pytest.raises(CatalogError) as caught:
        validate_input("gpt-image-2/text-to-image", {"prompt": "x", "aspect_ratio": "7:3"})
    assert caught.value.field == "aspect_ratio"
    assert str(caught.value).startswith("invalid input.aspect_ratio '7:3': allowed values are auto, 1:1, 3:2")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "input, field, words",
    [
        ({"prompt": "abcd", "duration": 20}, "duration", "20 is out of range: allowed 4 to 15"),
        ({"prompt": "abcd", "duration": "5"}, "duration", "must be an integer"),
        ({"prompt": "abcd", "duration": True}, "duration", "must be an integer"),
        ({"prompt": "abcd", "generate_audio": "yes"}, "generate_audio", "true or false"),
        ({"prompt": "ab"}, "prompt", "has 2 characters: allowed at least 3"),
        ({"prompt": "x" * 20001}, "prompt", "allowed at most 20000"),
        ({"prompt": "abcd", "reference_image_urls": [1]}, "reference_image_urls", "list of strings"),
        ({}, "prompt", "input.prompt is required for seedance-2-0"),
        ({"prompt": "   "}, "prompt", "is required"),
        ({"prompt": "abcd", "callback_url": "https://x"}, "callback_url", "not allowed"),
        ({"prompt": "abcd", "asepct_ratio": "16:9"}, "asepct_ratio", "did you mean aspect_ratio?"),
    ],
)
def test_validation_errors(input, field, words):
    with pytest.raises(CatalogError) as caught:
        validate_input("seedance-2-0", input)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_list_length_is_checked():
    with pytest.raises(CatalogError, match="has 9 items: allowed at most 8 items"):
        validate_input("Nano-Banana-Pro", {"prompt": "x", "image_input": ["u"] * 9})


def test_every_callback_field_is_refused_even_for_unknown_models():
    for name in catalog.CALLBACK_FIELDS:
        with pytest.raises(CatalogError, match=f"input.{name} is not allowed"):
            validate_input("not-in-the-catalogue", {"prompt": "x", name: "https://x"})


def test_leniency_where_the_catalogue_is_vague():
    validate_input("not-in-the-catalogue", {"anything": 1})  # the server decides
    validate_input("seedance-2-0", {"prompt": "abcd", "camera_motion": "pan"})  # not a typo
    validate_input(
        "veo-3.1-fast/text-to-video",  # an enum without its list, a default
        {"prompt": "x", "duration": 6},
    )
    validate_input("seedream-5.0-pro/text-to-image", {"prompt": "a cat"})  # required w/ default
    validate_input("seedance-2.5/reference-to-video", {"duration": -1})  # also_accepts
    validate_input("flux-1.1-pro", {"prompt": "x", "size": "1024x1024"})  # no schema known
    validate_input("gpt-image-2", {"prompt": "x", "seed": None})


def test_estimate_cost():
    assert estimate_cost("gpt-image-2.5-flare/text-to-image", {"prompt": "x"}) == 0.05  # 1K default
    assert estimate_cost("gpt-image-2.5-flare/text-to-image", {"resolution": "4K"}) == 0.12
    assert estimate_cost("gpt-image-2.5-flare@pro", {"quality": "high"}) == 0.1829
    assert estimate_cost("gpt-image-2.5-flare@pro", {}) == 0.0672  # medium by default
    assert estimate_cost("seedream-5.0-pro/text-to-image", {"quality": "high"}) == 0.1
    assert estimate_cost("flux-1.1-pro", {}) == 0.05
    assert estimate_cost("minimax-music-2.6", {"prompt": "x"}) == 0.21
    assert estimate_cost("seedance-2.0-fast", {"resolution": "720p", "duration": 10}) == 1.772
    assert estimate_cost("qwen-audio-3.0-tts-plus", {"text": "a" * 2500}) == 0.1
    assert estimate_cost("851-labs/background-remover", {"image_url": "u"}) == 0.002


def test_estimate_cost_is_none_when_not_computable():
    assert estimate_cost("seedance-2.0-fast", {"prompt": "no duration or resolution"}) is None
    assert estimate_cost("gpt-image-2/text-to-image", {"prompt": "x"}) is None  # a note only
    assert estimate_cost("minimax-music-3", {"prompt": "x"}) is None
    assert estimate_cost("no-such-model", {}) is None


def test_suggest_model():
    assert catalog.suggest_model("nano-banana") == "Nano-Banana"
    assert catalog.suggest_model("gpt-imag-2") == "gpt-image-2"
    assert catalog.suggest_model("seedance-2.0-fsat") == "seedance-2.0-fast"
    assert catalog.suggest_model("zzzzzzzz") is None
