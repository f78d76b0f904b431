"""Stage 2: K-means clustering of dataset goals into N discrete goals (the high-level action space)."""

from ptgm.clustering.codebook import Codebook, build_codebook

__all__ = ["Codebook", "build_codebook"]
