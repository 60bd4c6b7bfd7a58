"""``imcsim verify``: check every record file of a results directory without running it.

Each line of each ``*.jsonl`` file is classified:

* ``ok`` — sealed by this imcsim, digest matches, fields in range, content key current;
* ``tampered`` — its values do not match the digest written with them (an edit, a bit
  flip, a bad merge of two files), or its content key does not follow from its inputs;
* ``invalid`` — not a JSON record, or a field out of the range its schema demands;
* ``unsealed`` — no digest: written by an imcsim before record digests;
* ``other-version`` — sealed by another imcsim code version (``results.code_version``);
  a rerun recomputes it;
* ``stale`` — an input it was computed from (layer table, chip file, weights) has changed
  since, or is gone;
* ``torn`` — a last line cut by a killed write (harmless: a resume cuts it); not a fault.

Sweep records (``results.jsonl``), compression records (``compression.jsonl``) and
rank-search grids (records with ``spec`` and ``layers``) have their content key
recomputed from today's inputs; other record files get the digest, version and schema
checks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from imcsim._config import one_line
from imcsim.errors import ConfigError, ImcsimError
from imcsim.studies.results import (
    CODE_FIELD,
    DIGEST_FIELD,
    MAX_RESULTS_BYTES,
    RESULTS,
    Record,
    SweepRecord,
    check_seal,
    code_version,
)

__all__ = ["FAULTS", "Finding", "Verification", "verify_file", "verify_path"]

FAULTS = ("tampered", "invalid", "unsealed", "other-version", "stale")
"""Statuses that make ``imcsim verify`` exit non-zero."""


@dataclass(frozen=True)
class Finding:
    """One line of a record file that is not ``ok``."""

    file: str
    line: int
    status: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.status}: {self.detail}"


@dataclass
class Verification:
    """What ``verify_path`` found: counts by status and every line that is not ok."""

    files: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.counts[s] for s in FAULTS)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "code_version": code_version(), "files": self.files,
                "counts": dict(sorted(self.counts.items())),
                "findings": [vars(f) for f in self.findings]}


def _sweep_key(record: Record) -> tuple[str, str]:
    from imcsim.studies.evaluate import chip_digest, model_digest
    from imcsim.studies.sweep import record_key

    now = {"model_digest": model_digest(record["model"]), "chip_digest": chip_digest(record["chip"])}
    changed = [k for k, v in now.items() if record.get(k) != v]
    return record_key({**record, **now}), ", ".join(changed)


def _compression_key(record: Record) -> tuple[str, str]:
    from imcsim.studies.mission import _key

    return _key(record), ""


def _grid_key(record: Record) -> tuple[str, str]:
    from imcsim.studies.rank_search_study import spec_key

    return spec_key(record["spec"]), ""


def _kind(path: Path, record: Record) -> tuple[type[BaseModel] | None, Callable | None]:
    """The schema and key function of a record, by its file's name (or its fields)."""
    if path.name == RESULTS:
        return SweepRecord, _sweep_key
    if path.name == "compression.jsonl":
        from imcsim.studies.mission import CompressionRecord

        return CompressionRecord, _compression_key
    if "spec" in record and "layers" in record:
        from imcsim.studies.rank_search_study import RankSearchRecord

        return RankSearchRecord, _grid_key
    if path.name.startswith("variants-"):
        from imcsim.studies.date2025 import VariantRecord

        return VariantRecord, None
    return None, None


def _status(path: Path, data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return "invalid", f"a JSON {type(data).__name__}, not a record"
    seal = check_seal(data)
    if seal == "tampered":
        return "tampered", "values do not match the digest written with them"
    schema, key_of = _kind(path, data)
    if schema is not None:
        try:
            schema.model_validate({k: v for k, v in data.items() if k != DIGEST_FIELD})
        except ValidationError as exc:
            return "invalid", one_line("", exc, "")
    if seal == "unsealed":
        return "unsealed", "no record digest (written by an older imcsim); a rerun recomputes it"
    if data.get(CODE_FIELD) != code_version():
        return "other-version", (f"written by imcsim {data.get(CODE_FIELD)}, this is "
                                 f"{code_version()}; a rerun recomputes it")
    if key_of is None or "key" not in data:
        return "ok", ""
    try:
        key, changed = key_of(data)
    except (ImcsimError, OSError, KeyError, ValueError) as exc:
        return "stale", f"an input cannot be read now ({exc})"
    if changed:
        return "stale", f"input changed since: {changed}"
    if key != data["key"]:
        return "tampered", "the content key does not follow from the record's inputs"
    return "ok", ""


def verify_file(path: Path, report: Verification) -> None:
    """Classify every line of one record file into ``report``."""
    if path.stat().st_size > MAX_RESULTS_BYTES:
        report.findings.append(Finding(str(path), 0, "invalid", "larger than 2 GiB; not read"))
        report.counts["invalid"] += 1
        return
    report.files.append(str(path))
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn = bool(text) and not text.endswith("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if torn and number == len(lines):
            status, detail = "torn", "a cut last line (a killed write); a resume cuts it"
        else:
            try:
                status, detail = _status(path, json.loads(line))
            except (ValueError, RecursionError):
                status, detail = "invalid", "not JSON"
        report.counts[status] += 1
        if status != "ok":
            report.findings.append(Finding(str(path), number, status, detail))


def verify_path(target: str | Path) -> Verification:
    """Check a record file, or every ``*.jsonl`` under a directory."""
    target = Path(target)
    if not target.exists():
        raise ConfigError(f"{str(target)!r} does not exist")
    files = [target] if target.is_file() else sorted(target.rglob("*.jsonl"))
    if not files:
        raise ConfigError(f"{str(target)!r} holds no record files (*.jsonl)")
    report = Verification()
    for path in files:
        verify_file(path, report)
    return report
