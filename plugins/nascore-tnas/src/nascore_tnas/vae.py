"""The TNAS variational autoencoder over architecture token sequences.

Section 3.2 of the TNAS paper: an encoder E maps ``alpha`` to ``N(mu, sigma)``
(``q_phi(z|alpha)``), a decoder D maps ``z`` back to the architecture
(``p_theta(alpha|z)``), trained by maximizing the evidence lower bound (Eq. 2).
Section 3.3: both E and D are stacks of transformer blocks (Eqs. 3-8).

The decoder outputs one categorical distribution per position; tokens a position may
not take get logit ``-inf`` (the vocabulary's mask), so every decoded sample is a valid
genome of the space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TransformerBlock(nn.Module):
    """One transformer block (Eqs. 3-8): ``nhead`` heads of scaled dot-product
    self-attention ``softmax(Q K^T / sqrt(d_k)) V`` with ``Q = H W_q``, ``K = H W_k``,
    ``V = H W_v`` (Eqs. 3-6), heads concatenated (Eq. 7), then the position-wise
    feed-forward ``ReLU(H W_1 + b_1) W_2 + b_2`` (Eq. 8).  Residual connections and
    layer normalization follow Vaswani et al., the paper's reference [16]."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v)  # Eq. 6, per head
        att = att.transpose(1, 2).reshape(b, n, d)  # Eq. 7
        h = self.norm1(h + self.dropout(self.proj(att)))
        return self.norm2(h + self.dropout(self.ff2(F.relu(self.ff1(h)))))  # Eq. 8


class ArchitectureVAE(nn.Module):
    """Transformer encoder ``q_phi(z|alpha)`` and decoder ``p_theta(alpha|z)`` over token
    sequences of fixed length with a per-position validity mask (shape length x vocab)."""

    def __init__(self, mask, *, d_model: int = 32, heads: int = 2, layers: int = 2,
                 latent_dim: int = 8, d_ff: int | None = None, dropout: float = 0.0):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        length, vocab = mask.shape
        self.length, self.vocab_size, self.latent_dim = length, vocab, latent_dim
        self.register_buffer("mask", mask)
        d_ff = d_ff or 2 * d_model
        self.embed = nn.Embedding(vocab, d_model)
        self.enc_pos = nn.Parameter(torch.randn(length, d_model) * 0.1)
        self.encoder = nn.ModuleList(TransformerBlock(d_model, heads, d_ff, dropout) for _ in range(layers))
        self.to_stats = nn.Linear(d_model, 2 * latent_dim)
        self.from_z = nn.Linear(latent_dim, d_model)
        self.dec_pos = nn.Parameter(torch.randn(length, d_model) * 0.1)
        self.decoder = nn.ModuleList(TransformerBlock(d_model, heads, d_ff, dropout) for _ in range(layers))
        self.head = nn.Linear(d_model, vocab)

    def encode(self, ids: torch.Tensor):
        """``(mu, log sigma^2)`` of ``q_phi(z|alpha)`` for token ids ``(B, length)``."""
        h = self.embed(ids) + self.enc_pos
        for block in self.encoder:
            h = block(h)
        mu, logvar = self.to_stats(h.mean(dim=1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 10.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Masked logits of ``p_theta(alpha|z)``, shape ``(B, length, vocab)``."""
        h = self.from_z(z).unsqueeze(1) + self.dec_pos
        for block in self.decoder:
            h = block(h)
        return self.head(h).masked_fill(~self.mask, float("-inf"))

    def loss(self, ids: torch.Tensor, weights: torch.Tensor | None = None, beta: float = 1.0,
             generator: torch.Generator | None = None):
        """Negative ELBO (Eq. 2): reconstruction cross-entropy summed over positions plus
        ``beta`` times ``KL(q_phi(z|alpha) || N(0, I))``, averaged with ``weights``.
        Returns ``(loss, reconstruction, kl)`` (the last two detached, unweighted batch means)."""
        mu, logvar = self.encode(ids)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decode(z)
        rec = F.cross_entropy(logits.reshape(-1, self.vocab_size), ids.reshape(-1), reduction="none")
        rec = rec.view(ids.shape).sum(dim=1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        per_sample = rec + beta * kl
        if weights is None:
            total = per_sample.mean()
        else:
            total = (per_sample * weights).sum() / weights.sum()
        return total, rec.mean().detach(), kl.mean().detach()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Token ids of ``n`` draws ``z ~ N(0, I)``, ``alpha ~ p_theta(alpha|z)``; with
        ``temperature == 0`` each position takes its most likely token."""
        device = self.mask.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        logits = self.decode(z)
        if temperature <= 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / temperature, dim=-1).reshape(-1, self.vocab_size)
        return torch.multinomial(probs, 1, generator=generator).view(n, self.length)

    @torch.no_grad()
    def reconstruct(self, ids: torch.Tensor) -> torch.Tensor:
        """Most likely tokens decoded from the posterior mean ``mu`` of each input."""
        mu, _ = self.encode(ids)
        return self.decode(mu).argmax(dim=-1)

    @torch.no_grad()
    def log_prob(self, ids: torch.Tensor, samples: int = 16, generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-sampled estimate of ``log p_theta(alpha)`` with ``q_phi`` as proposal."""
        mu, logvar = self.encode(ids)
        std = torch.exp(0.5 * logvar)
        out = []
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device)
            z = mu + eps * std
            logp = torch.log_softmax(self.decode(z), dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1).sum(1)
            log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(1)
            out.append(logp + log_prior - log_q)
        return torch.logsumexp(torch.stack(out), dim=0) - math.log(samples)
