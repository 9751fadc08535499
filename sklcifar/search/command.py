"""``sklcifar search``: search, refit on the whole training split, test and report.

The subcommand shares the ``sklcifar`` command's argument types, KEY=VALUE syntax and
error handling (``sklcifar.cli``, which holds its help text); ``benchmarks/search.py``
runs it and adds the benchmark's comparisons. ``add_arguments`` declares the options,
``run_command`` runs them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import optuna
from sklearn.model_selection import StratifiedShuffleSplit

from ..cli import (
    UsageError,
    _add_force_argument,
    _add_source_arguments,
    _check_outputs,
    _fraction,
    _interactive,
    _key_value,
    _non_negative_int,
    _positive_int,
    _positive_number,
    _zero_or,
)
from ..datasets import default_source, load_cifar, stratified_subset
from ..files import atomic_path, atomic_write
from ..machine import describe_machine
from ..persistence import save_model
from ..perturbations import SEED_NOISE_FRACTION
from ..pipelines import CLASSIFIERS
from ..plots import plot_robustness, save_figure
from ..robustness import evaluate_robustness
from .fidelity import FIDELITIES, PRUNERS, describe_fidelity
from .report import (
    PLOTS,
    clean_and_noisy_accuracy,
    default_complete_trial,
    duel,
    estimated_refit_epochs,
    refit_best,
    refit_trial,
    standard_error,
    write_search_report,
)
from .space import BUILTIN_SPACE, _resolve_space, describe_space, load_space, parse_space
from .storage import check_storage_url, open_storage
from .study import run_search
from .trial import OBJECTIVES, check_fixed_values

# Sized for about 17 minutes on 2 CPU cores: 3 minutes of trials on a 4,000-image
# subset scored on 2,000 other images, a 12-minute refit on the whole training split,
# then the test evaluation (2 minutes more when a trial beat the default and the two
# duel on the whole split). The refit gets most of the time: trials this short only
# tell which configuration to refit, and the refit's length decides its accuracy.
DEFAULTS = {
    "families": "convnet,fastnet",
    "subset": 4000,
    "validation_images": 2000,
    "epochs": 6,
    "n_trials": 30,
    "timeout": 180.0,
    "refit_minutes": 12.0,
    "duel_seconds": 60.0,
    "output": "runs/search",
    "study_name": "sklcifar-search",
}


def _subset(text: str) -> int | None:
    return None if text == "all" else _positive_int(text)


_seconds_or_off = _zero_or(_positive_number, ("0", "0.0"), "positive seconds")


def _families(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the search options on ``parser``."""
    budget = parser.add_argument_group("budget")
    budget.add_argument(
        "--n-trials",
        type=_positive_int,
        default=DEFAULTS["n_trials"],
        metavar="N",
        help="finished trials the study should hold, all workers together (default %(default)s)",
    )
    budget.add_argument(
        "--timeout",
        type=_positive_number,
        default=DEFAULTS["timeout"],
        metavar="SECONDS",
        help="seconds of trials; no trial starts that would likely end later (default %(default)s)",
    )
    budget.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEFAULTS["epochs"],
        metavar="N",
        help="epochs of a trial that is never pruned (default %(default)s)",
    )
    budget.add_argument(
        "--fidelity",
        choices=FIDELITIES,
        default=FIDELITIES[0],
        help="what grows at the pruner's rungs: a trial's epochs and training images, or "
        "its epochs alone (default %(default)s)",
    )
    budget.add_argument(
        "--subset",
        type=_subset,
        default=DEFAULTS["subset"],
        metavar="N",
        help="stratified subset of the train split the trials use, or 'all' (default %(default)s)",
    )
    budget.add_argument(
        "--validation-images",
        type=_non_negative_int,
        default=DEFAULTS["validation_images"],
        metavar="N",
        help="stratified images of the train split, outside the subset, that score every "
        "trial; 0 holds out 10%% of the subset instead (default %(default)s)",
    )
    refit = budget.add_mutually_exclusive_group()
    refit.add_argument(
        "--refit-minutes",
        type=_positive_number,
        default=DEFAULTS["refit_minutes"],
        metavar="M",
        help="refit the best configuration on the whole train split in M minutes (its "
        "whole learning-rate schedule fits them: the classifiers' time_budget; "
        "default %(default)s)",
    )
    refit.add_argument(
        "--refit-epochs",
        type=_positive_int,
        metavar="N",
        help="refit for N epochs instead of --refit-minutes",
    )
    budget.add_argument(
        "--duel-seconds",
        type=_seconds_or_off,
        default=DEFAULTS["duel_seconds"],
        metavar="SECONDS",
        help="when a trial beat the default configuration, train both this long on the "
        "whole train split (less the validation images) and refit the challenger only if "
        "it wins there by more than a standard error; 0 refits the trials' choice "
        "(default %(default)s)",
    )
    budget.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seeds the subset, sampler and networks; give workers started "
        "together different seeds (default %(default)s)",
    )

    space = parser.add_argument_group("search space")
    space.add_argument(
        "--space",
        metavar="FILE|MODULE:FUNCTION",
        help="search space: a .toml or .json file, or a Python function returning a "
        "definition (default: the built-in space, sklcifar.search.space.BUILTIN_SPACE)",
    )
    space.add_argument(
        "--families",
        type=_families,
        default=_families(DEFAULTS["families"]),
        metavar="NAME,...",
        help=f"classifier families to search (default {DEFAULTS['families']})",
    )
    space.add_argument(
        "--param",
        "--set",
        dest="fixed",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="hold a parameter at a value instead of searching it, VALUE a Python "
        "literal or else a string, e.g. --param filters=16 --param dense='[256]'; repeatable",
    )
    space.add_argument(
        "--objective",
        choices=sorted(OBJECTIVES),
        default="accuracy",
        help="validation accuracy on clean images, under the seed's pixel noise, or their "
        "mean (default %(default)s)",
    )
    space.add_argument(
        "--pruner", choices=PRUNERS, default="hyperband", help="(default %(default)s)"
    )
    space.add_argument(
        "--show-space",
        action="store_true",
        help="print the search space and the fidelity schedule, and exit",
    )

    store = parser.add_argument_group("storage and workers")
    store.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna RDB storage URL, e.g. postgresql+psycopg://user@host/db with the "
        "password in PGPASSWORD (default: sqlite file study.db in --output)",
    )
    store.add_argument(
        "--study-name",
        default=DEFAULTS["study_name"],
        help="study to create or resume (default %(default)s)",
    )
    store.add_argument(
        "--heartbeat-interval",
        type=_positive_int,
        default=10,
        metavar="SECONDS",
        help="seconds between a running trial's heartbeats (default %(default)s)",
    )
    store.add_argument(
        "--grace-period",
        type=_positive_int,
        default=60,
        metavar="SECONDS",
        help="seconds without heartbeat before a trial counts as dead and is retried; "
        "must exceed --heartbeat-interval (default %(default)s)",
    )
    store.add_argument(
        "--max-retry",
        type=int,
        default=2,
        metavar="N",
        help="retries of a trial whose worker or training process died (default %(default)s)",
    )
    store.add_argument(
        "--search-only",
        action="store_true",
        help="run trials only: no refit, test evaluation or plots (extra workers)",
    )

    out = parser.add_argument_group("data and outputs")
    _add_source_arguments(
        out,
        "CIFAR archive or folder (default: sklcifar.datasets.default_source(), "
        "e.g. $SKLCIFAR_DATA)",
        required=False,
    )
    out.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULTS["output"]),
        metavar="DIR",
        help="folder for every output; rerunning resumes its study, replacing the earlier "
        "run's other outputs only with --force (default %(default)s)",
    )
    _add_force_argument(out)
    out.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=_interactive(),
        help="no progress bar (shown by default when stderr is a terminal)",
    )
    out.add_argument(
        "--no-robustness-report",
        dest="robustness_report",
        action="store_false",
        help="skip the robustness report (15 corruptions x 5 severities) of the refit model",
    )
    out.add_argument(
        "--report-images",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="stratified test images for the robustness report (default %(default)s)",
    )
    out.add_argument(
        "--noise-fraction",
        type=_fraction,
        default=SEED_NOISE_FRACTION,
        metavar="F",
        help="pixel noise of the noisy test accuracy (default: the seed's %(default)s)",
    )


