"""The model registry: names, descriptors, keyword-only entry points and clear errors."""

import pytest
from torch import nn

from layers.registry import _REGISTRY
from repro import build_model, get_descriptor, list_models, register_model

PAPER_ROWS = {"bicubic", "srcnn", "vdsr", "swinir", "hat", "mambair", "mambairv2", "diffir", "diffrwkvir"}


def test_every_table3_row_and_variant_is_registered():
    names = set(list_models())
    assert PAPER_ROWS <= names
    assert {"swinir_light", "hat_s", "mambair_light", "mambairv2_light", "diffir_s1", "diffir_inpaint",
            "diffrwkvir_s1", "diffrwkvir_inpaint"} <= names
    assert set(list_models(task="inpaint")) == {n for n in names if "inpaint" in n}
    assert list_models("mambair*") == ["mambair", "mambair_light", "mambairv2", "mambairv2_light"]


def test_descriptor_carries_the_scale_and_is_attached():
    assert get_descriptor("swinir", scale=2).scale == 2 and get_descriptor("swinir").scale == 4
    model = build_model("srcnn", scale=3)
    assert model.descriptor.scale == 3 and model.descriptor.name == "srcnn"
    assert get_descriptor("diffrwkvir").stage == 2 and get_descriptor("diffrwkvir_s1").stage == 1


def test_errors_name_the_problem():
    with pytest.raises(KeyError, match="unknown model 'swinnir'"):
        build_model("swinnir")
    with pytest.raises(ValueError, match=r"supports scales \(2, 3, 4\), not 8"):
        build_model("swinir", scale=8)
    with pytest.raises(TypeError, match="keyword-only"):
        register_model(name="_positional", family="x")(lambda scale=4: nn.Identity())
    with pytest.raises(ValueError, match="task must be"):
        register_model(name="_bad_task", family="x", task="denoise")


def test_a_name_cannot_be_registered_twice():
    def first(*, scale: int = 4) -> nn.Module:
        return nn.Identity()

    def second(*, scale: int = 4) -> nn.Module:
        return nn.Identity()

    register_model(name="_twice", family="x")(first)
    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_model(name="_twice", family="x")(second)
    finally:
        del _REGISTRY["_twice"]
