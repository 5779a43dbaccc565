"""fcap.io: fcap writes into and removes only folders it created and marked."""
import json
from pathlib import Path

import pytest

from fcap.io import (MARKER, OwnershipError, UnwritableError, claim_dir, is_owned, remove_owned,
                     remove_scratch, write_json_atomic)

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_claim_creates_and_marks_a_new_folder(tmp_path):
    out = claim_dir(tmp_path / "a" / "b", kind="run")
    assert out.is_dir() and is_owned(out)
    assert json.loads((out / MARKER).read_text())["kind"] == "run"


def test_claim_marks_an_empty_folder_and_accepts_a_marked_one(tmp_path):
    (tmp_path / "empty").mkdir()
    claim_dir(tmp_path / "empty", kind="x")
    (tmp_path / "empty" / "data.bin").write_bytes(b"1")
    assert claim_dir(tmp_path / "empty", kind="x") == tmp_path / "empty"


def test_claim_refuses_a_folder_with_foreign_files_naming_path_and_key(tmp_path):
    (tmp_path / "theirs.txt").write_text("precious")
    with pytest.raises(OwnershipError, match=r"theirs|out_dir") as err:
        claim_dir(tmp_path, kind="feature cache", key="out_dir")
    assert str(tmp_path) in str(err.value) and "out_dir" in str(err.value)
    assert not is_owned(tmp_path)
    assert (tmp_path / "theirs.txt").read_text() == "precious"


def test_claim_while_another_process_writes_the_marker(tmp_path):
    # two SLURM array elements claim one shards folder: the first has made it and is
    # writing its marker under write_text_atomic's temporary name when the second looks
    out = tmp_path / "shards"
    out.mkdir()
    (out / f".{MARKER}.tmp4242").write_text("{}")
    assert claim_dir(out, kind="pseudolabel shards") == out and is_owned(out)
    # a user's file beside it is still refused
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / f".{MARKER}.tmp1").write_text("{}")
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    with pytest.raises(OwnershipError, match="holds files fcap did not write"):
        claim_dir(tmp_path / "theirs", kind="run")


def test_claim_when_another_process_finished_claiming_between_two_looks(tmp_path, monkeypatch):
    # two SLURM array elements on two nodes: the other one made the folder, wrote its
    # marker and a shard after this one found no marker and before it listed the folder
    # (CI saw "holds files fcap did not write" for the element that lost the race)
    import fcap.io

    out = tmp_path / "shards"
    claim_dir(out, kind="pseudolabel shards")
    (out / "shard-00001-of-00003.jsonl").write_text("{}\n")
    looks = []
    real = fcap.io.is_owned

    def first_look_misses(path):
        looks.append(path)
        return real(path) if len(looks) > 1 else False

    monkeypatch.setattr(fcap.io, "is_owned", first_look_misses)
    assert claim_dir(out, kind="pseudolabel shards") == out
    assert len(looks) >= 2


def test_claim_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OwnershipError, match="is a file"):
        claim_dir(tmp_path / "f", kind="run")
    # output_root=<a file>: was mkdir's NotADirectoryError traceback
    with pytest.raises(OwnershipError, match=f"fcap will not use {tmp_path}/f/exp/v \\(set by "
                                             f"output_root\\) as its run folder: {tmp_path}/f is "
                                             f"a file, not a folder"):
        claim_dir(tmp_path / "f" / "exp" / "v", kind="run", key="output_root")
    assert (tmp_path / "f").read_text() == "x"


def test_claim_where_no_folder_can_be_made_names_the_path_and_key():
    # output_root on a mount that is not there, or read-only: was mkdir's traceback, exit 1.
    # Under /proc nobody, root included, can make a folder.
    with pytest.raises(UnwritableError) as err:
        claim_dir("/proc/fcap-no-such/exp", kind="experiment", key="output_root")
    assert str(err.value).startswith(
        "fcap cannot create its experiment folder /proc/fcap-no-such/exp (set by output_root): ")
    assert "choose a path this user can write" in str(err.value)


def test_an_unwritable_output_root_is_a_configuration_error_before_any_stage(tmp_path, in_tmp,
                                                                             capsys):
    from fcap.cli import main

    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\nstages:\n  s: {task: toy_write, value: 1}\n"
                   f"plugins: [{FIXTURES / 'plugins' / 'toy_tasks.py'}]\n")
    assert main([str(exp), "output_root=/proc/fcap-no-such"]) == 2
    err = capsys.readouterr().err
    assert "fcap-run: fcap cannot create its experiment folder /proc/fcap-no-such/e" in err
    assert "Traceback" not in err


def test_remove_owned_refuses_unmarked_and_removes_marked(tmp_path):
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "keep").write_text("k")
    with pytest.raises(OwnershipError, match="no .fcap-owned marker"):
        remove_owned(tmp_path / "user")
    assert (tmp_path / "user" / "keep").exists()
    mine = claim_dir(tmp_path / "mine", kind="x")
    (mine / "f").write_text("f")
    assert remove_owned(mine) and not mine.exists()
    assert remove_owned(tmp_path / "absent") is False


def test_remove_scratch_only_fcap_scratch_names_inside_a_marked_folder(tmp_path):
    parent = claim_dir(tmp_path / "run", kind="run")
    (parent / ".adapters.tmp").mkdir()
    assert remove_scratch(parent / ".adapters.tmp")
    (parent / "adapters").mkdir()
    with pytest.raises(OwnershipError, match="scratch"):
        remove_scratch(parent / "adapters")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / ".x.tmp").mkdir()
    with pytest.raises(OwnershipError, match="marker"):
        remove_scratch(tmp_path / "user" / ".x.tmp")
    assert (tmp_path / "user" / ".x.tmp").is_dir()


def test_write_json_atomic_leaves_no_temporary_and_nulls_nan(tmp_path):
    write_json_atomic(tmp_path / "s.json", {"a": float("nan"), "b": [1.5]})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": None, "b": [1.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