def _space(args: argparse.Namespace) -> dict:
    """The space definition, families and fixed parameters, checked; UsageError if bad."""
    definition = load_space(args.space if args.space else BUILTIN_SPACE)
    describe_space(args.families, dict(args.fixed), parse_space(definition))
    # Here, not in a trial: a value every trial would refuse must not cost the data
    # loading and end in the trials' tracebacks.
    check_fixed_values(args.families, dict(args.fixed))
    if args.max_retry < 0:
        raise UsageError(f"--max-retry must be >= 0; got {args.max_retry}")
    if args.grace_period <= args.heartbeat_interval:
        raise UsageError(
            f"--grace-period ({args.grace_period} s) must exceed --heartbeat-interval "
            f"({args.heartbeat_interval} s): live trials would be declared dead"
        )
    return definition


def show_space(args: argparse.Namespace) -> str:
    """What ``--show-space`` prints: the space, then the fidelity schedule."""
    definition = _space(args)
    text = describe_space(args.families, dict(args.fixed), parse_space(definition))
    schedule = describe_fidelity(args.pruner, args.epochs, args.fidelity)["text"]
    schedule = "\n".join(f"  {line}" for line in schedule.splitlines())
    return f"{text}\nfidelity: {args.fidelity}\n{schedule}\nobjective: {args.objective}"


