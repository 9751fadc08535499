"""Each seed-study preset is the one change from its predecessor that the report describes.

docs/user_guide/presets.md and benchmarks/RESULTS.md ("Seed study") list these steps and
the presets that are not single steps (m2, m3 and m12); this keeps them true.
"""

import pytest

from sklcifar.architectures import CONVNET_PRESETS

# (preset, the preset it changes, the parameters that differ)
STEPS = [
    ("m4", "m2", {"kernel_order"}),
    ("m5", "m4", {"kernel_order"}),
    ("m6", "m4", {"dropout_placement", "dense_dropout"}),
    ("m7", "m6", {"dropout_placement", "conv_dropout"}),
    ("m8", "m4", {"l2_placement", "l2"}),
    ("m9", "m4", {"l2_placement", "l2"}),
    ("m10", "m7", {"l2_placement", "l2"}),
    ("m11", "m7", {"dropout_placement", "l2_placement", "l2"}),
    ("m7_nbn", "m7", {"batch_norm"}),
]


def _differing(a: dict, b: dict) -> set[str]:
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


@pytest.mark.parametrize(("preset", "before", "change"), STEPS, ids=[s[0] for s in STEPS])
def test_preset_differs_from_its_predecessor_by_one_design_choice(preset, before, change):
    assert _differing(CONVNET_PRESETS[preset], CONVNET_PRESETS[before]) == change


def test_kernel_orders_of_the_kernel_experiment():
    assert CONVNET_PRESETS["m2"]["kernel_order"] == "constant"
    assert CONVNET_PRESETS["m4"]["kernel_order"] == "increasing"
    assert CONVNET_PRESETS["m5"]["kernel_order"] == "decreasing"


def test_depth_experiment_adds_blocks_to_m1():
    assert [CONVNET_PRESETS[name]["depth"] for name in ("m1", "m2", "m3")] == [3, 4, 5]
