/**
 * Which GPU a `webgpu` backend uses, from `DDAE_GPU`:
 * - `auto` (default): the one hardware adapter this process sees; an error when it sees several,
 *   so that workers on a multi-GPU host never end up on the same GPU by default;
 * - `<N>`: the N-th adapter (0-based) in the list Dawn offers, in Dawn's order (the list every
 *   adapter error prints);
 * - `pci-DDDD_BB_DD_F` (e.g. `pci-0000_3b_00_0`): the GPU at that PCI address, isolated by Mesa's
 *   Vulkan device-select layer before Dawn starts (identical GPUs have identical names: this tells
 *   them apart);
 * - any other text: the adapter whose name contains it (e.g. `H200`, `llvmpipe`).
 */
export type GpuSelector =
  | { kind: 'auto' }
  | { kind: 'index'; index: number }
  | { kind: 'pci'; tag: string }
  | { kind: 'name'; name: string };

const PCI_TAG = /^pci-[0-9a-f]{4}_[0-9a-f]{2}_[0-9a-f]{2}_[0-7]$/;

/** Parses `DDAE_GPU`; throws a RangeError naming the accepted forms. */
export function parseGpuSelector(raw: string | undefined): GpuSelector {
  const v = raw?.trim() ?? '';
  if (v === '' || v === 'auto') return { kind: 'auto' };
  if (/^\d+$/.test(v)) return { kind: 'index', index: Number(v) };
  if (v.startsWith('pci-')) {
    if (!PCI_TAG.test(v.toLowerCase())) throw new RangeError(`DDAE_GPU=${v}: a PCI address is written pci-DDDD_BB_DD_F (hex, e.g. pci-0000_3b_00_0, as lspci -D shows 0000:3b:00.0)`);
    return { kind: 'pci', tag: v.toLowerCase() };
  }
  // Dawn takes the name as one `adapter=<name>` flag: an '=' or ',' would split it. A number that
  // is not an index (-1, 1.5) is a typo, not a name.
  if (/[=,]/.test(v) || /^[-+]?\d/.test(v)) throw new RangeError(`DDAE_GPU=${v}: expected auto, an adapter index (0, 1, ...), pci-DDDD_BB_DD_F or part of an adapter name (without '=' or ',')`);
  return { kind: 'name', name: v };
}

/** The selector as written in `DDAE_GPU`. */
export function formatGpuSelector(s: GpuSelector): string {
  switch (s.kind) {
    case 'auto':
      return 'auto';
    case 'index':
      return String(s.index);
    case 'pci':
      return s.tag;
    case 'name':
      return s.name;
  }
}
