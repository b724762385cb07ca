#!/usr/bin/env python3
"""Torch references on the exact batches `fedkseed train` uses (dump them with dump-windows.ts).

    /usr/bin/python3 scripts/reference/train_reference.py --windows W.json --method adam --lr 3e-4
    /usr/bin/python3 scripts/reference/train_reference.py --windows W.json --method zo --eta 5e-5 [--shape iso|rms|equal|oracle]

adam: first-order Adam on the full model (the ceiling). zo: MeZO-style two-point ZO with K shared seeds (one
seed per step, uniform), z drawn per tensor with a scale sigma_t (--shape), restore+update as in the engine.
Prints JSON lines: held-out loss (mean over target tokens of the dumped held-out windows) and top-1 accuracy
at each evaluation, and the wall time.
"""
import argparse, json, math, os, sys, time
import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_weights(path):
    m = onnx.load(path)
    return {t.name: torch.tensor(numpy_helper.to_array(t).astype(np.float32)) for t in m.graph.initializer if t.data_type in (1, 10)}


def forward(W, ids, mask, cfg):
    b, t = ids.shape
    d, H = cfg['n_embd'], cfg['n_head']
    hd = d // H
    x = W['transformer.wte.weight'][ids] + W['transformer.wpe.weight'][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    keep = causal[None, None] & mask.bool()[:, None, None, :]
    for i in range(cfg['n_layer']):
        p = f'transformer.h.{i}.'
        h = F.layer_norm(x, (d,), W[p + 'ln_1.weight'], W[p + 'ln_1.bias'], 1e-5)
        qkv = h @ W[p + 'attn.c_attn.weight'] + W[p + 'attn.c_attn.bias']
        q, k, v = (z.reshape(b, t, H, hd).transpose(1, 2) for z in qkv.split(d, dim=2))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~keep, -1e9)
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + a @ W[p + 'attn.c_proj.weight'] + W[p + 'attn.c_proj.bias']
        h = F.layer_norm(x, (d,), W[p + 'ln_2.weight'], W[p + 'ln_2.bias'], 1e-5)
        h = F.gelu(h @ W[p + 'mlp.c_fc.weight'] + W[p + 'mlp.c_fc.bias'])
        x = x + h @ W[p + 'mlp.c_proj.weight'] + W[p + 'mlp.c_proj.bias']
    x = F.layer_norm(x, (d,), W['transformer.ln_f.weight'], W['transformer.ln_f.bias'], 1e-5)
    return x @ W['transformer.wte.weight'].T


def tensors(batch):
    shape = (batch['batch'], batch['seq'])
    return (torch.tensor(batch['ids']).reshape(shape), torch.tensor(batch['mask']).reshape(shape), torch.tensor(batch['labels']).reshape(shape))


def batch_loss(W, batch, cfg, reduction='mean'):
    ids, mask, labels = batch
    logits = forward(W, ids, mask, cfg)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction=reduction)


@torch.no_grad()
def evaluate(W, held, cfg):
    total, count, right = 0.0, 0, 0
    for ids, mask, labels in held:
        logits = forward(W, ids, mask, cfg)
        sel = labels != -100
        total += F.cross_entropy(logits[sel], labels[sel], reduction='sum').item()
        right += (logits[sel].argmax(-1) == labels[sel]).sum().item()
        count += sel.sum().item()
    return total / count, right / count


