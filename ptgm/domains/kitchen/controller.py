"""Scripted Franka Kitchen controller: waypoints around each object, followed by inverse kinematics.

Every subtask is a short list of phases (back off, travel, approach the handle or knob,
grip, move the object's joint to its goal, release, retreat). Each step the current
phase gives an end-effector target (position, orientation, gripper); damped least
squares on MuJoCo's site Jacobian turns the Cartesian error into joint velocities, and
those into the 9 joint-velocity actions ``FrankaKitchen-v1`` takes.

How the environment uses an action (``FrankaRobot.step``): ``a`` is clipped to [-1, 1],
scaled by ``act_rng`` (2) and the position actuators get the target
``q_observed + 2 a dt`` (dt = 40 × 2 ms = 0.08 s). The arm's joints are heavily damped
(damping ``b``), so a held offset ``Δ`` gives the steady velocity ``kp Δ / b``: the
controller inverts that (and adds the offset that holds the arm against gravity), so
its actions are joint-velocity commands in rad/s.

The controller reads the true simulator state (``data``), not the noisy observation.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import BONUS_THRESH, OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

from ptgm.domains.kitchen.env import SUBTASKS

__all__ = ["SUBTASKS", "KitchenScriptedController", "play_episode_plan"]

EE_SITE = "end_effector"
#: Gripper pointing into an object whose front faces -y of ``frame``: site z (approach) along
#: frame +y, fingers (site y) along frame +x, site x along frame +z.
_R_FORWARD = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
#: Gripper pointing along +y with the fingers above and below (pinches the kettle's horizontal handle).
_R_FORWARD_VERTICAL_FINGERS = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

# Cartesian servo: fraction of the error closed per second, and speed limits.
POS_GAIN = 5.0
ROT_GAIN = 4.0
MAX_SPEED = 0.45  # m/s
MAX_ROT_SPEED = 1.5  # rad/s
ROT_WEIGHT = 0.3  # metres per radian: position accuracy matters more than orientation
IK_DAMPING = 0.05
POSTURE_GAIN = 0.5  # 1/s, pulls the redundant degree of freedom towards a comfortable posture
JOINT_MARGIN = 0.05  # rad kept from each joint bound
#: Comfortable arm posture (the environment's initial one).
REST_POSTURE = np.array([0.15, -1.77, 1.84, -2.48, 0.26, 0.71, 1.6])
#: Travel height: above the kettle and an open microwave door.
TRAVEL_Z = 2.02
#: Kettle position that completes the subtask (OBS_ELEMENT_GOALS["kettle"][:3]), aimed at slightly short of it.
KETTLE_TARGET = np.array([-0.23, 0.72, 1.626])


@dataclass(frozen=True)
class _Articulated:
    """How to operate one articulated object: grip (or push at) a site, then drive a joint.

    Offsets are in the frame of ``frame_body`` (a body that does not move with the joint), whose
    -y is the object's front.
    """

    joint: str
    site: str
    frame_body: str
    target: float  # joint value to drive to: past the goal, inside the joint's range
    grasp: bool
    contact: tuple[float, float, float]  # end-effector position relative to the site
    speed: float  # m/s of the contact point while driving
    follow_rotation: float  # how much of the part's rotation the gripper follows (1: knobs; less for round handles)
    standoff: float = 0.12


_OBJECTS: dict[str, _Articulated] = {
    "microwave": _Articulated("microwave", "microhandle_site", "microroot", -1.0, True,
                              (0.0, -0.005, 0.0), 0.25, 0.5),
    "hinge cabinet": _Articulated("right_hinge_cabinet", "hinge_site2", "hingecab", 1.52, True,
                                  (0.0, -0.005, 0.0), 0.25, 0.0),
    "slide cabinet": _Articulated("slide_cabinet", "slide_site", "slide", 0.42, True,
                                  (0.0, -0.005, 0.0), 0.25, 0.0),
    "bottom burner": _Articulated("knob_Joint_2", "knob2_site", "ovenroot", -1.05, True,
                                  (0.0, -0.035, 0.0), 0.1, 1.0),
    "top burner": _Articulated("knob_Joint_4", "knob4_site", "ovenroot", -1.05, True,
                               (0.0, -0.035, 0.0), 0.1, 1.0),
    "light switch": _Articulated("light_switch", "light_site", "hoodroot", -0.7, False,
                                 (0.045, -0.03, 0.0), 0.15, 0.0),
}


def play_episode_plan(rng: np.random.Generator) -> list[str]:
    """A play episode's plan: 2–4 distinct subtasks in random order."""
    count = int(rng.integers(2, 5))
    return [SUBTASKS[i] for i in rng.permutation(len(SUBTASKS))[:count]]


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