def output_files(args: argparse.Namespace) -> list[Path]:
    """The files a run writes in --output besides its study (``study.db``, resumed)."""
    names = ["trials.csv", "best_params.json"]
    if not args.search_only:
        names += [f"{name}.png" for name in PLOTS] + ["model.joblib", "summary.json"]
        if args.robustness_report:
            names += ["robustness.csv", "robustness.md", "robustness.png"]
    return [args.output / name for name in names]


def _check_output(args: argparse.Namespace) -> None:
    """Refuse, before any work, an --output that is a file, or one holding files this run
    would write, unless --force (as every subcommand does); the study in it is resumed
    without asking."""
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {str(args.output)!r} is a file; give a folder")
    if args.output.is_dir():
        _check_outputs(args, *output_files(args))


#: Classes of CIFAR-10, the fewest of any CIFAR set (CIFAR-100 has 20 or 100): image
#: counts too small for them are refused before the data is loaded.
FEWEST_CLASSES = 10


def _trial_fractions(args: argparse.Namespace, definition: dict) -> set[float]:
    """The ``validation_fraction`` values the searched families' trials hold out of their
    images with --validation-images 0: fixed, or the classifier's default; a family whose
    space searches it is left out (its value is not known before the trial)."""
    fixed = dict(args.fixed)
    spaces = _resolve_space(args.families, fixed, parse_space(definition))
    return {
        fixed.get("validation_fraction", CLASSIFIERS[family]().validation_fraction)
        for family, params in spaces.items()
        if all(param.target != "validation_fraction" for param in params)
    }


def _smallest_subset(fraction: float, n_classes: int) -> int:
    """The fewest images of which ``fraction`` splits off at least one image per class,
    leaving one per class (``ImageClassifier``'s stratified validation split)."""
    n = max(2 * n_classes, math.ceil(n_classes / fraction), math.ceil(n_classes / (1 - fraction)))
    while min(math.ceil(fraction * n), n - math.ceil(fraction * n)) < n_classes:
        n += 1
    return n


def _check_image_counts(
    args: argparse.Namespace,
    fractions: set[float],
    n_classes: int,
    classes: str,
    n_images: int | None = None,
) -> None:
    """Refuse a --subset or --validation-images too small for ``n_classes`` classes
    (``classes`` names them in the message) in the search's own flags, before any trial.

    ``fractions`` are the trials' ``validation_fraction`` values (``_trial_fractions``),
    which --validation-images 0 holds out of each trial's images: of the --subset, or of
    the train split's ``n_images`` (None: not loaded yet, so not checked).
    """
    subset, validation = args.subset, args.validation_images
    if subset is not None and subset < 2 * n_classes:
        raise UsageError(
            f"--subset {subset} is too small for {classes}: a subset needs at least two "
            f"images per class; give --subset {2 * n_classes} or more"
        )
    if 0 < validation < n_classes:
        raise UsageError(
            f"--validation-images {validation} is too few for {classes}: every class needs "
            f"a validation image; give {n_classes} or more, or 0"
        )
    if validation:
        return
    if 0 in fractions:
        raise UsageError(
            "--validation-images 0 scores each trial on a validation_fraction of its images, "
            "but --param validation_fraction=0 holds out none; give --validation-images N or "
            "a validation_fraction above 0"
        )
    n = subset if subset is not None else n_images
    if n is None:
        return
    for fraction in sorted(fractions):
        held_out = math.ceil(fraction * n)
        if min(held_out, n - held_out) < n_classes:
            raise UsageError(
                f"--validation-images 0 splits each trial's {n} images by its "
                f"validation_fraction {fraction:g}: {held_out} to score it, "
                f"{n - held_out} to train on, but each side needs an image of each of "
                f"{classes}; give --validation-images {n_classes} or more, or "
                f"--subset {_smallest_subset(fraction, n_classes)} or more"
            )


