"""Every command's settings: one typed dataclass per command, documented field by field.

The command line is generated from these classes (``ptgm CMD --help`` lists the fields), and the Python API
takes the same classes, so each setting is spelt once. This module imports nothing heavy: printing help
must not wait for PyTorch.

Conventions:

- **Unset means "the default of the domain or method".** A field whose default is ``None`` is filled in by
  ``__post_init__`` from the domain (e.g. Kitchen's 200 goals) or the method (e.g. the discount of a
  high-level learner); its help says what fills it. Every other value, ``0`` included, means itself.
- Every command that works in a run directory takes :class:`RunSettings`; every pre-training or training
  stage takes :class:`StageSettings` (its seed, and ``force`` / ``resume``).
- **Every number says what it accepts**: its field's metadata holds a :class:`Range`, and
  :func:`check_ranges` refuses any value outside it (NaN and infinity too) when the settings are made,
  before a stage touches anything.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ptgm.utils import PTGMError

#: Environment steps per high-level step (the paper's k), wherever a command takes k.
DEFAULT_K = 10
#: Action heads of the low-level policy for Box action spaces.
ACTION_HEADS = ("gaussian", "mixture")
#: The KL(policy ‖ prior) in nats that SAC-style learners over goals or skills steer towards
#: (the authors' Kitchen configuration; ptgm-sac and SPiRL).
TARGET_DIVERGENCE = 5.0


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts (its field's ``metadata["range"]``); a tuple setting, each entry."""

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None

    def accepts(self, value: float) -> bool:
        return (math.isfinite(value)
                and (self.at_least is None or value >= self.at_least) and (self.above is None or value > self.above)
                and (self.at_most is None or value <= self.at_most) and (self.below is None or value < self.below))

    def __str__(self) -> str:
        if self.at_least is not None and self.at_most is not None:
            return f"between {self.at_least:g} and {self.at_most:g}"
        bounds = [f"{word} {bound:g}" for word, bound in (("at least", self.at_least), ("above", self.above),
                                                           ("at most", self.at_most), ("below", self.below))
                  if bound is not None]
        return " and ".join(bounds) or "a finite number"


AT_LEAST_1 = Range(at_least=1)  # counts: steps, sizes, episodes
AT_LEAST_0 = Range(at_least=0)  # seeds, weights, counts that may be zero
POSITIVE = Range(above=0)  # learning rates
FRACTION = Range(above=0, below=1)
UNIT = Range(at_least=0, at_most=1)  # discounts
ANY_NUMBER = Range()


def check_ranges(settings) -> None:
    """One clear error for the first numeric setting outside its :class:`Range` (unset ones are filled later
    from defaults that are in range)."""
    for f in dataclasses.fields(settings):
        allowed, value = f.metadata.get("range"), getattr(settings, f.name)
        if allowed is None or value is None:
            continue
        for entry in value if isinstance(value, tuple) else (value,):
            if isinstance(entry, bool) or not isinstance(entry, (int, float)) or not allowed.accepts(entry):
                raise PTGMError(f"--{f.name.replace('_', '-')} must be {allowed}, got {value!r}.")


def _domain(settings):
    from ptgm.domains import domain_of  # imports gymnasium: only when settings are built, not for --help

    return domain_of(settings)


@dataclass
class RunSettings:
    """What every command that works in a run directory takes."""

    run_dir: str | None = field(default=None, metadata={"help": "run directory (unset: runs/DOMAIN)"})
    domain: str = field(default="crafter", metadata={"help": "domain plug-in", "choices": "domains"})
    dataset: str | None = field(default=None, metadata={
        "help": "Minari dataset (path or id) to read instead of the run's own play data; with --domain minari, "
                "also the environment it records is the task"})
    goal_keys: tuple[str, ...] | None = field(default=None, metadata={
        "help": "--domain minari: keys of the dataset's dictionary observations that are the goal features "
                "(unset: the whole flattened observation)"})

    def __post_init__(self) -> None:
        check_ranges(self)  # every field of the concrete class is set by now; subclasses fill defaults after this
        if hasattr(self, "device"):
            check_device(self.device, getattr(self, "amp", False))
        if not self.run_dir:
            self.run_dir = f"runs/{self.domain}"
        if self.goal_keys is not None:
            self.goal_keys = tuple(self.goal_keys)


@dataclass
class StageSettings(RunSettings):
    """What every pre-training or training stage takes besides :class:`RunSettings`."""

    seed: int = field(default=0, metadata={"range": AT_LEAST_0, "help": "random seed"})
    force: bool = field(default=False, metadata={"help": "redo the stage even if it has finished"})
    resume: bool = field(default=False, metadata={"help": "continue an interrupted stage from its last checkpoint"})



