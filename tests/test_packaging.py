"""An installed (not editable) package holds every data file of its folders (the builders' checksums, relation
lists and dummy data)."""

import glob
import os
import runpy

import setuptools

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_arguments(monkeypatch) -> dict:
    arguments = {}
    monkeypatch.setattr(setuptools, "setup", arguments.update)
    monkeypatch.chdir(REPO)
    runpy.run_path(os.path.join(REPO, "setup.py"))
    return arguments


def test_package_data_holds_every_file_of_the_packages_that_is_not_python(monkeypatch):
    arguments = _setup_arguments(monkeypatch)
    packages = [p for p in arguments["packages"] if "." not in p]
    for package in packages:
        folder = os.path.join(REPO, package)
        files = {os.path.relpath(os.path.join(root, name), folder)
                 for root, _, names in os.walk(folder) if "__pycache__" not in root
                 for name in names if not name.endswith((".py", ".pyc"))}
        shipped = {path for pattern in arguments["package_data"].get(package, [])
                   for path in glob.glob(pattern, root_dir=folder, recursive=True)}
        assert files <= shipped, f"{package}: not in package_data: {sorted(files - shipped)}"
