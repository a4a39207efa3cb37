"""Safe YAML loading that refuses duplicate keys (PyYAML silently keeps the last one) and
hostile files.

Before anything is built, the file is checked cheaply: at most MAX_BYTES, UTF-8 text, and,
on the parser's event stream (iterative, so deep nesting cannot exhaust the stack), at most
MAX_DEPTH levels of nesting and at most MAX_NODES nodes once every alias is expanded (a
"billion laughs" file of nested aliases would otherwise expand to billions of nodes in any
code that walks it). Aliases themselves stay allowed: workload files use them for repeated
blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

# libyaml's parser when present; construction (and the duplicate check) stays in Python
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 10_000_000  # a device or model file is a few kB
MAX_DEPTH = 64  # the deepest shipped file nests 9 levels
MAX_NODES = 1_000_000  # expanded nodes (DenseNet-201, aliases expanded: ~4,000)


class _StrictLoader(_Base):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # a list or mapping as a key
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {str(key)[:60]!r} (first on line {first + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _check_shape(text: str) -> str | None:
    """The first reason the document is too deep or expands too far, or None."""
    depth = 0
    sizes: list[int] = [0]  # expanded nodes of each open collection
    anchors: list[str | None] = [None]
    expanded: dict[str, int] = {}
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep"
            sizes.append(1)
            anchors.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            size = sizes.pop()
            anchor = anchors.pop()
            if anchor is not None:
                expanded[anchor] = size
            sizes[-1] += size
        elif isinstance(event, yaml.ScalarEvent):
            sizes[-1] += 1
            if event.anchor is not None:
                expanded[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            sizes[-1] += expanded.get(event.anchor or "", 1)
        if sizes[-1] > MAX_NODES or sum(sizes) > MAX_NODES:
            return f"expands to more than {MAX_NODES:,} values (aliases of aliases?)"
    return None


def load_yaml_mapping(path: Path, shown: str | None = None) -> dict[str, Any]:
    """Load one YAML file whose top level is a mapping; every failure is a SpecError naming
    the file as `shown` (default: the path)."""
    shown = shown or str(path)
    try:
        if path.is_dir():
            raise SpecError(shown, ["is a folder, not a file"])
        if path.stat().st_size > MAX_BYTES:
            raise SpecError(shown, [f"larger than {MAX_BYTES:,} bytes: not a data file"])
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(shown, [f"cannot read file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            shown, [f"not a UTF-8 text file (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"]
        ) from None
    try:
        problem = _check_shape(text)
        if problem is not None:
            raise SpecError(shown, [problem])
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "nesting depth" in str(problem):  # PyYAML >= 6.0.4 bounds the depth itself
            raise SpecError(shown, [f"nested more than {MAX_DEPTH} levels deep"]) from None
        raise SpecError(shown, [f"{where}malformed YAML: {str(problem)[:200]}"]) from None
    except RecursionError:  # a last guard; _check_shape bounds the depth first
        raise SpecError(shown, [f"nested more than {MAX_DEPTH} levels deep"]) from None
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's own limit)
        raise SpecError(shown, [f"a number too long to read: {str(exc)[:80]}"]) from None
    if data is None:
        raise SpecError(shown, ["the file is empty (no YAML mapping in it)"])
    if not isinstance(data, dict):
        raise SpecError(shown, [f"top level must be a mapping, got {type(data).__name__}"])
    return data


def dump_yaml(doc: dict[str, Any]) -> str:
    """A mapping of plain values as YAML text, in the order given (safe dumper only)."""
    return str(yaml.safe_dump(doc, sort_keys=False))