# -- pre-training ------------------------------------------------------------------------------------
@dataclass
class GenerateConfig(StageSettings):
    """Settings of `ptgm generate`: task-agnostic play of the domain's scripted player, written to
    RUN_DIR/data as a Minari dataset. Shard i plays with seed SEED*100003+i."""

    transitions: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "transitions (environment steps) to record in all (unset: the domain's, 1M Crafter, 150k Kitchen)"})
    play: str | None = field(default=None, metadata={
        "help": "the kind of play, where the domain's player has several (Kitchen: random, or complete, partial, "
                "mixed as D4RL's kitchen datasets; unset: the domain's first)"})
    max_episode_steps: int = field(default=1000, metadata={"range": AT_LEAST_1, "help": "step limit of one play episode"})
    shard_transitions: int = field(default=10_000, metadata={"range": AT_LEAST_1,
        "help": "transitions per shard (unit of checkpointing and parallel work)"})
    workers: int = field(default=2, metadata={"range": AT_LEAST_1, "help": "parallel worker processes"})
    ray_address: str | None = field(default=None, metadata={
        "help": "play the shards as tasks on the Ray cluster at this address (HOST:PORT, ray://HOST:PORT or auto; "
                "needs ptgm[ray]); unset: worker processes on this machine"})

    def __post_init__(self) -> None:
        super().__post_init__()
        domain = _domain(self)
        self.play = play_kind(domain, self.play)
        if self.transitions is None:
            self.transitions = dict(domain.play_styles).get(self.play, domain.dataset_transitions)


def play_kind(domain, play: str | None) -> str | None:
    """``play`` checked against the domain's kinds of play (unset: its first; None where it has one kind)."""
    styles = dict(domain.play_styles)
    if play is None:
        return next(iter(styles), None)
    if play not in styles:
        raise PTGMError(f"Unknown --play {play!r} for {domain.name}; "
                        + (f"choose {', '.join(styles)}." if styles else "its player has one kind of play: "
                           "leave --play unset."))
    return play