def _robustness(model, X, y, args: argparse.Namespace) -> dict:
    if args.report_images < len(y):
        X, y = stratified_subset(X, y, args.report_images, random_state=args.seed)
    report = evaluate_robustness(
        model,
        X,
        y,
        noise_fraction=args.noise_fraction,
        random_state=args.seed,
        progress=args.progress,
    )
    with atomic_path(args.output / "robustness.csv", overwrite=True) as tmp:
        report.to_csv(tmp)
    with atomic_write(args.output / "robustness.md", "w", overwrite=True) as file:
        file.write(report.to_markdown() + "\n")
    with atomic_path(args.output / "robustness.png", overwrite=True) as tmp:
        save_figure(plot_robustness(report), tmp)
    return {
        "images": len(y),
        "clean_accuracy": float(report.clean_accuracy),
        "mean_corruption_accuracy": float(report.mean_corruption_accuracy),
    }


def _trial_counts(study: optuna.Study) -> dict[str, int]:
    counts = {state.name.lower(): 0 for state in optuna.trial.TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] += 1
    return counts


def search_images(
    X: np.ndarray,
    y: np.ndarray,
    *,
    subset: int | None,
    validation_images: int,
    seed: int,
) -> tuple[
    tuple[np.ndarray, np.ndarray],
    tuple[np.ndarray, np.ndarray] | None,
    tuple[np.ndarray, np.ndarray],
]:
    """The trials' training images and labels (a stratified ``subset``, or all), their
    validation images and labels, a disjoint stratified draw of ``validation_images``
    (None for 0: each trial holds out a share of its images), and every image and label
    but the validation ones (the duel's training set)."""
    wanted = validation_images + (subset or 0)
    if wanted > len(y) or (subset is None and validation_images >= len(y)):
        raise UsageError(
            f"--subset {subset or 'all'} and --validation-images {validation_images} need "
            f"more than the train split's {len(y)} images"
        )
    validation = None
    if validation_images:
        split = StratifiedShuffleSplit(n_splits=1, test_size=validation_images, random_state=seed)
        rest, held_out = next(split.split(np.zeros(len(y)), y))
        validation = (X[held_out], y[held_out])
        X, y = X[rest], y[rest]
    outside_validation = (X, y)
    if subset is not None and subset < len(y):
        X, y = stratified_subset(X, y, subset, random_state=seed)
    return (X, y), validation, outside_validation


