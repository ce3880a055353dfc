"""`make bench`: veo-relay's performance figures, each measured beside a baseline in the same run.

The machine is shared and noisy, so every figure comes with the baseline it was measured next to
and the ratio between them; a missed target is reported as missed, never loosened.
Each section runs in a process of its own (`python -m bench.run NAME`), so that one section's
embedded AWS, patches and memory never leak into another's figures.
"""
