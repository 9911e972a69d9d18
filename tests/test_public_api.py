"""The public import paths the README lists keep working."""

from __future__ import annotations

import inspect

import envstore
import envstore.errors
import envstore.manifest


def test_every_exception_is_reachable_from_envstore() -> None:
    errors = {
        name
        for name, value in vars(envstore.errors).items()
        if inspect.isclass(value) and issubclass(value, envstore.errors.EnvstoreError)
    }
    assert "LockError" in errors
    for name in errors:
        assert name in envstore.__all__, name
        assert getattr(envstore, name) is getattr(envstore.errors, name)


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in envstore.__all__:
        assert getattr(envstore, name) is not None, name
    assert set(envstore.__all__) <= set(dir(envstore))
    assert envstore.__version__


def test_the_manifest_module_keeps_working() -> None:
    assert envstore.manifest.Manifest is envstore.Manifest
    assert envstore.manifest.MANIFEST_NAME == "envstore.json"
    assert envstore.manifest.MANIFEST_VERSION >= 2


def test_install_and_uninstall_are_public() -> None:
    from envstore.env.install import install_packages
    from envstore.env.uninstall import uninstall_packages

    assert envstore.install_packages is install_packages
    assert envstore.uninstall_packages is uninstall_packages
