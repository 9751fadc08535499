"""The README's main job: ``python benchmarks/search.py`` (``sklcifar search`` plus comparisons).

Runs ``sklcifar search`` with the options given (see ``sklcifar search --help``; its
defaults: trials on a 4,000-image subset of the train split for 3 minutes, scored on
2,000 other images, Hyperband on epochs and training images, then a 12-minute refit of the
best configuration (the default one unless a trial beat it by more than a standard error,
in its trial and then in a one-minute duel with the default on the whole split)
on the whole train split, tested clean and with the seed's pixel noise, with a robustness
report), then trains each ``--compare`` baseline on the whole train split for the same
total wall time as the search took (the classifiers' ``time_budget``) and tests it the
same way, side by side:

- ``default``: ``sklcifar.pipelines.default_pipeline()`` (FastNet, the fast recipe);
- any ConvNetClassifier preset, e.g. ``m12`` (the seed study's best model, its recipe).

Prints the machine, then one JSON object; writes it to ``compare.json`` in ``--output``.
Figures: benchmarks/RESULTS.md ("Search"). Example (the lead's command)::

    SKLCIFAR_DATA=../shared/data/cifar-10-python.tar.gz python benchmarks/search.py

``--compare none`` skips the baselines (then this is ``sklcifar search``). Rerunning into
the same ``--output`` resumes its study and needs ``--force`` to replace the earlier run's
files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import machine_facts, machine_header

from sklcifar import cli
from sklcifar.datasets import default_source, load_cifar
from sklcifar.files import atomic_write
from sklcifar.pipelines import default_pipeline, make_pipeline
from sklcifar.search.report import clean_and_noisy_accuracy

DEFAULT_COMPARE = ("default", "m12")
COMPARE_HELP = (
    "baselines trained for the search's total time: default, a ConvNet preset, or none "
    f"(default {','.join(DEFAULT_COMPARE)})"
)


def _baselines(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    return () if names == ("none",) else names


def _baseline(name: str, seconds: float, seed: int):
    """The pipeline called ``name``, set to train for ``seconds`` in all."""
    if name == "default":
        return default_pipeline(time_budget=seconds, random_state=seed)
    return make_pipeline("convnet", preset=name, time_budget=seconds, random_state=seed)


def compare(args: argparse.Namespace, summary: dict, names: tuple[str, ...]) -> dict:
    """Train and test each baseline for the search's total wall time."""
    source = args.data or default_source()
    train = load_cifar(source, split="train", label_mode=args.label_mode)
    test = load_cifar(source, split="test", label_mode=args.label_mode)
    seconds = summary["total_seconds"]
    rows = {"search": {"seconds": seconds, "test_accuracy": summary["test_accuracy"]}}
    for name in names:
        model = _baseline(name, seconds, args.seed)
        start = time.monotonic()
        model.fit(train.images, train.target)
        rows[name] = {
            "seconds": round(time.monotonic() - start, 1),
            "epochs": len(model.named_steps["classifier"].history_["loss"]),
            "test_accuracy": clean_and_noisy_accuracy(
                model,
                test.images,
                test.target,
                noise_fraction=args.noise_fraction,
                seed=args.seed,
            ),
        }
    return {"machine": machine_facts(), "budget_seconds": seconds, "models": rows}


def main(argv: list[str] | None = None) -> int:
    """Run ``sklcifar search`` with ``argv``, then the comparisons; the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--compare", type=_baselines, default=DEFAULT_COMPARE)
    known, rest = own.parse_known_args(argv)
    if not {"-h", "--help", "--show-space"} & set(rest):
        print(machine_header(), flush=True)
    # One engine, one error handling: bad input ends with one line and status 2.
    status = cli.main(["search", *rest])
    if {"-h", "--help"} & set(rest):
        print(f"\nbenchmark option:\n  --compare NAME,...  {COMPARE_HELP}")
        return status
    if status != 0:
        return status
    args = cli.build_parser().parse_args(["search", *rest])
    if args.show_space or args.search_only or not known.compare:
        return status
    summary = json.loads((args.output / "summary.json").read_text())
    result = compare(args, summary, known.compare)
    with atomic_write(args.output / "compare.json", "w", overwrite=True) as file:
        file.write(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
