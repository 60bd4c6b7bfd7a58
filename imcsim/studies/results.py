"""Sweep records on disk: content keys, validation on read, notices for what is ignored.

A record is trusted only if (1) it parses as one JSON object, (2) every field has the
type and range ``SweepRecord`` demands (a hand-edited ``"cycles": -5`` does not), and
(3) its ``key`` equals the content key of a point being run now, and (4) its values are
the ones that were written: ``append_record`` seals every record with the imcsim code
version and a digest of all its fields (``record_digest``); a record whose digest does
not match (a hand edit, a bit flip, a bad merge) is reported and recomputed, never
reused.  A record without a digest was written by an imcsim before record digests: its
content key holds another semantics version, so it is stale anyway and is recomputed (with
a notice); ``imcsim sweep plot`` still shows such records, marked unverified.  The key
hashes the point's inputs, the *content* of every file the point reads (layer table, chip file and
the chip files it borrows from, shipped weights, a user's model source, weights and data)
and the semantics version of the record format (``RESULT_SEMANTICS``), so an edited input
never reuses an old number and a new commit does not invalidate every shipped output.
Nothing on disk is deleted: an ignored line stays in the file and is reported once as a
one-line notice.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imcsim._config import one_line
from imcsim.errors import ConfigError

__all__ = ["CODE_FIELD", "DIGEST_FIELD", "RESULTS", "RESULT_SEMANTICS", "Results", "SweepRecord",
           "append_record", "check_seal", "code_version", "content_key", "digest", "load_results",
           "record_digest", "repair_torn_line", "seal"]

Record = dict[str, Any]
RESULTS = "results.jsonl"
RESULT_SEMANTICS = 2
"""Version of what a sweep record's numbers mean.  Bump it in the change that alters a
result (a counting convention, a cost formula, a new field a reader relies on); the
package version and unrelated edits do not touch it, so shipped study outputs stay valid
across commits.  2: records carry the workload (model, weights, data digests)."""
MAX_RESULTS_BYTES = 2**31
"""Largest results file read (2 GiB ≈ 2 million records)."""
_SHOWN = 3
"""Notices listed one by one before the rest are counted."""
DIGEST_FIELD = "record_digest"
"""The field holding the digest of all of a record's other fields."""
CODE_FIELD = "code_version"
"""The field naming the imcsim code version (``code_version()``) that wrote a record."""


def digest(data: bytes | str) -> str:
    """Short SHA-256 hex digest of ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:16]


@lru_cache(maxsize=1)
def code_version() -> str:
    """``imcsim.__version__`` plus a digest of the package's Python sources."""
    import imcsim

    root = Path(imcsim.__file__).parent
    hasher = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        hasher.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"{imcsim.__version__}+{hasher.hexdigest()[:12]}"


def content_key(inputs: Record, contents: dict[str, str]) -> str:
    """Key of a point: its inputs, the digests of what it reads, ``RESULT_SEMANTICS``."""
    payload = {"inputs": inputs, "contents": contents, "semantics": RESULT_SEMANTICS}
    return digest(json.dumps(payload, sort_keys=True))


def record_digest(record: Record) -> str:
    """Digest of every field of ``record`` but ``DIGEST_FIELD`` (canonical JSON)."""
    body = {k: v for k, v in record.items() if k != DIGEST_FIELD}
    return digest(json.dumps(body, sort_keys=True, allow_nan=True))


def seal(record: Record) -> Record:
    """``record`` as it reads back from JSON, stamped with the code version (unless it
    has one: a reused record keeps its writer's) and its digest, last."""
    body = json.loads(json.dumps(record))
    body.pop(DIGEST_FIELD, None)
    body.setdefault(CODE_FIELD, code_version())
    return {**body, DIGEST_FIELD: record_digest(body)}


def check_seal(record: Record) -> str:
    """``""`` if the record's digest matches its values, else why not (``"unsealed"``:
    no digest, an older imcsim; ``"tampered"``: values differ from those written)."""
    if DIGEST_FIELD not in record:
        return "unsealed"
    return "" if record[DIGEST_FIELD] == record_digest(record) else "tampered"


