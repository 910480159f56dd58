"""Structuring at generated-code speed: one straight-line function per model.

cattrs' generated hook for a model calls one hook per field, each inside a
`try` that collects errors for a detailed report, and builds the model from a
dict of keyword arguments. For a body that is exactly what the API sends,
none of that is needed. This module generates, per model, one function that

- checks each JSON scalar in line (`v.__class__ is str`), with no call,
- maps an open enum's value with one dict lookup,
- structures nested models, lists of them and tagged unions by calling their
  own generated functions directly (a page of 100 steps is one list
  comprehension over the step's function),
- collects unknown keys into `extra` with one set comparison.

It is only a fast path: anything unexpected (a missing key, a value of
another type, a subclass of dict or str, an unknown shape) raises, and the
caller structures the same data again with cattrs' detailed hooks, which
give the answer, or the detailed error, that they always gave. So the fast
path never decides what parses; it only makes what parses cheaper.

Each field's hook is looked up on the converter when the model's hook is
built, as cattrs does: a field whose hook is not one this package registered
(a user's hook on the public converter) is structured by calling that hook.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable
from typing import Any, TypeVar, get_args, get_origin

import attrs

__all__ = ["FastKind", "build_model", "field_types", "kind_of", "mark", "not_fast"]

FastKind = tuple[Any, ...]
"""What a hook does, for the generator: `("scalar", str)`, `("model", fn)`, ..."""

_KIND = "_openai_runs_fast"
_STR_ONLY = frozenset({str})
_names = itertools.count()


class _NotFast(Exception):
    """The data is not exactly as the API sends it: use the detailed path."""


def mark(hook: Callable[..., Any], *kind: Any) -> Callable[..., Any]:
    """Tag *hook* with what it does, so a model's generator can inline it."""
    setattr(hook, _KIND, kind)
    return hook


def kind_of(hook: Callable[..., Any]) -> FastKind | None:
    """What a hook tagged by [mark][] does, or *None* for any other hook."""
    return getattr(hook, _KIND, None)


