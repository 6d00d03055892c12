"""`interpolate`: random convex combinations of two training checkpoints from different runs,
the second aligned to the first wherever the task declares permutation symmetry."""

import torch

from ..engine.alignment import align
from ..engine.threads import single_threaded
from ..hookspecs import hookimpl
from ..method import Baseline, random_generator


class Interpolate(Baseline):
    name = "interpolate"

    def fit(self, zoo, seed):
        super().fit(zoo, seed)
        self.spec, self.groups = zoo.param_spec, zoo.task.permutation_groups
        self.runs = torch.tensor([m.run for m in zoo.train_models()])

    @single_threaded()
    def sample(self, n, seed):
        g = random_generator(seed)
        out = []
        for _ in range(n):
            first = int(torch.randint(len(self.train_weights), (1,), generator=g))
            others = torch.nonzero(self.runs != self.runs[first]).flatten()
            if len(others) == 0:
                others = torch.arange(len(self.train_weights))
            second = int(others[torch.randint(len(others), (1,), generator=g)])
            a = self.train_weights[first]
            b = align(a, self.train_weights[second:second + 1], self.spec, self.groups)[0]
            t = float(torch.rand(1, generator=g))
            out.append((t * a.double() + (1 - t) * b).float())
        return torch.stack(out)


@hookimpl
def register_baselines(register):
    register(Interpolate)
