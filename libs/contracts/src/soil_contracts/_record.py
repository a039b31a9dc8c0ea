"""Base class of every shared record: strict pydantic, JSON ``load``/``save`` with atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError

from soil_contracts.errors import ContractError
from soil_contracts.files import write_text_atomic

YAML_SUFFIXES = {".yaml", ".yml"}


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
        yaml_file = path.suffix.lower() in YAML_SUFFIXES
        try:
            text = raw.decode("utf-8")
            data = _yaml_load(text) if yaml_file else json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            form = "YAML" if yaml_file else "JSON"
            raise ContractError(f"{path}: {what} is not valid UTF-8 {form} ({exc})") from exc
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

    def to_yaml(self) -> str:
        """Block-style YAML in field order; ``kind`` is not written."""
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json", exclude={"kind"}), sort_keys=False, allow_unicode=True)

    def save(self, path: Path | str) -> Path:
        """Write the record to ``path`` (YAML for ``.yaml``/``.yml``, else JSON) all-or-nothing."""
        yaml_file = Path(path).suffix.lower() in YAML_SUFFIXES
        return write_text_atomic(path, self.to_yaml() if yaml_file else self.to_json())


def _yaml_load(text: str) -> object:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from exc