class _Gen:
    """Source lines and globals of one generated function."""

    def __init__(self, conv: Any) -> None:
        self.conv = conv
        self.lines: list[str] = []
        self.globs: dict[str, Any] = {"_NotFast": _NotFast}

    def bind(self, value: Any) -> str:
        name = f"_g{next(_names)}"
        self.globs[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _scalar_check(kind: type, v: str) -> str:
    """The condition under which *v* is NOT a plain JSON value of *kind*."""
    if kind is float:
        return f"({v}.__class__ is not float and {v}.__class__ is not int)"
    return f"{v}.__class__ is not {kind.__name__}"


def _call(gen: _Gen, indent: int, v: str, hook: Any, cl: Any) -> None:
    """Emit a call of *v*'s fast function, or else of its hook (always right)."""
    fast = fast_callable(gen.conv, hook, cl)
    if fast is None:
        gen.emit(indent, f"{v} = {gen.bind(hook)}({v}, {gen.bind(cl)})")
    else:
        gen.emit(indent, f"{v} = {gen.bind(fast)}({v})")


def _inline(gen: _Gen, indent: int, v: str, hook: Callable[..., Any], cl: Any) -> None:
    """Emit code that turns *v* into its structured value.

    Code emitted raises `_NotFast` for anything the fast path does not take.
    A hook the generator does not know is called as cattrs would call it.
    """
    kind = kind_of(hook)
    if kind is None or (kind[0] == "scalar" and cl is not kind[1]):
        # Not ours, or a subclass (an enum) dispatched to the scalar hook.
        _call(gen, indent, v, hook, cl)
        return
    tag = kind[0]
    if tag == "scalar":
        gen.emit(indent, f"if {_scalar_check(kind[1], v)}: raise _NotFast")
    elif tag == "optional_scalar":
        check = _scalar_check(kind[1], v)
        gen.emit(indent, f"if {v} is not None and {check}: raise _NotFast")
    elif tag == "timestamp":
        low, high = gen.bind(-kind[1]), gen.bind(kind[1])
        gen.emit(indent, f"if {v} is not None and ({v}.__class__ is not int")
        gen.emit(indent + 1, f"or not {low} <= {v} <= {high}): raise _NotFast")
    elif tag == "enum":
        members = gen.bind(kind[1])
        gen.emit(indent, f"if {v}.__class__ is not str: raise _NotFast")
        gen.emit(indent, f"{v} = {members}.get({v}, {v})")
    elif tag == "optional":
        gen.emit(indent, f"if {v} is not None:")
        _inline(gen, indent + 1, v, kind[1], kind[2])
    elif tag == "str_or":
        gen.emit(indent, f"if {v} is not None and {v}.__class__ is not str:")
        _inline(gen, indent + 1, v, kind[1], kind[2])
    elif tag == "any":
        pass
    elif tag == "tagged":
        by_tag, default = (gen.bind(x) for x in _tagged(gen.conv, kind))
        gen.emit(indent, f"if {v}.__class__ is not dict: raise _NotFast")
        gen.emit(indent, f"{v} = {by_tag}.get({v}.get('type'), {default})({v})")
    else:
        _call(gen, indent, v, hook, cl)


def fast_callable(  # noqa: PLR0911 - one return per kind of hook
    conv: Any, hook: Callable[..., Any], cl: Any
) -> Callable[[Any], Any] | None:
    """A one-argument fast function equivalent to `hook(value, cl)`, or *None*."""
    kind = kind_of(hook)
    if kind is not None:
        tag = kind[0]
        if tag == "model":
            fn: Callable[[Any], Any] | None = kind[1]()
            return fn
        if tag == "tagged":
            return _tagged_callable(*_tagged(conv, kind))
        if tag == "any":
            return _identity
        if tag == "scalar" and cl is not kind[1]:
            return None
        gen = _Gen(conv)
        gen.emit(0, "def fast(v):")
        _inline(gen, 1, "v", hook, cl)
        gen.emit(1, "return v")
        return _compile(gen, "fast", f"<openai_runs fast {cl!r}>")
    qualname = getattr(hook, "__qualname__", "")
    if qualname == "list_structure_factory.<locals>.structure_list":
        return _list_callable(conv, cl)
    if getattr(hook, "__name__", "") == "structure_mapping":
        return _mapping_callable(conv, cl)
    return None


def _bad(_: Any) -> Any:
    raise _NotFast


def not_fast(_: Any) -> Any:
    """The fast function of a model that has none: always the detailed path."""
    raise _NotFast


def _identity(v: Any) -> Any:
    return v


def _tagged(
    conv: Any, kind: FastKind
) -> tuple[dict[Any, Callable[[Any], Any]], Callable[[Any], Any]]:
    """A tagged union's functions by tag, and its default's.

    *kind* is `("tagged", {tag: variant}, default variant)`. Each variant's
    fast function is generated when a value of it first comes (a run's tool
    union has nine variants; most bodies use two or three).
    """
    by_tag: dict[Any, Callable[[Any], Any]] = {}
    for tag, cl in kind[1].items():
        by_tag[tag] = _variant(conv, cl, by_tag, tag)
    return by_tag, _variant(conv, kind[2], None, None)


def _variant(
    conv: Any, cl: Any, table: dict[Any, Callable[[Any], Any]] | None, tag: Any
) -> Callable[[Any], Any]:
    """A function for variant *cl* that generates its fast function at first use.

    It then takes its own place in *table*. A variant with no fast function
    is structured by its hook, as cattrs' tagged-union hook does.
    """
    hook = conv.get_structure_hook(cl)
    kind = kind_of(hook)

    def by_hook(v: Any) -> Any:
        return hook(v, cl)

    if kind is None or kind[0] != "model":
        return by_hook
    getter = kind[1]
    resolved: Callable[[Any], Any] | None = None

    def first(v: Any) -> Any:
        nonlocal resolved
        if resolved is None:
            resolved = getter()
            if resolved is None:  # being generated (a model nested in itself)
                return by_hook(v)
            if table is not None:
                table[tag] = resolved
        return resolved(v)

    return first


def _tagged_callable(
    by_tag: dict[Any, Callable[[Any], Any]], default: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """Dispatch on the `type` key as cattrs' tagged-union hook does."""

    def structure(v: Any) -> Any:
        if v.__class__ is not dict:
            raise _NotFast
        # An unknown tag, or none, goes to the default variant; an unhashable
        # one raises and goes to the detailed path.
        return by_tag.get(v.get("type"), default)(v)

    return structure


def _list_callable(conv: Any, cl: Any) -> Callable[[Any], Any] | None:
    args = get_args(cl)
    if len(args) != 1:
        return None
    (elem,) = args
    fast = fast_callable(conv, conv.get_structure_hook(elem), elem)
    if fast is None:
        return None
    if fast is _identity:

        def copy(v: Any) -> Any:
            if v.__class__ is not list:
                raise _NotFast
            return list(v)

        return copy
    kind = kind_of(conv.get_structure_hook(elem))
    if kind is not None and kind[0] == "tagged":
        # A list of a tagged union: the dispatch in line, one call an item.
        by_tag, default = _tagged(conv, kind)

        def tagged_list(v: Any) -> Any:
            if v.__class__ is not list:
                raise _NotFast
            return [
                (by_tag.get(e.get("type"), default) if e.__class__ is dict else _bad)(e)
                for e in v
            ]

        return tagged_list

    def fast_list(v: Any) -> Any:
        if v.__class__ is not list:
            raise _NotFast
        return [fast(e) for e in v]

    return fast_list


def _mapping_callable(conv: Any, cl: Any) -> Callable[[Any], Any] | None:
    args = get_args(cl)
    if len(args) != 2 or args[0] is not str or args[1] not in (str, Any):
        return None
    # Only while str and Any are structured by this package's own hooks.
    if kind_of(conv.get_structure_hook(str)) != ("scalar", str):
        return None
    if args[1] is Any and kind_of(conv.get_structure_hook(Any)) != ("any",):
        return None
    values_too = args[1] is str

    def structure(v: Any) -> Any:
        # JSON object keys are strings: one C-speed pass over their classes.
        if v.__class__ is not dict or not _STR_ONLY.issuperset(map(type, v)):
            raise _NotFast
        if values_too and not _STR_ONLY.issuperset(map(type, v.values())):
            raise _NotFast
        return dict(v)

    return structure


def _compile(gen: _Gen, name: str, filename: str) -> Callable[[Any], Any]:
    source = "\n".join(gen.lines) + "\n"
    filename = f"{filename[:-1]} #{next(_names)}>"
    # In linecache, as cattrs does, so tracebacks and profilers show the code.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), gen.globs)  # noqa: S102 - our own code
    fn: Callable[[Any], Any] = gen.globs[name]
    return fn


def field_types(cl: Any) -> dict[str, Any] | None:
    """Each field's type, with a generic model's parameters filled in."""
    origin = get_origin(cl) or cl
    mapping: dict[Any, Any] = {}
    if origin is not cl:
        mapping = dict(zip(origin.__parameters__, get_args(cl), strict=False))
    types: dict[str, Any] = {}
    for a in attrs.fields(origin):
        t = a.type
        if isinstance(t, TypeVar):
            if t not in mapping:
                return None
            t = mapping[t]
        elif get_origin(t) is list and isinstance(get_args(t)[0], TypeVar):
            if get_args(t)[0] not in mapping:
                return None
            t = list.__class_getitem__(mapping[get_args(t)[0]])
        types[a.name] = t
    return types


def _slot_setters(cl: type, names: list[str]) -> dict[str, Any] | None:
    """Each field's slot setter, if every field (and `extra`) is a plain slot."""
    slots = set(cl.__dict__.get("__slots__", ()))
    if not slots or slots - {*names, "extra", "__weakref__"}:
        return None  # a cached hash, or a slot this does not know to set
    setters = {}
    for name in (*names, "extra"):
        descriptor: Any = cl.__dict__.get(name)
        if type(descriptor).__name__ != "member_descriptor":
            return None
        setters[name] = descriptor.__set__
    return setters


def build_model(
    conv: Any,
    cl: Any,
    hooks: dict[str, Callable[..., Any]],
    known: frozenset[str],
) -> Callable[[Any], Any] | None:
    """The fast function for model *cl*, or *None* if a field needs cattrs.

    Args:
        conv: The converter whose hooks these are.
        cl: The attrs model (or a generic model with its arguments).
        hooks: Each field's structure hook, as the converter has it.
        known: The keys that are fields (every other key goes to `extra`).
    """
    origin = get_origin(cl) or cl
    types = field_types(cl)
    if types is None or getattr(origin, "__attrs_post_init__", None) is not None:
        return None
    gen = _Gen(conv)
    gen.emit(0, "def fast(o):")
    gen.emit(1, "if o.__class__ is not dict: raise _NotFast")
    kwargs: list[tuple[str, str]] = []
    aliases: list[str] = []
    for i, a in enumerate(attrs.fields(origin)):
        if a.name == "extra":
            continue
        if a.validator is not None or a.converter is not None or not a.init:
            return None
        v = f"v{i}"
        key = repr(a.name)
        indent = 1
        if a.default is not attrs.NOTHING:
            gen.emit(1, f"if {key} in o:")
            indent = 2
        gen.emit(indent, f"{v} = o[{key}]")
        _inline(gen, indent, v, hooks[a.name], types[a.name])
        if a.default is not attrs.NOTHING:
            gen.emit(1, "else:")
            default = a.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if default.takes_self:
                    return None
                gen.emit(2, f"{v} = {gen.bind(default.factory)}()")
            else:
                gen.emit(2, f"{v} = {gen.bind(default)}")
        kwargs.append((a.name, v))
        aliases.append(a.alias)
    known_name = gen.bind(known)
    gen.emit(1, f"if {known_name}.issuperset(o):")
    gen.emit(2, "extra = {}")
    gen.emit(1, "else:")
    # The unknown keys in one C-speed set difference; the dict keeps the
    # body's order, as the detailed path does.
    gen.emit(2, f"unknown = o.keys() - {known_name}")
    gen.emit(2, "extra = {k: o[k] for k in o if k in unknown}")
    setters = _slot_setters(origin, [name for name, _ in kwargs])
    if setters is None:
        pairs = zip(kwargs, aliases, strict=True)
        args = ", ".join(f"{alias}={v}" for (_, v), alias in pairs)
        gen.emit(1, f"obj = {gen.bind(origin)}({args})")
        gen.emit(1, "if extra: _set(obj, 'extra', extra)")
        gen.globs["_set"] = object.__setattr__
    else:
        # Straight into the slots, as attrs' own __init__ does for a frozen
        # class with no validators, converters or post-init (checked above),
        # without its keyword parsing.
        gen.emit(1, f"obj = _new({gen.bind(origin)})")
        for name, v in kwargs:
            gen.emit(1, f"{gen.bind(setters[name])}(obj, {v})")
        gen.emit(1, f"{gen.bind(setters['extra'])}(obj, extra)")
        gen.globs["_new"] = object.__new__
    gen.emit(1, "return obj")
    return _compile(gen, "fast", f"<openai_runs fast {cl!r}>")
