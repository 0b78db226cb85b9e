"""Shared fixtures: the spec the tests load, and where the built `gristmill` binary is."""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def arith_spec() -> str:
    return (ROOT / "examples" / "arith.toml").read_text()


@pytest.fixture
def trl_spec() -> str:
    return (ROOT / "examples" / "trl-addition.toml").read_text()


@pytest.fixture
def gristmill_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("GRISTMILL_BIN", ROOT / "target" / "debug" / "gristmill"))
    if not path.exists():
        pytest.skip(f"the gristmill binary is not built at {path} (cargo build, or set GRISTMILL_BIN)")
    return path
