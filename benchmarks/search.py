"""Optuna search for a grayscale CIFAR classifier: ``python benchmarks/search.py``.

Searches ConvNetClassifier's depth, kernel order, dropout placement and rates, L2
placement and strength, learning rate and batch size (``--show-space`` prints the space)
on a stratified subset of the train split, with per-epoch pruning; refits the best
pipeline on the whole subset and reports its accuracy on the test split, clean and with
the seed study's 3% pixel noise, then writes a robustness report on 2,000 test images.
On grayscale CIFAR-10 and a shared 2-core CPU the defaults took 10.9 minutes in all
(11 trials, 5 pruned): validation accuracy 0.100 in the first trial, 0.555 in the best;
test accuracy 50.4% clean, 42.5% with 3% pixel noise (benchmarks/RESULTS.md).
``--timeout`` bounds a run at 13 minutes.

Outputs, in ``--output``: ``study.db`` (the SQLite study, unless ``--storage``),
``best_params.json``, ``trials.csv``, ``model.joblib``, ``summary.json`` and the plots
``optimization_history.png``, ``param_importances.png``, ``parallel_coordinate.png``.

Several workers share one study through a database server, and rerunning a command
resumes its study::

    python benchmarks/search.py --storage postgresql+psycopg://user:pw@host/db \\
        --study-name cifar10 --seed 1 --search-only      # on each worker machine
    python benchmarks/search.py --storage ... --study-name cifar10   # refit and report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import joblib
import keras
import optuna
from sklearn.metrics import accuracy_score

from sklcifar.datasets import default_source, load_cifar, stratified_subset
from sklcifar.perturbations import pixel_noise
from sklcifar.pipelines import make_pipeline
from sklcifar.plots import plot_robustness, save_figure
from sklcifar.robustness import evaluate_robustness
from sklcifar.search import (
    PRUNERS,
    check_storage_url,
    describe_space,
    open_storage,
    refit_best,
    run_search,
    write_search_report,
)

# Defaults sized for 10-13 minutes on 2 CPU cores, search, refit, test and report included.
DEFAULTS = {
    "subset": 4000,
    "epochs": 6,
    "n_trials": 12,
    "timeout": 780.0,
    "output": "runs/search",
    "study_name": "sklcifar-search",
}
# Time kept at the end of --timeout for the refit and the test evaluation, in durations
# of the longest trial (the refit trains on 10% more images than a trial).
REFIT_RESERVE = 1.5
NOISE_FRACTION = 0.03  # the seed study's perturbed test set


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive; got {text}")
    return value


def _subset(text: str) -> int | None:
    return None if text == "all" else _positive_int(text)


def _fixed_param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE; got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value  # a bare string such as kernel_order=constant


def build_parser() -> argparse.ArgumentParser:
    """The command line; its epilog lists the search space."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/search.py",
        description=__doc__.split("\n\n")[1],
        epilog="search space (ConvNetClassifier parameters):\n" + describe_space(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    budget = parser.add_argument_group("budget")
    budget.add_argument(
        "--n-trials",
        type=_positive_int,
        default=DEFAULTS["n_trials"],
        help="finished trials the study should hold, all workers together (default %(default)s)",
    )
    budget.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULTS["timeout"],
        help="seconds for the whole run: search, refit and test (default %(default)s)",
    )
    budget.add_argument(
        "--epochs",
        type=_positive_int,
        default=DEFAULTS["epochs"],
        help="epochs per trial (default %(default)s)",
    )
    budget.add_argument(
        "--subset",
        type=_subset,
        default=DEFAULTS["subset"],
        help="stratified subset of the train split to search on, or 'all' (default %(default)s)",
    )
    budget.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the subset, sampler and networks; give workers started "
        "together different seeds (default %(default)s)",
    )

    space = parser.add_argument_group("search space")
    space.add_argument(
        "--families",
        default="convnet",
        help="comma-separated classifier families to search (default %(default)s)",
    )
    space.add_argument(
        "--set",
        dest="fixed",
        type=_fixed_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="hold an estimator parameter at a JSON value instead of searching "
        "it, e.g. --set filters=16 --set dense=[256]; repeatable",
    )
    space.add_argument("--pruner", choices=PRUNERS, default="median", help="(default %(default)s)")
    space.add_argument("--show-space", action="store_true", help="print the search space and exit")

    store = parser.add_argument_group("storage and workers")
    store.add_argument(
        "--storage",
        help="Optuna RDB storage URL, e.g. postgresql+psycopg://user:pw@host/db "
        "(default: sqlite file study.db in --output)",
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
        help="seconds between a running trial's heartbeats (default %(default)s)",
    )
    store.add_argument(
        "--grace-period",
        type=_positive_int,
        default=60,
        help="seconds without heartbeat before a trial counts as dead and is "
        "retried (default %(default)s)",
    )
    store.add_argument(
        "--max-retry", type=int, default=2, help="retries of one dead trial (default %(default)s)"
    )
    store.add_argument(
        "--search-only",
        action="store_true",
        help="run trials only: no refit, test evaluation or plots (extra workers)",
    )

    out = parser.add_argument_group("data and outputs")
    out.add_argument(
        "--data",
        type=Path,
        default=None,
        help="CIFAR archive or folder (default: sklcifar.datasets.default_source(), "
        "e.g. $SKLCIFAR_DATA)",
    )
    out.add_argument(
        "--label-mode",
        choices=("coarse", "fine"),
        default="coarse",
        help="CIFAR-100 labels (default %(default)s)",
    )
    out.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULTS["output"]),
        help="folder for every output (default %(default)s)",
    )
    out.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=sys.stderr.isatty(),
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
        default=2000,
        help="stratified test images for the robustness report; it predicts 77 perturbed "
        "copies of them (default %(default)s)",
    )
    out.add_argument(
        "--compare-preset",
        metavar="NAME",
        help="also train this ConvNetClassifier preset (e.g. m12) on the same "
        "images for the search's wall time, and test it the same way",
    )
    return parser


