"""The search-space language of sklcifar.search.space: built-in space, user spaces from
TOML, JSON and Python functions, their errors, and suggestions."""

from __future__ import annotations

import json
import sys

import optuna
import pytest
from optuna.distributions import IntDistribution

from sklcifar.pipelines import make_pipeline
from sklcifar.search import (
    BUILTIN_SPACE,
    SEARCH_SPACES,
    Param,
    SpaceError,
    default_trial,
    describe_space,
    load_space,
    parse_space,
    suggest_params,
)

USER_TOML = """
[convnet]
depth = {int = [2, 3]}
dropout_placement = {choices = ["none", "dense"]}
dense_dropout = {float = [0.1, 0.5], when = {dropout_placement = ["dense"]}}
learning_rate = {float = [1e-4, 1e-2], log = true}
"""


def test_describe_space_lists_every_parameter_once():
    text = describe_space()
    for param in SEARCH_SPACES["convnet"]:
        assert sum(line.split()[0] == param.name for line in text.splitlines()) == 1
    assert "seed_learning_rate float 0.0001..0.01 (log scale)  if training in seed" in text
    assert "-> learning_rate" in text
    every = describe_space(list(SEARCH_SPACES))
    assert every.startswith("classifier") and "int 8..20 step 6" in every
    searched, fixed = describe_space(fixed={"depth": 3}).split("fixed:")
    assert " depth " not in searched and "depth" in fixed
    # Fixing an estimator parameter drops every searched name that sets it.
    searched = describe_space(fixed={"learning_rate": 0.01}).split("fixed:")[0]
    assert "learning_rate" not in searched


def test_residual_families_search_the_seed_questions_they_have():
    every = describe_space(["convnet", "fastnet", "resnet"])  # one study compares them
    for family in ("fastnet", "resnet"):
        names = {param.name for param in SEARCH_SPACES[family]}
        assert {"kernel_order", "dropout", "weight_decay"} <= names
        trial = optuna.trial.FixedTrial({"kernel_order": "decreasing", "dropout": 0.2, "depth": 8})
        fixed = {"width": 4, "learning_rate": 0.1, "batch_size": 128, "weight_decay": 1e-4}
        _, params = suggest_params(trial, [family], fixed=fixed)
        clf = make_pipeline(family, **params).named_steps["classifier"]
        assert (clf.kernel_order, clf.dropout) == ("decreasing", 0.2)
    assert "resnet:\n  depth              int 8..20 step 6" in every
    assert every.count("kernel_order       one of constant, increasing, decreasing") == 3


def test_the_builtin_space_is_a_definition_like_any_other():
    assert load_space(BUILTIN_SPACE) == json.loads(json.dumps(BUILTIN_SPACE))
    assert parse_space(BUILTIN_SPACE) == SEARCH_SPACES
    training = next(p for p in SEARCH_SPACES["convnet"] if p.name == "training")
    assert set(training.distribution.choices) == {"seed", "fast"}


@pytest.mark.parametrize(
    ("families", "fixed", "match"),
    [
        (("resnet50",), {}, "cannot be searched"),
        (("convnet", "convnet"), {}, "distinct"),
        (("convnet",), {"no_such_param": 1}, "not parameters of the 'convnet'"),
        (("convnet",), {"epochs": 3}, "set by the search itself"),
    ],
)
def test_space_rejects_unknown_families_and_parameters(families, fixed, match):
    with pytest.raises(ValueError, match=match):
        describe_space(families, fixed)


def test_space_rejects_one_name_with_two_kinds_of_distribution(monkeypatch):
    monkeypatch.setitem(SEARCH_SPACES, "fastnet", (Param("width", IntDistribution(8, 32)),))
    with pytest.raises(ValueError, match="one kind of distribution per name"):
        describe_space(["fastnet", "resnet"])
    describe_space(["fastnet", "resnet"], fixed={"width": 16})  # fixed, it is not searched


