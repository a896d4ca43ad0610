"""The synthetic action library: each class is a function that poses one or two bodies.

Every action is written as local joint rotations over a progress variable, so classes
differ by motion shape (which limb moves, along which path, how many times), never by
position or duration alone. Nuisance drawn per performance from its generator:

- timing: the action occupies a random window of the clip (rest before and after) and
  periodic parts repeat a random number of times with a random phase;
- amplitude: the main angles are scaled by U[0.8, 1.15];
- idle style: arms hang at a per-performer angle, slow sway of torso and head.

Left/right classes are built once (right side) and mirrored with `Pose.mirrored`, so a
left class is exactly the mirror image of its right class (the moving hand is the other
one). Angle conventions (body frame, see synth_skeleton): for the right arm, rotation
about z by +a raises it sideways, about x by +a raises it forwards; for legs, hip about
x by +a swings the leg forwards, knee about x by -a bends it; torso about x by -a bows.

Class order (action id A = position + 1 in the chosen list) is fixed: `choose_classes`
takes the first single-person classes and the first interaction classes, so a small
`--classes` still contains left/right pairs and at least one interaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from slim.ingest.synth_skeleton import Pose

# Joint indices (topology.JOINT_NAMES) used below.
SPINE_BASE, SPINE_MID, NECK = 0, 1, 2
L_SHOULDER, L_ELBOW, R_SHOULDER, R_ELBOW = 4, 5, 8, 9
L_HIP, L_KNEE, L_ANKLE, R_HIP, R_KNEE, R_ANKLE = 12, 13, 14, 16, 17, 18
SPINE_SHOULDER = 20
DEG = np.pi / 180.0


def smoothstep(x: np.ndarray) -> np.ndarray:
    """[T] -> [T]: 0 below 0, 1 above 1, smooth cubic in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass
class Ctx:
    """Per-performance randomness shared by the action functions.

    `p` [T] is the action progress in [0, 1] (0 before the active window, 1 after);
    `amp` scales the main angles; `rng` draws anything else.
    """

    T: int
    p: np.ndarray
    amp: float
    rng: np.random.Generator

    def bell(self, rise: float = 0.2) -> np.ndarray:
        """[T]: 0 at rest, smooth ramp up, plateau 1, ramp down."""
        return smoothstep(self.p / rise) * smoothstep((1.0 - self.p) / rise)

    def osc(self, cycles_lo: float, cycles_hi: float) -> np.ndarray:
        """[T]: a sine over the active window with a random cycle count and phase."""
        cycles = self.rng.uniform(cycles_lo, cycles_hi)
        return np.sin(2 * np.pi * cycles * self.p + self.rng.uniform(0, 2 * np.pi))

    def pulses(self, n_lo: int, n_hi: int, sharp: float = 1.0) -> np.ndarray:
        """[T]: n repetitions of 0 -> 1 -> 0 (raised cosines) over the active window."""
        n = int(self.rng.integers(n_lo, n_hi + 1))
        wave = 0.5 - 0.5 * np.cos(2 * np.pi * n * self.p)
        return wave ** sharp * (self.p > 0) * (self.p < 1)


# --- single-person classes (right-handed versions; left ones are mirrors) -------------

def wave_right(P: Pose, c: Ctx) -> None:
    up = c.bell(0.15)
    P.rot(R_SHOULDER, "z", up * (75 + 15 * c.amp) * DEG)
    P.rot(R_SHOULDER, "x", up * 15 * DEG)
    P.rot(R_ELBOW, "z", up * (95 * DEG + 28 * DEG * c.amp * c.osc(2.0, 4.5)))


def raise_right_arm(P: Pose, c: Ctx) -> None:
    up = c.bell(0.3)
    P.rot(R_SHOULDER, "x", up * 165 * c.amp * DEG)
    P.rot(R_SHOULDER, "z", up * 10 * DEG)


