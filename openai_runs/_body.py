"""Request bodies: models or plain dicts, checked against the models before sending."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, get_origin

import cattrs

from ._converter import client_converter, request_converter
from .exceptions import InvalidRequestError

__all__ = ["check_number", "structured", "wire"]

T = TypeVar("T")


def structured(name: str, value: Any, cl: Any) -> Any:
    """Return *value* as the models of *cl*, whether given as models or as JSON.

    A plain dict takes the JSON shape of the API reference, as in
    openai-python: `{"type": "function", "function": {"name": "f"}}` for a
    tool. Models inside dicts, and dicts inside lists, are fine too. The
    value goes through the same converter that reads the API's answers, so
    a shape the SDK could not read back (a `tool_choice` of `{"bogus": 1}`)
    is refused here, before anything is sent, and a shape it can read (an
    unknown tool type, extra keys) is sent as given.

    Args:
        name: The parameter, for the error.
        value: The argument as the caller gave it.
        cl: The type it must structure into, such as `list[Tool]`.

    Returns:
        The value as models.

    Raises:
        InvalidRequestError: *value* does not have the shape of *cl*.
    """
    if get_origin(cl) is list and (
        isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence)
    ):
        raise InvalidRequestError(name, f"must be a list, not {type(value).__name__}")
    try:
        return client_converter().structure(request_converter.unstructure(value), cl)
    except cattrs.BaseValidationError as exc:
        detail = "; ".join(cattrs.transform_error(exc, path=name)[:5])
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
    raise InvalidRequestError(name, f"not the shape the API takes: {detail}")


def wire(value: Any) -> Any:
    """The JSON of *value*: models unstructured, unset optional fields left out."""
    return request_converter.unstructure(value)


def check_number(name: str, value: object, *, integer: bool = False) -> None:
    """Refuse what JSON cannot carry as a number: a non-number, NaN or infinity.

    Ranges (temperature 0 to 2, at least 256 tokens, ...) are the server's
    to judge: they drift between OpenAI, Azure and compatible servers.
    """
    if value is None:
        return
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise InvalidRequestError(name, f"must be {kind}, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequestError(name, f"must be a finite number, not {value}")
