"""wmplat-hyperdiffusion: HyperDiffusion (Erkoç et al. 2023) as a wmplat plugin, with the task
it needs, neural fields of procedural 2-D shapes, and the shape metrics it is judged by."""

__version__ = "0.1.0"
