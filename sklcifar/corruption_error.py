"""Corruption error as the literature reports it, and side-by-side comparisons of models.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations" (ICLR 2019), normalise a model ``f``'s error ``E`` under each
corruption ``c`` by a baseline model's (AlexNet on ImageNet-C; here any `RobustnessReport`
you choose, e.g. today's default recipe), summed over the severities ``s``:

* corruption error ``CE_c = sum_s E_f(s, c) / sum_s E_base(s, c)``; ``mCE`` is its mean
  over the corruptions;
* relative corruption error ``rCE_c = sum_s (E_f(s, c) - E_f(clean)) /
  sum_s (E_base(s, c) - E_base(clean))``, the degradation relative to clean error;
  ``relative mCE`` is its mean.

Both are ratios: below 1 (100%) the model is more robust than the baseline. They are
only meaningful on the same test images, corruptions and severities: comparing reports
that differ raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .robustness import RobustnessReport

__all__ = ["FAMILIES", "compare_reports", "comparison_markdown", "corruption_errors"]

#: The four families of CIFAR-C / ImageNet-C corruptions (Hendrycks & Dietterich, Fig. 1).
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}


def _check_comparable(report: RobustnessReport, baseline: RobustnessReport) -> None:
    if report.n_images != baseline.n_images or (
        report.test_set and baseline.test_set and report.test_set != baseline.test_set
    ):
        raise ValueError(
            "the reports were measured on different test sets "
            f"({report.n_images} images, fingerprint {report.test_set or 'unknown'} against "
            f"{baseline.n_images} images, fingerprint {baseline.test_set or 'unknown'}); "
            "score both models on the same images (same data, --subset and --random-state)"
        )
    mine, theirs = report.accuracy_grid(), baseline.accuracy_grid()
    if set(mine.corruptions) != set(theirs.corruptions) or mine.severities != theirs.severities:
        raise ValueError(
            "the reports cover different corruptions or severities "
            f"({sorted(mine.corruptions)} x {mine.severities} against "
            f"{sorted(theirs.corruptions)} x {theirs.severities}); corruption errors "
            "compare like with like"
        )


def _errors(report: RobustnessReport, corruptions: tuple[str, ...]) -> np.ndarray:
    grid = report.accuracy_grid()
    order = [grid.corruptions.index(name) for name in corruptions]
    return 1 - grid.accuracy[order]


def corruption_errors(report: RobustnessReport, baseline: RobustnessReport) -> dict[str, Any]:
    """CE and relative CE per corruption, mCE and relative mCE of ``report``.

    Parameters
    ----------
    report, baseline : RobustnessReport
        The model's and the baseline model's reports, on the same test set.

    Returns
    -------
    dict
        ``ce`` and ``relative_ce`` (dicts by corruption), ``mce`` and ``relative_mce``.
        A relative CE whose baseline loses nothing to the corruption is NaN.

    Raises
    ------
    ValueError
        For reports on different test sets (images, subset or order), corruptions or
        severities, and for a baseline without errors under a corruption.

    Examples
    --------
    >>> from sklcifar.robustness import RobustnessReport
    >>> def report(clean, fog):
    ...     rows = [{"perturbation": "clean", "severity": 0, "accuracy": clean},
    ...             {"perturbation": "fog", "severity": 1, "accuracy": fog}]
    ...     return RobustnessReport(tuple(rows), n_images=100, noise_fraction=0.03,
    ...                             random_state=0)
    >>> result = corruption_errors(report(0.9, 0.8), report(0.8, 0.6))
    >>> round(result["mce"], 3), round(result["relative_mce"], 3)
    (0.5, 0.5)
    """
    _check_comparable(report, baseline)
    corruptions = report.accuracy_grid().corruptions
    mine, theirs = _errors(report, corruptions), _errors(baseline, corruptions)
    base_sums = theirs.sum(axis=1)
    if np.any(base_sums == 0):
        perfect = [c for c, total in zip(corruptions, base_sums, strict=True) if total == 0]
        raise ValueError(
            f"the baseline makes no errors under {perfect}: its error cannot normalise a "
            "corruption error; choose a weaker baseline or more test images"
        )
    ce = mine.sum(axis=1) / base_sums
    degradation = (theirs - (1 - baseline.clean_accuracy)).sum(axis=1)
    own = (mine - (1 - report.clean_accuracy)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(
            degradation != 0, own / np.where(degradation != 0, degradation, 1), np.nan
        )
    return {
        "ce": dict(zip(corruptions, map(float, ce), strict=True)),
        "relative_ce": dict(zip(corruptions, map(float, relative), strict=True)),
        "mce": float(ce.mean()),
        "relative_mce": float(np.mean(relative)),
    }


def family_means(report: RobustnessReport) -> dict[str, float]:
    """Mean accuracy over each family's corruption cells present in ``report``."""
    grid = report.accuracy_grid()
    means = {}
    for family, names in FAMILIES.items():
        rows = [grid.corruptions.index(name) for name in names if name in grid.corruptions]
        if rows:
            means[family] = float(np.mean(grid.accuracy[rows]))
    return means


def compare_reports(
    reports: Mapping[str, RobustnessReport], baseline: str | None = None
) -> list[dict[str, Any]]:
    """One summary row per model, with mCE and relative mCE against ``baseline``.

    Parameters
    ----------
    reports : mapping of str to RobustnessReport
        Reports by model name, all on the same test set.
    baseline : str, optional
        Name of the baseline model in ``reports``; without one, no CE columns.

    Returns
    -------
    list of dict
        Per model: ``model``, ``clean``, ``pixel_noise``, ``noise_drop``,
        ``mean_corruption``, ``corruption_of_clean`` (mean corruption accuracy as a
        share of clean), one mean accuracy per corruption family and, with a
        baseline, ``mce`` and ``relative_mce``.
    """
    if baseline is not None and baseline not in reports:
        raise ValueError(f"baseline {baseline!r} is not among the reports {sorted(reports)}")
    rows = []
    for name, report in reports.items():
        row = {
            "model": name,
            "clean": report.clean_accuracy,
            "pixel_noise": report.noise_accuracy,
            "noise_drop": report.clean_accuracy - report.noise_accuracy,
            "mean_corruption": report.mean_corruption_accuracy,
            "corruption_of_clean": report.mean_corruption_accuracy / report.clean_accuracy
            if report.clean_accuracy
            else float("nan"),
            **family_means(report),
        }
        if baseline is not None:
            errors = corruption_errors(report, reports[baseline])
            row.update(mce=errors["mce"], relative_mce=errors["relative_mce"])
        rows.append(row)
    return rows


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    """`compare_reports` rows as a Markdown table (accuracies and ratios in %)."""
    keys = [key for key in rows[0] if key != "model"]
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for row in rows:
        cells = [f"{100 * row[key]:.1f}" for key in keys]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
