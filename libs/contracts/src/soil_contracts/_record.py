"""Base class of every shared record: strict pydantic, JSON ``load``/``save`` with atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError

from soil_contracts.errors import ContractError
from soil_contracts.files import write_text_atomic


class Record(BaseModel):
    """A JSON file that crosses a package boundary; unknown keys and wrong types are refused."""

    model_config = ConfigDict(extra="forbid")

    #: What the file is, for messages ("model metadata").
    kind: str = "record"

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Read and validate ``path``.

        Raises:
            ContractError: missing, unreadable, not JSON, or not this record (the field is named).
        """
        path = Path(path)
        what = cls.model_fields["kind"].default
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise ContractError(f"{path}: {what} not found") from exc
        except OSError as exc:
            raise ContractError(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError(f"{path}: {what} is not valid UTF-8 JSON ({exc})") from exc
        return cls.parse(data, where=str(path))

    @classmethod
    def parse(cls, data: object, *, where: str = "<data>") -> Self:
        """Validate an already-decoded object. Raises ContractError naming the first bad field."""
        what = cls.model_fields["kind"].default
        if not isinstance(data, dict):
            raise ContractError(f"{where}: {what} must be a JSON object, not {type(data).__name__}")
        try:
            return cls.model_validate({k: v for k, v in data.items() if k != "kind"})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise ContractError(f"{where}: {what}: {field}: {first['msg']}") from exc

    def to_json(self) -> str:
        """Indented JSON with a final newline; ``kind`` is not written."""
        return json.dumps(self.model_dump(mode="json", exclude={"kind"}), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path | str) -> Path:
        """Write the record to ``path`` all-or-nothing; returns ``path``."""
        return write_text_atomic(path, self.to_json())
