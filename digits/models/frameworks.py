"""The frameworks a model trains with (TensorFlow, PyTorch): a parameter of every model kind.

A framework is data: its training tool, its standard networks' folder, the base class its ``UserModel``
has, how its snapshots look on disk. Nothing here imports TensorFlow or PyTorch: whether one is
installed is asked of the import system (``importlib.util.find_spec``), and the options its tool takes
are read from the tool's source (its ``argparse`` calls), so the web process stays small.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

NETWORKS_DIR = Path(__file__).resolve().parent.parent / "standard_networks"
# The folder that holds the ``digits`` package: a tool's module name is its path under it.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "tensorflow"


@dataclass(frozen=True)
class Framework:
    """A framework: ``id`` as forms send it, ``title`` as pages show it, ``package`` its tool imports,
    ``tool`` the training program's module, ``networks`` the folder of its standard networks, and
    ``contract`` the line that tells a user what a network must define."""

    id: str
    title: str
    package: str
    tool: str
    networks: Path
    contract: str

    def available(self) -> bool:
        """Whether this server can train with it: its package would import in a child process."""
        return _installed(self.package)

    def has_network(self, name: str) -> bool:
        """Whether it has a source of the standard network ``name``."""
        return (self.networks / f"{name}.py").is_file()

    def network_source(self, name: str) -> str:
        """The source of its standard network ``name``; raises KeyError when it has none."""
        if not self.has_network(name):
            raise KeyError(name)
        return (self.networks / f"{name}.py").read_text()

    def tool_options(self) -> frozenset[str]:
        """The ``--options`` its training tool accepts, as its argument parser declares them (the flags every
        training tool takes are declared once, in ``digits/tools/training.py``)."""
        own = _declared_options(SOURCE_ROOT / (self.tool.replace(".", "/") + ".py"))
        return own | _declared_options(SOURCE_ROOT / "digits" / "tools" / "training.py")


TENSORFLOW = Framework(
    id="tensorflow", title="TensorFlow", package="tensorflow", tool="digits.tools.tensorflow.main",
    networks=NETWORKS_DIR, contract="class UserModel(Tower) with inference and loss",
)  # fmt: skip
TORCH = Framework(
    id="torch", title="PyTorch", package="torch", tool="digits.tools.torch.main",
    networks=NETWORKS_DIR / "torch", contract="class UserModel(nn.Module) with forward (see docs/pytorch.md)",
)  # fmt: skip
FRAMEWORKS: dict[str, Framework] = {f.id: f for f in (TENSORFLOW, TORCH)}


def available_frameworks() -> list[Framework]:
    """The frameworks this server trains with, TensorFlow first."""
    return [f for f in FRAMEWORKS.values() if f.available()]


def framework_of(value: str | None) -> Framework:
    """The framework a form or a job names (TensorFlow when it names none); KeyError for an unknown one."""
    return FRAMEWORKS[value or DEFAULT]


def framework_title(value: str | None) -> str:
    """How pages name the framework a job's form names (TensorFlow for jobs made before there was a choice)."""
    framework = FRAMEWORKS.get(value or DEFAULT)
    return framework.title if framework else str(value)


@functools.cache
def _installed(package: str) -> bool:
    # find_spec of a top-level name looks the package up without running it.
    return importlib.util.find_spec(package) is not None


@functools.cache
def _declared_options(tool_source: Path) -> frozenset[str]:
    """Every ``--name`` passed to an ``add_argument`` call in ``tool_source`` (``--no-name`` too for a
    ``BooleanOptionalAction``)."""
    options: set[str] = set()
    for node in ast.walk(ast.parse(tool_source.read_text())):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
            continue
        names = [a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")]
        options.update(names)
        if any(k.arg == "action" and "BooleanOptionalAction" in ast.unparse(k.value) for k in node.keywords):
            options.update("--no-" + name[2:] for name in names)
    return frozenset(options)


def snapshot_framework(path: str | Path) -> str | None:
    """Which framework wrote the snapshot at ``path`` (a file, a TensorFlow checkpoint prefix, or a folder of
    snapshots), from its names alone; None when they tell nothing."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*.index")) or (path / "checkpoint").is_file():
            return TENSORFLOW.id
        return TORCH.id if any(path.glob("*.pt")) else None
    if path.suffix in (".pt", ".pth"):
        return TORCH.id
    if Path(f"{path}.index").is_file() or path.suffix in (".ckpt", ".index") or ".data-" in path.name:
        return TENSORFLOW.id
    return None


def check_network_source(source: str, framework: Framework) -> str | None:
    """What is wrong with a network's source for ``framework`` that can be seen without running it, or None.

    Every framework needs a class ``UserModel``; a PyTorch one must subclass ``torch.nn.Module``, directly or
    through classes of the same source.
    """
    if not source.strip():
        return f"Write the network: a {framework.contract}."
    try:
        tree = ast.parse(source, filename="network.py")
    except SyntaxError as exc:
        return f"SyntaxError on line {exc.lineno}: {exc.msg}: {(exc.text or '').strip()}"
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    if "UserModel" not in classes:
        return f"The network must define {framework.contract.split(' with ')[0]}."
    if framework is TORCH and not _is_module(classes["UserModel"], classes, set()):
        model = classes["UserModel"]
        bases = ", ".join(ast.unparse(b) for b in model.bases) or "nothing"
        hint = " (a TensorFlow network: choose framework tensorflow)" if bases == "Tower" else ""
        return (
            f"Line {model.lineno}: a PyTorch UserModel must subclass torch.nn.Module, e.g. class UserModel(nn.Module); "
            f"this one subclasses {bases}{hint}."
        )
    return None


# How sources name torch.nn.Module: nn.Module, torch.nn.Module, or Module imported from torch.nn.
_MODULE_NAMES = ("nn.Module", "torch.nn.Module", "Module")


def _is_module(node: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> bool:
    seen.add(node.name)
    for base in node.bases:
        name = ast.unparse(base)
        if name in _MODULE_NAMES:
            return True
        if name in classes and name not in seen and _is_module(classes[name], classes, seen):
            return True
    return False
