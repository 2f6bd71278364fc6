"""Test-session settings shared by every test module."""

from __future__ import annotations

import os

# MuJoCo renders offscreen through EGL on headless machines. Left unset, Gymnasium tries GLFW
# first, which fails without a display and prints a warning that the suite treats as an error.
os.environ.setdefault("MUJOCO_GL", "egl")

# SB3 agents built in tests without our folderless logger would each create an empty
# `SB3-<date>` folder in the system temp directory; this points them all at one.
os.environ.setdefault(
    "SB3_LOGDIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "physprior-sb3-logs")
)

# Suites cache generated and collected data sets; tests keep theirs out of the user's cache.
os.environ.setdefault(
    "PHYSPRIOR_CACHE", os.path.join(os.environ.get("TMPDIR", "/tmp"), "physprior-test-cache")
)

import torch

# One torch thread: the tests run two pytest workers on two cores, and small tensors gain
# nothing from intra-op threads while contention makes timings swing widely.
torch.set_num_threads(1)
