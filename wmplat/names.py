"""Names of zoos, tasks, methods, baselines and metrics: what the command line takes, and what
cache and results folders are called. A name is never a path (docs/zoo-format.md#names).

One rule everywhere: a letter or digit, then letters, digits, `.`, `_` and `-`; no `..`; at most
100 characters. So a name is one path component, never `.` or `..`, and used as it is.
"""

import re
from typing import Annotated

from pydantic import AfterValidator

from .errors import ConfigError, WmplatError

NAME_MAX = 100
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = ("use letters, digits, '.', '_' and '-', starting with a letter or digit "
             f"(no '..', at most {NAME_MAX} characters)")


def is_name(value: object) -> bool:
    return (isinstance(value, str) and len(value) <= NAME_MAX and ".." not in value
            and NAME.fullmatch(value) is not None)


def name_error(kind: str, value: object, where: str = "") -> str | None:
    """Why `value` is not a valid `kind` name (`where` says where it came from), or None."""
    if is_name(value):
        return None
    origin = f" {where}" if where else ""
    return f"{kind} name {value!r}{origin} is not a valid name: {NAME_RULE}"


def check_name(kind: str, value: str, where: str = "",
               error: type[WmplatError] = ConfigError) -> str:
    """`value` if it is a valid name, else raise `error` saying what is wrong and what to do."""
    problem = name_error(kind, value, where)
    if problem:
        raise error(problem)
    return value


def _validate(value: str) -> str:
    if not is_name(value):
        raise ValueError(f"{value!r} is not a valid name: {NAME_RULE}")
    return value


Name = Annotated[str, AfterValidator(_validate)]
"""A `str` field of a schema model that must follow the name rule."""
