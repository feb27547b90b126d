"""The `rollcall` binary the Python interop tests run (shared by them)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def binary():
    """Path of the debug `rollcall` binary; fails the test when it is not built."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    path = target / "debug" / "rollcall"
    if not path.exists():
        pytest.fail(f"{path} not found: build it with `cargo build --bin rollcall`")
    return str(path)
