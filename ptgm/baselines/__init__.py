"""Baselines beside PTGM that need more than a Stable-Baselines3 algorithm from scratch."""