def kick_right(P: Pose, c: Ctx) -> None:
    k = c.pulses(1, 2, sharp=1.5)
    ext = smoothstep((k - 0.4) / 0.6)  # knee straightens late in the swing
    P.rot(R_HIP, "x", k * 75 * c.amp * DEG)
    P.rot(R_KNEE, "x", -(k - ext) * 90 * DEG - (1 - ext) * k * 30 * DEG)
    P.rot(SPINE_BASE, "x", k * 8 * DEG)
    P.rot(L_SHOULDER, "z", -k * 25 * DEG)
    P.rot(R_SHOULDER, "z", k * 25 * DEG)


def punch_right(P: Pose, c: Ctx) -> None:
    guard = c.bell(0.15)
    hit = c.pulses(1, 3, sharp=2.0) * guard
    P.rot(R_SHOULDER, "y", guard * 20 * DEG)
    P.rot(R_SHOULDER, "x", (guard * 35 + hit * 55 * c.amp) * DEG)
    P.rot(R_ELBOW, "x", (guard * 120 - hit * 115) * DEG)
    P.rot(L_SHOULDER, "x", guard * 35 * DEG)
    P.rot(L_ELBOW, "x", guard * 110 * DEG)
    P.rot(SPINE_MID, "y", hit * 15 * DEG)


def clap(P: Pose, c: Ctx) -> None:
    up = c.bell(0.15)
    close = 0.5 + 0.5 * c.osc(3.0, 6.0)
    for sh, el, sign in ((R_SHOULDER, R_ELBOW, 1.0), (L_SHOULDER, L_ELBOW, -1.0)):
        P.rot(sh, "y", sign * up * (5 + 40 * close * c.amp) * DEG)
        P.rot(sh, "x", up * 55 * DEG)
        P.rot(el, "x", up * 55 * DEG)


def squat(P: Pose, c: Ctx) -> None:
    d = c.pulses(1, 3) * c.amp
    P.rot(SPINE_BASE, "x", -d * 30 * DEG)
    for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        P.rot(hip, "x", d * (90 + 30) * DEG)
        P.rot(knee, "x", -d * 115 * DEG)
        P.rot(ankle, "x", d * 25 * DEG)
    for sh in (L_SHOULDER, R_SHOULDER):
        P.rot(sh, "x", d * 80 * DEG)


def jump(P: Pose, c: Ctx) -> None:
    n = int(c.rng.integers(1, 4))
    phase = (c.p * n) % 1.0 * (c.p > 0) * (c.p < 1)
    crouch = np.sin(np.pi * np.clip(phase / 0.45, 0, 1)) + np.sin(np.pi * np.clip((phase - 0.85) / 0.15, 0, 1)) * 0.5
    air = np.sin(np.pi * np.clip((phase - 0.45) / 0.4, 0, 1))
    P.lift[:] = air * (0.12 + 0.15 * c.amp)
    P.rot(SPINE_BASE, "x", -crouch * 25 * DEG)
    for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        P.rot(hip, "x", crouch * 60 * DEG)
        P.rot(knee, "x", -crouch * 75 * DEG)
        P.rot(ankle, "x", crouch * 15 * DEG - air * 30 * DEG)
    for sh in (L_SHOULDER, R_SHOULDER):
        P.rot(sh, "x", (-crouch * 40 + air * 120) * DEG)


def bow(P: Pose, c: Ctx) -> None:
    d = c.bell(0.3) * c.amp
    P.rot(SPINE_BASE, "x", -d * 55 * DEG)
    P.rot(L_HIP, "x", d * 55 * DEG)
    P.rot(R_HIP, "x", d * 55 * DEG)
    P.rot(NECK, "x", -d * 20 * DEG)


def touch_head(P: Pose, c: Ctx) -> None:
    up = c.bell(0.25)
    rub = 8 * DEG * c.osc(1.0, 3.0)
    for sh, el, s in ((R_SHOULDER, R_ELBOW, 1.0), (L_SHOULDER, L_ELBOW, -1.0)):
        P.rot(sh, "x", up * 25 * DEG)
        P.rot(sh, "z", s * up * (95 * c.amp * DEG + rub))
        P.rot(el, "z", s * up * 125 * DEG)
    P.rot(NECK, "x", -up * 10 * DEG)


