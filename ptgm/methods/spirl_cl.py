"""SPiRL with the closed-loop skill decoder of its repository (clvrai/spirl ``ClSPiRLMdl``, "SPiRL-CL"):
each of a skill's H actions is decoded from the state it is taken in, a_t = decoder(s_t, z). The skills
come from `ptgm spirl --closed-loop` (RUN_DIR/spirl-cl); the downstream SAC is SPiRL's, as for ``spirl``."""

from __future__ import annotations

from ptgm.methods.spirl import Spirl


class SpirlCl(Spirl):
    name = "spirl-cl"
    description = "SAC over SPiRL's closed-loop skills (decoder(s_t, z)), H env steps each (continuous actions)"
    closed_loop = True


METHOD = SpirlCl()
