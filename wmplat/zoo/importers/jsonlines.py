"""JSON-lines files of the sources (Ray Tune's result.json, --metadata), read with one-line
errors that name the file and the line."""

import json
from collections.abc import Iterator


def json_objects(text: str, where: str, error: type[Exception]) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-empty line; `error` names `where` and the line."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise error(f"{where}:{number}: not a JSON object")
        yield number, row
