"""The image-prior machinery of DiffIR (Xia et al., ICCV'23) that sits around a restoration network.

- ``CPEN``: the compact prior extraction network, image(s) -> IPR vector z of size ``4 * n_feats``.
- ``MLPDenoiser``: the x0-predicting MLP over z, conditioned on the CPEN_S2 output and the timestep.
- ``IPRDiffusion``: the short DDPM over z (DiffIR's "linear" schedule, x0-parameterisation, deterministic reverse
  steps that return the posterior mean only).

Module and buffer names follow the official ``S2_arch.py`` / ``ldm/ddpm.py`` so official state dicts load with
``strict=True``; the DiffRWKVIR model reuses these classes unchanged.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CPEN", "IPRDiffusion", "MLPDenoiser", "ResBlock", "linear_beta_schedule"]


class ResBlock(nn.Module):
    """conv3x3 -> LeakyReLU(0.1) -> conv3x3, plus the input (no scaling, no norm)."""

    def __init__(self, *, n_feats: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CPEN(nn.Module):
    """Compact prior extraction network: image tensor [B, C, H, W] -> IPR [B, 4 * n_feats].

    Args:
        in_channels: channels of the tensor passed to ``forward`` (before ``unshuffle``).
        n_feats: stem width; the IPR has ``4 * n_feats`` entries.
            Default: 64.
        n_encoder_res: number of residual blocks after the stem.
            Default: 6.
        unshuffle: PixelUnshuffle factor applied to the input first (4 in the inpainting variant, which feeds
            full-resolution images); 1 disables it.
            Default: 1.
    """

    def __init__(self, *, in_channels: int, n_feats: int = 64, n_encoder_res: int = 6, unshuffle: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.unshuffle = unshuffle
        self.ipr_dim = 4 * n_feats
        stem_in = in_channels * unshuffle * unshuffle
        # One flat Sequential named `E`, as the official code, so that the state-dict indices match.
        layers: list[nn.Module] = [nn.Conv2d(stem_in, n_feats, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        layers += [ResBlock(n_feats=n_feats) for _ in range(n_encoder_res)]
        widths = (n_feats, 2 * n_feats, 2 * n_feats, 4 * n_feats)
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.E = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            nn.Linear(self.ipr_dim, self.ipr_dim),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(self.ipr_dim, self.ipr_dim),
            nn.LeakyReLU(0.1, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"CPEN expects [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        return self.mlp(self.E(x).flatten(1))


class _MLPLayer(nn.Module):
    """Linear + LeakyReLU(0.1). Official name ``ResMLP``, but it has no skip connection."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.resmlp = nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resmlp(x)


class MLPDenoiser(nn.Module):
    """Predicts x0 of the IPR from ``cat[c, t / (10 T), x_t]`` (official ``denoise``).

    Args:
        ipr_dim: size of the IPR vector (and of the condition c).
            Default: 256.
        n_denoise_res: hidden Linear+LeakyReLU layers after the input layer.
            Default: 1.
        timesteps: T of the diffusion; the timestep is fed as ``t / (10 T)``.
            Default: 4.
    """

    def __init__(self, *, ipr_dim: int = 256, n_denoise_res: int = 1, timesteps: int = 4) -> None:
        super().__init__()
        self.ipr_dim = ipr_dim
        self.max_period = 10 * timesteps
        layers: list[nn.Module] = [nn.Linear(2 * ipr_dim + 1, ipr_dim), nn.LeakyReLU(0.1, inplace=True)]
        layers += [_MLPLayer(dim=ipr_dim) for _ in range(n_denoise_res)]
        self.resmlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        t = (t.to(x.dtype) / self.max_period).view(-1, 1)
        return self.resmlp(torch.cat([c, t, x], dim=1))


def linear_beta_schedule(timesteps: int, linear_start: float, linear_end: float) -> torch.Tensor:
    """DiffIR/LDM "linear" schedule: betas evenly spaced in sqrt space, float64 [timesteps]."""
    return torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2


