"""`physprior._validate.check_field_types`: config values of the wrong type, refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from physprior.models import make
from physprior.training import TrainConfig

DIMS = {"obs_dim": 4, "action_dim": 1, "dt": 0.1}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden", 3.5, r"MLPDeltaConfig.hidden must be int, got 3.5 \(float\)"),
        ("hidden", True, r"MLPDeltaConfig.hidden must be int, got True \(bool\)"),
        ("hidden", "abc", r"MLPDeltaConfig.hidden must be int, got 'abc' \(str\)"),
        ("obs_dim", "2", r"MLPDeltaConfig.obs_dim must be int, got '2' \(str\)"),
        ("dt", math.nan, r"MLPDeltaConfig.dt must be float or None, got nan"),
        ("dt", math.inf, r"MLPDeltaConfig.dt must be float or None, got inf"),
        ("dt", "0.1", r"MLPDeltaConfig.dt must be float or None, got '0.1' \(str\)"),
        ("normalize", 1, r"MLPDeltaConfig.normalize must be bool, got 1 \(int\)"),
        ("state_layout", 2, r"MLPDeltaConfig.state_layout must be str, got 2 \(int\)"),
        ("q_dim", 1.0, r"MLPDeltaConfig.q_dim must be int or None, got 1.0 \(float\)"),
    ],
)
def test_model_config_refuses_wrong_types(field: str, value: object, message: str) -> None:
    with pytest.raises(TypeError, match=message) as caught:
        make("mlp", **{**DIMS, field: value})
    assert "\n" not in str(caught.value)


def test_dt_is_required() -> None:
    """No default time step: an ODE model integrates over it and a learned env checks it."""
    with pytest.raises(TypeError, match=r"dt is required: the time between observations"):
        make("mlp", obs_dim=4, action_dim=1)


def test_model_config_accepts_numpy_scalars_and_refuses_absurd_widths() -> None:
    model = make("hnn", obs_dim=np.int64(4), action_dim=0, dt=np.float32(0.1))
    assert model.config.obs_dim == 4
    with pytest.raises(ValueError, match="hidden must be at most 65536, got 1000000000000"):
        make("mlp", **DIMS, hidden=10**12)


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("epochs", 2.5, TypeError, r"TrainConfig.epochs must be int, got 2.5"),
        ("lr", "fast", TypeError, r"TrainConfig.lr must be float, got 'fast'"),
        ("lr", math.nan, TypeError, r"TrainConfig.lr must be float, got nan"),
        ("progress", "yes", TypeError, r"TrainConfig.progress must be bool, got 'yes'"),
        ("dtype", "float16", ValueError, r"dtype must be 'float32' or 'float64', got 'float16'"),
        ("device", 3, TypeError, r"TrainConfig.device must be str, got 3"),
    ],
)
def test_train_config_refuses_wrong_types(
    field: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TrainConfig(**{field: value})  # type: ignore[arg-type]