class SweepRecord(BaseModel):
    """The fields every sweep record must carry, with their ranges (others pass through)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    key: str = Field(min_length=1)
    model: str
    compression: str
    keep: float = Field(gt=0, le=1)
    chip: str
    array: str = Field(pattern=r"^[0-9]{1,5}x[0-9]{1,5}$")
    mapper: str
    adc_bits: int | None = Field(ge=1)
    cell_bits: int | None = Field(ge=1)
    schedule: str
    measure_accuracy: bool
    images: int = Field(ge=1)
    model_digest: str
    chip_digest: str
    cycles: int = Field(ge=1)
    latency_cycles: int = Field(ge=1)
    im2col_cycles: int = Field(ge=1)
    dense_im2col_cycles: int = Field(ge=1)
    speedup: float = Field(gt=0)
    utilization: float = Field(gt=0, le=1)
    tiles: int = Field(ge=1)
    params: int = Field(ge=0)
    dense_params: int = Field(ge=1)
    layer_cycles: list[list[str | int]] = Field(min_length=1, max_length=10_000)
    latency_ns: float | None = Field(default=None, ge=0)
    interval_ns: float | None = Field(default=None, ge=0)
    energy_pj: float | None = Field(default=None, ge=0)
    area_um2: float | None = Field(default=None, ge=0)
    tops: float | None = Field(default=None, ge=0)
    tops_per_w: float | None = Field(default=None, ge=0)
    energy_breakdown_pj: dict[str, float] | None = None
    accuracy: float | None = Field(default=None, ge=0, le=1)
    float_accuracy: float | None = Field(default=None, ge=0, le=1)

    @field_validator("layer_cycles")
    @classmethod
    def _pairs(cls, value: list[list[str | int]]) -> list[list[str | int]]:
        for item in value:
            ok = (len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], int)
                  and not isinstance(item[1], bool) and item[1] >= 0)
            if not ok:
                raise ValueError(f"expected [layer name, cycles >= 0] pairs, got {item!r}")
        return value

    @field_validator("energy_breakdown_pj")
    @classmethod
    def _energies(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        bad = [k for k, v in (value or {}).items() if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ValueError(f"{bad[0]}={value[bad[0]]!r} is not a finite energy >= 0")  # type: ignore[index]
        return value


@dataclass
class Results:
    """The trusted records of a results file (last one wins per key) and the notices."""

    records: dict[str, Record] = field(default_factory=dict)
    """Valid records by content key, in file order."""
    notices: list[str] = field(default_factory=list)
    """One line per ignored line (at most a few, then a count)."""

    def summary(self) -> list[str]:
        shown = self.notices[:_SHOWN]
        rest = len(self.notices) - len(shown)
        return shown + ([f"… and {rest} more ignored lines"] if rest else [])


_SEAL_NOTICES = {
    "tampered": "values do not match its digest (edited or corrupted); not trusted, recomputed",
    "unsealed": "has no record digest (written by an older imcsim); stale, recomputed",
}


def _check(line: str, number: int, path: Path, schema: type[BaseModel],
           accept_unsealed: bool = False) -> tuple[Record | None, str]:
    where = f"{path.name} line {number}"
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None, f"{where} is not JSON; ignored"
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        return None, f"{where}: {str(exc).splitlines()[0]}; ignored"
    if not isinstance(data, dict):
        return None, f"{where} is a JSON {type(data).__name__}, not a record; ignored"
    if "key" not in data:
        return None, f"{where} has no content key (written by an older imcsim); ignored"
    try:
        schema.model_validate({k: v for k, v in data.items() if k != DIGEST_FIELD})
    except ValidationError as exc:
        return None, f"{one_line('', exc, where)}; not trusted, recomputed if needed"
    seal_problem = check_seal(data)
    if seal_problem == "tampered" or (seal_problem and not accept_unsealed):
        return None, f"{where}: {_SEAL_NOTICES[seal_problem]}"
    return data, f"{where} has no record digest (older imcsim); shown unverified" if seal_problem else ""


def load_results(path: str | Path, schema: type[BaseModel] = SweepRecord, *,
                 accept_unsealed: bool = False) -> Results:
    """Read ``path`` (JSON lines); invalid lines become notices, never errors.  Every
    record must carry a ``key``, a matching digest (``check_seal``) and pass ``schema``
    (a pydantic model of its fields).  ``accept_unsealed`` keeps records without a digest
    (for display only, each with a notice); a tampered record is never kept.

    A torn last line (a run killed mid-write) is ignored silently.
    """
    path = Path(path)
    results = Results()
    if not path.exists():
        return results
    if not path.is_file():
        raise ConfigError(f"results file {str(path)!r} is not a file")
    try:
        if path.stat().st_size > MAX_RESULTS_BYTES:
            raise ConfigError(f"results file {str(path)!r} is larger than 2 GiB")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"results file {str(path)!r}: {exc.strerror or exc}") from None
    text = raw.decode("utf-8", errors="replace")
    torn = bool(text) and not text.endswith("\n")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (torn and number == len(lines)):
            continue
        record, notice = _check(line, number, path, schema, accept_unsealed)
        if notice:
            results.notices.append(notice)
        if record is not None:
            results.records.pop(record["key"], None)  # a later duplicate wins, in file order
            results.records[record["key"]] = record
    return results


def repair_torn_line(path: Path) -> None:
    """Cut a torn last line (a killed write) so appended records start on a fresh line."""
    if path.exists():
        with path.open("rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)


def append_record(handle: IO[str], record: Record) -> Record:
    """Write ``seal(record)`` as one line, flushed (a killed process loses no finished
    point); return the sealed record, as a later run will read it back."""
    sealed = seal(record)
    handle.write(json.dumps(sealed) + "\n")
    handle.flush()
    return sealed