class _TimeLimit(keras.callbacks.Callback):
    """Stop training at the end of the first epoch past ``seconds``."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


def _test_accuracy(model, X, y, seed: int) -> dict[str, float]:
    noisy = pixel_noise(X, NOISE_FRACTION, random_state=seed)
    return {
        "clean": float(accuracy_score(y, model.predict(X))),
        "pixel_noise_3pct": float(accuracy_score(y, model.predict(noisy))),
    }


def _robustness(model, X, y, args: argparse.Namespace) -> dict[str, float]:
    if args.report_images < len(y):
        X, y = stratified_subset(X, y, args.report_images, random_state=args.seed)
    report = evaluate_robustness(model, X, y, random_state=args.seed, progress=args.progress)
    report.to_csv(args.output / "robustness.csv")
    (args.output / "robustness.md").write_text(report.to_markdown() + "\n")
    save_figure(plot_robustness(report), args.output / "robustness.png")
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


def _check_options(args: argparse.Namespace) -> None:
    """Everything checkable before loading data or writing anything."""
    if args.output.exists() and not args.output.is_dir():
        raise ValueError(f"--output {str(args.output)!r} is a file; give a folder.")
    if args.storage is not None:
        check_storage_url(args.storage)


def _run(args: argparse.Namespace, started: float) -> dict:
    families = args.families.split(",")
    fixed = dict(args.fixed)
    describe_space(families, fixed)  # checks families and fixed names before any work
    _check_options(args)
    source = args.data or default_source()
    train = load_cifar(source, split="train", label_mode=args.label_mode)
    X, y = train.images, train.target
    if args.subset is not None:
        X, y = stratified_subset(X, y, args.subset, random_state=args.seed)

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
        families=families,
        fixed=fixed,
        n_trials=args.n_trials,
        epochs=args.epochs,
        # At least a second, so a slow data load still runs one trial.
        timeout=max(1.0, args.timeout - (time.monotonic() - started)),
        pruner=args.pruner,
        storage=storage,
        study_name=args.study_name,
        seed=args.seed,
        reserve=0.0 if args.search_only else REFIT_RESERVE,
        show_progress_bar=args.progress,
    )
    search_seconds = time.monotonic() - started
    summary = {
        "data": str(source),
        "images": len(y),
        "study_name": study.study_name,
        "trials": _trial_counts(study),
        "search_seconds": round(search_seconds, 1),
    }
    write_search_report(study, args.output, plots=not args.search_only)
    if args.search_only:
        return summary
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise ValueError(
            "no trial completed, so there is nothing to refit: raise --timeout or lower --epochs."
        )

    first = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))[0]
    model = refit_best(study, X, y, random_state=args.seed)
    joblib.dump(model, args.output / "model.joblib")
    test = load_cifar(source, split="test", label_mode=args.label_mode)
    summary.update(
        first_complete_trial={"number": first.number, "validation_accuracy": first.value},
        best_trial={"number": study.best_trial.number, "validation_accuracy": study.best_value},
        best_params=study.best_trial.params,
        refit_epochs=study.best_trial.user_attrs["best_epoch"],
        test_accuracy=_test_accuracy(model, test.images, test.target, args.seed),
    )
    if args.robustness_report:
        summary["robustness"] = _robustness(model, test.images, test.target, args)
    summary["total_seconds"] = round(time.monotonic() - started, 1)

    if args.compare_preset:
        budget = summary["total_seconds"]
        baseline = make_pipeline(
            "convnet",
            preset=args.compare_preset,
            epochs=10_000,  # the time limit or early stopping ends training
            random_state=args.seed,
            callbacks=[_TimeLimit(budget)],
        )
        start = time.monotonic()
        baseline.fit(X, y)
        summary["compare"] = {
            "preset": args.compare_preset,
            "budget_seconds": budget,
            "train_seconds": round(time.monotonic() - start, 1),
            "epochs": len(baseline.named_steps["classifier"].history_["loss"]),
            "test_accuracy": _test_accuracy(baseline, test.images, test.target, args.seed),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit status.

    Bad input (options, data, storage, output folder) ends with one line on stderr and
    status 2, as argparse ends usage errors, before any study is written.
    """
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    try:
        if args.show_space:
            print(describe_space(args.families.split(","), dict(args.fixed)))
            return 0
        summary = _run(args, started)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.search_only:
        (args.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