def _steps(P: Pose, c: Ctx, gait: np.ndarray, lift: float, swing: float) -> None:
    """Alternate leg lifts (gait [T] in [-1, 1]) with counter-swinging arms."""
    for hip, knee, g in ((L_HIP, L_KNEE, gait), (R_HIP, R_KNEE, -gait)):
        up = np.clip(g, 0, None)
        P.rot(hip, "x", up * lift * DEG)
        P.rot(knee, "x", -up * lift * 1.6 * DEG)
    P.rot(L_SHOULDER, "x", -gait * swing * DEG)
    P.rot(R_SHOULDER, "x", gait * swing * DEG)


def turn_around(P: Pose, c: Ctx) -> None:
    turn = smoothstep(c.p) * np.pi * c.rng.choice([-1.0, 1.0]) * c.rng.uniform(0.85, 1.1)
    P.root_yaw[:] = turn
    _steps(P, c, np.sin(2 * np.pi * 3 * c.p) * c.bell(0.1), 20, 10)


def sit_down(P: Pose, c: Ctx) -> None:
    d = smoothstep(c.p / 0.7) * c.amp  # goes down and stays down
    P.rot(SPINE_BASE, "x", -d * 25 * DEG)
    for hip, knee in ((L_HIP, L_KNEE), (R_HIP, R_KNEE)):
        P.rot(hip, "x", d * (85 + 25) * DEG)
        P.rot(knee, "x", -d * 95 * DEG)
    for sh, el in ((L_SHOULDER, L_ELBOW), (R_SHOULDER, R_ELBOW)):
        P.rot(sh, "x", d * 25 * DEG)
        P.rot(el, "x", d * 60 * DEG)


def walk_in_place(P: Pose, c: Ctx) -> None:
    _steps(P, c, c.osc(2.5, 5.0) * c.bell(0.1), 45 * c.amp, 30)


def cheer_up(P: Pose, c: Ctx) -> None:
    up = c.bell(0.2)
    shake = 15 * DEG * c.osc(2.0, 5.0)
    P.rot(R_SHOULDER, "z", up * (150 * c.amp * DEG + shake))
    P.rot(L_SHOULDER, "z", -up * (150 * c.amp * DEG + shake))
    P.rot(R_ELBOW, "z", up * 15 * DEG)
    P.rot(L_ELBOW, "z", -up * 15 * DEG)


def throw(P: Pose, c: Ctx) -> None:
    q = c.p
    back = np.sin(np.pi * np.clip(q / 0.5, 0, 1))
    fwd = np.sin(np.pi * np.clip((q - 0.4) / 0.45, 0, 1))
    P.rot(SPINE_MID, "y", (back * 25 - fwd * 20) * DEG)
    P.rot(R_SHOULDER, "z", back * 80 * DEG)
    P.rot(R_SHOULDER, "x", (-back * 30 + fwd * 140 * c.amp) * DEG)
    P.rot(R_ELBOW, "x", back * 100 * DEG)
    P.rot(L_HIP, "x", fwd * 25 * DEG)
    P.rot(L_KNEE, "x", -fwd * 20 * DEG)


def pick_up(P: Pose, c: Ctx) -> None:
    d = c.bell(0.35) * c.amp
    P.rot(SPINE_BASE, "x", -d * 70 * DEG)
    for hip, knee in ((L_HIP, L_KNEE), (R_HIP, R_KNEE)):
        P.rot(hip, "x", d * 95 * DEG)
        P.rot(knee, "x", -d * 45 * DEG)
    P.rot(R_SHOULDER, "x", d * 55 * DEG)
    P.rot(R_SHOULDER, "y", d * 15 * DEG)


