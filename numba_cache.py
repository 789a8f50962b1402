"""Numba's on-disk cache, kept fresh when a module that a compiled function uses changes.

``njit(cache=True)`` stamps a cached function with its own source file's modification time and
size only. Our kernels call and inline compiled functions of other modules (the CarRacing
raster's frame code inlines its row, polygon and shrink code; the CNN and the network kernels
use ``hebbian.portable_math``), so after an edit to one of those, or a ``git pull`` that
changed only them, Numba would keep running the old machine code, silently: other numbers
from the same seed. :func:`track` makes the stamp of every cached function of a package the
content digest of its module and of the package modules it imports, transitively (by the
imports written in the files), so such a change recompiles what depends on it and nothing else.

Numba offers no public hook for this; locators are its extension point (``CacheImpl.
_locator_classes``). If a Numba version lacks it, caching falls back to Numba's own stamps,
with a warning.
"""
from __future__ import annotations

import ast
import hashlib
import uuid
import warnings
from functools import lru_cache
from pathlib import Path

_PACKAGES: set[Path] = set()  # tracked package folders


def _roots() -> list[Path]:
    """The folders the tracked packages are imported from (their parents)."""
    return sorted({package.parent for package in _PACKAGES})


def _tracked(path: Path) -> bool:
    return any(package in path.parents for package in _PACKAGES)


def _module_file(name: str) -> Path | None:
    """The tracked file of module `name` (a package's __init__.py for a package), if any."""
    for root in _roots():
        base = root.joinpath(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file() and _tracked(candidate):
                return candidate
    return None


@lru_cache(maxsize=None)
def _imports(path: Path) -> tuple[Path, ...]:
    """The tracked modules whose names `path`'s import statements write."""
    package = path.parent
    found = []
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1 folders
                base = package
                for _ in range(node.level - 1):
                    base = base.parent
                root = next((r for r in _roots() if r in base.parents), None)
                if root is None:
                    continue
                prefix = ".".join(base.relative_to(root).parts)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module
            # `from a.b import c`: c may be a submodule or a name in a.b; take both if they exist.
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        # Only the modules named: a compiled function can only reach code through them (a
        # parent package's __init__ runs too, but what it defines is not reachable this way).
        found.extend(file for file in map(_module_file, names) if file is not None)
    return tuple(sorted(set(found)))


@lru_cache(maxsize=None)
def source_digest(path: Path) -> str:
    """SHA-256 of `path` and every tracked module it imports, transitively (sorted by path)."""
    seen, todo = set(), [path]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(_imports(file))
    digest = hashlib.sha256()
    for file in sorted(seen):
        digest.update(str(file).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _locators():
    from numba.core import caching

    class _ContentStamped:
        @classmethod
        def from_function(cls, py_func, py_file):
            if not _tracked(Path(py_file).resolve()):
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            try:
                return source_digest(Path(self._py_file).resolve())
            except (OSError, SyntaxError, ValueError):
                # A module that cannot be read: a stamp no saved index has, so the function
                # is compiled afresh (slower, never stale).
                return f"unstamped-{uuid.uuid4()}"

    # Numba's own order: an explicit NUMBA_CACHE_DIR first, then __pycache__ beside the file.
    return [type(f"ContentStamped{base.__name__}", (_ContentStamped, base), {})
            for base in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator)]


def track(package_dir: str | Path) -> None:
    """Stamp the cached Numba functions of the package in `package_dir` by content (see above).

    Call it in the package's __init__, before any of its modules compiles a function.
    """
    package = Path(package_dir).resolve()
    if package in _PACKAGES:
        return
    if not _PACKAGES:
        try:
            from numba.core.caching import CacheImpl

            CacheImpl._locator_classes[:0] = _locators()
        except (ImportError, AttributeError) as exc:
            warnings.warn(f"Numba's cache locators are not where this code expects them ({exc}); "
                          "compiled functions are cached by Numba's own stamps, which miss edits "
                          "to the modules they use: clear __pycache__ after changing one", stacklevel=2)
    _PACKAGES.add(package)
