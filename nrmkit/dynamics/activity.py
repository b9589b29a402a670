r"""Activity of a batch of rate networks over time: what an activity figure needs.

The networks are simulated from a random initial state ``h_0 ~ N(0, σ²)`` with the model's
own Euler step (:meth:`nrmkit.nn.rate_rnn.RateRNN.step`), all of them at once, and only
what is plotted is kept: the states ``h_i(t)`` of a few neurons of the first network, the
population activity ``m(t) = (1/N) Σ_i φ(h_i(t))`` of every network (FlyStability's network
output) and the activity ``φ(h_i(t))`` of the first network's first neurons as an image.
This is what FlyStability's ``run_plot_rnn`` draws for one network (state and activity
images with a few sampled traces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: the most time points kept per trace (the run is sub-sampled evenly in time beyond).
MAX_ACTIVITY_POINTS = 500

#: the most neurons of the activity image (the first ones).
MAX_IMAGE_NEURONS = 500


@dataclass(frozen=True)
class Activity:
    """Recorded activity (numpy arrays; time in τ).

    Attributes:
        time: ``(T,)`` recorded times [τ].
        neurons: ``(K,)`` indices of the traced neurons of network 0.
        states: ``(T, K)`` their states ``h_i(t)``.
        population: ``(T, B)`` population activity ``(1/N) Σ_i φ(h_i)`` of each network.
        image: ``(T, M)`` activity ``φ(h_i(t))`` of the first ``M`` neurons of network 0.
    """

    time: np.ndarray
    neurons: np.ndarray
    states: np.ndarray
    population: np.ndarray
    image: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"time": self.time, "neurons": self.neurons, "states": self.states,
                "population": self.population, "image": self.image}


@torch.no_grad()
def record_activity(model, n_steps: int, n_neurons: int, *,
                    generator: torch.Generator | None = None) -> Activity:
    """Simulate every network of ``model`` for ``n_steps`` Euler steps from
    ``model.initial_state(generator)`` and record the traces of ``n_neurons`` neurons of
    network 0 (drawn without replacement from ``generator``, sorted), the population
    activity of every network and the image of network 0, at most
    :data:`MAX_ACTIVITY_POINTS` evenly spaced time points (the first is ``t = 0``).
    """
    n = model.n_neurons
    neurons = torch.randperm(n, generator=generator)[:n_neurons].sort().values
    state = model.initial_state(generator)
    every = max(1, -(-n_steps // (MAX_ACTIVITY_POINTS - 1)))
    image_neurons = min(n, MAX_IMAGE_NEURONS)
    index = neurons.to(state.device)
    times, traces, population, image = [], [], [], []
    for step in range(n_steps + 1):
        if step % every == 0:
            value, _ = model.activation_and_slope(state)
            flat_state, flat_value = state.reshape(-1, n), value.reshape(-1, n)
            times.append(step * model.dt)
            traces.append(flat_state[0, index].cpu())
            population.append(flat_value.mean(-1).cpu())
            image.append(flat_value[0, :image_neurons].cpu())
        if step < n_steps:
            state = model.step(state)
    stack = lambda parts: torch.stack(parts).double().numpy()  # noqa: E731
    return Activity(time=np.array(times), neurons=neurons.numpy(), states=stack(traces),
                    population=stack(population), image=stack(image))
