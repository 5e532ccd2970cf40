"""PyTorch twin of libs/diffusion's UNet, timed on the same task as bench/ours.ts.

Run by bench/main.ts as `python3 bench/torch_twin.py '<json config>'`; prints one JSON line.
Device: config "device" `auto` (CUDA when this torch has it and sees a GPU, else the CPU), `cuda` or
`cpu`. On CUDA the model computes in fp32 without TF32 (matmul and cuDNN convolutions), cuDNN's
autotuner off (PyTorch's default), and the clock is read after torch.cuda.synchronize().
The architecture is built from the layout our TypeScript code computes (unetLayout), block by block
as UNet.build() in libs/diffusion/src/unet.ts does: same convolutions, GroupNorm (eps 1e-5), SiLU,
sinusoidal time embedding + 2-layer MLP, per-block time projection, single-head attention in mid_1,
skip concatenation, nearest x2 upsample + 3x3 conv, stride-2 3x3 conv down, GroupNorm-SiLU-conv head.

With `"backbone": "dit"` in the config it builds the twin of libs/diffusion/src/dit.ts instead: patchify
(a patch x patch stride-patch conv), fixed 2-D sin-cos position embedding, 256-frequency time embedding
+ Linear-SiLU-Linear, `depth` blocks with adaLN-Zero (LayerNorm without affine, eps 1e-6; multi-head
attention; MLP with tanh GELU), final adaLN + Linear (zero-initialised), unpatchify.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-5)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x):
        n, c, h, w = x.shape
        hn = self.norm(x).reshape(n, c, h * w).transpose(1, 2)  # [n, L, c]
        q, k, v = self.qkv(hn).chunk(3, dim=2)
        scores = torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(c))
        o = torch.bmm(torch.softmax(scores, dim=2), v)
        return x + self.proj(o).transpose(1, 2).reshape(n, c, h, w)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups, attention, dropout):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.attn = Attention(cout, groups) if attention else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        out = (self.skip(x) if self.skip is not None else x) + h
        return self.attn(out) if self.attn is not None else out


class UNet(nn.Module):
    def __init__(self, cfg, layout):
        super().__init__()
        base, groups, dropout = cfg['baseChannels'], cfg['groups'], cfg['dropout']
        self.base = base
        self.layout = layout
        emb = base * 4
        self.temb1 = nn.Linear(base, emb)
        self.temb2 = nn.Linear(emb, emb)
        self.stem = nn.Conv2d(cfg['imageChannels'], base, 3, padding=1)
        self.blocks = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        skips = [base]
        ch = base
        for i, b in enumerate(layout):
            if b['kind'] in ('encoder', 'middle'):
                self.blocks[b['name']] = ResBlock(ch, b['channels'], emb, groups, b['attention'], dropout)
                ch = b['channels']
                if b['kind'] == 'encoder':
                    skips.append(ch)
            elif b['kind'] == 'downsample':
                self.blocks[b['name']] = nn.Conv2d(ch, b['channels'], 3, stride=2, padding=1)
                skips.append(b['channels'])
            else:
                skip = skips.pop()
                self.blocks[b['name']] = ResBlock(ch + skip, b['channels'], emb, groups, b['attention'], dropout)
                ch = b['channels']
                if self.upsample_after(i):
                    self.ups[b['name']] = nn.Conv2d(ch, ch, 3, padding=1)
        self.head_norm = nn.GroupNorm(groups, ch, eps=1e-5)
        self.head = nn.Conv2d(ch, cfg['imageChannels'], 3, padding=1)
        half = base // 2
        freqs = torch.tensor([math.exp(-math.log(10000) * i / max(1, half - 1)) for i in range(half)])
        self.register_buffer('freqs', freqs)

    def upsample_after(self, i):
        return i + 1 < len(self.layout) and self.layout[i + 1]['resolution'] > self.layout[i]['resolution']

    def time_embedding(self, t_in):
        args = (t_in * 1000)[:, None] * self.freqs[None, :]
        e = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
        if e.shape[1] < self.base:
            e = F.pad(e, (0, self.base - e.shape[1]))
        return self.temb2(F.silu(self.temb1(e)))

    def forward(self, x, t_in, taps=()):
        emb = self.time_embedding(t_in)
        h = self.stem(x)
        skips = [h]
        out_taps = {}
        for i, b in enumerate(self.layout):
            m = self.blocks[b['name']]
            if b['kind'] in ('encoder', 'middle'):
                h = m(h, emb)
                if b['kind'] == 'encoder':
                    skips.append(h)
            elif b['kind'] == 'downsample':
                h = m(h)
                skips.append(h)
            else:
                h = m(torch.cat([h, skips.pop()], dim=1), emb)
            if b['name'] in taps:
                out_taps[b['name']] = h
            if b['kind'] == 'decoder' and self.upsample_after(i):
                h = self.ups[b['name']](F.interpolate(h, scale_factor=2, mode='nearest'))
        return self.head(F.silu(self.head_norm(h))), out_taps


def sincos_pos_embed_2d(width, grid):
    """As sinCosPosEmbed2d in dit.ts: [grid*grid, width]; columns embed first, then rows."""
    quarter = width // 4
    w = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    i, j = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing='ij')
    i, j = i.reshape(-1, 1), j.reshape(-1, 1)
    return torch.cat([torch.sin(j * w), torch.cos(j * w), torch.sin(i * w), torch.cos(i * w)], dim=1).float()


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.adaln = nn.Linear(d, 6 * d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.fc1 = nn.Linear(d, mlp_ratio * d)
        self.fc2 = nn.Linear(mlp_ratio * d, d)
        nn.init.zeros_(self.adaln.weight)
        nn.init.zeros_(self.adaln.bias)

    def attention(self, x):
        n, l, d = x.shape
        q, k, v = self.qkv(x).reshape(n, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1) @ v
        return self.proj(o.transpose(1, 2).reshape(n, l, d))

    def forward(self, x, cond):
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaln(cond).chunk(6, dim=1)
        x = x + gate_a.unsqueeze(1) * self.attention(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift_a, scale_a))
        h = modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift_m, scale_m)
        return x + gate_m.unsqueeze(1) * self.fc2(F.gelu(self.fc1(h), approximate='tanh'))


class DiT(nn.Module):
    FREQUENCIES = 256

    def __init__(self, cfg):
        super().__init__()
        d, p, c = cfg['width'], cfg['patch'], cfg['imageChannels']
        self.patch, self.grid, self.channels = p, cfg['imageSize'] // p, c
        self.patchify = nn.Conv2d(c, d, p, stride=p)
        self.register_buffer('pos', sincos_pos_embed_2d(d, self.grid))
        self.temb1 = nn.Linear(self.FREQUENCIES, d)
        self.temb2 = nn.Linear(d, d)
        self.blocks = nn.ModuleList(DiTBlock(d, cfg['heads'], cfg.get('mlpRatio', 4)) for _ in range(cfg['depth']))
        self.final_adaln = nn.Linear(d, 2 * d)
        self.final = nn.Linear(d, p * p * c)
        for m in (self.final_adaln, self.final):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, t_in, taps=()):
        n = x.shape[0]
        h = self.patchify(x).flatten(2).transpose(1, 2) + self.pos
        half = self.FREQUENCIES // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t_in.device) / half)
        args = (t_in * 1000)[:, None] * freqs[None]
        cond = F.silu(self.temb2(F.silu(self.temb1(torch.cat([torch.cos(args), torch.sin(args)], dim=1)))))
        out_taps = {}
        for i, blk in enumerate(self.blocks):
            h = blk(h, cond)
            name = f'blk_{i + 1}'
            if name in taps:
                out_taps[name] = h.transpose(1, 2).reshape(n, -1, self.grid, self.grid)
        shift, scale = self.final_adaln(cond).chunk(2, dim=1)
        y = self.final(modulate(F.layer_norm(h, h.shape[-1:], eps=1e-6), shift, scale))
        g, p, c = self.grid, self.patch, self.channels
        y = y.reshape(n, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, g * p, g * p)
        return y, out_taps


def pick_device(want):
    has_cuda = torch.cuda.is_available()
    if want == 'cuda' and not has_cuda:
        raise SystemExit(f'torch {torch.__version__} has no usable CUDA device (built for CUDA {torch.version.cuda})')
    if want == 'cpu' or not has_cuda:
        return torch.device('cpu')
    return torch.device('cuda')


def strict_fp32():
    """No TF32 anywhere: the comparison is fp32 against fp32."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg['threads'])
    torch.manual_seed(0)
    device = pick_device(cfg.get('device', 'auto'))
    cuda = device.type == 'cuda'
    if cuda:
        strict_fp32()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    s, c, batch = cfg['imageSize'], cfg['imageChannels'], cfg['batch']
    dit = cfg.get('backbone') == 'dit'
    model = (DiT(cfg) if dit else UNet(cfg, cfg['layout'])).to(device)
    params = sum(p.numel() for p in model.parameters())
    images = torch.tanh(torch.randn(max(256, batch), c, s, s)).to(device)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0).float().to(device)

    if cfg['task'] == 'train':
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
        ema = [p.detach().clone() for p in model.parameters()]

        def step():
            idx = torch.randint(0, images.shape[0], (batch,), device=device)
            x0 = images[idx]
            t = torch.randint(1, 1001, (batch,), device=device)
            eps = torch.randn_like(x0)
            ab = alpha_bar[t - 1][:, None, None, None]
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            out, _ = model(xt, t.float() / 1000)
            loss = F.mse_loss(out, eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                for e, p in zip(ema, model.parameters()):
                    e.mul_(0.999).add_(p, alpha=0.001)
            return loss.item()
    else:
        model.eval()
        taps = [b['name'] for b in cfg['layout'] if b['kind'] in ('decoder', 'transformer')]
        a, b_ = float(alpha_bar[99].sqrt()), float((1 - alpha_bar[99]).sqrt())  # t = 100

        def step():
            with torch.inference_mode():
                x = a * images[:batch] + b_ * torch.randn(batch, c, s, s, device=device)
                _, out = model(x, torch.full((batch,), 0.1, device=device), taps)
                # Copied to host memory, as ours reads its features back.
                feats = [out[k].mean(dim=(2, 3)).cpu().numpy() for k in taps]
            return float(feats[0][0, 0])

    for _ in range(cfg['warmup']):
        step()
    sync()
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(cfg['iters']):
        step()
    sync()
    sec = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({
        'imgPerSec': batch * cfg['iters'] / sec,
        'secPerIter': sec / cfg['iters'],
        'cpuPerWall': cpu / sec,
        'iters': cfg['iters'],
        'params': params,
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'mkldnn': torch.backends.mkldnn.is_available(),
        'openblasCoretype': os.environ.get('OPENBLAS_CORETYPE'),
        'device': device.type,
        'gpu': torch.cuda.get_device_name(device) if cuda else None,
        'cuda': torch.version.cuda,
        'tf32': (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32) if cuda else None,
        'python': sys.executable,
    }))


if __name__ == '__main__':
    main()
