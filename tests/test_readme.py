"""The README's Python examples run as written (in an empty folder, with the files they log)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


def test_readme_examples_run_in_order(tmp_path: Path) -> None:
    """Each block continues the one before it, as a reader would type them."""
    (tmp_path / "report.html").write_text("<h1>report</h1>")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "curve.svg").write_text("<svg/>")
    namespace: dict[str, object] = {}
    for index, block in enumerate(BLOCKS):
        exec(compile(block, f"README.md block {index}", "exec"), namespace)
    assert (tmp_path / "team.db").is_file()
    assert (tmp_path / "out" / "figures" / "curve.svg").is_file()