def drink(P: Pose, c: Ctx) -> None:
    up = c.bell(0.25)
    sip = 0.5 + 0.5 * c.osc(0.5, 1.5)
    P.rot(R_SHOULDER, "y", up * 25 * DEG)
    P.rot(R_SHOULDER, "x", up * (30 + 20 * sip) * c.amp * DEG)
    P.rot(R_ELBOW, "x", up * 135 * DEG)
    P.rot(NECK, "x", up * sip * 20 * DEG)


# --- two-person classes: (pose of performer 1, pose of performer 2, distance) ----------

def _reach_right(P: Pose, amount: np.ndarray, flex: float, elbow: float) -> None:
    P.rot(R_SHOULDER, "y", amount * 15 * DEG)
    P.rot(R_SHOULDER, "x", amount * flex * DEG)
    P.rot(R_ELBOW, "x", amount * elbow * DEG)


def handshake(A: Pose, B: Pose, c: Ctx) -> float:
    up = c.bell(0.25)
    shake = 6 * c.osc(2.0, 4.0) * up
    for P in (A, B):
        _reach_right(P, up, 50 + shake, 35 - shake)
    return float(c.rng.uniform(0.8, 1.0))


def push(A: Pose, B: Pose, c: Ctx) -> float:
    reach = c.bell(0.2)
    hit = smoothstep((c.p - 0.35) / 0.25)
    for sh, el in ((R_SHOULDER, R_ELBOW), (L_SHOULDER, L_ELBOW)):
        A.rot(sh, "x", reach * 80 * c.amp * DEG)
        A.rot(el, "x", reach * (1 - hit) * 70 * DEG)
    A.root_shift[:, 2] = -0.25 * hit
    B.root_shift[:, 2] = 0.35 * hit * c.amp
    B.rot(SPINE_BASE, "x", hit * (1 - smoothstep((c.p - 0.7) / 0.3)) * 18 * DEG)
    B.rot(R_SHOULDER, "z", hit * 30 * DEG)
    B.rot(L_SHOULDER, "z", -hit * 30 * DEG)
    return float(c.rng.uniform(0.9, 1.1))


def hug(A: Pose, B: Pose, c: Ctx) -> float:
    close = c.bell(0.3)
    for P in (A, B):
        P.root_shift[:, 2] = -0.3 * close
        for sh, el, s in ((R_SHOULDER, R_ELBOW, 1.0), (L_SHOULDER, L_ELBOW, -1.0)):
            P.rot(sh, "y", s * close * 35 * DEG)
            P.rot(sh, "x", close * 75 * c.amp * DEG)
            P.rot(el, "y", s * close * 60 * DEG)
    return float(c.rng.uniform(1.1, 1.3))


def walk_towards(A: Pose, B: Pose, c: Ctx) -> float:
    gait = np.sin(2 * np.pi * c.rng.uniform(2.5, 4.0) * c.p) * c.bell(0.1)
    for P in (A, B):
        _steps(P, c, gait, 35, 25)
        P.root_shift[:, 2] = -smoothstep(c.p) * c.rng.uniform(0.5, 0.9)
    return float(c.rng.uniform(2.4, 3.0))


def kick_other(A: Pose, B: Pose, c: Ctx) -> float:
    kick_right(A, c)
    flinch = smoothstep((c.p - 0.3) / 0.2) * smoothstep((0.9 - c.p) / 0.2)
    B.rot(SPINE_BASE, "x", -flinch * 20 * DEG)
    B.root_shift[:, 2] = 0.15 * flinch
    return float(c.rng.uniform(1.0, 1.2))


@dataclass(frozen=True)
class Action:
    """One class: a name, base duration in frames at speed 1, and how to pose it."""

    name: str
    frames: int
    single: Callable[[Pose, Ctx], None] | None = None
    pair: Callable[[Pose, Pose, Ctx], float] | None = None
    mirror: bool = False  # pose with `single`, then mirror (a left-hand class)

    @property
    def persons(self) -> int:
        return 2 if self.pair is not None else 1