class _Phase:
    """One step of a subtask's script: an end-effector target and when it is finished."""

    max_steps = 40
    gripper = 1.0  # +1 open, -1 close

    def begin(self, ctrl: KitchenScriptedController) -> None:
        """Called when the phase becomes current."""

    def target(self, ctrl: KitchenScriptedController) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def finished(self, ctrl: KitchenScriptedController, pos_err: float, rot_err: float) -> bool:
        raise NotImplementedError


class _Move(_Phase):
    """Go to a pose given by a function of the simulator state (evaluated once, when the phase begins)."""

    def __init__(self, pose, gripper: float = 1.0, tol: float = 0.02, rot_tol: float = 0.15,
                 max_steps: int = 40, speed: float = MAX_SPEED, hold: int = 0):
        self.pose, self.gripper, self.tol, self.rot_tol = pose, gripper, tol, rot_tol
        self.max_steps, self.speed, self.hold = max_steps, speed, hold
        self._goal: tuple[np.ndarray, np.ndarray] | None = None

    def begin(self, ctrl):
        self._goal = self.pose(ctrl)

    def target(self, ctrl):
        return self._goal

    def finished(self, ctrl, pos_err, rot_err):
        # ``hold`` keeps the phase for a few steps, e.g. while the fingers close.
        return ctrl.phase_steps >= self.hold and pos_err < self.tol and rot_err < self.rot_tol


class _Drive(_Phase):
    """Move an object's joint to a value while keeping the gripper's pose fixed relative to the moving part.

    A reference joint value runs ahead of the real one by at most ``lead``; the gripper is sent to
    where it would be if the part were at the reference, so it pulls (or pushes) the part along
    its own path, whether the part is a door, a drawer, a knob or a switch.
    """

    def __init__(self, spec: _Articulated, gripper: float, max_steps: int = 60):
        self.spec, self.gripper, self.max_steps = spec, gripper, max_steps

    def begin(self, ctrl):
        m, d = ctrl.model, ctrl.data
        self._jnt = m.joint(self.spec.joint).id
        self._body = m.jnt_bodyid[self._jnt]
        self._hinge = m.jnt_type[self._jnt] == mujoco.mjtJoint.mjJNT_HINGE
        self._qadr = m.jnt_qposadr[self._jnt]
        self._ref = float(d.qpos[self._qadr])
        # Gripper pose in the moving body's frame, kept while driving.
        body_rot = d.xmat[self._body].reshape(3, 3)
        self._rel_pos = body_rot.T @ (ctrl.ee_pos - d.xpos[self._body])
        self._start_q = self._ref
        self._start_rot = ctrl.ee_rot
        radius = np.linalg.norm(np.cross(d.xaxis[self._jnt], ctrl.ee_pos - d.xanchor[self._jnt])) if self._hinge else 1.0
        self._step = self.spec.speed * ctrl.dt / max(radius, 0.03)
        self._lead = 4 * self._step

    def _q(self, ctrl) -> float:
        return float(ctrl.data.qpos[self._qadr])

    def target(self, ctrl):
        d = ctrl.data
        q = self._q(ctrl)
        sign = np.sign(self.spec.target - q)
        self._ref = float(np.clip(self._ref + sign * self._step, q - self._lead, q + self._lead))
        self._ref = min(self._ref, self.spec.target) if sign > 0 else max(self._ref, self.spec.target)
        delta = self._ref - q
        body_rot = d.xmat[self._body].reshape(3, 3)
        body_pos = d.xpos[self._body]
        axis = d.xaxis[self._jnt]
        if self._hinge:
            turn = _axis_rotation(axis, delta)
            anchor = d.xanchor[self._jnt]
            body_pos = anchor + turn @ (body_pos - anchor)
            body_rot = turn @ body_rot
        else:
            body_pos = body_pos + axis * delta
        pos = body_pos + body_rot @ self._rel_pos
        rot = self._start_rot
        if self._hinge:
            rot = _axis_rotation(axis, self.spec.follow_rotation * (self._ref - self._start_q)) @ rot
        return pos, rot

    def finished(self, ctrl, pos_err, rot_err):
        return abs(self._q(ctrl) - self.spec.target) < 0.03