@dataclass
class PretrainConfig(StageSettings):
    """Settings of `ptgm pretrain`: the goal-conditioned low-level policy P(a | s, g), by behaviour cloning with
    hindsight relabeling, written to RUN_DIR/lowlevel."""

    steps: int = field(default=20_000, metadata={"range": AT_LEAST_1, "help": "gradient steps"})
    batch_size: int = field(default=512, metadata={"range": AT_LEAST_1, "help": "samples per gradient step"})
    learning_rate: float = field(default=3e-4, metadata={"range": POSITIVE, "help": "Adam learning rate"})
    hidden: tuple[int, ...] = field(default=(512, 512, 256), metadata={"range": AT_LEAST_1, "help": "hidden layer widths"})
    action_head: str = field(default="gaussian", metadata={
        "help": "continuous actions: gaussian (one diagonal Gaussian) or mixture (of Gaussians; for multimodal play)"})
    mixture_components: int = field(default=5, metadata={"range": AT_LEAST_1, "help": "Gaussians in a mixture action head"})
    k_min: int = field(default=1, metadata={"range": AT_LEAST_1, "help": "shortest hindsight goal horizon (steps ahead)"})
    k_max: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "longest hindsight goal horizon (steps ahead; unset: the domain's, Crafter 20, Kitchen 60)"})
    goal_delta: bool | None = field(default=None, metadata={
        "help": "also give the policy the change its goal asks for, goal minus the matching entries of the "
                "observation (unset: the domain's, Crafter yes on its inventory, others no)"})
    device: str = field(default="auto", metadata={
        "help": "where torch runs: auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"})
    amp: bool = field(default=False, metadata={"help": "GPU: mixed precision (float16 autocast with loss scaling)"})
    val_fraction: float = field(default=0.05, metadata={"range": FRACTION, "help": "fraction of episodes held out for validation"})
    eval_every: int = field(default=1000, metadata={"range": AT_LEAST_1, "help": "gradient steps between validation passes"})
    checkpoint_every: int = field(default=2000, metadata={"range": AT_LEAST_1, "help": "gradient steps between checkpoints"})
    goal_trials: int = field(default=100, metadata={"range": AT_LEAST_1,
        "help": "episodes of the goal-reaching test in the real environment"})
    goal_horizon: int = field(default=10, metadata={"range": AT_LEAST_1, "help": "data gap k between start state and goal in that test"})
    memory_rows: int = field(default=0, metadata={"range": AT_LEAST_0,
        "help": "read a dataset of more rows than this in chunks of whole episodes of at most this many rows, "
                "never whole (for datasets larger than memory; 0: load it whole)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        domain = _domain(self)
        if self.k_max is None:
            self.k_max = domain.lowlevel_k_max
        if self.goal_delta is None:
            self.goal_delta = domain.goal_delta
        if self.goal_delta and domain.goal_observation_pairs() is None:
            raise PTGMError(f"--goal-delta needs goal features that are entries of the observation, and the "
                            f"{domain.name} domain names none; leave --goal-delta out.")
        check_horizon(self.k_min, self.k_max)
        check_action_head(self.action_head, self.mixture_components)  # before any data is loaded


@dataclass
class ClusterConfig(StageSettings):
    """Settings of `ptgm cluster`: K-means over the dataset's goal features; the N cluster goals (written to
    RUN_DIR/codebook) are the high-level action space."""

    n_clusters: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "number of discrete goals N (unset: the domain's, Crafter 64, Kitchen 200)"})
    max_samples: int = field(default=200_000, metadata={"range": AT_LEAST_1, "help": "dataset states sampled for K-means"})
    n_init: int = field(default=3, metadata={"range": AT_LEAST_1, "help": "K-means restarts (best inertia kept)"})
    memory_rows: int = field(default=0, metadata={"range": AT_LEAST_0,
        "help": "read a dataset of more rows than this in chunks of whole episodes of at most this many rows, "
                "never whole (for datasets larger than memory; 0: load it whole)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_clusters is None:
            self.n_clusters = _domain(self).n_clusters


@dataclass
class PriorConfig(StageSettings):
    """Settings of `ptgm prior`: the goal prior π_p(goal | s), a classifier of the cluster of each state's
    hindsight goal; reads RUN_DIR/codebook, writes RUN_DIR/prior."""

    steps: int = field(default=10_000, metadata={"range": AT_LEAST_1, "help": "gradient steps"})
    batch_size: int = field(default=512, metadata={"range": AT_LEAST_1, "help": "samples per gradient step"})
    learning_rate: float = field(default=3e-4, metadata={"range": POSITIVE, "help": "Adam learning rate"})
    hidden: tuple[int, ...] = field(default=(256, 256), metadata={"range": AT_LEAST_1,
        "help": "hidden widths (the high-level actor's, which starts as a copy of the prior)"})
    k_min: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "shortest hindsight goal horizon (unset: the low-level policy's, which RUN_DIR/lowlevel records)"})
    k_max: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "longest hindsight goal horizon (unset: the low-level policy's, which RUN_DIR/lowlevel records)"})
    device: str = field(default="auto", metadata={
        "help": "where torch runs: auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"})
    amp: bool = field(default=False, metadata={"help": "GPU: mixed precision (float16 autocast with loss scaling)"})
    val_fraction: float = field(default=0.05, metadata={"range": FRACTION, "help": "fraction of episodes held out"})
    eval_every: int = field(default=1000, metadata={"range": AT_LEAST_1, "help": "gradient steps between validation passes"})
    checkpoint_every: int = field(default=2000, metadata={"range": AT_LEAST_1, "help": "gradient steps between checkpoints"})
    memory_rows: int = field(default=0, metadata={"range": AT_LEAST_0,
        "help": "read a dataset of more rows than this in chunks of whole episodes of at most this many rows, "
                "never whole (for datasets larger than memory; 0: load it whole)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k_min is not None and self.k_max is not None:
            check_horizon(self.k_min, self.k_max)


@dataclass
class SpirlConfig(StageSettings):
    """Settings of `ptgm spirl`: SPiRL's skill VAE and skill prior p(z | s) (continuous actions), written to
    RUN_DIR/spirl (open-loop skill decoder, method ``spirl``) or RUN_DIR/spirl-cl (closed-loop decoder,
    method ``spirl-cl``).

    Defaults are the paper's and its repository's Kitchen configuration (clvrai/spirl,
    ``configs/skill_prior_learning/kitchen/hierarchical[_cl]``): H = 10, |z| = 10, β = 5e-4, batch 128,
    learning rate 1e-3, LSTMs of 128 units, a closed-loop decoder of 6 hidden layers of 128 and a prior of
    7 hidden layers of 128 (the repository's 6 "processing" layers after an input layer).
    """

    domain: str = field(default="kitchen", metadata={"help": "domain plug-in (continuous actions only)",
                                                     "choices": "domains"})
    steps: int = field(default=40_000, metadata={"range": AT_LEAST_1, "help": "gradient steps"})
    batch_size: int = field(default=128, metadata={"range": AT_LEAST_1, "help": "action windows per gradient step"})
    learning_rate: float = field(default=1e-3, metadata={"range": POSITIVE, "help": "Adam learning rate"})
    horizon: int = field(default=DEFAULT_K, metadata={"range": AT_LEAST_1,
        "help": "H, actions per skill (environment steps per downstream step)"})
    latent_dim: int = field(default=10, metadata={"range": AT_LEAST_1, "help": "size of the skill latent z"})
    beta: float = field(default=5e-4, metadata={"range": AT_LEAST_0, "help": "β, weight of KL(q(z|a) ‖ N(0, I)) in the VAE loss"})
    closed_loop: bool = field(default=False, metadata={
        "help": "closed-loop skill decoder a_t = decoder(s_t, z) with a state-conditioned encoder (the repository's "
                "ClSPiRLMdl, method spirl-cl, written to RUN_DIR/spirl-cl); false: the paper's open-loop LSTM "
                "decoder z -> a_1..a_H (method spirl, RUN_DIR/spirl)"})
    lstm_size: int = field(default=128, metadata={"range": AT_LEAST_1,
        "help": "units of the LSTM encoder q(z | a, s) and of the open-loop LSTM decoder"})
    hidden: tuple[int, ...] = field(default=(128,) * 6, metadata={"range": AT_LEAST_1,
        "help": "hidden widths of the closed-loop decoder MLP (unused by the open-loop decoder)"})
    prior_hidden: tuple[int, ...] = field(default=(128,) * 7, metadata={"range": AT_LEAST_1,
        "help": "skill prior hidden widths (ReLU; a Gaussian prior is copied into the downstream SAC actor, "
                "whose widths these become)"})
    prior_type: str = field(default="gaussian", metadata={
        "help": "skill prior p(z | s): a diagonal Gaussian (the paper), or a mixture of prior_components "
                "diagonal Gaussians for multimodal play (the repository's learned_prior_type=gmm)",
        "choices": ("gaussian", "mixture")})
    prior_components: int = field(default=5, metadata={"range": AT_LEAST_1,
        "help": "components of the mixture prior (the repository's n_gmm_prior_components)"})
    prior_loss: str = field(default="nll", metadata={
        "help": "how the prior fits the detached posterior: nll, -log p(z | s) of a posterior sample z (the "
                "repository's default, nll_prior_train; needed by the mixture), or kl, the analytic "
                "KL(sg(q(z|a)) ‖ p(z|s)) of the paper (Gaussian prior only; same expected gradient, less noise)",
        "choices": ("nll", "kl")})
    device: str = field(default="auto", metadata={
        "help": "where torch runs: auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"})
    amp: bool = field(default=False, metadata={"help": "GPU: mixed precision (float16 autocast with loss scaling)"})
    val_fraction: float = field(default=0.05, metadata={"range": FRACTION, "help": "fraction of episodes held out"})
    eval_every: int = field(default=1000, metadata={"range": AT_LEAST_1, "help": "gradient steps between validation passes"})
    checkpoint_every: int = field(default=5000, metadata={"range": AT_LEAST_1, "help": "gradient steps between checkpoints"})
    memory_rows: int = field(default=0, metadata={"range": AT_LEAST_0,
        "help": "read a dataset of more rows than this in chunks of whole episodes of at most this many rows, "
                "never whole (for datasets larger than memory; 0: load it whole)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prior_type not in ("gaussian", "mixture"):
            raise PTGMError(f"Unknown skill prior {self.prior_type!r} (--prior-type); choose gaussian or mixture.")
        if self.prior_loss not in ("nll", "kl"):
            raise PTGMError(f"Unknown prior loss {self.prior_loss!r} (--prior-loss); choose nll or kl.")
        if self.prior_type == "mixture" and self.prior_loss == "kl":
            raise PTGMError("A mixture prior has no closed-form KL to the posterior: train it with --prior-loss nll.")

    @property
    def stage_name(self) -> str:
        """The stage (and its directory under RUN_DIR): ``spirl``, or ``spirl-cl`` for the closed-loop model."""
        return spirl_stage_name(self.closed_loop)


def spirl_stage_name(closed_loop: bool) -> str:
    """SPiRL's stage name and directory under RUN_DIR: ``spirl``, or ``spirl-cl`` for the closed-loop model."""
    return "spirl-cl" if closed_loop else "spirl"


# -- downstream ----------------------------------------------------------------------------------------
@dataclass
class TrainConfig(StageSettings):
    """Settings of `ptgm train`: downstream RL of one method on one task, written to
    RUN_DIR/rl/TASK/METHOD-seedSEED (or RUN_DIR/rl/TASK/RUN_NAME)."""

    task: str | None = field(default=None, metadata={
        "help": "downstream task (unset: the domain's default; Crafter: also a chain of achievements, e.g. "
                "collect_wood,place_table, or crafter for the Crafter benchmark)"})
    start_inventory: tuple[str, ...] = field(default=(), metadata={
        "help": "Crafter: items held at the start of each episode, on top of the task's own, as NAME=N (e.g. "
                "wood_pickaxe=1 stone=3)"})
    method: str = field(default="ptgm", metadata={"help": "method plug-in", "choices": "methods"})
    env_steps: int = field(default=100_000, metadata={"range": AT_LEAST_1, "help": "budget of environment (low-level) steps"})
    k: int = field(default=DEFAULT_K, metadata={"range": AT_LEAST_1, "help": "environment steps per high-level step"})
    compose_goals: bool = field(default=True, metadata={
        "help": "give the low-level policy the domain's composed goal (Kitchen: objects a cluster goal leaves "
                "where they start keep their current state; Crafter, for a low-level policy with the goal delta: "
                "no inventory entry below what is held now); false: the cluster goal state as it is"})
    deterministic_low_level: bool | None = field(default=None, metadata={
        "help": "run the low-level policy's most likely action instead of sampling it (unset: the domain's, "
                "Kitchen yes, Crafter no)"})
    kl_coef: float = field(default=0.01, metadata={"range": AT_LEAST_0, "help": "α, weight of KL(prior ‖ policy) in the reward"})
    init_from_prior: bool = field(default=True, metadata={"help": "start the high-level policy equal to the prior"})
    n_envs: int = field(default=4, metadata={"range": AT_LEAST_1, "help": "parallel environments"})
    subproc: bool = field(default=False, metadata={"help": "step environments in subprocesses (PTGM and its "
        "ablations: one worker per available core, each with a batched low-level policy over its share)"})
    learning_rate: float = field(default=3e-4, metadata={"range": POSITIVE,
        "help": "learning rate (PPO; actor, critics and α of SAC, ptgm-sac and spirl)"})
    anneal_lr: bool = field(default=False, metadata={
        "help": "decay the learning rate linearly to 0 over the env-step budget (CleanRL's PPO default)"})
    normalize_advantage: bool = field(default=True, metadata={
        "help": "PPO: standardise the advantages of each minibatch (SB3's default)"})
    n_steps: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "PPO rollout length per env (unset: the method's, 64 high-level steps, 256 flat)"})
    batch_size: int = field(default=64, metadata={"range": AT_LEAST_1, "help": "PPO minibatch size"})
    n_epochs: int = field(default=4, metadata={"range": AT_LEAST_1, "help": "PPO epochs per rollout"})
    gamma: float | None = field(default=None, metadata={"range": UNIT,
        "help": "discount per learner step (unset: the domain's high-level discount for methods that act every "
                "k or H steps, Crafter 0.95, Kitchen 0.99; 0.99 for flat methods)"})
    ent_coef: float = field(default=0.01, metadata={"range": AT_LEAST_0, "help": "PPO entropy bonus"})
    target_kl: float | None = field(default=None, metadata={"range": AT_LEAST_0,
        "help": "PPO: end a rollout's epochs early once the approximate KL to the rollout's policy passes this "
                "(0: never; unset: the domain's for the PTGM methods, Kitchen 0.02, Crafter 0; 0 for the others)"})
    target_divergence: float = field(default=TARGET_DIVERGENCE, metadata={"range": AT_LEAST_0,
        "help": "ptgm-sac and spirl: the KL(policy ‖ prior) in nats that their auto-tuned α steers towards"})
    bc_steps: int = field(default=50_000, metadata={"range": AT_LEAST_0,
        "help": "bc-ppo: behaviour-cloning gradient steps at most, before PPO (it stops earlier once the loss on "
                "held-out play episodes stops improving)"})
    bc_kl_coef: float = field(default=0.001, metadata={"range": AT_LEAST_0,
        "help": "bc-ppo: β, weight of KL(cloned policy ‖ policy) in each step's reward (PTGM's α = 0.01 comes "
                "once per k = 10 env steps)"})
    bc_critic_warmup: float = field(default=0.05, metadata={"range": Range(at_least=0, below=1),
        "help": "bc-ppo: fraction of the env-step budget during which only the critic learns, the cloned actor "
                "held still"})
    sac_learning_starts: int = field(default=5000, metadata={"range": AT_LEAST_0,
        "help": "SAC: environment steps of random actions before learning"})
    hidden: tuple[int, ...] | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "actor/critic hidden widths (unset: the prior's for ptgm, whose actor starts as a copy of it; "
                "256 256 for flat baselines)"})
    eval_episodes: int = field(default=50, metadata={"range": AT_LEAST_1, "help": "episodes of the final evaluation"})
    checkpoint_every: int = field(default=25_000, metadata={"range": AT_LEAST_1, "help": "environment steps between checkpoints"})
    device: str = field(default="auto", metadata={
        "help": "where torch runs: auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"})
    run_name: str | None = field(default=None, metadata={
        "help": "the run's folder under RUN_DIR/rl/TASK (unset: METHOD-seedSEED; `ptgm tune` names each tried "
                "configuration's runs)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        from ptgm.methods import get_method

        if self.run_name is not None and (not self.run_name or "/" in self.run_name or self.run_name in (".", "..")):
            raise PTGMError(f"--run-name {self.run_name!r} is not a folder name; give a name without '/'.")
        domain, method = _domain(self), get_method(self.method)
        if self.task is None:
            self.task = domain.default_task
        domain.check_task(self.task)
        self.start_inventory = tuple(self.start_inventory)
        domain.parse_start_inventory(self.start_inventory)
        if self.deterministic_low_level is None:
            self.deterministic_low_level = domain.deterministic_low_level
        if self.target_kl is None:
            self.target_kl = domain.high_level_target_kl if method.ptgm_variant else 0.0
        if self.gamma is None:
            self.gamma = domain.high_level_gamma if method.high_level else 0.99
        if self.n_steps is None:
            self.n_steps = 64 if method.high_level else 256
        if self.hidden is not None:
            self.hidden = tuple(self.hidden)
        method.check_domain(domain)


def task_label(task: str, start_inventory: tuple[str, ...] = ()) -> str:
    """The task as run folders name it: with its extra starting items, so runs with and without them differ."""
    return "+".join([task, *sorted(start_inventory)])


@dataclass
class EvaluateConfig(RunSettings):
    """Settings of `ptgm evaluate`: a trained downstream policy on fresh episodes of its task."""

    task: str | None = field(default=None, metadata={
        "help": "task the policy was trained on (unset: the domain's default)"})
    start_inventory: tuple[str, ...] = field(default=(), metadata={
        "help": "the starting inventory the policy was trained with (`ptgm train --start-inventory`)"})
    method: str = field(default="ptgm", metadata={"help": "method of the trained run", "choices": "methods"})
    seed: int = field(default=0, metadata={"range": AT_LEAST_0, "help": "training seed of the run to evaluate"})
    seeds: tuple[int, ...] = field(default=(), metadata={"range": AT_LEAST_0,
        "help": "several training seeds, evaluated in turn and summarised as mean ± std (replaces --seed)"})
    k: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "environment steps per high-level step (unset: as the run was trained)"})
    low_level: str | None = field(default=None, metadata={
        "help": "how the low-level policy acts: deterministic (its mean or most likely action) | stochastic "
                "(sampled) (unset: as the run was trained)", "choices": ("deterministic", "stochastic")})
    episodes: int = field(default=100, metadata={"range": AT_LEAST_1, "help": "evaluation episodes"})
    deterministic: bool = field(default=False, metadata={
        "help": "act by the trained policy's most likely action (PTGM: its most likely goal) instead of sampling, "
                "as the benchmark's evaluation does"})
    out: str | None = field(default=None, metadata={
        "help": "write the evaluation there as Markdown (OUT) and JSON (OUT with .json) (unset: print only)"})
    video: str | None = field(default=None, metadata={
        "help": "also record VIDEO_EPISODES episodes to this .mp4 or .gif, the goal in force shown on each frame"})
    video_episodes: int = field(default=1, metadata={"range": AT_LEAST_1, "help": "episodes recorded to --video"})
    video_max_steps: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "end each recorded episode after this many steps (unset: when the task ends it)"})
    device: str = field(default="auto", metadata={
        "help": "where torch runs: auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"})

    def __post_init__(self) -> None:
        super().__post_init__()
        domain = _domain(self)
        if self.task is None:
            self.task = domain.default_task
        domain.check_task(self.task)
        self.start_inventory = tuple(self.start_inventory)
        domain.parse_start_inventory(self.start_inventory)
        if self.low_level not in (None, "deterministic", "stochastic"):
            raise PTGMError(f"Unknown --low-level {self.low_level!r}; choose deterministic or stochastic (or leave "
                            "it unset for the run's own setting).")