SINGLE: tuple[Action, ...] = (
    Action("wave with the left hand", 90, wave_right, mirror=True),
    Action("wave with the right hand", 90, wave_right),
    Action("raise the left arm", 80, raise_right_arm, mirror=True),
    Action("raise the right arm", 80, raise_right_arm),
    Action("kick with the left leg", 70, kick_right, mirror=True),
    Action("kick with the right leg", 70, kick_right),
    Action("punch with the left hand", 75, punch_right, mirror=True),
    Action("punch with the right hand", 75, punch_right),
    Action("clap", 85, clap),
    Action("squat", 95, squat),
    Action("jump up", 80, jump),
    Action("bow", 90, bow),
    Action("touch the head with both hands", 90, touch_head),
    Action("turn around", 100, turn_around),
    Action("sit down", 90, sit_down),
    Action("walk in place", 100, walk_in_place),
    Action("cheer up", 85, cheer_up),
    Action("throw", 75, throw),
    Action("pick up", 95, pick_up),
    Action("drink water", 90, drink),
)
PAIR: tuple[Action, ...] = (
    Action("shake hands", 90, pair=handshake),
    Action("push other person", 75, pair=push),
    Action("hug other person", 100, pair=hug),
    Action("walk towards each other", 110, pair=walk_towards),
    Action("kick other person", 75, pair=kick_other),
)
MAX_CLASSES = len(SINGLE) + len(PAIR)


def choose_classes(n: int) -> tuple[Action, ...]:
    """The first n classes: single-person ones first, then about n/4 interactions.

    Action id A(i) = i + 1 for the i-th returned class (NTU puts interactions last too).
    """
    if not 1 <= n <= MAX_CLASSES:
        raise ValueError(f"classes must be 1..{MAX_CLASSES}, got {n}")
    n_pair = 0 if n < 4 else min(len(PAIR), max(1, round(n / 4)))
    n_single = n - n_pair
    if n_single > len(SINGLE):
        n_single, n_pair = len(SINGLE), n - len(SINGLE)
    return SINGLE[:n_single] + PAIR[:n_pair]


def draw_frames(action: Action, rng: np.random.Generator, lo: int = 40, hi: int = 160) -> int:
    """Clip length in frames: the class's base length at a speed U[0.7, 1.4] with
    +-20 % habit, clipped to [lo, hi]."""
    speed = rng.uniform(0.7, 1.4)
    return int(np.clip(round(action.frames * rng.uniform(0.85, 1.25) / speed), lo, hi))


def idle(P: Pose, arm_hang: float, rng: np.random.Generator) -> None:
    """Standing still, alive: arms away from the body by arm_hang (radians), slow sway."""
    t = np.linspace(0.0, 1.0, P.T)
    P.rot(R_SHOULDER, "z", arm_hang)
    P.rot(L_SHOULDER, "z", -arm_hang)
    for joint, axis, deg in ((SPINE_MID, "z", 3.0), (SPINE_MID, "x", 3.0), (NECK, "x", 6.0),
                             (NECK, "y", 10.0)):
        slow = np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi))
        P.rot(joint, axis, (rng.uniform(-0.5, 0.5) + 0.5 * slow) * deg * DEG)


def animate(action: Action, T: int, rng: np.random.Generator,
            arm_hangs: tuple[float, float]) -> tuple[list[Pose], float]:
    """Pose one performance of `action` over T frames.

    Returns ([Pose] with 1 or 2 entries, distance in metres between the two performers,
    0 for one).
    """
    t = np.linspace(0.0, 1.0, T)
    a, b = rng.uniform(0.04, 0.18), rng.uniform(0.82, 0.96)
    ctx = Ctx(T=T, p=np.clip((t - a) / (b - a), 0.0, 1.0), amp=float(rng.uniform(0.8, 1.15)), rng=rng)
    poses = [Pose(T) for _ in range(action.persons)]
    for P, hang in zip(poses, arm_hangs):
        idle(P, hang, rng)
    if action.pair is not None:
        return poses, action.pair(poses[0], poses[1], ctx)
    action.single(poses[0], ctx)
    return ([poses[0].mirrored()] if action.mirror else poses), 0.0