def shape_scales(W, names, how, windows, cfg, oracle_batches=16):
    n = {k: W[k].numel() for k in names}
    d = sum(n.values())
    if how == 'iso':
        s2 = {k: 1.0 for k in names}
    elif how == 'rms':
        s2 = {k: float((W[k] ** 2).mean()) + 1e-8 for k in names}
    elif how.startswith('vector'):
        # 'vectorX': 1-D tensors (biases, norm gains) perturbed X times more than matrices
        x = float(how[len('vector'):])
        s2 = {k: (x * x if W[k].dim() == 1 else 1.0) for k in names}
    elif how == 'equal':
        s2 = {k: 1.0 / n[k] for k in names}
    elif how in ('oracle', 'oracle-sqrt', 'fisher'):
        # exact per-tensor statistics from first-order gradients on training batches (an oracle for experiments)
        P = {k: W[k].clone().requires_grad_(True) for k in names}
        mean = {k: torch.zeros_like(W[k]) for k in names}
        sq = {k: 0.0 for k in names}
        for b in windows[:oracle_batches]:
            loss = batch_loss(P, b, cfg)
            gs = torch.autograd.grad(loss, [P[k] for k in names])
            for k, g in zip(names, gs):
                mean[k] += g / oracle_batches
                sq[k] += float((g ** 2).sum()) / oracle_batches
        G = {k: float((mean[k] ** 2).sum()) for k in names}
        if how == 'fisher':
            s2 = {k: 1.0 / (sq[k] / n[k] + 1e-12) for k in names}
        else:
            # per-parameter gain ratio ~ G_t / (n_t * F_t/n_t): G_t / sq_t, spread over the tensor's n_t entries
            r = {k: G[k] / (sq[k] + 1e-20) for k in names}
            s2 = {k: (r[k] if how == 'oracle' else math.sqrt(r[k])) / n[k] * 1e3 for k in names}
    else:
        raise SystemExit(f'unknown shape {how}')
    # normalise: E||z||^2 = d, so eta is comparable across shapes
    total = sum(s2[k] * n[k] for k in names)
    return {k: math.sqrt(s2[k] * d / total) for k in names}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--windows', required=True)
    ap.add_argument('--model', default=os.path.join(ROOT, 'models', 'tiny-code-lm', 'model.onnx'))
    ap.add_argument('--method', choices=['adam', 'sgd', 'zo'], default='zo')
    ap.add_argument('--steps', type=int, default=1000)
    ap.add_argument('--lr', type=float, default=3e-4)
    ap.add_argument('--eta', type=float, default=5e-5)
    ap.add_argument('--eps', type=float, default=1e-3)
    ap.add_argument('--k', type=int, default=4096)
    ap.add_argument('--shape', default='iso')
    ap.add_argument('--only', default='', help='comma list of substrings: train only tensors whose name has one')
    ap.add_argument('--sparse', type=float, default=0.0, help='perturb only this fraction of each tensor: its smallest |w0| entries (0: all)')
    ap.add_argument('--elem', choices=['none', 'mag', 'sqrtmag', 'row', 'col'], default='none', help="per-entry z multiplier from w0: |w0|/rms (mag), its square root, or the rms of the entry's row or column over the tensor's (2-D tensors), a power of two clamped to [1/16, 16], mean square 1 per tensor")
    ap.add_argument('--lowrank', type=int, default=0, help='ZO: z of each matrix is U·Vᵀ/√r with U, V Gaussian of rank r (LOZO without its lazy V); 1-D tensors stay dense (0: dense everywhere)')
    ap.add_argument('--schedule', choices=['const', 'cosine', 'linear'], default='const')
    ap.add_argument('--warmup', type=int, default=0)
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--tag', default='')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(os.path.dirname(a.model), 'config.json')))
    data = json.load(open(a.windows))
    train = [tensors(b) for b in data['train'][: a.steps]]
    held = [tensors(b) for b in data['heldOut']]
    W = load_weights(a.model)
    names = sorted(k for k in W if (not a.only or any(s in k for s in a.only.split(','))))
    t0 = time.time()
    base = evaluate(W, held, cfg)
    out = lambda **kw: print(json.dumps({'tag': a.tag, **kw}), flush=True)
    out(step=0, loss=base[0], top1=base[1], change=0.0)

    def lr_at(step, peak):
        f = 1.0
        if a.warmup and step < a.warmup:
            f = (step + 1) / a.warmup
        elif a.schedule == 'cosine':
            f = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        elif a.schedule == 'linear':
            f = 1 - 0.9 * step / a.steps
        return peak * f

    if a.method in ('adam', 'sgd'):
        P = {k: W[k].clone().requires_grad_(k in names) for k in W}
        opt = (torch.optim.Adam if a.method == 'adam' else torch.optim.SGD)([P[k] for k in names], lr=a.lr)
        for step, b in enumerate(train):
            for g in opt.param_groups:
                g['lr'] = lr_at(step, a.lr)
            loss = batch_loss(P, b, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (step + 1) % a.eval_every == 0:
                with torch.no_grad():
                    l, acc = evaluate(P, held, cfg)
                out(step=step + 1, loss=l, top1=acc, change=l - base[0], seconds=time.time() - t0)
        return

    scales = shape_scales(W, names, a.shape, train, cfg)
    rng = np.random.default_rng(a.seed if hasattr(a, 'seed') else 7)
    seeds = rng.integers(0, a.k, size=a.steps)
    gen = torch.Generator()

    held_z = {'seed': None, 'z': None}
    # Sparse MeZO's mask: each tensor's smallest-magnitude entries, fixed from w0
    masks = {}
    if a.sparse > 0:
        for k in names:
            cut = torch.quantile(W[k].abs().flatten().float()[:1 << 24], a.sparse)
            masks[k] = (W[k].abs() <= cut).to(W[k].dtype)

    # per-entry multipliers from w0 (fixed for the federation: any replica can recompute them from w0's bits)
    elem = {}
    if a.elem != 'none':
        for k in names:
            rms = float((W[k] ** 2).mean().sqrt()) + 1e-12
            if a.elem in ('row', 'col'):
                if W[k].dim() != 2:
                    elem[k] = torch.ones_like(W[k])
                    continue
                r = (W[k] ** 2).mean(dim=1 if a.elem == 'row' else 0, keepdim=True).sqrt().expand_as(W[k]) / rms
            else:
                r = W[k].abs() / rms
            if a.elem == 'sqrtmag':
                r = r.sqrt()
            m = torch.exp2(torch.round(torch.log2(r.clamp(1 / 16, 16))))
            elem[k] = m / float((m ** 2).mean().sqrt())

    def perturb(seed, coef):
        # z of the step's seed is drawn once and reused by its three passes
        if held_z['seed'] != seed:
            gen.manual_seed(int(seed) * 7919 + 1)
            held_z['z'] = [torch.randn(W[k].shape, generator=gen) * masks[k] if k in masks else torch.randn(W[k].shape, generator=gen) for k in names]
            if a.lowrank > 0:
                gen.manual_seed(int(seed) * 7919 + 2)
                r = a.lowrank
                held_z['z'] = [
                    (torch.randn(W[k].shape[0], r, generator=gen) @ torch.randn(r, W[k].shape[1], generator=gen)) / math.sqrt(r) if W[k].dim() == 2 else z
                    for k, z in zip(names, held_z['z'])
                ]
            if elem:
                held_z['z'] = [z * elem[k] for k, z in zip(names, held_z['z'])]
            held_z['seed'] = seed
        with torch.no_grad():
            for k, z in zip(names, held_z['z']):
                W[k].add_(z, alpha=coef * scales[k])

    with torch.no_grad():
        for step, b in enumerate(train):
            j = seeds[step]
            perturb(j, a.eps)
            lp = batch_loss(W, b, cfg).item()
            perturb(j, -2 * a.eps)
            lm = batch_loss(W, b, cfg).item()
            g = (lp - lm) / (2 * a.eps)
            perturb(j, a.eps - lr_at(step, a.eta) * g)
            if (step + 1) % a.eval_every == 0:
                l, acc = evaluate(W, held, cfg)
                out(step=step + 1, loss=l, top1=acc, change=l - base[0], seconds=time.time() - t0)
                if not math.isfinite(l) or l > base[0] + 1:
                    out(diverged=True)
                    return


if __name__ == '__main__':
    main()
