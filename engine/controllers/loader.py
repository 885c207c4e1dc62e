"""Load controller classes from user source text or ``.py`` files.

Files written for the AutoTTS reference run unmodified: the module namespace is
pre-seeded with ``LLMDesignedMethod`` (and ``engine.controllers.base`` is importable),
and every error is reported as one ``ControllerError`` pointing at the user's line.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
import types
from pathlib import Path

from engine.controllers.base import Controller, LLMDesignedMethod


class ControllerError(Exception):
    """Controller code failed: import, construction, solve, or a bad return value."""


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def load_class(source: str, class_name: str | None = None, filename: str = "<controller>") -> type:
    """Execute ``source`` as a fresh module and return the controller class.

    ``class_name`` None picks the only ``LLMDesignedMethod`` subclass defined there.
    """
    module = types.ModuleType(f"ttslab_user_{source_hash(source)}")
    module.__file__ = filename
    module.__dict__["LLMDesignedMethod"] = LLMDesignedMethod
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise ControllerError(f"{filename}:{exc.lineno}: SyntaxError: {exc.msg}") from None
    sys.modules[module.__name__] = module  # lets dataclasses/pickle find the module
    try:
        exec(code, module.__dict__)
    except BaseException as exc:
        sys.modules.pop(module.__name__, None)
        raise ControllerError(f"importing {filename} failed:\n{user_traceback(exc, filename)}") from None
    return _pick_class(module, class_name, filename)


def load_file(path: str | Path, class_name: str | None = None) -> tuple[type, str]:
    """(class, source) of a controller file."""
    path = Path(path)
    try:
        source = path.read_text()
    except OSError as exc:
        raise ControllerError(f"cannot read controller file {path}: {exc.strerror}") from None
    return load_class(source, class_name, str(path)), source


def _pick_class(module: types.ModuleType, class_name: str | None, filename: str) -> type:
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            raise ControllerError(f"{filename}: no class named {class_name!r}")
        return cls
    found = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, LLMDesignedMethod)
        and v not in (LLMDesignedMethod, Controller) and v.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise ControllerError(
            f"{filename}: cannot tell which class to use (LLMDesignedMethod subclasses: {names}); "
            "name it with --class"
        )
    return found[0]


def user_traceback(exc: BaseException, filename: str) -> str:
    """The exception with only the frames of the user's own file (no engine internals)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()
