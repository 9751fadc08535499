"""The search-space language: searched parameters, their conditions, and how a trial
suggests them.

A space definition is a mapping from classifier family (a name in
``sklcifar.pipelines.CLASSIFIERS``) to its searched parameters, each a mapping with one
of the keys ``int``, ``float`` (``[low, high]``) or ``choices`` (a list), and optionally
``log`` (true for a log scale), ``step``, ``when`` (``{other: [values]}``: suggest only
when the parameter ``other``, listed earlier, took one of the values) and ``sets`` (the
estimator parameter the value goes to, when the searched name differs, e.g. two learning
rate ranges for two recipes). The name ``noise_fraction`` sets a ``PixelNoise`` step in
front of the classifier (0: no step), so the pipeline's noise strength can be searched.

The same definition can come from a TOML or JSON file or from a Python function
(``load_space``). ``BUILTIN_SPACE`` is the package's own definition.

Examples
--------
>>> from sklcifar.search.space import parse_space
>>> space = parse_space({"convnet": {"depth": {"int": [2, 3]}}})
>>> print(space["convnet"][0].describe())
depth              int 2..3
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.trial import Trial

from ..architectures import DROPOUT_PLACEMENTS, KERNEL_ORDERS, L2_PLACEMENTS
from ..pipelines import CLASSIFIERS

#: A searched name that is no estimator parameter: the fraction of a PixelNoise step
#: placed in front of the classifier (0 means no noise step).
NOISE_FRACTION = "noise_fraction"


@dataclass(frozen=True)
class Param:
    """One searched parameter and its Optuna distribution.

    Parameters
    ----------
    name : str
        The name Optuna records (the trial's params).
    distribution : optuna.distributions.BaseDistribution
        Int, float (``log=True`` for a log scale) or categorical.
    when : (str, tuple) or None
        ``(other, values)``: suggest only when the parameter ``other``, listed earlier,
        took one of ``values`` (e.g. a dropout rate only where dropout is placed).
    sets : str or None
        The estimator parameter that receives the value; None means ``name``.

    Examples
    --------
    >>> from optuna.distributions import FloatDistribution
    >>> rate = Param("fast_learning_rate", FloatDistribution(0.02, 0.5), sets="learning_rate")
    >>> rate.target
    'learning_rate'
    """

    name: str
    distribution: BaseDistribution
    when: tuple[str, tuple] | None = None
    sets: str | None = None

    @property
    def target(self) -> str:
        """The estimator parameter (or ``noise_fraction``) this value goes to."""
        return self.sets or self.name

    def suggest(self, trial: Trial) -> Any:
        """Ask ``trial`` for a value (the stored one when the trial is a retry)."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            return trial.suggest_categorical(self.name, dist.choices)
        if isinstance(dist, IntDistribution):
            return trial.suggest_int(self.name, dist.low, dist.high, step=dist.step, log=dist.log)
        return trial.suggest_float(self.name, dist.low, dist.high, step=dist.step, log=dist.log)

    def describe(self) -> str:
        """One line: name, range or choices, the condition and the target."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            text = "one of " + ", ".join(map(str, dist.choices))
        else:
            kind = "int" if isinstance(dist, IntDistribution) else "float"
            text = f"{kind} {dist.low:g}..{dist.high:g}"
            if dist.step not in (None, 1):
                text += f" step {dist.step:g}"
            if dist.log:
                text += " (log scale)"
        if self.when is not None:
            text += f"  if {self.when[0]} in {', '.join(map(str, self.when[1]))}"
        if self.sets is not None:
            text += f"  -> {self.sets}"
        return f"{self.name:<18} {text}"


# The seed study's design questions as ConvNetClassifier parameters: depth from m1 (3
# blocks) to m12 (5), kernel order (m4 against m5), where dropout goes and how strong it
# is (m6-m12), where L2 goes and how strong it is (m8-m11); the training recipe (the
# seed's Adam or the fast one) with a learning-rate and batch range for each.
_SEED_TRAINING = {
    "seed_learning_rate": {
        "float": [1e-4, 1e-2],
        "log": True,
        "when": {"training": ["seed"]},
        "sets": "learning_rate",
    },
    "seed_batch_size": {
        "int": [32, 128],
        "log": True,
        "when": {"training": ["seed"]},
        "sets": "batch_size",
    },
}
# The fast recipe (Nesterov SGD, warm-up then linear decay, decoupled weight decay), around
# its learning rate 0.2 and batch 128.
_FAST_TRAINING = {
    "fast_learning_rate": {"float": [0.02, 0.5], "log": True, "sets": "learning_rate"},
    "fast_batch_size": {"int": [64, 512], "log": True, "sets": "batch_size"},
    "weight_decay": {"float": [1e-5, 1e-3], "log": True},
}
_WIDTH = {"width": {"choices": [8, 16, 32]}}
# FastNet's default, "auto", is 16 in trials (trained for epochs) and chosen by the budget
# in a refit for minutes (FastNetClassifier): in the space, the default trial can be run.
# Its own name, since one study has one distribution per name and ResNet has no "auto".
_FASTNET_WIDTH = {"fastnet_width": {"choices": ["auto", 8, 16, 32], "sets": "width"}}
# The residual families answer the seed's questions where they have them, under the same
# names as the convnet family: depth (ResNet), kernel order (per stage), dropout (one
# rate, before the head); their L2 is the fast recipe's decoupled weight_decay.
_RESIDUAL_DESIGN = {
    "kernel_order": {"choices": list(KERNEL_ORDERS)},
    "dropout": {"float": [0.0, 0.5]},
}

#: The package's search space, in the language ``parse_space`` reads.
BUILTIN_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "convnet": {
        "training": {"choices": ["fast", "seed"]},
        "depth": {"int": [3, 5]},
        "kernel_order": {"choices": list(KERNEL_ORDERS)},
        "dropout_placement": {"choices": list(DROPOUT_PLACEMENTS)},
        "conv_dropout": {"float": [0.1, 0.5], "when": {"dropout_placement": ["conv", "all"]}},
        "dense_dropout": {"float": [0.1, 0.6], "when": {"dropout_placement": ["dense", "all"]}},
        "l2_placement": {"choices": list(L2_PLACEMENTS)},
        "l2": {"float": [1e-6, 1e-2], "log": True, "when": {"l2_placement": ["dense", "all"]}},
        **_SEED_TRAINING,
        **{name: {**spec, "when": {"training": ["fast"]}} for name, spec in _FAST_TRAINING.items()},
        NOISE_FRACTION: {"float": [0.0, 0.06]},
    },
    "fastnet": {**_FASTNET_WIDTH, **_RESIDUAL_DESIGN, **_FAST_TRAINING},
    "resnet": {
        "depth": {"int": [8, 20], "step": 6},
        **_WIDTH,
        **_RESIDUAL_DESIGN,
        **_FAST_TRAINING,
    },
}

# Set by the search itself for every trial, so not searchable or fixable.
_RESERVED = ("epochs", "random_state", "callbacks", "verbose")
_KINDS = ("int", "float", "choices")
_KEYS = (*_KINDS, "log", "step", "when", "sets")


class SpaceError(ValueError):
    """A search-space definition that cannot be read; the message says where and why.

    Examples
    --------
    >>> try:
    ...     parse_space({"convnet": {"depth": {"int": [5, 2]}}})
    ... except SpaceError as error:
    ...     print(str(error).split(":")[1].strip())
    convnet.depth
    """


def _parameters(family: str) -> list[str]:
    """What a search may set for ``family``: its estimator parameters and the noise step."""
    return [*CLASSIFIERS[family]().get_params(deep=False), NOISE_FRACTION]


def _parse_param(family: str, name: str, spec, earlier: dict[str, Param]) -> Param:
    where = f"search space: {family}.{name}"
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"{where} must be a table such as {{int = [1, 3]}}, {{float = [0.1, 0.5]}} or "
            f"{{choices = ['a', 'b']}}; got {spec!r}."
        )
    unknown = sorted(set(spec) - set(_KEYS))
    kinds = [k for k in _KINDS if k in spec]
    if unknown or len(kinds) != 1:
        raise SpaceError(
            f"{where} needs exactly one of {', '.join(_KINDS)} and may add "
            f"log, step, when, sets; got keys {sorted(spec)}."
        )
    kind = kinds[0]
    value = spec[kind]
    try:
        if kind == "choices":
            if not isinstance(value, Sequence) or isinstance(value, str) or not value:
                raise ValueError(f"choices must be a non-empty list; got {value!r}")
            if "log" in spec or "step" in spec:
                raise ValueError("log and step apply to int and float ranges, not choices")
            dist: BaseDistribution = CategoricalDistribution(tuple(value))
        else:
            if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
                raise ValueError(f"{kind} takes [low, high]; got {value!r}")
            cls = IntDistribution if kind == "int" else FloatDistribution
            number = int if kind == "int" else (int, float)
            if not all(isinstance(v, number) and not isinstance(v, bool) for v in value):
                raise ValueError(f"{kind} bounds must be {kind} numbers; got {value!r}")
            dist = cls(
                value[0],
                value[1],
                log=bool(spec.get("log", False)),
                step=spec.get("step", 1 if kind == "int" else None),
            )
    except ValueError as error:  # Optuna's own checks: low <= high, log needs low > 0, ...
        raise SpaceError(f"{where}: {error}.") from None
    when = spec.get("when")
    if when is not None:
        if not isinstance(when, Mapping) or len(when) != 1:
            raise SpaceError(f"{where}: when must be one {{other = [values]}}; got {when!r}.")
        ((other, values),) = when.items()
        if other not in earlier:
            raise SpaceError(
                f"{where}: when names {other!r}, which is not a parameter listed before it "
                f"in {family!r} (listed: {sorted(earlier)})."
            )
        if isinstance(values, str) or not isinstance(values, Sequence):
            values = [values]
        when = (other, tuple(values))
    sets = spec.get("sets")
    if sets is not None and not (isinstance(sets, str) and sets.isidentifier()):
        raise SpaceError(f"{where}: sets must name an estimator parameter; got {sets!r}.")
    return Param(name, dist, when=when, sets=sets)


def parse_space(definition: Mapping) -> dict[str, tuple[Param, ...]]:
    """Read a search-space definition (see the module docs) into each family's ``Param`` tuple.

    Raises
    ------
    SpaceError
        Naming the family and parameter at fault and what is expected.
    """
    if not isinstance(definition, Mapping) or not definition:
        raise SpaceError(
            "a search space must map classifier families to their parameters, e.g. "
            f"{{'convnet': {{'depth': {{'int': [3, 5]}}}}}}; got {definition!r}."
        )
    spaces = {}
    for family, params in definition.items():
        if family not in CLASSIFIERS:
            raise SpaceError(
                f"search space: {family!r} is not a classifier family; families are "
                f"{sorted(CLASSIFIERS)}."
            )
        if not isinstance(params, Mapping):
            raise SpaceError(f"search space: {family} must be a table of parameters.")
        valid = set(_parameters(family))
        parsed: dict[str, Param] = {}
        for name, spec in params.items():
            param = _parse_param(family, name, spec, parsed)
            if param.target in _RESERVED or param.target not in valid:
                raise SpaceError(
                    f"search space: {family}.{name} sets {param.target!r}, which "
                    + (
                        "the search sets itself."
                        if param.target in _RESERVED
                        else f"is not a parameter of {CLASSIFIERS[family].__name__} "
                        f"(valid: {sorted(valid - set(_RESERVED))})."
                    )
                )
            parsed[name] = param
        spaces[family] = tuple(parsed.values())
    return spaces


def load_space(source: str | Path | Mapping) -> dict[str, dict[str, dict[str, Any]]]:
    """A space definition from a ``.toml`` or ``.json`` file, a ``"module:function"``
    returning one, or a mapping; checked with ``parse_space``.

    Raises
    ------
    SpaceError
        For a missing or unreadable file, a function that cannot be imported, or an
        invalid definition.
    """
    if isinstance(source, Mapping):
        definition = source
    else:
        text = str(source)
        path = Path(text)
        if path.suffix in (".toml", ".json"):
            if not path.is_file():
                raise SpaceError(f"search space file {text!r} does not exist.")
            try:
                if path.suffix == ".toml":
                    try:
                        import tomllib
                    except ModuleNotFoundError:  # Python 3.10
                        import tomli as tomllib
                    definition = tomllib.loads(path.read_text())
                else:
                    definition = json.loads(path.read_text())
            except ValueError as error:  # TOMLDecodeError and JSONDecodeError
                raise SpaceError(f"search space file {text!r} is not valid: {error}") from None
        elif ":" in text:
            module, _, function = text.partition(":")
            try:
                definition = getattr(importlib.import_module(module), function)()
            except (ImportError, AttributeError) as error:
                raise SpaceError(
                    f"search space {text!r}: cannot call {function!r} of module {module!r} "
                    f"({error})."
                ) from None
        else:
            raise SpaceError(
                f"search space {text!r}: expected a .toml or .json file, or a Python function "
                "as 'module:function' returning a definition."
            )
    parse_space(definition)
    return json.loads(json.dumps(definition))  # plain data, as stored with the study


#: The built-in space, parsed: each family's searched parameters.
SEARCH_SPACES: dict[str, tuple[Param, ...]] = parse_space(BUILTIN_SPACE)
#: The seed study's design space (``SEARCH_SPACES["convnet"]``).
CONVNET_SPACE: tuple[Param, ...] = SEARCH_SPACES["convnet"]


def _resolve_space(
    families: Sequence[str],
    fixed: Mapping[str, Any],
    space: Mapping[str, tuple[Param, ...]] | None = None,
) -> dict[str, tuple[Param, ...]]:
    """Check families and fixed parameters; each family's searched parameters."""
    space = SEARCH_SPACES if space is None else space
    families = list(families)
    if not families or len(set(families)) != len(families):
        raise ValueError(f"families must be distinct family names; got {families!r}.")
    searchable = sorted(set(space) & set(CLASSIFIERS))
    unknown = [f for f in families if f not in searchable]
    if unknown:
        raise ValueError(
            f"families {unknown} cannot be searched: searchable families are {searchable} "
            "(a family needs a classifier in sklcifar.pipelines.CLASSIFIERS and an entry "
            "in the search space)."
        )
    reserved = sorted(set(fixed) & set(_RESERVED))
    if reserved:
        raise ValueError(f"{reserved} are set by the search itself and cannot be fixed.")
    # With several families a fixed parameter holds for the families that have it.
    valid = {family: set(_parameters(family)) for family in families}
    bad = sorted(set(fixed) - set().union(*valid.values()))
    if bad:
        owners = " or ".join(
            f"the {family!r} classifier ({CLASSIFIERS[family].__name__})" for family in families
        )
        raise ValueError(
            f"fixed parameters {bad} are not parameters of {owners}; valid names: "
            f"{sorted(set().union(*valid.values()))}."
        )
    spaces = {
        family: tuple(p for p in space[family] if p.target not in fixed) for family in families
    }
    seen: dict[str, tuple[str, BaseDistribution]] = {}
    for family, params in spaces.items():
        for param in params:
            other, dist = seen.setdefault(param.name, (family, param.distribution))
            try:
                check_distribution_compatibility(dist, param.distribution)
            except ValueError:
                raise ValueError(
                    f"{param.name!r} is searched as {dist} for {other!r} but as "
                    f"{param.distribution} for {family!r}; one study needs one kind of "
                    "distribution per name. Search these families separately, or fix "
                    f"{param.name!r} with a value."
                ) from None
    return spaces


def describe_space(
    families: Sequence[str] = ("convnet",),
    fixed: Mapping[str, Any] | None = None,
    space: Mapping[str, tuple[Param, ...]] | None = None,
) -> str:
    """The searched parameters of each family, one per line, as ``--show-space`` prints them.

    Parameters
    ----------
    families : sequence of str
        Classifier families to search (keys of the space).
    fixed : mapping or None
        Estimator parameters held at a value instead of searched.
    space : mapping or None
        Parsed space (``parse_space``); None for ``SEARCH_SPACES``.

    Returns
    -------
    text : str
    """
    fixed = dict(fixed or {})
    lines = []
    if len(families) > 1:
        lines.append(f"classifier           one of {', '.join(families)}")
    for family, params in _resolve_space(families, fixed, space).items():
        lines.append(f"{family}:")
        lines += [f"  {p.describe()}" for p in params]
    if fixed:
        lines.append("fixed:")
        lines += [f"  {name:<18} {value!r}" for name, value in sorted(fixed.items())]
    return "\n".join(lines)


#: The family of the package's default classifier (``pipelines.default_pipeline``).
DEFAULT_FAMILY = "fastnet"


def default_trial(
    families: Sequence[str] = ("convnet",),
    fixed: Mapping[str, Any] | None = None,
    space: Mapping[str, tuple[Param, ...]] | None = None,
) -> dict[str, Any] | None:
    """The trial parameters of the package's default classifier, if the space holds them.

    A search that tries the default first (``run_search`` enqueues it in a new study) ends
    with the default configuration or with one it judged better. None when the default
    family is not searched or a default value lies outside the space.

    Returns
    -------
    params : dict or None
        Under the names Optuna records, as ``suggest_params`` would suggest them.

    Examples
    --------
    >>> from sklcifar.search.space import default_trial
    >>> default_trial(["fastnet"])["fast_learning_rate"]
    0.2
    """
    fixed = dict(fixed or {})
    if DEFAULT_FAMILY not in families:
        return None
    classifier = CLASSIFIERS[DEFAULT_FAMILY]
    # None means "the recipe's value" for a training parameter.
    own = {name: value for name, value in classifier().get_params().items() if value is not None}
    settings = {**classifier.recipe, **own, **fixed}
    chosen: dict[str, Any] = {}
    for param in _resolve_space(families, fixed, space)[DEFAULT_FAMILY]:
        if param.when is not None:
            other = param.when[0]
            if chosen.get(other, settings.get(other)) not in param.when[1]:
                continue
        value = settings.get(param.target)
        try:
            inside = param.distribution._contains(param.distribution.to_internal_repr(value))
        except (TypeError, ValueError):
            inside = False
        if not inside:
            return None
        chosen[param.name] = value
    return chosen if len(families) == 1 else {"classifier": DEFAULT_FAMILY, **chosen}


def suggest_params(
    trial: Trial,
    families: Sequence[str] = ("convnet",),
    fixed: Mapping[str, Any] | None = None,
    space: Mapping[str, tuple[Param, ...]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Suggest a classifier family and its parameters for ``trial``.

    With several families the family is itself a categorical parameter, "classifier".

    Returns
    -------
    family : str
    params : dict
        Estimator parameters (and ``noise_fraction``): the suggested ones, under the
        names they set, and the ``fixed`` ones.
    """
    fixed = dict(fixed or {})
    spaces = _resolve_space(families, fixed, space)
    family = (
        families[0] if len(families) == 1 else trial.suggest_categorical("classifier", families)
    )
    params = {name: value for name, value in fixed.items() if name in _parameters(family)}
    suggested: dict[str, Any] = {}
    for param in spaces[family]:
        if param.when is not None:
            other = param.when[0]
            value = suggested.get(other, params.get(other))
            if value not in param.when[1]:
                continue
        suggested[param.name] = params[param.target] = param.suggest(trial)
    return family, params
