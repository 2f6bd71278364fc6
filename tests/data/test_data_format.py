"""The `.npz` format: round trips, atomic writes, and clear refusals of bad files."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from physprior.data import FORMAT_VERSION, DatasetError, DatasetMeta, TransitionDataset

ARRAYS = ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode")


def _arrays(ds: TransitionDataset) -> dict[str, np.ndarray]:
    return {name: getattr(ds, name) for name in ARRAYS}


def _write_npz(path: Path, **arrays: object) -> Path:
    """An npz written without the dataset's checks (so that it can be wrong)."""
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_round_trip_keeps_arrays_dtypes_and_meta(toy, tmp_path: Path) -> None:
    ds = toy([4, 2, 6], dim=4, action_dim=2)
    ds = dataclasses.replace(
        ds, meta=dataclasses.replace(ds.meta, agent="sac", seed=7, steps=12, extra={"a": [1, 2]})
    )
    loaded = TransitionDataset.load(ds.save(tmp_path / "sub" / "data.npz"))
    for name, array in _arrays(ds).items():
        got = getattr(loaded, name)
        assert got.dtype == array.dtype, name
        np.testing.assert_array_equal(got, array, err_msg=name)
    assert loaded.meta == ds.meta
    assert loaded.meta.format_version == FORMAT_VERSION


def test_save_is_atomic_and_leaves_no_temporary_file(toy, tmp_path: Path) -> None:
    target = tmp_path / "data.npz"
    toy([3]).save(target)
    before = target.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]

    # A failure half-way (meta that JSON cannot write) keeps the old file and no leftovers.
    bad = toy([5])
    bad = dataclasses.replace(bad, meta=dataclasses.replace(bad.meta, extra={"x": object()}))
    with pytest.raises(TypeError):
        bad.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]
    assert target.read_bytes() == before


def test_nan_rows_are_reported_with_their_count(toy, tmp_path: Path) -> None:
    arrays = _arrays(toy([5, 5]))
    arrays["obs"] = arrays["obs"].copy()
    arrays["obs"][[2, 7], 0] = np.nan
    arrays["rewards"] = arrays["rewards"].copy()
    arrays["rewards"][7] = np.inf
    path = _write_npz(tmp_path / "nan.npz", meta=np.array(toy([1]).meta.to_json()), **arrays)
    with pytest.raises(DatasetError) as err:
        TransitionDataset.load(path)
    message = _one_line(err)
    assert "2 of 10 rows contain NaN or inf" in message
    assert "first at row 2" in message


def test_missing_arrays_are_named(toy, tmp_path: Path) -> None:
    arrays = _arrays(toy([3]))
    del arrays["rewards"], arrays["episode"]
    path = _write_npz(tmp_path / "missing.npz", meta=np.array(toy([1]).meta.to_json()), **arrays)
    with pytest.raises(DatasetError) as err:
        TransitionDataset.load(path)
    assert "missing array(s) rewards, episode" in _one_line(err)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("next_obs", np.zeros((4, 2)), "next_obs has shape (4, 2), expected (3, 2)"),
        ("obs", np.zeros(3), "obs must be (N, D)"),
        ("terminated", np.zeros(3), "terminated must be a bool array"),
        ("episode", np.zeros(3), "episode must be an integer array"),
    ],
)
def test_wrong_shapes_and_dtypes_are_named(toy, tmp_path, name, value, expected) -> None:
    arrays = _arrays(toy([3]))
    arrays[name] = value
    path = _write_npz(tmp_path / "bad.npz", meta=np.array(toy([1]).meta.to_json()), **arrays)
    with pytest.raises(DatasetError) as err:
        TransitionDataset.load(path)
    assert expected in _one_line(err)


def test_random_bytes_are_not_a_dataset(tmp_path: Path) -> None:
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DatasetError) as err:
        TransitionDataset.load(path)
    assert "not an .npz file" in _one_line(err)


def test_truncated_file_is_refused(toy, tmp_path: Path) -> None:
    path = toy([50], dim=6).save(tmp_path / "data.npz")
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:keep])
        with pytest.raises(DatasetError) as err:
            TransitionDataset.load(path)
        assert str(path) in _one_line(err)


def test_object_arrays_are_refused_without_unpickling(toy, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Payload:
        """Unpickling this creates `marker`: the test fails if that ever happens."""

        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))

    evil = np.empty(3, dtype=object)
    evil[:] = [Payload(), Payload(), Payload()]
    arrays: dict[str, object] = dict(_arrays(toy([3])))
    meta = np.array(toy([1]).meta.to_json())
    for name in ("rewards", "meta"):
        case = {**arrays, "meta": meta, name: evil}
        path = tmp_path / f"evil_{name}.npz"
        np.savez(path, **case)  # type: ignore[arg-type]
        with pytest.raises(DatasetError) as err:
            TransitionDataset.load(path)
        assert "unpickling" in _one_line(err)
        assert not marker.exists()


def test_a_pickle_renamed_to_npz_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickle.npz"
    import pickle

    path.write_bytes(pickle.dumps({"obs": [1, 2, 3]}))
    with pytest.raises(DatasetError) as err:
        TransitionDataset.load(path)
    assert "not an .npz file" in _one_line(err)


def test_wrong_meta_version_and_bad_meta_are_refused(toy, tmp_path: Path) -> None:
    arrays = _arrays(toy([3]))
    raw = json.loads(toy([1]).meta.to_json())
    cases = {
        "version": ({**raw, "format_version": 99}, "format version 99 is not supported"),
        "layout": ({**raw, "state_layout": "xy"}, "state_layout must be 'qp' or 'qv'"),
        "unknown": ({**raw, "colour": "red"}, "unknown field(s) colour"),
        "lacking": ({k: v for k, v in raw.items() if k != "dt"}, "lacks required field(s) dt"),
    }
    for case, (meta, expected) in cases.items():
        path = _write_npz(tmp_path / f"{case}.npz", meta=np.array(json.dumps(meta)), **arrays)
        with pytest.raises(DatasetError) as err:
            TransitionDataset.load(path)
        assert expected in _one_line(err), case


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        TransitionDataset.load(tmp_path / "absent.npz")


def test_non_contiguous_episodes_are_refused(toy) -> None:
    ds = toy([2, 2, 2])
    episode = np.array([0, 0, 1, 1, 0, 0])
    with pytest.raises(DatasetError, match="contiguous runs"):
        dataclasses.replace(ds, episode=episode)


def test_npz_with_extra_junk_member_still_loads(toy, tmp_path: Path) -> None:
    """Unknown extra members are ignored (forward compatible), never unpickled."""
    path = toy([3]).save(tmp_path / "data.npz")
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.npy", buf.getvalue())
    assert len(TransitionDataset.load(path)) == 3


def test_meta_json_round_trip() -> None:
    meta = DatasetMeta(env_id="e", dt=0.5, q_dim=2, state_layout="qv", extra={"k": 1})
    assert DatasetMeta.from_json(meta.to_json()) == meta


def test_model_fields_build_a_model_that_fits_the_data(toy) -> None:
    from physprior.models import make

    ds = toy([4, 3], dim=2, action_dim=1)
    fields = ds.model_fields()
    assert fields == {
        "obs_dim": 2,
        "action_dim": 1,
        "q_dim": ds.meta.q_dim,
        "state_layout": ds.meta.state_layout,
        "dt": ds.meta.dt,
        "env_id": ds.meta.env_id,
    }
    model = make("mlp", **fields, hidden=8)
    assert (model.config.obs_dim, model.config.action_dim, model.config.dt) == (2, 1, ds.meta.dt)
