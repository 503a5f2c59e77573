"""Which checkpoints go to L3: a pure function of the step and the job's settings.

Every node's daemon (src/ckpt/l3-cadence.ts) and this client's local-directory mode apply the
same rule, so a spare or a restarted process picks the same steps as the others and every rank
of a picked step reaches L3. The contract is docs/checkpoint-format.md, "L3 cadence".
"""

from __future__ import annotations


def l3_period_steps(l3_every: int, every_steps: int | None = None) -> int:
    """The distance in steps between two L3 checkpoints: `l3_every * every_steps`, or
    `l3_every` when the job's checkpoint interval is unknown (then it counts steps)."""
    return max(1, l3_every) * max(1, every_steps or 1)


def persists_to_l3(step: int, l3_every: int, every_steps: int | None = None) -> bool:
    """True when the checkpoint of `step` goes to L3: `step` is a multiple of the L3 period."""
    return step % l3_period_steps(l3_every, every_steps) == 0
