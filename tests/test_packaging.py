"""The two ways to install agree, and CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names for packages that pip calls otherwise
CONDA_NAME = {"opencv-python-headless": "opencv", "tensorflow-cpu": "tensorflow"}


def _split(requirement: str) -> tuple[str, str]:
    requirement = requirement.split(";")[0].strip()
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    """Check that environment.yml lists the same packages and version ranges as pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, spec = _split(requirement)
        pip[CONDA_NAME.get(name, name)] = spec
    conda = dict(
        _split(dep)
        for dep in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
        if isinstance(dep, str) and not dep.startswith(("python=", "pip"))
    )
    assert conda == pip


def test_ci_runs_the_readme_test_command():
    """Check that .ci/run calls the test command the README tells users to run."""
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()


def _tumornb_imports() -> dict[str, set[str]]:
    """Module -> the tumornb modules it imports, at the top or inside a function."""
    import ast

    graph = {}
    for path in (ROOT / "tumornb").glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tumornb"):
                parts = node.module.split(".")
                found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tumornb.")}
        graph[path.stem] = found - {path.stem}
    return graph


def test_no_import_cycle_inside_the_package():
    """Check that no tumornb module imports one that imports it back, directly or through others."""
    graph = _tumornb_imports()
    assert graph["ablation"] and graph["runner"]  # the parser sees imports at all

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ())
        )

    cycles = sorted(module for module in graph if reaches(module, module, {module}))
    assert cycles == []


def test_importing_tensorflow_through_the_package_prints_nothing():
    """Check that TensorFlow's C++ start-up lines do not reach the terminal (tumornb.backend)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import tumornb.training; print('imported')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "imported"
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr, done.stderr


def test_api_page_documents_every_module():
    """Check that the book's API reference names every module of the package (the CLI excepted)."""
    page = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: tumornb\.(\w+)$", page, re.M))
    modules = {p.stem for p in (ROOT / "tumornb").glob("*.py")} - {"__init__", "__main__", "cli"}
    assert documented == modules


# Every module but the command line (whose --help documents it): each public function and class
# documents its parameters (numpydoc), with array shapes.
DOCUMENTED_MODULES = sorted({p.stem for p in (ROOT / "tumornb").glob("*.py")} - {"__init__", "cli"})


def test_every_module_documents_every_parameter():
    """Check that each public callable with parameters has a numpydoc Parameters (or Attributes) section."""
    import importlib
    import inspect

    assert len(DOCUMENTED_MODULES) > 30
    undocumented = []
    for name in DOCUMENTED_MODULES:
        module = importlib.import_module(f"tumornb.{name}")
        for public in module.__all__:
            thing = getattr(module, public)
            if not (inspect.isfunction(thing) or inspect.isclass(thing)):
                continue
            if inspect.isclass(thing) and issubclass(thing, Exception):
                continue  # an error's message is its documentation
            parameters = set(inspect.signature(thing).parameters) - {"self", "cls", "args", "kwargs"}
            doc = inspect.getdoc(thing) or ""
            if parameters and "Parameters\n----------" not in doc and "Attributes\n----------" not in doc:
                undocumented.append(f"{name}.{public}")
    assert undocumented == []
