"""Spiking layers: the multi-step LIF neuron module, and firing-rate / energy accounting.

`MultiStepLIF` wraps `zoo.kernels.lif.multistep_lif` (the fused Triton kernel
on CUDA, the PyTorch reference elsewhere). It keeps no state between calls:
every forward starts from v = v_reset, so there is no `reset_net` to call.

`spiking_stats(model, x)` runs one forward and reports what SNN papers
report: the firing rate of every LIF layer, and the synaptic operations and
energy estimate in the usual convention (Spikformer / Spike-driven
Transformer / QKFormer lineage, 45 nm figures of Horowitz, ISSCC 2014):

    E = E_MAC * sum_{l: real-valued input} MAC_l  +  E_AC * sum_{l: spike input} fr_l * MAC_l

with MAC_l the dense multiply-accumulates of conv / linear layer l over all T
steps (so the first layer counts MAC_first * T), fr_l the fraction of ones in
its binary input, E_MAC = 4.6 pJ, E_AC = 0.9 pJ. A layer's input counts as
spikes when every value in it is 0 or 1. Normalisation, pooling, additions
and the neurons themselves are not counted (BN folds into the conv at
inference). Modules with a `synaptic_ops(inputs, output)` method (spiking
attention products) report their own (name, MACs, input rate) entries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .fx import multistep_lif  # the kernel, as a leaf of torch.fx traces

__all__ = ["MultiStepLIF", "LayerOps", "SpikingStats", "spiking_stats", "E_MAC_PJ", "E_AC_PJ"]

E_MAC_PJ = 4.6  # 32-bit float multiply-accumulate, 45 nm
E_AC_PJ = 0.9   # 32-bit float accumulate, 45 nm


class MultiStepLIF(nn.Module):
    """Leaky integrate-and-fire neurons over the leading time dim of a (T, ...) tensor.

    h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau;  s_t = [h_t >= v_threshold];
    hard reset to v_reset; sigmoid surrogate gradient (slope `surrogate_alpha`);
    `detach_reset` drops the reset from the backward. Defaults are spikingjelly's
    `MultiStepLIFNode(tau=2.0, detach_reset=True)`. No parameters, no state.

    Args:
        impl: kernel choice for `multistep_lif` ('auto', 'triton', 'reference'); None
            defers to the environment variable ZOO_KERNELS_IMPL, then the device.
    """

    def __init__(
            self,
            tau: float = 2.0,
            v_threshold: float = 1.0,
            v_reset: float = 0.0,
            surrogate_alpha: float = 4.0,
            detach_reset: bool = True,
            impl: str | None = None,
    ):
        super().__init__()
        self.tau = tau
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.surrogate_alpha = surrogate_alpha
        self.detach_reset = detach_reset
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return multistep_lif(x, self.tau, self.v_threshold, self.v_reset, self.surrogate_alpha,
                             self.detach_reset, self.impl)

    def extra_repr(self) -> str:
        s = f"tau={self.tau}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, " \
            f"surrogate_alpha={self.surrogate_alpha}, detach_reset={self.detach_reset}"
        return s + (f", impl={self.impl!r}" if self.impl else "")


@dataclass
class LayerOps:
    """One synaptic layer's work for one image over all time steps."""
    name: str
    macs: float                  # dense multiply-accumulates
    input_rate: float | None  # fraction of ones in the binary input; None: real-valued input

    @property
    def spiking(self) -> bool:
        return self.input_rate is not None

    @property
    def ops(self) -> float:
        """MACs for a real-valued input, synaptic operations (rate * MACs) for spikes."""
        return self.macs if self.input_rate is None else self.input_rate * self.macs


