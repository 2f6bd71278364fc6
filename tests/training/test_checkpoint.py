"""Checkpoint folders: round trips, and a clear refusal of everything broken or foreign."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

import physprior
from physprior.training import CheckpointError, check_compatible, load_model, save_model


def _fitted(tiny, windows, **config):
    model = tiny(**config)
    states, actions, _ = windows(8, 4)
    model.fit_normalization(states, actions)
    return model, states, actions


def test_round_trip_gives_identical_parameters_and_predictions(tmp_path, tiny, windows, registered):
    model, states, actions = _fitted(tiny, windows)
    folder = save_model(model, tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = physprior.load_model(folder)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    own, back = model.state_dict(), loaded.state_dict()
    assert own.keys() == back.keys()
    for key in own:
        assert torch.equal(own[key], back[key]), key
    model.eval()
    with torch.no_grad():
        assert torch.equal(
            model.rollout(states[:, 0], actions), loaded.rollout(states[:, 0], actions)
        )


def test_float64_and_autonomous_models_round_trip(tmp_path, tiny, windows, registered):
    model = tiny(obs_dim=2, dt=0.1, action_dim=0).double()
    loaded = load_model(save_model(model, tmp_path / "c"))
    assert loaded.dtype == torch.float64
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)


def test_config_json_records_name_dims_and_version(tmp_path, tiny, registered):
    model = tiny(obs_dim=4, action_dim=2, dt=0.05, env_id="physprior/SpringChain-v0")
    header = json.loads((save_model(model, tmp_path / "c") / "config.json").read_text())
    assert header["format_version"] == 1 and header["model"] == registered
    assert header["config"]["obs_dim"] == 4 and header["config"]["action_dim"] == 2
    assert header["config"]["dt"] == 0.05
    assert header["config"]["env_id"] == "physprior/SpringChain-v0"


def test_save_replaces_a_checkpoint_but_refuses_other_folders(tmp_path, tiny, registered):
    first, second = tiny(seed=1), tiny(seed=2)
    target = tmp_path / "c"
    save_model(first, target)
    save_model(second, target)
    loaded = load_model(target)
    assert torch.equal(loaded.net[0].weight, second.net[0].weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temporary folders left
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a checkpoint folder"):
        save_model(first, other)
    assert (other / "readme.txt").read_text() == "keep me"


def test_a_swap_cut_between_its_renames_still_loads_the_previous_checkpoint(
    tmp_path, tiny, registered
):
    model = tiny()
    save_model(model, tmp_path / "c")
    (tmp_path / "c").rename(tmp_path / ".c.old")  # the state after the first of two renames
    loaded = load_model(tmp_path / "c")
    assert torch.equal(loaded.net[0].weight, model.net[0].weight)
    save_model(tiny(seed=5), tmp_path / "c")  # the next save completes the recovery
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


# ---------------------------------------------------------------------------------- refusals
@pytest.fixture
def saved(tmp_path, tiny, registered) -> Path:
    return save_model(tiny(), tmp_path / "ckpt")


def test_missing_folder_and_missing_files(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks model\.safetensors"):
        load_model(saved)


def test_truncated_weights_are_refused(saved):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(saved)
    assert weights.read_bytes() == data[: len(data) // 2]  # the files are left as they were


def test_truncated_weights_without_checksum_are_refused_by_the_parser(saved):
    header = json.loads((saved / "config.json").read_text())
    del header["sha256"]
    (saved / "config.json").write_text(json.dumps(header))
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_model(saved)


def test_flipped_byte_is_caught_by_the_checksum(saved):
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_model(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: "{not json", "not valid JSON"),
        (lambda h: "[1, 2]", "must hold a JSON object"),
        (lambda h: json.dumps({k: v for k, v in h.items() if k != "model"}), "lacks required"),
        (lambda h: json.dumps({**h, "format_version": 99}), "format_version 99"),
        (lambda h: json.dumps({**h, "model": "foo"}), "unknown model 'foo'; valid models are"),
        (lambda h: json.dumps({**h, "config": {**h["config"], "colour": 1}}), "colour"),
        (lambda h: json.dumps({**h, "config": {**h["config"], "hidden": 7}}), "shape"),
    ],
    ids=["not-json", "not-object", "no-model", "version", "unknown-model", "field", "shapes"],
)
def test_bad_config_json(saved, edit, message):
    file = saved / "config.json"
    file.write_text(edit(json.loads(file.read_text())))
    with pytest.raises(ValueError, match=message) as info:
        load_model(saved)
    assert "\n" not in str(info.value)


class _Exploit:
    """Unpickling this creates `marker`: proof that a loader executed pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_files_are_refused_and_never_executed(tmp_path, saved):
    marker = tmp_path / "pwned"
    torch_file = tmp_path / "model.pt"
    torch.save({"weights": _Exploit(marker)}, torch_file)
    with pytest.raises(CheckpointError, match="never loaded"):
        load_model(torch_file)
    # A pickle disguised as the weights file of a folder with a valid config.json.
    (saved / "model.safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError):
        load_model(saved)
    header = json.loads((saved / "config.json").read_text())
    del header["sha256"]  # even past the checksum, the safetensors parser refuses it
    (saved / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_model(saved)
    assert not marker.exists()


# ---------------------------------------------------------------------------------- compatibility
def test_check_compatible_names_both_dims(tiny):
    model = tiny(obs_dim=40, dt=0.1, action_dim=20, hidden=4)
    check_compatible(model, (40, 20))
    with pytest.raises(
        ValueError, match=r"model expects obs_dim 40 / action_dim 20, data has 12 / 6"
    ):
        check_compatible(model, (12, 6))
    states, actions = torch.zeros(3, 5, 12), torch.zeros(3, 4, 6)

    class Windows:
        pass

    w = Windows()
    w.states, w.actions = states, actions
    with pytest.raises(ValueError, match="data has 12 / 6"):
        check_compatible(model, w)
    with pytest.raises(TypeError, match="data must be"):
        check_compatible(model, "data.npz")


def test_check_compatible_reads_dataset_meta(tiny):
    from types import SimpleNamespace

    model = tiny(obs_dim=2, action_dim=1, dt=0.1)
    meta = SimpleNamespace(dt=0.1, state_layout="qp", q_dim=1, env_id="physprior/MassSpring-v0")
    data = SimpleNamespace(obs=torch.zeros(5, 2), actions=torch.zeros(5, 1), meta=meta)
    check_compatible(model, data)
    data.meta = SimpleNamespace(**{**vars(meta), "dt": 0.05})
    with pytest.raises(ValueError, match=r"dt 0\.1, data has dt 0\.05"):
        check_compatible(model, data)
    data.meta = SimpleNamespace(**{**vars(meta), "state_layout": "qv"})
    with pytest.raises(ValueError, match="state layout"):
        check_compatible(model, data)
