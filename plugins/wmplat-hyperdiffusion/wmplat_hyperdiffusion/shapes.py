"""Procedural 2-D shapes: radial blobs, each from its seed, with exact occupancy.

r(φ) = r0 · (1 + Σ_{k=2..5} a_k cos(k(φ − θ) + φ_k)), rotated by θ and scaled so that its
largest radius lies in RADIUS_RANGE, inside the box [-0.5, 0.5]² (HyperDiffusion scales its
meshes to at most 0.475 from the centre). A point is inside when its distance to the centre is
below r at its angle: the occupancy is exact, no mesh or winding number is involved.
"""

import math
from dataclasses import dataclass

import torch

HARMONICS = (2, 3, 4, 5)
MAX_AMPLITUDE = 0.2              # each a_k in [0, 0.2]: r stays above 0.2 r0
RADIUS_RANGE = (0.25, 0.45)      # the largest radius of a shape
# vertices of the polygon that stands for the exact outline (arc length, surface samples)
OUTLINE_VERTICES = 4096


@dataclass(frozen=True)
class Blob:
    r0: float
    amplitudes: tuple[float, ...]
    phases: tuple[float, ...]
    rotation: float

    def radius(self, phi: torch.Tensor) -> torch.Tensor:
        """r(φ) for angles φ (float64)."""
        angle = phi.double() - self.rotation
        wave = sum(a * torch.cos(k * angle + p)
                   for k, a, p in zip(HARMONICS, self.amplitudes, self.phases, strict=True))
        return self.r0 * (1 + wave)

    def inside(self, points: torch.Tensor) -> torch.Tensor:
        """[m, 2] points -> [m] bool: exact occupancy."""
        p = points.double()
        return p.norm(dim=1) < self.radius(torch.atan2(p[:, 1], p[:, 0]))

    def outline(self) -> torch.Tensor:
        """[OUTLINE_VERTICES, 2] float64: the closed outline as a polygon, counter-clockwise."""
        phi = torch.arange(OUTLINE_VERTICES, dtype=torch.float64) * (2 * math.pi /
                                                                     OUTLINE_VERTICES)
        r = self.radius(phi)
        return torch.stack([r * torch.cos(phi), r * torch.sin(phi)], dim=1)


def blob(seed: int) -> Blob:
    """The shape of seed `seed`: amplitudes, phases, rotation and size drawn from it."""
    g = torch.Generator().manual_seed(int(seed))
    amplitudes = (torch.rand(len(HARMONICS), generator=g, dtype=torch.float64)
                  * MAX_AMPLITUDE).tolist()
    phases = (torch.rand(len(HARMONICS), generator=g, dtype=torch.float64)
              * 2 * math.pi).tolist()
    rotation = float(torch.rand((), generator=g, dtype=torch.float64)) * 2 * math.pi
    low, high = RADIUS_RANGE
    largest = low + float(torch.rand((), generator=g, dtype=torch.float64)) * (high - low)
    unit = Blob(1.0, tuple(amplitudes), tuple(phases), rotation)
    phi = torch.arange(OUTLINE_VERTICES, dtype=torch.float64) * (2 * math.pi /
                                                                 OUTLINE_VERTICES)
    r0 = largest / float(unit.radius(phi).max())
    return Blob(r0, unit.amplitudes, unit.phases, rotation)


def training_points(shape: Blob, surface: int, uniform: int,
                    g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """HyperDiffusion's occupancy samples for one shape: `surface` points uniform by arc length
    on the outline plus N(0, 0.01²) jitter, and `uniform` points uniform in the box.
    Returns points [surface + uniform, 2] float32 and their exact occupancy (float 0/1)."""
    polygon = shape.outline()
    edges = torch.roll(polygon, -1, dims=0) - polygon
    lengths = edges.norm(dim=1)
    cumulative = torch.cumsum(lengths, 0)
    at = torch.rand(surface, generator=g, dtype=torch.float64) * float(cumulative[-1])
    edge = torch.searchsorted(cumulative, at, right=True).clamp(max=len(polygon) - 1)
    along = (at - (cumulative[edge] - lengths[edge])) / lengths[edge]
    on_curve = polygon[edge] + along.unsqueeze(1) * edges[edge]
    jittered = on_curve + 0.01 * torch.randn(surface, 2, generator=g, dtype=torch.float64)
    box = torch.rand(uniform, 2, generator=g, dtype=torch.float64) - 0.5
    points = torch.cat([jittered, box])
    return points.float(), shape.inside(points).float()