@dataclass
class SpikingStats:
    """Firing rates and the energy estimate of one forward, per image (see module docstring)."""
    firing_rates: dict[str, float]
    layers: list[LayerOps]
    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ
    neurons: dict[str, int] = field(default_factory=dict)  # evaluations (T * neurons) per image

    @property
    def mean_firing_rate(self) -> float:
        """Unweighted mean over the LIF layers (the figure papers quote per layer, averaged)."""
        return sum(self.firing_rates.values()) / max(len(self.firing_rates), 1)

    @property
    def mac_ops(self) -> float:
        return sum(layer.macs for layer in self.layers if not layer.spiking)

    @property
    def sops(self) -> float:
        return sum(layer.ops for layer in self.layers if layer.spiking)

    @property
    def dense_macs(self) -> float:
        return sum(layer.macs for layer in self.layers)

    @property
    def energy_mj(self) -> float:
        """E_MAC * MACs + E_AC * SOPs, in millijoules per image."""
        return (self.e_mac_pj * self.mac_ops + self.e_ac_pj * self.sops) * 1e-9

    @property
    def ann_energy_mj(self) -> float:
        """The same network's dense MACs all at E_MAC (the usual ANN comparison)."""
        return self.e_mac_pj * self.dense_macs * 1e-9

    def table(self) -> str:
        lines = [f"{'LIF layer':<48} firing rate"]
        lines += [f"{name:<48} {rate:.4f}" for name, rate in self.firing_rates.items()]
        lines.append(f"{'mean over ' + str(len(self.firing_rates)) + ' LIF layers':<48} {self.mean_firing_rate:.4f}")
        lines.append("")
        lines.append(f"{'synaptic layer':<48} {'dense MACs':>14} {'input rate':>10} {'ops':>14}")
        for layer in self.layers:
            rate = "real" if layer.input_rate is None else f"{layer.input_rate:.4f}"
            lines.append(f"{layer.name:<48} {layer.macs:>14.4g} {rate:>10} {layer.ops:>14.4g}")
        lines.append(f"MACs {self.mac_ops:.4g}, SOPs {self.sops:.4g}, energy {self.energy_mj:.4f} mJ per image "
                     f"(E_MAC {self.e_mac_pj} pJ, E_AC {self.e_ac_pj} pJ; dense ANN at E_MAC: "
                     f"{self.ann_energy_mj:.4f} mJ)")
        return "\n".join(lines)


def _binary_rate(x: torch.Tensor) -> float | None:
    """Fraction of ones if x holds only 0 and 1, else None."""
    if not bool(((x == 0) | (x == 1)).all()):
        return None
    return x.double().mean().item() if x.numel() else 0.0


def _dense_macs(module: nn.Module, output: torch.Tensor) -> float:
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        return float(output.numel()) * fan_in
    return float(output.numel()) * module.in_features  # nn.Linear


@torch.no_grad()
def spiking_stats(
        model: nn.Module,
        x: torch.Tensor,
        e_mac_pj: float = E_MAC_PJ,
        e_ac_pj: float = E_AC_PJ,
) -> SpikingStats:
    """Firing rate of every `MultiStepLIF` and per-image MACs / SOPs / energy of one forward of x.

    The model runs as it is (call `.eval()` first for inference statistics);
    x is an image batch, figures are averaged over it (divided by x.shape[0]).
    """
    batch = x.shape[0]
    spikes: dict[str, list[float]] = {}
    layers: list[LayerOps] = []
    handles = []

    def lif_hook(name):
        def hook(module, inputs, output):
            count = spikes.setdefault(name, [0.0, 0.0])
            count[0] += output.double().sum().item()
            count[1] += output.numel()
        return hook

    def synapse_hook(name):
        def hook(module, inputs, output):
            layers.append(LayerOps(name, _dense_macs(module, output) / batch, _binary_rate(inputs[0])))
        return hook

    def custom_hook(name):
        def hook(module, inputs, output):
            for suffix, macs, rate in module.synaptic_ops(inputs, output):
                layers.append(LayerOps(f"{name}.{suffix}", macs / batch, rate))
        return hook

    for name, module in model.named_modules():
        if isinstance(module, MultiStepLIF):
            handles.append(module.register_forward_hook(lif_hook(name)))
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            handles.append(module.register_forward_hook(synapse_hook(name)))
        elif callable(getattr(module, "synaptic_ops", None)):
            handles.append(module.register_forward_hook(custom_hook(name)))
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    rates = {name: ones / total if total else 0.0 for name, (ones, total) in spikes.items()}
    neurons = {name: int(total) // batch for name, (_, total) in spikes.items()}
    return SpikingStats(rates, layers, e_mac_pj, e_ac_pj, neurons)
