"""The pre-trained pieces PTGM acts with: low-level policy, goal codebook and goal prior, checked together."""

from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ptgm.clustering.codebook import Codebook
from ptgm.lowlevel.policy import GoalConditionedPolicy
from ptgm.prior.model import GoalPrior
from ptgm.utils import PTGMError, fingerprint_of


@dataclass
class Pretrained:
    """The three pieces pre-training builds from one task-agnostic dataset.

    Attributes:
        policy: the goal-conditioned low-level policy P(a | s, g) (frozen, eval mode).
        codebook: the N cluster goals, the high-level action space.
        prior: the goal prior π_p(goal | s).
        lowlevel: what the low-level policy's checkpoint records besides its weights (dataset fingerprint,
            domain, hindsight horizons ``k_min`` / ``k_max``).
    """

    policy: GoalConditionedPolicy
    codebook: Codebook
    prior: GoalPrior
    lowlevel: dict

    def __post_init__(self) -> None:
        self.codebook.check_matches(self.lowlevel.get("fingerprint"), "the low-level policy")
        if self.prior.n_goals != self.codebook.n_goals:
            raise PTGMError(f"The prior predicts {self.prior.n_goals} goals but the codebook has "
                            f"{self.codebook.n_goals}. Retrain the prior with `ptgm prior --force`.")
        self.policy.eval().requires_grad_(False)
        self.prior.eval().requires_grad_(False)

    @property
    def domain(self) -> str:
        """The domain the pieces were built for."""
        return self.codebook.domain

    @property
    def n_goals(self) -> int:
        return self.codebook.n_goals

    @functools.cached_property
    def fingerprint(self) -> str:
        """What these pieces are (the three pieces' own fingerprints): what policies trained on them record."""
        return fingerprint_of("pieces", self.policy.fingerprint, self.codebook.fingerprint, self.prior.fingerprint)

    @functools.cached_property
    def domain_plugin(self):
        """The :class:`~ptgm.domains.base.Domain` the pieces were built for."""
        from ptgm.domains import get_domain

        return get_domain(self.domain)

    def compose_goal(self, goal_features: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """The domain's goal composition (:meth:`ptgm.domains.base.Domain.compose_goal`); the plain goals for a
        low-level policy without the goal-delta input where the domain composes for that input only (Crafter's
        older pieces keep acting as they were trained and measured)."""
        if self.domain_plugin.compose_for_goal_delta_only and not self.policy.goal_delta:
            return goal_features
        return self.domain_plugin.compose_goal(goal_features, observations)

    def describe_goal(self, index: int) -> str:
        """Cluster goal ``index`` in words, where the domain can say (else its number)."""
        describe = getattr(self.domain_plugin, "describe_goal", None)
        text = describe(self.codebook.goal_observations[index]) if describe is not None else ""
        return f"goal {index}" + (f": {text}" if text else "")

    @classmethod
    def load(cls, run_dir: str | Path) -> "Pretrained":
        """The finished pieces of a run directory (``lowlevel/``, ``codebook/``, ``prior/``)."""
        run_dir = Path(run_dir)
        policy, policy_ckpt = GoalConditionedPolicy.load(run_dir / "lowlevel" / "policy.pt")
        codebook = Codebook.load(run_dir / "codebook" / "codebook.npz")
        prior, prior_ckpt = GoalPrior.load(run_dir / "prior" / "prior.pt")
        codebook.check_matches(prior_ckpt.get("fingerprint"), "the goal prior")
        if prior_ckpt.get("codebook_fingerprint") != codebook.fingerprint:
            # Same dataset and number of goals, other clusters (e.g. `ptgm cluster --force --seed 1` in place): the
            # prior's goal indices would point at other goals.
            raise PTGMError(f"The goal prior in {run_dir / 'prior'} was trained on codebook "
                            f"{prior_ckpt.get('codebook_fingerprint') or '(not recorded)'}, but the codebook in "
                            f"{run_dir / 'codebook'} is {codebook.fingerprint}: it was rebuilt since. Retrain the prior "
                            f"with `ptgm prior --run-dir {run_dir} --force`.")
        lowlevel = {key: value for key, value in policy_ckpt.items() if key not in ("state_dict", "init_kwargs", "kind")}
        return cls(policy, codebook, prior, lowlevel)

    @classmethod
    def build(cls, run_dir: str | Path | None = None, domain: str = "crafter", *, generate=None, pretrain=None,
              cluster=None, prior=None) -> "Pretrained":
        """Run the pre-training stages in ``run_dir`` (each reused when finished) and load their pieces.

        ``generate``, ``pretrain``, ``cluster`` and ``prior`` are the stages' settings
        (:class:`~ptgm.settings.GenerateConfig` and so on); each left out takes its defaults for ``domain``.
        Pass ``pretrain=PretrainConfig(dataset=...)`` (and the same to the others) to train on a Minari dataset
        instead of generating play; then no play is generated.
        """
        from ptgm.clustering.codebook import cluster as run_cluster
        from ptgm.data.generate import generate as run_generate
        from ptgm.lowlevel.train import pretrain as run_pretrain
        from ptgm.prior.train import train_prior
        from ptgm.settings import ClusterConfig, GenerateConfig, PretrainConfig, PriorConfig

        common = dict(run_dir=None if run_dir is None else str(run_dir), domain=domain)
        pretrain = pretrain or PretrainConfig(**common)
        run_dir = pretrain.run_dir
        if not pretrain.dataset:
            run_generate(generate or GenerateConfig(**dict(common, run_dir=run_dir)))
        run_pretrain(pretrain)
        run_cluster(cluster or ClusterConfig(**dict(common, run_dir=run_dir), dataset=pretrain.dataset))
        train_prior(prior or PriorConfig(**dict(common, run_dir=run_dir), dataset=pretrain.dataset))
        return cls.load(run_dir)

    # -- one-file form, for agents that travel without their run directory ---------------------------------
    def state(self) -> dict:
        """Everything that rebuilds the pieces, as plain tensors, arrays and settings (see :meth:`from_state`)."""
        return {"policy": {"init_kwargs": self.policy.init_kwargs, "state_dict": self.policy.state_dict()},
                "prior": {"init_kwargs": self.prior.init_kwargs, "state_dict": self.prior.state_dict()},
                "codebook": asdict(self.codebook), "lowlevel": self.lowlevel}

    @classmethod
    def from_state(cls, state: dict) -> "Pretrained":
        policy = GoalConditionedPolicy(**state["policy"]["init_kwargs"])
        policy.load_state_dict(state["policy"]["state_dict"])
        prior = GoalPrior(**state["prior"]["init_kwargs"])
        prior.load_state_dict(state["prior"]["state_dict"])
        codebook = dict(state["codebook"])
        if "fingerprint" in codebook:  # agents saved before the codebook had a fingerprint of its own
            codebook["dataset_fingerprint"] = codebook.pop("fingerprint")
        return cls(policy, Codebook(**codebook), prior, state["lowlevel"])

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.state(), buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Pretrained":
        return cls.from_state(torch.load(io.BytesIO(data), map_location="cpu", weights_only=False))