class IPRDiffusion(nn.Module):
    """DDPM over the IPR vector with T deterministic reverse steps (official ``ldm/ddpm.py:DDPM``).

    ``model`` and ``condition`` are the denoiser and CPEN_S2; the owning network registers the same modules under
    its own names too (official layout), so they appear twice in the state dict but once in ``parameters()``.

    Args:
        denoise: the x0 predictor, called as ``denoise(x_t, t, c)``.
        condition: CPEN_S2, maps the conditioning image to c.
        timesteps: T.
            Default: 4.
        linear_start: first beta of the "linear" schedule.
            Default: 0.1.
        linear_end: last beta.
            Default: 0.99.
    """

    _SCHEDULE = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
                 "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
                 "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")

    def __init__(self, *, denoise: MLPDenoiser, condition: nn.Module, timesteps: int = 4, linear_start: float = 0.1,
                 linear_end: float = 0.99) -> None:
        super().__init__()
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        self.model = denoise
        self.condition = condition
        self.num_timesteps = timesteps
        self.ipr_dim = denoise.ipr_dim
        betas = linear_beta_schedule(timesteps, linear_start, linear_end)
        alphas = 1.0 - betas
        ac = torch.cumprod(alphas, 0)
        ac_prev = torch.cat([ac.new_ones(1), ac[:-1]])
        post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
        # All twelve are persistent buffers in the official model, hence part of its checkpoints.
        schedule = {
            "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": ac_prev,
            "sqrt_alphas_cumprod": ac.sqrt(), "sqrt_one_minus_alphas_cumprod": (1.0 - ac).sqrt(),
            "log_one_minus_alphas_cumprod": (1.0 - ac).log(), "sqrt_recip_alphas_cumprod": (1.0 / ac).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / ac - 1.0).sqrt(),
            "posterior_variance": post_var, "posterior_log_variance_clipped": post_var.clamp(min=1e-20).log(),
            "posterior_mean_coef1": betas * ac_prev.sqrt() / (1.0 - ac),
            "posterior_mean_coef2": (1.0 - ac_prev) * alphas.sqrt() / (1.0 - ac),
        }
        for name in self._SCHEDULE:
            self.register_buffer(name, schedule[name].float())

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x0) with the given noise."""
        return self.sqrt_alphas_cumprod[t].view(-1, 1) * x0 + self.sqrt_one_minus_alphas_cumprod[t].view(-1, 1) * noise

    def p_sample(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """One reverse step: the posterior mean given the predicted x0 (no noise added, no clipping)."""
        x0 = self.model(x, t, c)
        return self.posterior_mean_coef1[t].view(-1, 1) * x0 + self.posterior_mean_coef2[t].view(-1, 1) * x

    def reverse(self, x_t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Run all T reverse steps from x_{T-1} (index T-1 down to 0)."""
        for i in reversed(range(self.num_timesteps)):
            t = torch.full((x_t.shape[0],), i, device=x_t.device, dtype=torch.long)
            x_t = self.p_sample(x_t, t, c)
        return x_t

    def forward(self, cond_img: torch.Tensor, prior_s1: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The stage-2 IPR for ``cond_img`` (the input of ``condition``).

        With ``prior_s1`` (training): noise it to t = T-1 and run all T reverse steps with gradients. Without it
        (inference): start from x_T ~ N(0, I). ``generator`` makes the noise reproducible.
        """
        c = self.condition(cond_img)
        b = c.shape[0]
        if prior_s1 is not None:
            if prior_s1.shape != c.shape:
                raise ValueError(f"prior_s1 must have shape {tuple(c.shape)}, got {tuple(prior_s1.shape)}")
            noise = torch.randn(prior_s1.shape, generator=generator, device=c.device, dtype=c.dtype)
            t = torch.full((b,), self.num_timesteps - 1, device=c.device, dtype=torch.long)
            x_t = self.q_sample(prior_s1, t, noise)
        else:
            x_t = torch.randn((b, self.ipr_dim), generator=generator, device=c.device, dtype=c.dtype)
        return self.reverse(x_t, c)