class KitchenScriptedController:
    """Performs one Kitchen subtask at a time from the arm's current pose.

    Args:
        env: the Kitchen environment (``FrankaKitchen-v1``'s ``KitchenEnv`` or PTGM's wrapper of it);
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
        # Joint-target offset per unit action, and the steady joint velocity that offset gives.
        self._offset_per_action = robot.act_rng[:7] * self.dt
        kp = m.actuator_gainprm[:7, 0]
        self._kp_offset = kp * self._offset_per_action
        self._vel_per_action = self._kp_offset / m.dof_damping[:7]
        # The environment clips targets to its own bounds as well as the model's joint ranges.
        self._q_low = np.maximum(m.jnt_range[:7, 0], robot.robot_pos_bound[:7, 0]) + JOINT_MARGIN
        self._q_high = np.minimum(m.jnt_range[:7, 1], robot.robot_pos_bound[:7, 1]) - JOINT_MARGIN
        self._subtask: str | None = None
        self._phases: list[_Phase] = []
        self._index = 0
        self.phase_steps = 0

    # -- state ------------------------------------------------------------------------
    @property
    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._site].copy()

    @property
    def ee_rot(self) -> np.ndarray:
        return self.data.site_xmat[self._site].reshape(3, 3).copy()

    @property
    def subtask(self) -> str | None:
        return self._subtask

    @property
    def done(self) -> bool:
        """Whether the current subtask's script has finished (successfully or not)."""
        return self._index >= len(self._phases)

    def subtask_completed(self, observation: np.ndarray) -> bool:
        """The environment's completion check for the current subtask on ``observation``.

        The check compares the subtask's object joints with their goal (norm < ``BONUS_THRESH``);
        object joint ``i`` of ``qpos`` is entry ``i + 9`` of the observation (after the robot velocities).
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
        self._begin_phase()

    def _frame(self, body: str) -> np.ndarray:
        return self.data.xmat[self.model.body(body).id].reshape(3, 3).copy()

    def _site_pos(self, site: str) -> np.ndarray:
        return self.data.site_xpos[self.model.site(site).id].copy()

    def _leave_phases(self) -> list[_Phase]:
        """Back away from whatever the gripper is at, then rise to travel height."""
        def back_off(ctrl):
            rot = ctrl.ee_rot
            return ctrl.ee_pos - 0.08 * rot[:, 2], rot

        return [_Move(back_off, tol=0.03, rot_tol=np.inf, max_steps=12)]

    def _travel_phases(self, pre_pos: np.ndarray, rot: np.ndarray) -> list[_Phase]:
        def travel(ctrl):
            pos = ctrl.ee_pos
            pos[2] = max(pos[2], TRAVEL_Z)
            return pos, rot

        def above_pre(ctrl):
            return np.array([pre_pos[0], pre_pos[1], max(pre_pos[2], TRAVEL_Z)]), rot

        return [_Move(travel, tol=0.04, rot_tol=np.inf, max_steps=15),
                _Move(above_pre, tol=0.04, rot_tol=0.3, max_steps=40)]

    def _articulated_script(self, spec: _Articulated) -> list[_Phase]:
        frame = self._frame(spec.frame_body)
        rot = frame @ _R_FORWARD
        contact = self._site_pos(spec.site) + frame @ np.asarray(spec.contact)
        pre = contact - spec.standoff * frame[:, 1]
        grip = -1.0 if spec.grasp else -1.0  # a closed hand is also the better pusher
        approach_grip = 1.0 if spec.grasp else -1.0
        phases = self._leave_phases() + self._travel_phases(pre, rot)
        phases += [
            _Move(lambda c: (pre, rot), gripper=approach_grip, tol=0.015, rot_tol=0.1, max_steps=40),
            _Move(lambda c: (contact, rot), gripper=approach_grip, tol=0.008, rot_tol=0.1, max_steps=30, speed=0.15),
        ]
        if spec.grasp:
            phases.append(_Move(lambda c: (contact, rot), gripper=-1.0, tol=0.02, rot_tol=0.3, max_steps=8, hold=3))
        phases.append(_Drive(spec, gripper=grip, max_steps=80))
        phases += [
            _Move(lambda c: (c.ee_pos, c.ee_rot), gripper=1.0, tol=np.inf, rot_tol=np.inf, max_steps=3, hold=3),
            _Move(lambda c: (c.ee_pos - 0.12 * c.ee_rot[:, 2], c.ee_rot), gripper=1.0, tol=0.03, rot_tol=np.inf,
                  max_steps=15),
        ]
        return phases

    def _kettle_script(self) -> list[_Phase]:
        rot = _R_FORWARD_VERTICAL_FINGERS
        handle = self._site_pos("kettle_site")
        grasp = handle + np.array([0.0, -0.005, 0.0])
        pre = grasp - np.array([0.0, 0.12, 0.0])
        kettle_body = self.model.body("kettle").id
        held: dict[str, np.ndarray] = {}

        def remember_grasp(ctrl):
            held["offset"] = ctrl.ee_pos - ctrl.data.xpos[kettle_body]
            return ctrl.ee_pos + np.array([0.0, 0.0, 0.08]), rot

        def above_target(ctrl):
            return KETTLE_TARGET + held["offset"] + np.array([0.0, 0.0, 0.08]), rot

        def on_target(ctrl):
            return KETTLE_TARGET + held["offset"] + np.array([0.0, 0.0, 0.01]), rot

        phases = self._leave_phases() + self._travel_phases(pre, rot)
        phases += [
            _Move(lambda c: (pre, rot), tol=0.015, rot_tol=0.1, max_steps=40),
            _Move(lambda c: (grasp, rot), tol=0.008, rot_tol=0.1, max_steps=30, speed=0.15),
            _Move(lambda c: (grasp, rot), gripper=-1.0, tol=0.02, rot_tol=0.3, max_steps=8, hold=3),
            _Move(remember_grasp, gripper=-1.0, tol=0.02, rot_tol=0.2, max_steps=20, speed=0.2),
            _Move(above_target, gripper=-1.0, tol=0.02, rot_tol=0.2, max_steps=40, speed=0.25),
            _Move(on_target, gripper=-1.0, tol=0.015, rot_tol=0.2, max_steps=20, speed=0.15),
            _Move(lambda c: (c.ee_pos, c.ee_rot), gripper=1.0, tol=np.inf, rot_tol=np.inf, max_steps=3, hold=3),
            _Move(lambda c: (c.ee_pos - 0.12 * c.ee_rot[:, 2], c.ee_rot), gripper=1.0, tol=0.03, rot_tol=np.inf,
                  max_steps=15),
        ]
        return phases

    # -- control ------------------------------------------------------------------------
    def _begin_phase(self) -> None:
        self.phase_steps = 0
        if not self.done:
            self._phases[self._index].begin(self)

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """The next action (9 joint velocities in [-1, 1], float32) for the current subtask."""
        del observation  # the true state is read from the simulator
        gripper = 1.0
        pos, rot = self.ee_pos, self.ee_rot
        speed = MAX_SPEED
        while not self.done:
            phase = self._phases[self._index]
            pos, rot = phase.target(self)
            pos_err = float(np.linalg.norm(pos - self.ee_pos))
            rot_err = float(np.linalg.norm(_rotation_error(rot, self.ee_rot)))
            if self.phase_steps < phase.max_steps and not phase.finished(self, pos_err, rot_err):
                gripper = phase.gripper
                speed = getattr(phase, "speed", MAX_SPEED)
                break
            self._index += 1
            self._begin_phase()
        self.phase_steps += 1
        action = np.empty(9)
        action[:7] = self._arm_action(pos, rot, speed)
        action[7:] = gripper
        action += self.rng.normal(0.0, self.action_noise, 9)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _arm_action(self, pos: np.ndarray, rot: np.ndarray, speed: float) -> np.ndarray:
        """Arm actions that move the end effector towards ``pos``/``rot``."""
        qvel = self.joint_velocity(pos, rot, speed)
        # Velocity command -> target offset, plus the offset that holds the arm against gravity.
        return (qvel * self.model.dof_damping[:7] + self.data.qfrc_bias[:7]) / self._kp_offset

    def joint_velocity(self, pos: np.ndarray, rot: np.ndarray, speed: float = MAX_SPEED) -> np.ndarray:
        """Arm joint velocities (rad/s) towards ``pos``/``rot``: damped least squares on the site Jacobian."""
        m, d = self.model, self.data
        mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self._site)
        lin = POS_GAIN * (pos - self.ee_pos)
        norm = np.linalg.norm(lin)
        if norm > speed:
            lin *= speed / norm
        ang = ROT_GAIN * _rotation_error(rot, self.ee_rot)
        norm = np.linalg.norm(ang)
        if norm > MAX_ROT_SPEED:
            ang *= MAX_ROT_SPEED / norm
        jac = np.vstack([self._jacp[:, :7], ROT_WEIGHT * self._jacr[:, :7]])
        twist = np.concatenate([lin, ROT_WEIGHT * ang])
        q = d.qpos[:7]
        low, high = (self._q_low - q) / self.dt, (self._q_high - q) / self.dt
        qvel = np.zeros(7)
        free = np.ones(7, bool)
        # Damped least squares; a joint that would pass its bound is frozen at it and the rest re-solved.
        for _ in range(3):
            j = jac[:, free]
            inv = np.linalg.inv(j @ j.T + IK_DAMPING**2 * np.eye(6))
            rest = twist - jac[:, ~free] @ qvel[~free]
            qvel[free] = j.T @ inv @ rest
            # Spend the redundant degree of freedom on staying near a comfortable posture.
            qvel[free] += (np.eye(free.sum()) - j.T @ inv @ j) @ (POSTURE_GAIN * (REST_POSTURE - q)[free])
            over = free & ((qvel < low) | (qvel > high))
            if not over.any():
                break
            qvel[over] = np.clip(qvel[over], low[over], high[over])
            free &= ~over
        return np.clip(qvel, low, high)