def test_suggest_params_follow_conditions_and_targets():
    trial = optuna.trial.FixedTrial(
        {
            "training": "seed",
            "depth": 4,
            "kernel_order": "decreasing",
            "dropout_placement": "conv",
            "conv_dropout": 0.3,
            "l2_placement": "none",
            "seed_learning_rate": 1e-3,
            "seed_batch_size": 64,
            "noise_fraction": 0.02,
        }
    )
    family, params = suggest_params(trial, fixed={"filters": 8})
    assert family == "convnet"
    # Dense dropout, L2 strength and the fast recipe's ranges are not suggested here.
    assert "dense_dropout" not in params and "l2" not in params
    assert "weight_decay" not in params
    assert params["learning_rate"] == 1e-3 and params["batch_size"] == 64
    assert params["conv_dropout"] == 0.3 and params["filters"] == 8
    estimator_params = {k: v for k, v in params.items() if k != "noise_fraction"}
    clf = make_pipeline(family).named_steps["classifier"].set_params(**estimator_params)
    assert clf.resolved_architecture()["kernel_order"] == "decreasing"


def test_user_space_from_toml_json_and_a_function(tmp_path, monkeypatch):
    toml = tmp_path / "space.toml"
    toml.write_text(USER_TOML)
    definition = load_space(toml)
    (tmp_path / "space.json").write_text(json.dumps(definition))
    assert load_space(tmp_path / "space.json") == definition
    (tmp_path / "my_space.py").write_text(f"def space():\n    return {definition!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_space("my_space:space") == definition
    sys.modules.pop("my_space", None)
    text = describe_space(space=parse_space(definition))
    assert text.splitlines() == [
        "convnet:",
        "  depth              int 2..3",
        "  dropout_placement  one of none, dense",
        "  dense_dropout      float 0.1..0.5  if dropout_placement in dense",
        "  learning_rate      float 0.0001..0.01 (log scale)",
    ]


@pytest.mark.parametrize(
    ("definition", "match"),
    [
        ({}, "must map classifier families"),
        ({"vgg": {"depth": {"int": [1, 2]}}}, "'vgg' is not a classifier family"),
        ({"convnet": {"depth": 3}}, r"convnet.depth must be a table"),
        ({"convnet": {"depth": {"int": [1, 2], "float": [1, 2]}}}, "exactly one of"),
        ({"convnet": {"depth": {"range": [1, 2]}}}, "exactly one of"),
        ({"convnet": {"depth": {"int": [5, 2]}}}, r"convnet.depth: .*low"),
        ({"convnet": {"depth": {"int": [1.5, 2]}}}, "bounds must be int numbers"),
        ({"convnet": {"l2": {"float": [0, 1], "log": True}}}, r"convnet.l2: .*low"),
        ({"convnet": {"kernel_order": {"choices": []}}}, "non-empty list"),
        ({"convnet": {"l2": {"float": [0, 1], "when": {"l2_placement": ["all"]}}}}, "listed"),
        ({"convnet": {"lr": {"float": [0.1, 1]}}}, "'lr', which is not a parameter"),
        ({"convnet": {"x": {"int": [1, 2], "sets": "epochs"}}}, "the search sets itself"),
    ],
)
def test_bad_space_definitions_say_where_and_why(definition, match):
    with pytest.raises(SpaceError, match=match):
        parse_space(definition)


def test_bad_space_sources(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[convnet\n")
    with pytest.raises(SpaceError, match="is not valid"):
        load_space(tmp_path / "bad.toml")
    with pytest.raises(SpaceError, match="cannot call 'nope'"):
        load_space("json:nope")
    with pytest.raises(SpaceError, match="expected a .toml or .json file"):
        load_space("space.yaml")


def test_default_trial_is_the_default_classifier_in_the_space():
    start = default_trial(["convnet", "fastnet"])
    assert start == {
        "classifier": "fastnet",
        "fastnet_width": "auto",
        "kernel_order": "constant",
        "dropout": 0.0,
        "fast_learning_rate": 0.2,
        "fast_batch_size": 128,
        "weight_decay": 0.0005,
    }
    assert "classifier" not in default_trial(["fastnet"])
    # A fixed parameter is not searched, so the default trial leaves it out.
    searched = default_trial(["fastnet"], fixed={"width": 8})
    assert "width" not in searched and "fastnet_width" not in searched


def test_no_default_trial_outside_the_space():
    assert default_trial(["convnet"]) is None  # the default family is not searched
    narrow = parse_space({"fastnet": {"width": {"choices": [8, 32]}}})
    assert default_trial(["fastnet"], space=narrow) is None
