"""The heavy billiard: a point mass under gravity bouncing in a square box (SRNN section 6)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, PhysicsEnv
from ._validation import check_state, strict_kwargs
from ._xp import namespace

#: Side of the square image of the paper, in pixels.
IMAGE_PX = 128
#: Thickness of the wall on each of the four sides, in pixels.
WALL_PX = 12
#: Side of the free space between the walls, in pixels (`IMAGE_PX - 2 * WALL_PX`).
FREE_PX = IMAGE_PX - 2 * WALL_PX
#: Side of the drawn billiard, in pixels.
BILLIARD_PX = 3

#: Values of `background_image()`: the walls are "occupied" (255), the free space is 0.
WALL_VALUE = 255
FREE_VALUE = 0

_WALL_RGB = (64, 64, 64)
_FREE_RGB = (255, 255, 255)
_BILLIARD_RGB = (214, 39, 40)

# With the period reduction in `_bounce_1d` a step needs at most four wall events (one flight
# to the first wall, then less than one period of at most two bounces, plus rounding slack);
# the cap only turns an impossible infinite loop into an error.
_MAX_EVENTS = 16


def _hit_time(s: float, u: float, b: float) -> float:
    """First time `t >= 0` at which a 1-D flight reaches a wall while moving into it.

    `s >= 0` is the distance to the wall, `u = ds/dt` and `b = d^2s/dt^2` (constant), so
    `s(t) = s + u t + b t^2 / 2`. Returns `inf` if the wall is never reached. A flight that
    starts on the wall (`s = 0`) and moves away is not a hit at `t = 0`: its hit is the return
    `t = 2 u / (-b)`. `t = 0` comes back only for `s = 0` with `u < 0` (moving into the wall)
    or `u = 0, b < 0` (pressed against it: at rest on the wall).

    The roots of `b t^2 / 2 + u t + s = 0` use the cancellation-free forms, so grazing and
    tiny-velocity flights keep full relative accuracy.
    """
    if b == 0.0:
        return s / -u if u < 0.0 else math.inf
    disc = u * u - 2.0 * b * s
    if disc < 0.0:
        # Only possible for b > 0 (accelerating away): the flight turns before the wall.
        return math.inf
    root = math.sqrt(disc)
    if u < 0.0:
        # Moving towards the wall: the smaller positive root (the only one if b < 0).
        return 2.0 * s / (root - u)
    if b < 0.0:
        # Moving away (or at rest) but pulled back: the single positive root.
        return (u + root) / -b
    return math.inf


def _next_event(x: float, v: float, a: float) -> tuple[float, float]:
    """Time to the next wall hit of a 1-D flight in `[0, 1]`, and which wall (0.0 or 1.0)."""
    t_low = _hit_time(x, v, a)
    t_high = _hit_time(1.0 - x, -v, -a)
    return (t_low, 0.0) if t_low <= t_high else (t_high, 1.0)


def _bounce_1d(
    x: float, v: float, a: float, tau: float, events: list[tuple[float, float]] | None = None
) -> tuple[float, float]:
    """Exact motion over `tau` of one coordinate in `[0, 1]`: acceleration `a`, elastic walls.

    The walls are axis-aligned and the acceleration is constant, so the two coordinates of the
    billiard move independently; a corner hit is a simultaneous bounce of both. Event-driven:
    parabolic flight to the exact wall-crossing time, the normal velocity reversed there, and
    so on. After the first bounce the motion is periodic (energy is conserved in 1-D), with
    period `P = t1` if the flight returns to the same wall after `t1`, or `P = 2 t1` if it
    reaches the opposite wall first (the way back is the time reverse of the way there); the
    remaining time is reduced modulo `P`, so even a billiard bouncing with a tiny velocity on
    the floor costs a bounded number of events. A billiard at rest on a wall it is pressed
    against (`P = 0`) stays there.

    Returns the position in `[0, 1]` and the velocity after `tau`. With `events`, appends
    `(time since the start, wall)` for every bounce; the bounces skipped by the period
    reduction (more than one full period in the step) are appended with a NaN time.
    """
    reduced = False
    total = tau
    for _ in range(_MAX_EVENTS):
        t, wall = _next_event(x, v, a)
        if t > tau:
            x_end = x + tau * (v + 0.5 * a * tau)
            # Rounding can put a grazing flight a few ulps outside; the wall is where it is.
            return min(max(x_end, 0.0), 1.0), v + a * tau
        # Land exactly on the wall (no rounding drift into it) and reverse the velocity; a
        # grazing hit can leave a velocity of a few ulps pointing into the wall, which is zero.
        x, v, tau = wall, -(v + a * t), tau - t
        v = max(v, 0.0) if wall == 0.0 else min(v, 0.0)
        if events is not None:
            events.append((total - tau, wall))
        if not reduced:
            reduced = True
            t1, next_wall = _next_event(x, v, a)
            if t1 == 0.0:
                return x, 0.0  # at rest, pressed against the wall
            if math.isinf(t1):
                return x, v  # at rest on the wall with no force: stays
            period = t1 if next_wall == wall else 2.0 * t1
            if tau >= period:
                if events is not None:
                    per_period = 1 if next_wall == wall else 2
                    skipped = int(tau // period) * per_period
                    events.extend((math.nan, wall) for _ in range(skipped))
                tau = math.fmod(tau, period)
    raise RuntimeError(
        f"heavy billiard: more than {_MAX_EVENTS} wall events in one step "
        f"(x={x!r}, v={v!r}, a={a!r}, remaining time {tau!r}); this is a bug"
    )


class HeavyBilliardEnv(PhysicsEnv):
    r"""A point mass under gravity in a square box with perfect rebound (SRNN, section 6).

    `H = |p|^2 / (2 m) + m g y` in the free space `[0, 1]^2`; on a wall the momentum component
    normal to the wall is reversed, with no loss of energy.

    ## Units and parameters
    Lengths are in units of the side of the free space: the centre of the billiard moves in the
    unit square `[0, 1]^2` (`x` to the right, `y` up), which the paper's image shows as 104 x 104
    pixels, so one unit is 104 px. Unit lengths keep the observations of order one for the
    models, and `position_to_pixel` converts to the image. Time is in seconds, `m = 1` (so
    `p = v`), gravity `g = 1` unit/s^2 (default) pointing down (`-y`).

    The billiard is a point mass, as in the paper ("treats the billiard as a point mass"): the
    collision is for its centre, and the free space is exactly the set of positions the centre
    can reach. Its 3 x 3 px square is drawn centred on the pixel of the centre, so at a wall
    it overlaps the wall by one pixel in the picture only.

    ## Observation
    | index | quantity | unit |
    |-------|----------|------|
    | 0 | `x`, horizontal position in the free space, `[0, 1]` | box side (104 px) |
    | 1 | `y`, height above the floor, `[0, 1]` | box side (104 px) |
    | 2 | `px = m dx/dt` | kg box/s |
    | 3 | `py = m dy/dt` | kg box/s |

    ## Action
    | index | generalised force | range |
    |-------|-------------------|-------|
    | 0 | force on the billiard along `x` | `[-1, 1] * force_scale` |
    | 1 | force on the billiard along `y` | `[-1, 1] * force_scale` |

    `force_scale` defaults to `2 m g`: hovering costs half of the vertical range, so the agent
    can still both lift and brake the billiard (with `m g` it could only just hover and never
    rise except by bouncing). The force is held constant over a step, so the acceleration
    `(Fx / m, Fy / m - g)` is constant and the flight stays exactly parabolic.

    ## Reward
    Reach and hold the centre of the box `q* = (0.5, 0.5)`:
    `r = -|q' - q*| - 0.01 |a|^2`, with `q'` the next position and `a` the action in
    `[-1, 1]^2` (hovering costs 0.0025 per step).

    ## Starting state
    Position uniform in the free space `[0, 1]^2`, velocity uniform in
    `[-max_speed, max_speed]^2` (default 1 box/s). About 80 % of the paper's 10-step training
    trajectories (1 s) then contain at least one bounce, while a step moves the billiard by
    8 px on average and 20 px at most, the scale of the 10 x 10 neighbourhoods of the image
    that SRNN's rebound module reads.

    ## Episode end
    Never terminates; the registered env truncates after 200 steps.

    ## Ground truth
    Exact and event-driven, in float64: each coordinate (the walls are axis-aligned, so `x`
    and `y` move independently) flies on its parabola to the exact time it reaches a wall (the
    stable root of the quadratic, or the linear equation without acceleration), its velocity is
    reversed there and the flight goes on over the rest of the step. Several bounces per step
    and corners (both coordinates bounce at once) are handled; a billiard at rest on the floor
    stays at rest, and after the first bounce the remaining time is reduced modulo the period
    of the 1-D motion, so a step never loops. `dt = 0.1` s as in the paper. Energy is conserved
    to rounding (relative error ~1e-15 over 1,000 zero-action steps).

    ## Images
    `background_image()` is the paper's 128 x 128 image of the walls (12 px thick, free space
    104 x 104 px); `position_to_pixel(q)` maps positions to its pixels and
    `render_mode="rgb_array"` draws frames of 128 x 128 px with the same mapping: the walls,
    and the billiard as a 3 x 3 px square centred on `position_to_pixel(q)`.

    ## Differences from the paper
    The paper gives neither `g`, the units, nor the initial-state ranges, and the authors'
    public code has no billiard experiment; the values above are ours. Actions are our
    addition; a zero action gives the paper's system.

    ## Arguments
    `dt` (0.1 s), `gravity` (`g`, 1 box/s^2), `force_scale` (default `2 m g`), `max_speed`
    (1 box/s, the initial-velocity range per component) and `render_mode` (None or
    `"rgb_array"`). Frames are always 128 x 128 px, the paper's image.

    ## Version history
    * v0: initial version.

    >>> import gymnasium as gym, physprior
    >>> env = gym.make("physprior/HeavyBilliard-v0")
    >>> obs, _ = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step([0.0, 0.0])
    >>> bool(((0.0 <= obs[:2]) & (obs[:2] <= 1.0)).all())
    True
    >>> env.unwrapped.background_image().shape
    (128, 128)
    """

    #: The target position of the reward, `(x, y)` in box units.
    target: tuple[float, float] = (0.5, 0.5)
    #: Weight of the control cost `|a|^2` in the reward.
    ctrl_cost_weight: float = 0.01

    @strict_kwargs()
    def __init__(
        self,
        *,
        dt: float = 0.1,
        gravity: float = 1.0,
        force_scale: float | None = None,
        max_speed: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        if gravity < 0:
            raise ValueError(f"gravity must be >= 0, got {gravity}")
        if max_speed < 0:
            raise ValueError(f"max_speed must be >= 0, got {max_speed}")
        self.m = 1.0
        self.g = float(gravity)
        if force_scale is None:
            force_scale = 2.0 * self.m * self.g
        if force_scale < 0:
            raise ValueError(f"force_scale must be >= 0, got {force_scale}")
        super().__init__(
            q_dim=2,
            action_dim=2,
            dt=dt,
            force_scale=force_scale,
            render_mode=render_mode,
            render_size=IMAGE_PX,
        )
        self.max_speed = float(max_speed)
        self._background = np.full((IMAGE_PX, IMAGE_PX), WALL_VALUE, dtype=np.uint8)
        self._background[WALL_PX : WALL_PX + FREE_PX, WALL_PX : WALL_PX + FREE_PX] = FREE_VALUE

    # ------------------------------------------------------------------ pure parts
    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        q = rng.uniform(0.0, 1.0, size=2)
        v = rng.uniform(-self.max_speed, self.max_speed, size=2)
        return np.concatenate([q, self.m * v])

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        ax = self.force_scale * float(action[0]) / self.m
        ay = self.force_scale * float(action[1]) / self.m - self.g
        x, vx = _bounce_1d(float(state[0]), float(state[2]) / self.m, ax, self.dt)
        y, vy = _bounce_1d(float(state[1]), float(state[3]) / self.m, ay, self.dt)
        return np.array([x, y, self.m * vx, self.m * vy])

    def _energy(self, obs: Any) -> Any:
        px, py = obs[..., 2], obs[..., 3]
        return (px * px + py * py) / (2.0 * self.m) + self.m * self.g * obs[..., 1]

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(next_obs)
        dx = next_obs[..., 0] - self.target[0]
        dy = next_obs[..., 1] - self.target[1]
        ctrl = (action * action).sum(-1)
        return -xp.sqrt(dx * dx + dy * dy) - self.ctrl_cost_weight * ctrl

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        frame = np.empty((IMAGE_PX, IMAGE_PX, 3), dtype=np.uint8)
        frame[self._background == WALL_VALUE] = _WALL_RGB
        frame[self._background == FREE_VALUE] = _FREE_RGB
        row, col = (int(i) for i in self.position_to_pixel(state[:2]))
        half = BILLIARD_PX // 2
        frame[row - half : row + half + 1, col - half : col + half + 1] = _BILLIARD_RGB
        return frame

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[FloatArray, dict[str, Any]]:
        if options and "state" in options:
            state = check_state(options["state"], (2 * self.q_dim,))
            if not np.all((state[:2] >= 0.0) & (state[:2] <= 1.0)):
                raise ValueError(
                    f"options['state'] has position {state[:2].tolist()} outside the free "
                    "space [0, 1]^2"
                )
        return super().reset(seed=seed, options=options)

    def wall_events(
        self, state: Any, action: Any = None
    ) -> list[tuple[float, NDArray[np.float64]]]:
        """The bounces of one step from `state` `(4,)` under `action` `(2,)` (default zero).

        A list of `(time, normal)` sorted by time: `time` in seconds from the start of the
        step, `normal` the unit normal `(2,)` of the wall hit, pointing into the free space
        (a corner hit is two events at the same time). A billiard bouncing more than once per
        period of its motion within the step gets the further bounces with a NaN time. The
        step itself is `step`'s, exactly.
        """
        state = check_state(state, (2 * self.q_dim,))
        action = np.zeros(2) if action is None else np.asarray(action, dtype=np.float64)
        ax = self.force_scale * float(action[0]) / self.m
        ay = self.force_scale * float(action[1]) / self.m - self.g
        found: list[tuple[float, NDArray[np.float64]]] = []
        for axis, accel in ((0, ax), (1, ay)):
            events: list[tuple[float, float]] = []
            _bounce_1d(float(state[axis]), float(state[axis + 2]) / self.m, accel, self.dt, events)
            for time, wall in events:
                normal = np.zeros(2)
                normal[axis] = 1.0 if wall == 0.0 else -1.0
                found.append((time, normal))
        return sorted(found, key=lambda event: (math.isnan(event[0]), event[0]))

    # ------------------------------------------------------------------ images
    def background_image(self) -> NDArray[np.uint8]:
        """The paper's image of the walls, uint8 `(128, 128)`: walls 255, free space 0.

        Row 0 is the top of the image. The walls are 12 px thick on each side and the free
        space is rows and columns 12 to 115. A fresh copy each call.
        """
        return self._background.copy()

    @staticmethod
    def position_to_pixel(q: Any) -> Any:
        """The pixel `(row, col)` of the image that contains each position `q` `(..., 2)`.

        `col = 12 + floor(104 x)`, `row = 12 + floor(104 (1 - y))` (rows go down, `y` up),
        clamped to the free space (rows and columns 12 to 115) so that the edges `x = 1` and
        `y = 0` fall on the last free pixel. Works on numpy (int64) and torch (long) inputs;
        the pixel's centre maps back to `pixel_to_position`.
        """
        xp = namespace(q)
        if xp is np:
            q = np.asarray(q, dtype=np.float64)
        col = WALL_PX + xp.floor(FREE_PX * q[..., 0])
        row = WALL_PX + xp.floor(FREE_PX * (1.0 - q[..., 1]))
        rc = xp.stack([row, col], -1)
        rc = xp.clip(rc, WALL_PX, WALL_PX + FREE_PX - 1)
        return rc.astype(np.int64) if xp is np else rc.long()

    @staticmethod
    def image_coordinates(q: Any) -> Any:
        """Continuous image coordinates `(row, col)` `(..., 2)` of positions `q` `(..., 2)`.

        Pixel centres are at integer coordinates: `col = 12 + 104 x - 0.5`,
        `row = 12 + 104 (1 - y) - 0.5`, not clamped (positions beyond a wall map beyond the
        free pixels), so the walls' inner edges are at 11.5 and 115.5. Affine in `q`: SRNN's
        rebound module reads its image neighbourhoods through this map. Numpy or torch.
        """
        xp = namespace(q)
        if xp is np:
            q = np.asarray(q, dtype=np.float64)
        col = WALL_PX + FREE_PX * q[..., 0] - 0.5
        row = WALL_PX + FREE_PX * (1.0 - q[..., 1]) - 0.5
        return xp.stack([row, col], -1)

    @staticmethod
    def pixel_to_position(rc: Any) -> Any:
        """The position `(x, y)` of the centre of each pixel `(row, col)` `(..., 2)`.

        The inverse of `position_to_pixel` on pixel centres: `x = (col - 12 + 0.5) / 104`,
        `y = 1 - (row - 12 + 0.5) / 104`. Numpy or torch inputs; float64 outputs.
        """
        xp = namespace(rc)
        rc = np.asarray(rc, dtype=np.float64) if xp is np else rc.double()
        x = (rc[..., 1] - WALL_PX + 0.5) / FREE_PX
        y = 1.0 - (rc[..., 0] - WALL_PX + 0.5) / FREE_PX
        return xp.stack([x, y], -1)