@dataclass
class ReportConfig(RunSettings):
    """Settings of `ptgm report`: which cluster goals trained high-level policies pick, and when the reward
    comes, as pictures in RUN_DIR/report."""

    tasks: tuple[str, ...] = field(default=(), metadata={
        "help": "tasks to report (empty: every task with a trained run of METHOD and SEED)"})
    method: str = field(default="ptgm", metadata={
        "help": "a method that picks cluster goals (ptgm, ptgm-no-prior, ptgm-sac)", "choices": "methods"})
    seed: int = field(default=0, metadata={"range": AT_LEAST_0, "help": "training seed of the runs"})
    episodes: int = field(default=20, metadata={"range": AT_LEAST_1, "help": "episodes played per task"})
    top: int = field(default=8, metadata={"range": AT_LEAST_1, "help": "most-picked goals shown per task"})
    out: str | None = field(default=None, metadata={"help": "output folder (unset: RUN_DIR/report)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        from pathlib import Path

        from ptgm.methods import get_method, method_names

        if not get_method(self.method).picks_cluster_goals:
            choices = [m for m in method_names() if get_method(m).picks_cluster_goals]
            raise PTGMError(f"`ptgm report` shows which cluster goals a policy picks; {self.method!r} picks none. "
                            f"Use --method {' or '.join(choices)}.")
        self.out = self.out or str(Path(self.run_dir) / "report")


@dataclass
class BenchConfig(RunSettings):
    """Settings of `ptgm bench`: every (task, method, seed) on one set of pre-trained pieces, side by side; the
    results folder gets the curves, the summary table and the plots, and is the benchmark's record."""

    tasks: tuple[str, ...] | None = field(default=None, metadata={"help": "tasks (unset: the domain's default task)"})
    start_inventory: tuple[str, ...] = field(default=(), metadata={
        "help": "Crafter: items every task starts with, as NAME=N (`ptgm train --start-inventory`)"})
    methods: tuple[str, ...] | None = field(default=None, metadata={
        "help": "methods (unset: the domain's, Crafter ptgm ppo, Kitchen ptgm spirl sac)", "choices": "methods"})
    seeds: int = field(default=3, metadata={"range": AT_LEAST_1, "help": "seeds per (task, method): 0 .. seeds-1"})
    env_steps: int = field(default=100_000, metadata={"range": AT_LEAST_1, "help": "environment-step budget of every run",
                                                      "aliases": ("--steps",)})
    transitions: int | None = field(default=None, metadata={"range": AT_LEAST_1, "help": "play dataset size (unset: the domain's)"})
    play: str | None = field(default=None, metadata={
        "help": "the kind of play to generate (`ptgm generate --play`; Kitchen: random, complete, partial, mixed; "
                "unset: the domain's first)"})
    pretrain_steps: int = field(default=30_000, metadata={"range": AT_LEAST_1, "help": "low-level policy gradient steps"})
    n_clusters: int | None = field(default=None, metadata={"range": AT_LEAST_1,
        "help": "number of cluster goals (unset: the domain's, Crafter 64, Kitchen 200)"})
    prior_steps: int = field(default=15_000, metadata={"range": AT_LEAST_1, "help": "goal prior gradient steps"})
    memory_rows: int = field(default=0, metadata={"range": AT_LEAST_0,
        "help": "pre-training stages: read a dataset of more rows than this in chunks of whole episodes of at most "
                "this many rows, never whole (0: load it whole)"})
    k: int = field(default=DEFAULT_K, metadata={"range": AT_LEAST_1, "help": "environment steps per high-level step (the interval ablation)"})
    gamma: float | None = field(default=None, metadata={"range": UNIT,
        "help": "discount of every run (unset: each method's own, as in `ptgm train`)"})
    anneal_lr: bool = field(default=False, metadata={
        "help": "every run decays its learning rate linearly to 0 over the budget (`ptgm train --anneal-lr`)"})
    ent_coef: float = field(default=0.01, metadata={"range": AT_LEAST_0,
        "help": "PPO entropy bonus of every PPO-based run (`ptgm train --ent-coef`; SAC tunes its own)"})
    normalize_advantage: bool = field(default=True, metadata={
        "help": "every PPO-based run standardises its minibatch advantages (`ptgm train --no-normalize-advantage`)"})
    kl_coef: float = field(default=0.01, metadata={"range": AT_LEAST_0,
        "help": "α, the weight of KL(prior ‖ policy) in PTGM's reward, of every ptgm run (`ptgm train --kl-coef`)"})
    share_from: str | None = field(default=None, metadata={
        "help": "another run directory whose finished play data and low-level policy this one links to (and its "
                "codebook and prior when it has N_CLUSTERS goals): ablations over the number of clusters or k "
                "without pre-training again"})
    eval_episodes: int = field(default=100, metadata={"range": AT_LEAST_1, "help": "final evaluation episodes per run"})
    parallel: int = field(default=2, metadata={"range": AT_LEAST_1, "help": "RL runs at a time (one per core)"})
    ray_address: str | None = field(default=None, metadata={
        "help": "run every (task, method, seed) as a task on the Ray cluster at this address (HOST:PORT, "
                "ray://HOST:PORT or auto; needs ptgm[ray]; RUN_DIR on a filesystem every node sees) instead of "
                "--parallel worker processes here"})
    run_cpus: float = field(default=1.0, metadata={"range": POSITIVE, "help": "--ray-address: CPUs each run asks for"})
    run_gpus: float = field(default=0.0, metadata={"range": AT_LEAST_0, "help": "--ray-address: GPUs each run asks for"})
    window: int = field(default=20, metadata={"range": AT_LEAST_1, "help": "training episodes in the rolling score of the curves"})
    threshold: float | None = field(default=None, metadata={"range": ANY_NUMBER,
        "help": "score counted as solved for 'env steps to threshold' (unset: the domain's, 0.9 success in "
                "Crafter, 3 subtasks in Kitchen)"})
    reference: str | None = field(default=None, metadata={
        "help": "method whose final training score the others are timed to reach (unset: spirl if benchmarked, "
                "else the domain's flat baseline if benchmarked, else no such table)"})
    out: str | None = field(default=None, metadata={"help": "results folder (unset: results/DOMAIN)"})
    summarize_only: bool = field(default=False, metadata={
        "help": "start no run: write the results of the runs finished so far (e.g. while a benchmark runs)"})
    device: str = field(default="auto", metadata={
        "help": "where torch runs: auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"})
    tuned: str | None = field(default=None, metadata={
        "help": "tuning.json of `ptgm tune`: every method trains with the settings its tuning chose (each method "
                "benchmarked must have been tuned, on seeds other than these)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        from ptgm.methods import get_method, method_names

        domain = _domain(self)
        self.tasks = tuple(self.tasks or (domain.default_task,))
        self.methods = tuple(self.methods or domain.bench_methods)
        unknown = [m for m in self.methods if m not in method_names()]
        if unknown:
            raise PTGMError(f"Unknown method(s) {', '.join(unknown)}; choose from {', '.join(method_names())}.")
        for task in self.tasks:
            domain.check_task(task)
        self.start_inventory = tuple(self.start_inventory)
        domain.parse_start_inventory(self.start_inventory)
        if self.play is not None:
            play_kind(domain, self.play)
        scores = {task: domain.task_score(task) for task in self.tasks}
        if len(set(scores.values())) > 1:  # one benchmark's table and curves measure one thing
            raise PTGMError(f"These tasks are scored differently ({', '.join(f'{t}: {v}' for t, v in scores.items())}); "
                            "benchmark each kind in its own results folder (--out).")
        for name in self.methods:
            get_method(name).check_domain(domain)
        if self.n_clusters is None:
            self.n_clusters = domain.n_clusters
        if self.threshold is None:
            self.threshold = domain.task_threshold(self.tasks[0])
        self.out = self.out or f"results/{self.domain}"
        if self.reference and self.reference not in self.methods:
            raise PTGMError(f"--reference {self.reference} is not among the benchmarked methods "
                            f"({', '.join(self.methods)}); add it to --methods or pick one of them.")
        if not self.reference:  # a sweep of one method alone has nothing to time against
            self.reference = next((m for m in ("spirl", domain.flat_baseline) if m in self.methods), "")
        if self.tuned:
            from ptgm.bench.tune import check_tuned

            check_tuned(self)


@dataclass
class TuneConfig(BenchConfig):
    """Settings of `ptgm tune`: the benchmark protocol's equal tuning budget. Every method trains each
    configuration of its grid (its own, :attr:`~ptgm.methods.base.Method.tuning_alternatives`, or --grid) on
    tuning seeds the benchmark does not report; the rule fixed here picks each method's configuration, and
    `ptgm bench --tuned OUT/tuning.json` trains with it. The pre-trained pieces are the benchmark's."""

    seeds: int = field(default=1, metadata={"range": AT_LEAST_1,
        "help": "tuning seeds per (task, method, configuration): FIRST_SEED .. FIRST_SEED+seeds-1"})
    first_seed: int = field(default=100, metadata={"range": AT_LEAST_0,
        "help": "first tuning seed (the benchmark's seeds start at 0: keep them apart)"})
    grid: tuple[str, ...] = field(default=(), metadata={
        "help": "FIELD=V1,V2 settings of `ptgm train` to try, every combination, for every method instead of "
                "its own grid (e.g. learning_rate=3e-4,1e-4 ent_coef=0.01,0)"})
    rule: str = field(default="auc", metadata={
        "help": "how each method's configuration is chosen: auc, the highest training AUC (mean over tasks and "
                "seeds), or final, the highest training score over the last WINDOW episodes",
        "choices": ("auc", "final")})
    eval_episodes: int = field(default=10, metadata={"range": AT_LEAST_1,
        "help": "final evaluation episodes per run (the rule reads the training curve, not these)"})
    out: str | None = field(default=None, metadata={"help": "results folder (unset: results/DOMAIN-tuning)"})

    def __post_init__(self) -> None:
        if self.tuned:
            raise PTGMError("`ptgm tune` chooses the settings that --tuned would read; leave --tuned out.")
        self.out = self.out or f"results/{self.domain}-tuning"
        super().__post_init__()
        if self.rule not in ("auc", "final"):
            raise PTGMError(f"Unknown --rule {self.rule!r}; choose auc or final.")
        self.grid = tuple(self.grid)
        from ptgm.bench.tune import method_grids

        method_grids(self)  # a bad --grid fails here, before any pre-training


@dataclass
class CompareConfig:
    """Settings of `ptgm compare`: benchmarks' results folders side by side (the cluster-count, k and discount
    sweeps)."""

    results: tuple[str, ...] = field(default=(), metadata={
        "help": "results folders of `ptgm bench`, the reference first (empty: results/DOMAIN, then every other "
                "results/DOMAIN-* folder)"})
    domain: str = field(default="crafter", metadata={"help": "domain whose results folders are found by default",
                                                     "choices": "domains"})
    out: str | None = field(default=None, metadata={
        "help": "folder for the table and plots (unset: results/DOMAIN-sweeps)"})

    def __post_init__(self) -> None:
        from pathlib import Path

        if not self.results:
            reference = Path("results") / self.domain
            others = sorted(p for p in Path("results").glob(f"{self.domain}-*")
                            if (p / "summary.json").exists() and p.name != f"{self.domain}-sweeps")
            self.results = tuple(str(p) for p in [reference, *others])
        self.out = self.out or f"results/{self.domain}-sweeps"


@dataclass
class DemoConfig(RunSettings):
    """Settings of `ptgm demo`: every stage at small scale, PTGM beside the flat baseline (about 10 minutes on
    2 CPU cores)."""

    run_dir: str | None = field(default=None, metadata={
        "help": "run directory for every stage (unset: runs/demo, runs/demo-DOMAIN for other domains)"})
    task: str | None = field(default=None, metadata={
        "help": "downstream task (unset: the domain's demo task, Crafter place_table)"})
    transitions: int = field(default=60_000, metadata={"range": AT_LEAST_1, "help": "dataset size (environment steps of play)"})
    pretrain_steps: int = field(default=3_000, metadata={"range": AT_LEAST_1, "help": "low-level policy gradient steps"})
    n_clusters: int = field(default=32, metadata={"range": AT_LEAST_1, "help": "number of discrete goals"})
    prior_steps: int = field(default=3_000, metadata={"range": AT_LEAST_1, "help": "goal prior gradient steps"})
    env_steps: int = field(default=40_000, metadata={"range": AT_LEAST_1, "help": "RL budget in environment steps, per method"})
    methods: tuple[str, ...] | None = field(default=None, metadata={
        "help": "methods to train side by side (unset: ptgm and the domain's flat baseline, ppo or sac)",
        "choices": "methods"})
    seeds: int = field(default=1, metadata={"range": AT_LEAST_1, "help": "seeds per method"})
    goal_trials: int = field(default=30, metadata={"range": AT_LEAST_1, "help": "episodes of the low-level goal-reaching test"})
    eval_episodes: int = field(default=30, metadata={"range": AT_LEAST_1, "help": "final evaluation episodes per run"})
    workers: int = field(default=2, metadata={"range": AT_LEAST_1, "help": "data generation processes"})
    force: bool = field(default=False, metadata={"help": "redo every stage"})
    resume: bool = field(default=False, metadata={"help": "continue interrupted stages"})

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.run_dir:
            self.run_dir = "runs/demo" if self.domain == "crafter" else f"runs/demo-{self.domain}"
        domain = _domain(self)
        self.task = self.task or domain.demo_task or domain.default_task
        self.methods = tuple(self.methods or ("ptgm", domain.flat_baseline))


def settings_from_dict(cls: type, values: dict):
    """Settings of class ``cls`` from a JSON record of them (a ``config.json``): fields the class no longer has
    are left out, lists become tuples."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})


# -- checks shared by the settings above --------------------------------------------------------------------
def check_device(name: str, amp: bool = False) -> None:
    """A clear error for a device that is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, a GPU that is not there,
    or mixed precision (``amp``) off a GPU (PyTorch is imported only to look for one)."""
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise PTGMError(f"Unknown --device {name!r}; give auto, cpu, cuda or cuda:N.")
    if name.startswith("cuda") or amp:
        from ptgm.distributed import resolve_device

        if resolve_device(name).type != "cuda" and amp:
            raise PTGMError(f"--amp (mixed precision) needs a GPU; --device {name} runs on the CPU here. Leave --amp "
                            "off.")


def check_action_head(action_head: str, components: int) -> None:
    """Raise a clear error for an unknown action head or a mixture without components."""
    if action_head not in ACTION_HEADS:
        raise PTGMError(f"Unknown action head {action_head!r} (--action-head); choose one of {', '.join(ACTION_HEADS)}.")
    if action_head == "mixture" and components < 1:
        raise PTGMError(f"A mixture action head needs at least 1 component (--mixture-components), got {components}.")


def check_horizon(k_min: int, k_max: int) -> None:
    """Hindsight goal horizons: 1 ≤ k_min ≤ k_max."""
    if not 1 <= k_min <= k_max:
        raise PTGMError(f"The hindsight goal horizon needs 1 ≤ --k-min ≤ --k-max; got {k_min} and {k_max}.")
