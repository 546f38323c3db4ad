"""Each package's public API is what ``__all__`` says: every name exists, nothing public is hidden."""

from __future__ import annotations

import importlib
import inspect

import pytest


@pytest.mark.parametrize("package", ["veomock.contracts", "veomock.mocks", "veomock.conformance"])
def test_all_names_exist_and_are_public(package: str) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert exported, package
    assert all(hasattr(module, name) for name in exported)
    if hasattr(module, "__getattr__"):  # names imported on first use: each resolves to a public object
        assert all(not inspect.ismodule(getattr(module, name)) for name in exported), package
        return
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == exported, f"{package}: public but not exported {sorted(public - exported)}"
