"""The documentation's code runs as written."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_quickstart_runs(cifar10_path, monkeypatch, tmp_path):
    monkeypatch.setenv("SKLCIFAR_DATA", str(cifar10_path))
    monkeypatch.chdir(tmp_path)
    text = (DOCS / "quickstart.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "quickstart.md", "exec"), namespace)
    assert namespace["accuracy"] > 0.2  # 10 classes: chance is 0.1
    assert (tmp_path / "pipeline.joblib").exists()
