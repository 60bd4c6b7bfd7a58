"""Issue 29.1: every result record carries a digest of its values; a changed record is
reported and recomputed, never reused; ``imcsim verify`` says what is tampered, stale,
unsealed or from another code version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import run

TABLE = "name,in_channels,out_channels,kernel,input\nc1,3,16,3,16\nc2,16,16,3,16\n"


def sweep_args(out: Path) -> list[str]:
    return ["sweep", "--model", "t.csv", "--arrays", "64x64,128x128", "--mappers",
            "im2col,vw-sdk", "--workers", "1", "--out", str(out)]


@pytest.fixture
def swept(tmp_path: Path, capsys, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("t.csv").write_text(TABLE)
    out = tmp_path / "o"
    assert run(capsys, *sweep_args(out)).code == 0
    return out


def _edit(path: Path, number: int, **fields) -> dict:
    """Change fields of line ``number`` (1-based), keeping its old digest."""
    lines = path.read_text().splitlines()
    record = json.loads(lines[number - 1])
    original = dict(record)
    record.update(fields)
    lines[number - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return original


def test_records_are_sealed_with_digest_and_code_version(swept: Path) -> None:
    from imcsim.studies.results import check_seal, code_version

    records = [json.loads(ln) for ln in (swept / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4
    assert all(check_seal(r) == "" and r["code_version"] == code_version() for r in records)


def test_an_edited_value_is_reported_and_recomputed(swept: Path, capsys) -> None:
    path = swept / "results.jsonl"
    original = _edit(path, 2, cycles=7)  # in range: only the digest can tell
    again = run(capsys, *sweep_args(swept))
    assert again.code == 0, again.err
    notices = [ln for ln in again.err.splitlines() if ln.startswith("imcsim: notice:")]
    assert len(notices) == 1 and "results.jsonl line 2" in notices[0], again.err
    assert "digest" in notices[0]
    from imcsim.studies.sweep import read_results

    latest = {(r["array"], r["mapper"]): r for r in read_results(path)}
    assert latest[(original["array"], original["mapper"])]["cycles"] == original["cycles"] != 7


def test_unsealed_records_are_stale_and_recomputed(swept: Path, capsys) -> None:
    path = swept / "results.jsonl"
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "record_digest"})
                            + "\n" for r in lines))
    again = run(capsys, *sweep_args(swept))
    assert again.code == 0, again.err
    assert "no record digest" in again.err and "4 more" not in again.err
    assert len(path.read_text().splitlines()) == 8  # all four recomputed and appended


def test_verify_passes_a_clean_directory(swept: Path, capsys) -> None:
    result = run(capsys, "verify", str(swept), "--format", "json")
    assert result.code == 0, result.out + result.err
    report = result.json()
    assert report["ok"] and report["counts"] == {"ok": 4} and report["findings"] == []


def test_verify_names_tampered_invalid_and_unsealed_lines(swept: Path, capsys) -> None:
    path = swept / "results.jsonl"
    _edit(path, 1, cycles=7)
    _edit(path, 3, record_digest="0" * 16, utilization=3.0)
    lines = path.read_text().splitlines()
    unsealed = json.loads(lines[3])
    del unsealed["record_digest"]
    path.write_text("\n".join([*lines[:3], json.dumps(unsealed), "[1]"]) + "\n{\"torn")
    result = run(capsys, "verify", str(swept), "--format", "json")
    assert result.code == 1
    found = {(f["line"], f["status"]) for f in result.json()["findings"]}
    assert found == {(1, "tampered"), (3, "tampered"), (4, "unsealed"), (5, "invalid"),
                     (6, "torn")}
    table = run(capsys, "verify", str(swept))
    assert table.code == 1 and "results.jsonl line 1: tampered" in table.out


def test_verify_finds_stale_inputs_and_other_versions(swept: Path, capsys, monkeypatch) -> None:
    Path("t.csv").write_text(TABLE.replace("16,16,3,16", "16,32,3,16"))
    stale = run(capsys, "verify", str(swept), "--format", "json")
    assert stale.code == 1 and stale.json()["counts"] == {"stale": 4}
    assert "model_digest" in stale.json()["findings"][0]["detail"]
    import imcsim.studies.verify as verify

    monkeypatch.setattr(verify, "code_version", lambda: "0.0.0+other")
    other = run(capsys, "verify", str(swept / "results.jsonl"), "--format", "json")
    assert other.code == 1 and other.json()["counts"] == {"other-version": 4}


def test_verify_refuses_a_missing_directory(tmp_path: Path, capsys) -> None:
    result = run(capsys, "verify", str(tmp_path / "nope"))
    assert result.code == 2 and "does not exist" in result.err


def test_rank_search_state_files_are_sealed(tmp_path: Path) -> None:
    from imcsim.errors import ImcsimWarning
    from imcsim.hardware import build_chip
    from imcsim.studies.rank_search import RankSearchSpec, _State

    state = _State(tmp_path, RankSearchSpec(chip=build_chip(None, "128x128")))
    state.write("result.json", {"total": {"cycles": 2874}})
    assert state.read("result.json") == {"total": {"cycles": 2874}}
    path = tmp_path / "result.json"
    path.write_text(path.read_text().replace("2874", "7"))
    with pytest.warns(ImcsimWarning, match="does not match its digest"):
        assert state.read("result.json") is None  # the stage is recomputed


@pytest.mark.slow  # captures ResNet-20 (~10 s idle)
def test_compression_records_are_sealed_and_verified(tmp_path: Path, capsys) -> None:
    from imcsim.studies.mission import CompressionStudy, run_compression

    spec = CompressionStudy(methods=("dense-im2col",), accuracy=False, workers=1)
    [record] = run_compression(spec, tmp_path)
    assert run(capsys, "verify", str(tmp_path)).code == 0
    path = tmp_path / "compression.jsonl"
    path.write_text(path.read_text().replace(f'"cycles": {record["cycles"]}', '"cycles": 7'))
    result = run(capsys, "verify", str(tmp_path), "--format", "json")
    assert result.code == 1 and result.json()["counts"] == {"tampered": 1}
    assert run_compression(spec, tmp_path)[0]["cycles"] == record["cycles"]  # recomputed
