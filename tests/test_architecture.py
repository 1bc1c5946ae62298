"""The package's structure, as the README's "Architecture" section states it: no import cycle
(function-level imports included), one definition of each shared concept, the layers
importing only downwards (model/ knows no I/O, the app only the predictor's public API)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "ssmvos"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(module: str) -> set[str]:
    """The package modules ``module`` imports anywhere in its body (module- or function-level)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                name = f"{target}.{alias.name}"
                found.add(name if name in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m) for m in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in GRAPH[node]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_no_import_cycle_even_through_function_level_imports():
    cycles = [c for m in sorted(MODULES) if (c := _cycle_from(m))]
    assert not cycles, "import cycle: " + " -> ".join(cycles[0])


def _assigned_names(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    return {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}


def _defined_functions(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_one_definition_of_each_shared_concept():
    for name in ("DIRECTIONS", "DAVIS_PALETTE", "VOID_LABEL", "IMAGENET_MEAN", "PUBLISHED", "REFERENCES",
                 "SESSION_VERSION"):
        owners = [m for m in MODULES if name in _assigned_names(m)]
        assert len(owners) == 1, f"{name} is defined in {owners}"
    # label maps: one reader and one writer (io/labels.py); the session file: io/session_file.py
    for name in ("decode_label_values", "read_label_map", "artefact_labels", "write_gray_png", "encode_label_png",
                 "session_dict"):
        owners = [m for m in MODULES if name in _defined_functions(m)]
        assert len(owners) == 1, f"{name} is defined in {owners}"


def test_layers_import_downwards():
    def reaches(module: str, prefix: str) -> list[str]:
        return sorted(m for m in GRAPH[module] if m == prefix or m.startswith(prefix + "."))

    for module in MODULES:
        if module.startswith("ssmvos.model"):  # tensors in, tensors out
            outside = [m for m in GRAPH[module] if not m.startswith("ssmvos.model")]
            assert set(outside) <= {"ssmvos.errors", "ssmvos.cpus"}, f"{module} imports {outside}"
        if module.startswith("ssmvos.app"):  # the predictor's public API only
            for internal in ("ssmvos.inference.engine", "ssmvos.inference.results", "ssmvos.inference.crops",
                             "ssmvos.runtime"):
                assert not reaches(module, internal), f"{module} imports {internal}"
        if module.startswith("ssmvos.cli") and module != "ssmvos.cli.app":  # the session file is io's
            assert not reaches(module, "ssmvos.app"), f"{module} imports the app"
        if module in ("ssmvos.io.labels", "ssmvos.io.session_file"):  # file formats know nothing above them
            assert GRAPH[module] <= {"ssmvos.errors", "ssmvos.atomic", "ssmvos.numbers", "ssmvos.io.labels",
                                     "ssmvos.io.reading"}, GRAPH[module]
        if not module.startswith(("ssmvos.cli", "ssmvos.app")) and module != "ssmvos.__main__":
            assert not reaches(module, "ssmvos.cli"), f"{module} imports the command line"
    app_sources = "\n".join(p.read_text() for p in (PACKAGE / "app").glob("*.py"))
    for attribute in (".engine", ".results", "ResultStore"):
        assert attribute not in app_sources, f"the app reaches {attribute}"
