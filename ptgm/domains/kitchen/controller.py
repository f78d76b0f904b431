"""Scripted Franka Kitchen controller: waypoints around each object, followed by inverse kinematics.

Every subtask is a short script of phases: back away from wherever the hand is, swing the
arm (in joint space) to a configuration a little way in front of the object, come in along
a straight line to the handle or knob, grip, move the object's joint past its goal while the
hand follows the part, release, retreat. A drive that falls short (a slipped grip) starts
over from the approach, twice at most. The kettle is gripped by its handle, lifted, carried
to the top-left burner and put down. Cartesian phases use damped least squares on MuJoCo's
site Jacobian of the gripper site ``end_effector``.

How the environment turns an action into motion (``FrankaRobot.step``): ``a`` is clipped
to [-1, 1] and the joint position actuators get the target ``q_observed + act_rng·a·dt``
(act_rng = 2, dt = 40 × 2 ms). The arm's joints are heavily damped (damping ``b``), so a
joint creeps towards the target like a first-order lag with time constant ``τ = b / kp``
(0.08–0.12 s, as long as a step): a target offset ``Δ`` moves it by ``Δ (1 - exp(-dt/τ))``
within the step. The controller inverts that, adding the offset that holds the arm against
gravity, so its joint velocities (rad/s) become actions. (The steady-state velocity
``kp Δ / b`` would undershoot by 40–55%, which made every motion slower than asked.) The controller reads the true simulator state (``data``), not the
noisy observation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import BONUS_THRESH, OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

from ptgm.domains.kitchen.env import PARTIAL_TARGET_FRACTION, SUBTASKS

__all__ = ["SUBTASKS", "KitchenScriptedController", "play_episode_plan"]

EE_SITE = "end_effector"
OPEN, CLOSED = 1.0, -1.0  # gripper actions

# Cartesian servo: share of the error closed per second, speed limits, damping.
POS_GAIN = 5.0
ROT_GAIN = 4.0
MAX_SPEED = 0.45  # m/s
APPROACH_SPEED = 0.25  # m/s for the last centimetres to a handle
MAX_ROT_SPEED = 1.5  # rad/s
ROT_WEIGHT = 0.3  # metres per radian: position accuracy matters more than orientation
IK_DAMPING = 0.05
POSTURE_GAIN = 0.5  # 1/s, pulls the redundant degree of freedom towards the subtask's posture
JOINT_MARGIN = 0.05  # rad kept from each joint bound
# Joint-space moves.
JOINT_GAIN = 8.0  # 1/s
MAX_JOINT_SPEED = 1.2  # rad/s
# Driving an object's joint.
LEAD_DISTANCE = 0.08  # m the reference pose may run ahead of the part (sets the pushing force)
MAX_DRIVE_RATE = 1.2  # rad/s (or m/s) at which a joint's reference moves at most
STALL_STEPS, STALL_MOTION = 10, 0.01  # a part that moved less than this in that many steps has stalled...
STALL_REACH = 0.02  # ...if the hand is this close (m; ×5 in rad) to where it was sent, or moved less
RETRIES = 2  # times a subtask starts over from the approach after a drive that fell short
BACK_OFF = 0.1  # m the hand backs away (against its pointing direction) before anything else
STAGING = 0.12  # m short of the pre-approach point where the arm's joint-space swing ends
RETREAT = 0.15  # m it backs away after letting go: the fingers reach 5 cm past the gripper site
IK_ITERATIONS = 80  # kinematic iterations to find the configuration in front of an object

#: Gripper pointing along +y of a frame, fingers opening along its x (horizontal), site x along its z.
_R_FORWARD = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
_X, _Z = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class _Articulated:
    """How to operate one articulated part: bring the gripper to a site, then drive the part's joint.

    ``contact`` is in the frame of ``frame_body``, a body that does not move with the joint and
    whose -y is the object's front. ``posture`` is an arm configuration at the contact pose, well
    inside the joint limits along the whole motion (found by inverse kinematics from many random
    starts); the arm swings near it before approaching and its redundancy is pulled towards it.
    """

    joint: str
    site: str
    frame_body: str
    target: float  # where the reference runs to: past the goal, inside the joint's range
    finish: float  # joint value that ends the drive: past the environment's threshold with a margin
    approach_gripper: float  # open to grip (closed hands push)
    drive_gripper: float  # closed on a grip; open hands turn knobs with rigid fingers
    contact: tuple[float, float, float]  # end-effector position relative to the site
    speed: float  # m/s of the end effector while driving
    follow_rotation: float  # share of the part's rotation the gripper turns with (unless ``twist``)
    posture: tuple[float, ...]
    pitch: float = 0.0  # rad the gripper points below horizontal
    roll: float = 0.0  # rad the gripper is turned about its axis (two fingers look alike at ±π)
    yaw: float = 0.0  # rad the approach direction is turned to the left of straight at the front
    twist: bool = False  # drive by turning the hand in place about its own axis (knobs)
    standoff: float = 0.08  # m in front of the contact where the straight approach starts


_OBJECTS: dict[str, _Articulated] = {
    # Round handles: grip and pull along the door's (drawer's) path; the handle may roll in the grip.
    "microwave": _Articulated("microwave", "microhandle_site", "microroot", -0.8, -0.55, OPEN, CLOSED,
                              (0.0, -0.005, 0.0), 0.4, 0.5, (-1.5, -1.58, 2.09, -1.34, -0.33, 1.55, 1.8),
                              pitch=0.5),
    "hinge cabinet": _Articulated("right_hinge_cabinet", "hinge_site2", "hingecab", 1.5, 1.25, OPEN, CLOSED,
                                  (0.0, -0.005, 0.0), 0.4, 0.0, (-1.85, -0.81, 1.9, -0.63, -0.19, 0.82, 0.9)),
    # Approached from the front right: an open hinge-cabinet door swings out just left of this handle.
    "slide cabinet": _Articulated("slide_cabinet", "slide_site", "slide", 0.4, 0.2, OPEN, CLOSED,
                                  (0.0, -0.005, 0.0), 0.25, 0.0, (1.67, -0.74, -1.05, -1.76, 0.12, 1.31, -0.73),
                                  yaw=0.8),
    # Knobs: the open fingers straddle the bar and the wrist turns. Open fingers sit at their joint
    # limit, so they push rigidly (closed fingers grip too softly to turn a knob). The bar engages
    # after ~0.6-0.8 rad of turning, hence a reference well past the goal. The hand is upside down
    # (roll -π) so the last wrist joint starts far from its limit in the turning direction, points
    # slightly up and turns in place (twist), which keeps the wrist below an open hinge-cabinet door.
    "bottom burner": _Articulated("knob_Joint_2", "knob2_site", "ovenroot", -2.1, -0.7, OPEN, OPEN,
                                  (0.0, -0.04, 0.0), 0.1, 1.0, (-1.23, -0.96, 1.58, -2.18, -2.32, 0.81, 0.24),
                                  pitch=-0.4, roll=-np.pi, twist=True),
    "top burner": _Articulated("knob_Joint_4", "knob4_site", "ovenroot", -2.1, -0.7, OPEN, OPEN,
                               (0.0, -0.04, 0.0), 0.1, 1.0, (-1.14, -0.82, 1.37, -2.07, -2.43, 0.97, 0.12),
                               pitch=-0.4, roll=-np.pi, twist=True),
    # The switch's lever turns about a vertical axis: push it to the left with a closed hand.
    "light switch": _Articulated("light_switch", "light_site", "hoodroot", -0.7, -0.6, CLOSED, CLOSED,
                                 (0.05, -0.015, 0.0), 0.15, 0.0, (0.29, 0.02, 0.29, -2.04, -2.19, 0.83, 2.34)),
}

# The kettle: gripped by its (horizontal) handle from the front with the fingers above and below it,
# so the lower finger carries the weight; lifted, carried over the top-left burner and put down.
# The two fingers look alike, so the hand may be rolled either way (±π/2); -π/2 keeps the last wrist joint
# near where the other subtasks' postures and the initial pose hold it, which shortens the swing.
KETTLE_ROLL = -np.pi / 2
KETTLE_POSTURE = (-0.94, -1.0, 2.24, -2.56, -1.69, 0.71, -1.35 + np.pi)
#: Where the kettle is put: the goal (OBS_ELEMENT_GOALS["kettle"][:3]) a little short of the wall, and
#: 1 cm below where it rests, so the hand presses it onto the burner and no finger still carries it.
KETTLE_TARGET = np.array([-0.23, 0.72, 1.61])
KETTLE_LIFT = 0.08


def play_episode_plan(rng: np.random.Generator, style: str = "random",
                      target: tuple[str, ...] = ("microwave", "kettle", "bottom burner", "light switch")) -> list[str]:
    """A play episode's plan of subtasks.

    ``random``: 2–4 distinct subtasks in random order. Like D4RL's kitchen datasets, for a ``target`` sequence
    (mkbl): ``complete``, the target sequence from start to end; ``partial``, the whole target sequence in some
    episodes (:data:`PARTIAL_TARGET_FRACTION`) and random plans that never hold all of it in the others;
    ``mixed``, random plans in which target subtasks appear but never the whole target in one episode.
    """
    if style == "complete" or (style == "partial" and rng.random() < PARTIAL_TARGET_FRACTION):
        return list(target)
    while True:
        count = int(rng.integers(2, 5))
        plan = [SUBTASKS[i] for i in rng.permutation(len(SUBTASKS))[:count]]
        if style == "random" or not set(target) <= set(plan):
            if style != "mixed" or set(target) & set(plan):
                return plan


def _rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Axis × angle (world frame) that turns ``current`` into ``target``."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, (target @ current.T).ravel())
    if quat[0] < 0:  # shortest way round
        quat = -quat
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, axis, angle)
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)


Pose = tuple[np.ndarray, np.ndarray]  # position (3,), rotation matrix (3, 3)


class _Phase:
    """One step of a script: arm joint velocities each step, a gripper command, and when it is over."""

    gripper = OPEN
    max_steps = 40

    def begin(self, ctrl: KitchenScriptedController) -> None:
        """Called when the phase becomes current."""

    def velocity(self, ctrl: KitchenScriptedController) -> np.ndarray:
        raise NotImplementedError

    def finished(self, ctrl: KitchenScriptedController) -> bool:
        raise NotImplementedError


class _Move(_Phase):
    """Go to a pose computed from the simulator state when the phase begins."""

    def __init__(self, pose: Callable[[KitchenScriptedController], Pose], gripper: float = OPEN, tol: float = 0.02,
                 rot_tol: float = 0.15, max_steps: int = 40, speed: float = MAX_SPEED, hold: int = 0):
        self.pose, self.gripper, self.tol, self.rot_tol = pose, gripper, tol, rot_tol
        self.max_steps, self.speed, self.hold = max_steps, speed, hold

    def begin(self, ctrl):
        self._pos, self._rot = self.pose(ctrl)

    def velocity(self, ctrl):
        return ctrl.ik_velocity(ctrl.data, self._pos, self._rot, self.speed)

    def finished(self, ctrl):
        # ``hold`` keeps the phase a few steps, e.g. while the fingers close.
        return (ctrl.phase_steps >= self.hold and np.linalg.norm(self._pos - ctrl.ee_pos) < self.tol
                and np.linalg.norm(_rotation_error(self._rot, ctrl.ee_rot)) < self.rot_tol)


class _JointMove(_Phase):
    """Swing the arm to a joint configuration computed when the phase begins."""

    def __init__(self, goal: Callable[[KitchenScriptedController], np.ndarray], gripper: float = OPEN,
                 tol: float = 0.1, max_steps: int = 50):
        self.goal, self.gripper, self.tol, self.max_steps = goal, gripper, tol, max_steps

    def begin(self, ctrl):
        self._q = self.goal(ctrl)

    def velocity(self, ctrl):
        return np.clip(JOINT_GAIN * (self._q - ctrl.data.qpos[:7]), -MAX_JOINT_SPEED, MAX_JOINT_SPEED)

    def finished(self, ctrl):
        return np.abs(self._q - ctrl.data.qpos[:7]).max() < self.tol


class _Drive(_Phase):
    """Move an object's joint while keeping the gripper's pose fixed relative to the moving part.

    A reference joint value runs ahead of the real one (by at most ``LEAD_DISTANCE`` at the
    gripper); the gripper is sent to where it would be if the part were at the reference, so it
    pulls or pushes the part along the part's own path: door, drawer, knob or switch alike.
    """

    def __init__(self, spec: _Articulated, max_steps: int = 120):
        self.spec, self.gripper, self.max_steps = spec, spec.drive_gripper, max_steps

    def begin(self, ctrl):
        m, d = ctrl.model, ctrl.data
        self._jnt = m.joint(self.spec.joint).id
        self._body = m.jnt_bodyid[self._jnt]
        self._hinge = m.jnt_type[self._jnt] == mujoco.mjtJoint.mjJNT_HINGE
        self._qadr = m.jnt_qposadr[self._jnt]
        self._ref = self._start = float(d.qpos[self._qadr])
        body_rot = d.xmat[self._body].reshape(3, 3)
        self._rel_pos = body_rot.T @ (ctrl.ee_pos - d.xpos[self._body])  # gripper in the part's frame
        self._start_pos, self._start_rot = ctrl.ee_pos, ctrl.ee_rot
        radius = 1.0
        if self._hinge:
            radius = max(np.linalg.norm(np.cross(d.xaxis[self._jnt], ctrl.ee_pos - d.xanchor[self._jnt])), 1e-3)
        self._step = min(self.spec.speed / radius, MAX_DRIVE_RATE) * ctrl.dt
        self._lead = LEAD_DISTANCE / radius
        self._history: list[tuple[float, np.ndarray, np.ndarray]] = []
        self._reached = False
        self._pos, self._rot = ctrl.ee_pos, ctrl.ee_rot

    def _q(self, ctrl) -> float:
        return float(ctrl.data.qpos[self._qadr])

    def velocity(self, ctrl):
        d = ctrl.data
        q = self._q(ctrl)
        sign = np.sign(self.spec.target - self._ref)
        self._ref = float(np.clip(self._ref + sign * self._step, q - self._lead, q + self._lead))
        self._ref = min(self._ref, self.spec.target) if sign > 0 else max(self._ref, self.spec.target)
        axis, rot = d.xaxis[self._jnt], self._start_rot
        if self.spec.twist:
            # Turn the hand in place about its own axis (the part's axis, give or take the approach's
            # tilt), so the wrist stays where it is.
            hand_axis = rot[:, 2] * np.sign(rot[:, 2] @ axis)
            self._pos, self._rot = self._start_pos, _axis_rotation(hand_axis, self._ref - self._start) @ rot
            return ctrl.ik_velocity(d, self._pos, self._rot, MAX_SPEED)
        delta = self._ref - q
        body_rot, body_pos = d.xmat[self._body].reshape(3, 3), d.xpos[self._body]
        if self._hinge:
            turn = _axis_rotation(axis, delta)
            anchor = d.xanchor[self._jnt]
            body_pos = anchor + turn @ (body_pos - anchor)
            body_rot = turn @ body_rot
            rot = _axis_rotation(axis, self.spec.follow_rotation * (self._ref - self._start)) @ rot
        else:
            body_pos = body_pos + axis * delta
        self._pos, self._rot = body_pos + body_rot @ self._rel_pos, rot
        return ctrl.ik_velocity(d, self._pos, rot, MAX_SPEED)

    @property
    def reached(self) -> bool:
        return self._reached

    def finished(self, ctrl):
        q = self._q(ctrl)
        self._reached = (q - self.spec.finish) * np.sign(self.spec.target - self.spec.finish) >= 0
        if self._reached:
            return True
        # Stalled: the part has stopped, and the hand either got where it was sent (a slipped grip) or
        # has stopped too (stuck). A hand that moves, or is still short of its target, is working on it.
        pos, rot = ctrl.ee_pos, ctrl.ee_rot
        self._history.append((q, pos, rot))
        if len(self._history) <= STALL_STEPS:
            return False
        q_then, pos_then, rot_then = self._history[-STALL_STEPS - 1]
        at_target = (np.linalg.norm(self._pos - pos) < STALL_REACH
                     and np.linalg.norm(_rotation_error(self._rot, rot)) < 5 * STALL_REACH)
        still = (np.linalg.norm(pos - pos_then) < STALL_REACH
                 and np.linalg.norm(_rotation_error(rot, rot_then)) < 5 * STALL_REACH)
        return abs(q - q_then) < STALL_MOTION and (at_target or still)


class KitchenScriptedController:
    """Performs one Kitchen subtask at a time from the arm's current pose.

    Args:
        env: the Kitchen environment (``FrankaKitchen-v1``'s ``KitchenEnv``, or PTGM's wrapper of it);
            its ``unwrapped`` must expose the MuJoCo ``model`` and ``data``.
        rng: source of the action noise.
        action_noise: standard deviation of the Gaussian noise added to every action (before clipping),
            which makes scripted play varied like human play.
    """

    def __init__(self, env, rng: np.random.Generator, action_noise: float = 0.1):
        base = env.unwrapped
        self.model: mujoco.MjModel = base.model
        self.data: mujoco.MjData = base.data
        robot = base.robot_env if hasattr(base, "robot_env") else base.kitchen.robot_env
        self.dt = float(robot.dt)
        self.rng = rng
        self.action_noise = action_noise
        m = self.model
        self._site = m.site(EE_SITE).id
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._robot_root = m.body_rootid[m.site_bodyid[self._site]]
        self._wrist_body = m.jnt_bodyid[4]  # bodies from the fifth joint's on: the forearm's end, hand, fingers
        self._scratch = mujoco.MjData(m)  # for planning configurations without touching the simulation
        # Target offset per unit action, and the offset per rad/s of velocity that moves a joint that far
        # (v·dt) within one step (first-order lag, see the module docstring).
        kp = m.actuator_gainprm[:7, 0]
        self._offset_per_action = robot.act_rng[:7] * self.dt
        self._offset_per_velocity = self.dt / (1.0 - np.exp(-self.dt * kp / m.dof_damping[:7]))
        self._kp = kp
        # The environment clips targets to its own bounds as well as the model's joint ranges.
        self._q_low = np.maximum(m.jnt_range[:7, 0], robot.robot_pos_bound[:7, 0]) + JOINT_MARGIN
        self._q_high = np.minimum(m.jnt_range[:7, 1], robot.robot_pos_bound[:7, 1]) - JOINT_MARGIN
        self._posture = np.zeros(7)
        self._subtask: str | None = None
        self._phases: list[_Phase] = []
        self._index = 0
        self._retries = 0
        self.phase_steps = 0

    # -- state ------------------------------------------------------------------------
    @property
    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._site].copy()

    @property
    def ee_rot(self) -> np.ndarray:
        return self.data.site_xmat[self._site].reshape(3, 3).copy()

    @property
    def done(self) -> bool:
        """Whether the current subtask's script has finished (successfully or not)."""
        return self._index >= len(self._phases)

    def subtask_completed(self, observation: np.ndarray) -> bool:
        """The environment's completion check for the current subtask, on ``observation``.

        The subtask's object joints must be within ``BONUS_THRESH`` (norm) of their goal; object joint
        ``i`` of ``qpos`` is entry ``i + 9`` of the observation (it follows the robot's 9 velocities).
        """
        if self._subtask is None:
            return False
        values = np.asarray(observation)[OBS_ELEMENT_INDICES[self._subtask] + 9]
        return bool(np.linalg.norm(values - OBS_ELEMENT_GOALS[self._subtask]) < BONUS_THRESH)

    # -- scripts ------------------------------------------------------------------------
    def start(self, subtask: str) -> None:
        """Begin ``subtask`` from wherever the arm is now."""
        if subtask not in SUBTASKS:
            raise ValueError(f"Unknown Kitchen subtask {subtask!r}; known subtasks: {', '.join(SUBTASKS)}.")
        self._subtask = subtask
        self._phases = self._kettle_script() if subtask == "kettle" else self._articulated_script(_OBJECTS[subtask])
        self._index = 0
        self._retries = RETRIES
        self._begin_phase()

    def _frame(self, body: str) -> np.ndarray:
        return self.data.xmat[self.model.body(body).id].reshape(3, 3).copy()

    def _site_pos(self, site: str) -> np.ndarray:
        return self.data.site_xpos[self.model.site(site).id].copy()

    def _configuration_at(self, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Arm configuration that puts the gripper at ``pos``/``rot``, found from the subtask's posture."""
        scratch = self._scratch
        scratch.qpos[:] = self.data.qpos
        scratch.qpos[:7] = self._posture
        for _ in range(IK_ITERATIONS):
            mujoco.mj_kinematics(self.model, scratch)
            mujoco.mj_comPos(self.model, scratch)
            scratch.qpos[:7] += self.ik_velocity(scratch, pos, rot, np.inf) * self.dt
        return scratch.qpos[:7].copy()

    def _leave(self, pre: np.ndarray, rot: np.ndarray, direction: np.ndarray) -> list[_Phase]:
        """Back away from whatever the hand is at, then swing the arm (in joint space) to the configuration
        that holds the hand ``STAGING`` short of ``pre`` along the approach ``direction``; the hand then
        comes in along a straight line, on which nothing but the target object lies."""
        def back_off(ctrl):
            hand = ctrl.ee_rot
            return ctrl.ee_pos - BACK_OFF * hand[:, 2], hand

        swing = _JointMove(lambda c: c._configuration_at(pre - STAGING * direction, rot))
        # A hand that touches nothing (the usual case: the last script ended with a retreat) can swing at once.
        return [_Move(back_off, tol=0.02, rot_tol=np.inf, max_steps=15), swing] if self._hand_in_contact() else [swing]

    def _hand_in_contact(self) -> bool:
        """Whether the wrist, hand or fingers touch anything that is not the robot."""
        m, d = self.model, self.data
        for contact in d.contact[:d.ncon]:
            b1, b2 = m.geom_bodyid[contact.geom1], m.geom_bodyid[contact.geom2]
            for own, other in ((b1, b2), (b2, b1)):
                if m.body_rootid[own] == self._robot_root and own >= self._wrist_body \
                        and m.body_rootid[other] != self._robot_root:
                    return True
        return False

    @staticmethod
    def _release_and_retreat(center: Callable[[KitchenScriptedController], Pose] | None = None) -> list[_Phase]:
        """Open the hand, optionally centre it on what it held (so no finger drags it), and back away."""
        hold = _Move(lambda c: (c.ee_pos, c.ee_rot), tol=np.inf, rot_tol=np.inf, max_steps=3, hold=3)
        phases = [hold] if center is None else [hold, _Move(center, tol=0.004, rot_tol=np.inf, max_steps=6)]
        return phases + [_Move(lambda c: (c.ee_pos - RETREAT * c.ee_rot[:, 2], c.ee_rot), tol=0.02,
                               rot_tol=np.inf, max_steps=20)]

    def _approach_poses(self, spec: _Articulated) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Contact position, pre-approach position (``standoff`` in front of it) and gripper rotation."""
        frame = self._frame(spec.frame_body)
        joint = self.model.joint(spec.joint).id
        if self.model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_HINGE:
            # Face the part as it is now (a door or knob already partly turned).
            angle = float(self.data.qpos[self.model.jnt_qposadr[joint]])
            frame = _axis_rotation(self.data.xaxis[joint], angle) @ frame
        contact = self._site_pos(spec.site) + frame @ np.asarray(spec.contact)
        facing = frame @ _axis_rotation(_Z, spec.yaw)
        rot = facing @ _axis_rotation(_X, -spec.pitch) @ _R_FORWARD @ _axis_rotation(_Z, spec.roll)
        return contact, contact - spec.standoff * facing[:, 1], rot

    def _articulated_script(self, spec: _Articulated) -> list[_Phase]:
        self._posture = np.array(spec.posture)
        contact, pre, rot = self._approach_poses(spec)
        grip = spec.approach_gripper
        phases = self._leave(pre, rot, (contact - pre) / np.linalg.norm(contact - pre)) + [
            _Move(lambda c: (pre, rot), gripper=grip, tol=0.03, rot_tol=0.15, max_steps=15),
            _Move(lambda c: (contact, rot), gripper=grip, tol=0.012, rot_tol=0.1, max_steps=12,
                  speed=APPROACH_SPEED),
        ]
        if spec.drive_gripper != grip:
            phases.append(_Move(lambda c: (contact, rot), gripper=spec.drive_gripper, tol=0.02, rot_tol=0.3,
                                max_steps=8, hold=3))
        return phases + [_Drive(spec)] + self._release_and_retreat()

    def _kettle_script(self) -> list[_Phase]:
        self._posture = np.array(KETTLE_POSTURE)
        rot = _R_FORWARD @ _axis_rotation(_Z, KETTLE_ROLL)
        kettle = self.model.body("kettle").id
        handle_offset = np.array([0.0, -0.005, 0.0])
        grasp = self._site_pos("kettle_site") + handle_offset
        pre = grasp - np.array([0.0, 0.08, 0.0])
        lift = np.array([0.0, 0.0, KETTLE_LIFT])
        held: dict[str, np.ndarray] = {}

        def lift_pose(ctrl):
            held["offset"] = ctrl.ee_pos - ctrl.data.xpos[kettle]  # the grip, kept while carrying
            return ctrl.ee_pos + lift, rot

        return self._leave(pre, rot, np.array([0.0, 1.0, 0.0])) + [
            _Move(lambda c: (pre, rot), tol=0.015, rot_tol=0.1, max_steps=30),
            _Move(lambda c: (grasp, rot), tol=0.005, rot_tol=0.1, max_steps=30, speed=APPROACH_SPEED),
            _Move(lambda c: (grasp, rot), gripper=CLOSED, tol=0.02, rot_tol=0.3, max_steps=8, hold=3),
            _Move(lift_pose, gripper=CLOSED, tol=0.02, rot_tol=0.2, max_steps=20, speed=0.2),
            _Move(lambda c: (KETTLE_TARGET + held["offset"] + lift, rot), gripper=CLOSED, tol=0.02, rot_tol=0.2,
                  max_steps=40, speed=0.3),
            _Move(lambda c: (KETTLE_TARGET + held["offset"], rot), gripper=CLOSED, tol=0.01, rot_tol=0.2,
                  max_steps=15, speed=APPROACH_SPEED),
        ] + self._release_and_retreat(lambda c: (c._site_pos("kettle_site") + handle_offset, c.ee_rot))

    # -- control ------------------------------------------------------------------------
    def _begin_phase(self) -> None:
        self.phase_steps = 0
        if not self.done:
            self._phases[self._index].begin(self)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The next action (9 joint velocities in [-1, 1], float32) for the current subtask."""
        del observation  # the true state is read from the simulator
        while not self.done:
            phase = self._phases[self._index]
            if self.phase_steps < phase.max_steps and not phase.finished(self):
                break
            if isinstance(phase, _Drive) and not phase.reached and self._retries > 0:
                # The part slipped or stuck short of the goal: approach it again from where it is now.
                self._retries -= 1
                self._phases[self._index + 1:] = self._articulated_script(phase.spec)
            self._index += 1
            self._begin_phase()
        if self.done:  # hold still with an open hand
            qvel, gripper = np.zeros(7), OPEN
        else:
            qvel, gripper = phase.velocity(self), phase.gripper
        self.phase_steps += 1
        action = np.empty(9)
        # Velocity -> target offset (the lag's, plus what holds the arm against gravity) -> action.
        offset = qvel * self._offset_per_velocity + self.data.qfrc_bias[:7] / self._kp
        action[:7] = offset / self._offset_per_action
        action[7:] = gripper
        action += self.rng.normal(0.0, self.action_noise, 9)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def ik_velocity(self, data: mujoco.MjData, pos: np.ndarray, rot: np.ndarray, speed: float) -> np.ndarray:
        """Arm joint velocities (rad/s) moving the gripper towards ``pos``/``rot``.

        Damped least squares on the site Jacobian (position rows, and orientation rows weighted by
        ``ROT_WEIGHT``); the redundant degree of freedom is pulled towards the subtask's posture, and a
        joint that would pass its bound within a step is frozen there while the others are re-solved.
        """
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self._site)
        lin = POS_GAIN * (pos - data.site_xpos[self._site])
        norm = np.linalg.norm(lin)
        if norm > speed:
            lin *= speed / norm
        ang = ROT_GAIN * _rotation_error(rot, data.site_xmat[self._site].reshape(3, 3))
        norm = np.linalg.norm(ang)
        if norm > MAX_ROT_SPEED:
            ang *= MAX_ROT_SPEED / norm
        jac = np.vstack([self._jacp[:, :7], ROT_WEIGHT * self._jacr[:, :7]])
        twist = np.concatenate([lin, ROT_WEIGHT * ang])
        q = data.qpos[:7]
        low, high = (self._q_low - q) / self.dt, (self._q_high - q) / self.dt
        qvel = np.zeros(7)
        free = np.ones(7, bool)
        for _ in range(3):
            j = jac[:, free]
            inv = np.linalg.inv(j @ j.T + IK_DAMPING**2 * np.eye(6))
            qvel[free] = j.T @ inv @ (twist - jac[:, ~free] @ qvel[~free])
            qvel[free] += (np.eye(free.sum()) - j.T @ inv @ j) @ (POSTURE_GAIN * (self._posture - q)[free])
            over = free & ((qvel < low) | (qvel > high))
            if not over.any():
                break
            qvel[over] = np.clip(qvel[over], low[over], high[over])
            free &= ~over
        return np.clip(qvel, low, high)


