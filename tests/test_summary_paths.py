"""The summary's "Files" section writes the directory most paths share once."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.compaction.summarize import _common_path, _common_root

_PART = st.sampled_from(["a", "b", "bc", "b-c", "x.py", "y.py", ".", "", "a.b"])
_PATH = st.lists(_PART, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PATH, min_size=1, max_size=6))
def test_common_path_is_os_commonpath(paths: list[str]) -> None:
    assert _common_path(paths) == os.path.commonpath(paths)


def test_common_root_of_files_under_one_directory() -> None:
    paths = [f"/repo/src/app/{name}.py" for name in ("parser", "lexer", "tables")]
    assert _common_root(paths) == "/repo/src/app/"
    # the largest group of the first three parts; its paths' common directory
    deeper = [*paths, "/repo/src/app/io/files.py", "/repo/src/application/main.py"]
    assert _common_root([*deeper, "/repo/src/appendix.md", "notes.md"]) == "/repo/src/app/"
    assert _common_root([p.replace("/app/", "/app/core/") for p in paths]) == (
        "/repo/src/app/core/"
    )
    assert _common_root(paths[:2]) == ""  # fewer than three: written out whole
