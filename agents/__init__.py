"""Agents that act on physprior's environments: SAC data collection, MPC planners, MBPO.

Nothing is exported yet; the collection and planning agents arrive with the RL-loop work.
"""

__all__: list[str] = []