def perform_subtasks(env, order: tuple[str, ...] | list[str], rng: np.random.Generator, seed: int,
                     action_noise: float | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """One episode of the scripted controller doing ``order``'s subtasks one after the other.

    A subtask whose script ends without completing it is left behind. The episode ends at the
    environment's end (the task done, or its step limit) or when the plan runs out.

    Args:
        env: PTGM's :class:`~ptgm.domains.kitchen.env.KitchenEnv` (its ``info`` reports completions).
        order: the subtasks, in order.
        rng: source of the action noise.
        seed: the reset seed.
        action_noise: the controller's noise std (``None``: its default, the play data's).

    Returns:
        ``(observations, completed)``: the ``(T + 1, obs_dim)`` observations from the reset on, and
        the env step at which each completed subtask (of any task) was completed.
    """
    obs, _ = env.reset(seed=seed)
    controller = KitchenScriptedController(env, rng, **({} if action_noise is None else {"action_noise": action_noise}))
    plan = list(order)
    controller.start(plan.pop(0))
    observations, completed, done = [obs], {}, False
    while not done:
        if controller.done:
            if not plan:
                break
            controller.start(plan.pop(0))
        obs, _, terminated, truncated, info = env.step(controller(obs))
        observations.append(obs)
        for name in info["step_task_completions"]:
            completed[name] = len(observations) - 1
        done = terminated or truncated
    return np.asarray(observations), completed
