"""Reading params.yaml: the one reader every package's params models start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soil_contracts.errors import ContractError


def read_params_file(path: Path | str) -> dict[str, Any]:
    """params.yaml as a mapping of top-level sections (an empty file is an empty mapping).

    Raises:
        ContractError: the file is missing, unreadable, not UTF-8, not YAML (e.g. merge conflict
            markers), or not a mapping at the top level; the message names the file.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContractError(f"{path}: params file not found") from exc
    except UnicodeDecodeError as exc:
        raise ContractError(f"{path}: params file is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ContractError(f"{path}: cannot read params file ({exc.strerror or exc})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        hint = "; it holds merge conflict markers" if "<<<<<<<" in text else ""
        raise ContractError(f"{path}: not valid YAML{where}{hint}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: expected a mapping of stage sections at the top level")
    return raw
