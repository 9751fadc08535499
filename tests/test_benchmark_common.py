"""benchmarks/_common.py, the helpers every benchmark script shares: its results table."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common():
    """benchmarks/_common.py as a module (the scripts import it from their own folder)."""
    spec = importlib.util.spec_from_file_location("_common", REPO / "benchmarks" / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_table_prints_markdown_and_rewrites_the_csv_after_each_row(
    common, tmp_path, capsys
):
    path = tmp_path / "rows.csv"
    table = common.ResultsTable(["model", "loop", "img/s"], text_columns=2, csv_path=path)
    assert capsys.readouterr().out == "| model | loop | img/s |\n|---|---|---:|\n"
    table.add({"model": "a", "images_per_s": 812.5}, ["a", "keras.fit", "812"])
    assert capsys.readouterr().out == "| a | keras.fit | 812 |\n"
    # A run stopped here keeps its first row, with the machine it was measured on.
    (first,) = csv.DictReader(path.open())
    assert first["model"] == "a" and first["images_per_s"] == "812.5" and first["cpu"]
    table.add({"model": "b", "images_per_s": 90.0}, ["b", "sklcifar", "90"])
    assert [row["model"] for row in csv.DictReader(path.open())] == ["a", "b"]


def test_results_table_without_csv_and_with_a_wrong_row(common, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = common.ResultsTable(["variant", "img/s"])
    table.add({"variant": "default"}, ["default", "100"])
    assert capsys.readouterr().out.splitlines()[1:] == ["|---|---:|", "| default | 100 |"]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="has 2 cells; got 3"):
        table.add({}, ["default", "100", "extra"])