def run(args: argparse.Namespace) -> dict:
    """Search, then (unless --search-only) refit, test and report; the summary.

    Everything checkable (space, fixed values, options, image counts against CIFAR-10's
    classes, storage, output folder) is checked before the data is loaded or anything is
    written; the image counts again against the data's own classes before any trial.
    """
    started = time.monotonic()
    definition = _space(args)
    fractions = _trial_fractions(args, definition)
    fewest = f"the {FEWEST_CLASSES} classes of CIFAR-10 (the fewest of a CIFAR set)"
    _check_image_counts(args, fractions, FEWEST_CLASSES, fewest)
    _check_output(args)
    if args.storage is not None:
        check_storage_url(args.storage)
    source = args.data or default_source()
    train = load_cifar(source, split="train", label_mode=args.label_mode)
    n_classes = len(np.unique(train.target))
    classes = f"the {n_classes} classes of {source}"
    _check_image_counts(args, fractions, n_classes, classes, n_images=len(train.target))
    (X, y), validation, outside_validation = search_images(
        train.images,
        train.target,
        subset=args.subset,
        validation_images=args.validation_images,
        seed=args.seed,
    )

    args.output.mkdir(parents=True, exist_ok=True)
    storage = open_storage(
        args.storage or f"sqlite:///{args.output.resolve() / 'study.db'}",
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        max_retry=args.max_retry,
    )
    if args.progress:
        # The progress bar shows what Optuna's per-trial log lines would.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = run_search(
        X,
        y,
        families=args.families,
        fixed=dict(args.fixed),
        space=definition,
        objective=args.objective,
        n_trials=args.n_trials,
        epochs=args.epochs,
        timeout=args.timeout,
        pruner=args.pruner,
        fidelity=args.fidelity,
        validation=validation,
        storage=storage,
        study_name=args.study_name,
        seed=args.seed,
        max_retry=args.max_retry,
        show_progress_bar=args.progress,
    )
    summary = {
        "machine": {**describe_machine(), "date": time.strftime("%Y-%m-%d")},
        "data": str(source),
        "search_images": len(y),
        "validation_images": args.validation_images or None,
        "study_name": study.study_name,
        "objective": args.objective,
        "fidelity": study.user_attrs["fidelity"]["text"],
        "trials": _trial_counts(study),
        "search_seconds": round(time.monotonic() - started, 1),
    }
    write_search_report(study, args.output, plots=not args.search_only)
    if args.search_only:
        return summary
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ValueError(
            "no trial completed, so there is nothing to refit: raise --timeout or lower --epochs."
        )

    X_all, y_all = train.images, train.target
    budget = None if args.refit_epochs else args.refit_minutes * 60
    chosen = refit_trial(study, n_images=len(y_all), time_budget=budget)
    default = default_complete_trial(study)
    summary["duel"] = None
    challenged = default is not None and default.number != chosen.number
    if args.duel_seconds and validation is not None and challenged:
        summary["duel"] = duel(
            study,
            default,
            chosen,
            *outside_validation,
            validation,
            seconds=args.duel_seconds,
            random_state=args.seed,
            noise_fraction=args.noise_fraction,
        )
        chosen = default if summary["duel"]["winner"] == default.number else chosen
    refit_start = time.monotonic()
    model = refit_best(
        study,
        X_all,
        y_all,
        epochs=args.refit_epochs,
        time_budget=budget,
        random_state=args.seed,
        trial=chosen,
    )
    refit_seconds = time.monotonic() - refit_start
    epochs = len(model.named_steps["classifier"].history_["loss"])
    with atomic_path(args.output / "model.joblib", overwrite=True) as tmp:
        save_model(model, tmp)
    test = load_cifar(source, split="test", label_mode=args.label_mode)
    best = study.best_trial
    summary.update(
        first_complete_trial={"number": complete[0].number, "validation_score": complete[0].value},
        best_trial={
            "number": best.number,
            "validation_score": study.best_value,
            "standard_error": standard_error(best),
            "classifier": best.user_attrs["classifier"],
            "params": best.user_attrs["estimator_params"],
        },
        refit={
            "trial": chosen.number,
            "classifier": chosen.user_attrs["classifier"],
            "params": chosen.user_attrs["estimator_params"],
            "estimated_epochs": None
            if budget is None
            else round(estimated_refit_epochs(chosen, len(y_all), budget), 1),
            "images": len(y_all),
            "epochs": epochs,
            "seconds": round(refit_seconds, 1),
        },
        test_accuracy=clean_and_noisy_accuracy(
            model, test.images, test.target, noise_fraction=args.noise_fraction, seed=args.seed
        ),
    )
    if args.robustness_report:
        summary["robustness"] = _robustness(model, test.images, test.target, args)
    summary["total_seconds"] = round(time.monotonic() - started, 1)
    with atomic_write(args.output / "summary.json", "w", overwrite=True) as file:
        file.write(json.dumps(summary, indent=2) + "\n")
    return summary


def run_command(args: argparse.Namespace) -> int:
    """``sklcifar search`` (documented in ``sklcifar.cli.search_command``): print the space
    (--show-space) or run and print the summary; the exit status."""
    if args.show_space:
        print(show_space(args))
        return 0
    print(json.dumps(run(args), indent=2))
    return 0
