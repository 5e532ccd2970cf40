import { formatGpuSelector, type GpuSelector } from '@ddae/contracts';

/**
 * Which adapter a webgpu backend takes, decided from what Dawn lists (pure logic, tested without a
 * GPU). Dawn under Node picks adapters by name only: `create(['adapter=<text>'])` takes the FIRST
 * adapter whose name contains the text, and a name that matches none makes requestAdapter fail with
 * the list of every adapter, which is how this module learns the list.
 */

/** One adapter as Dawn lists it, with what requesting it told us. */
export interface ListedAdapter {
  /** Position in Dawn's list. */
  index: number;
  /** The driver's device name, as Dawn prints it. */
  name: string;
  /** Dawn's backend (`vulkan`). */
  api: string;
  /** A software adapter (Vulkan device type CPU: Mesa's lavapipe, SwiftShader). */
  fallback: boolean;
}

/** What to do: take adapter `index` by its name (Dawn's `adapter=` flag). */
export interface AdapterPlan {
  index: number;
  /** The text for Dawn's `adapter=` flag: the whole name (it selects the first adapter containing it). */
  nameFilter: string;
}

/** A GPU configuration that cannot be honoured: no retry helps, the operator must change DDAE_GPU or DDAE_BACKEND. */
export class GpuSelectionError extends Error {
  override name = 'GpuSelectionError';
}

/** The list Dawn prints after "Available adapters:", e.g. ` * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'`. */
export function parseDawnAdapterList(message: string): { api: string; name: string }[] {
  const out: { api: string; name: string }[] = [];
  for (const m of message.matchAll(/^\s*\* backend: '([^']*)', name: '(.*)'\s*$/gm)) out.push({ api: m[1], name: m[2] });
  return out;
}

/** How Dawn's JS adapter info writes a device name: lower case, every run of other characters one '-'. */
export function dawnDeviceSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/** Why there is no adapter at all, with the fix. */
export const NO_VULKAN = 'no Vulkan adapter (a GPU needs libvulkan1 and its Vulkan driver, e.g. the NVIDIA driver; software Vulkan: mesa-vulkan-drivers)';

/** `0 "NVIDIA H200"`, `1 "llvmpipe (...)" (software)` one per line, for error messages. */
export function describeList(adapters: ListedAdapter[]): string {
  if (adapters.length === 0) return `  (none: ${NO_VULKAN})`;
  return adapters.map((a) => `  ${a.index}: "${a.name}" (${a.api}${a.fallback ? ', software adapter' : ''})`).join('\n');
}

/**
 * The adapter `selector` names among `adapters` (Dawn's list, in order).
 * @param allowSoftware true when the webgpu backend was asked for explicitly (DDAE_BACKEND=webgpu):
 *   a software adapter may then be used; `auto` never computes on one.
 * @returns the plan, or a reason to skip webgpu (auto only: no hardware adapter here)
 * @throws GpuSelectionError for a selection that names nothing, something ambiguous, or several GPUs by default
 */
export function planAdapter(selector: GpuSelector, adapters: ListedAdapter[], allowSoftware: boolean): AdapterPlan | { skip: string } {
  const list = `Dawn offers:\n${describeList(adapters)}`;
  const fix = 'set DDAE_GPU to an index, a pci-DDDD_BB_DD_F address or part of a name';
  const take = (a: ListedAdapter): AdapterPlan => {
    if (a.fallback && !allowSoftware) {
      throw new GpuSelectionError(`DDAE_GPU=${formatGpuSelector(selector)} names adapter ${a.index} "${a.name}", a software adapter: a worker never computes on one unless DDAE_BACKEND=webgpu asks for it. ${list}`);
    }
    // Dawn takes the first adapter whose name contains the filter: an identical or longer name
    // earlier in the list would win, and identical GPUs cannot be told apart by name at all.
    const shadow = adapters.find((b) => b.index < a.index && b.name.includes(a.name));
    if (shadow) {
      throw new GpuSelectionError(
        `adapter ${a.index} "${a.name}" cannot be selected by name: Dawn would take adapter ${shadow.index} "${shadow.name}" first (identical GPUs have identical names). ` +
          `Select it by PCI address (DDAE_GPU=pci-DDDD_BB_DD_F, with Mesa's Vulkan device-select layer from mesa-vulkan-drivers installed) or give each worker one visible GPU (a container with NVIDIA_VISIBLE_DEVICES=<n>). ${list}`,
      );
    }
    return { index: a.index, nameFilter: a.name };
  };
  switch (selector.kind) {
    case 'index': {
      const a = adapters[selector.index];
      if (!a) throw new GpuSelectionError(`DDAE_GPU=${selector.index}: there is no adapter ${selector.index}. ${list}`);
      return take(a);
    }
    case 'name': {
      const hits = adapters.filter((a) => a.name.includes(selector.name));
      if (hits.length === 0) throw new GpuSelectionError(`DDAE_GPU=${selector.name}: no adapter's name contains it. ${list}`);
      if (hits.length > 1) throw new GpuSelectionError(`DDAE_GPU=${selector.name} matches ${hits.length} adapters (${hits.map((h) => h.index).join(', ')}): name one by index or PCI address. ${list}`);
      return take(hits[0]);
    }
    case 'pci':
      // The device-select layer left exactly the GPU at that address visible (see isolateByPci).
      if (adapters.length !== 1) throw new GpuSelectionError(`DDAE_GPU=${selector.tag}: after isolating that PCI address Dawn still lists ${adapters.length} adapters. ${list}`);
      return take(adapters[0]);
    case 'auto': {
      const hardware = adapters.filter((a) => !a.fallback);
      if (hardware.length > 1) {
        throw new GpuSelectionError(`${hardware.length} GPUs are visible and DDAE_GPU is auto: give each worker its own GPU (${fix}), so that no two workers share one by accident. ${list}`);
      }
      if (hardware.length === 1) return take(hardware[0]);
      const software = adapters.find((a) => a.fallback);
      if (allowSoftware && software) return take(software);
      return { skip: adapters.length === 0 ? NO_VULKAN : `no hardware adapter (only software: ${adapters.map((a) => `"${a.name}"`).join(', ')}; DDAE_BACKEND=webgpu would use it)` };
    }
  }
}

/** One GPU as Mesa's device-select layer lists it (`MESA_VK_DEVICE_SELECT=list`). */
export interface PciDevice {
  /** Its PCI address as a DRI_PRIME tag, `pci-0000_3b_00_0`; undefined when the driver reports none (software). */
  tag?: string;
  name: string;
  type: string;
}

/**
 * Parses the device-select layer's list, printed on stderr, e.g.
 * `  GPU 0: 10de:2335 "NVIDIA H200" discrete GPU 0000:3b:00.0`.
 */
export function parseDeviceSelectList(stderr: string): PciDevice[] | undefined {
  if (!stderr.includes('selectable devices:')) return undefined;
  const out: PciDevice[] = [];
  for (const m of stderr.matchAll(/^\s*GPU \d+: [0-9a-f]+:[0-9a-f]+ "(.*)" (.+?)(?: ([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]))?\s*$/gm)) {
    out.push({ name: m[1], type: m[2], ...(m[3] ? { tag: `pci-${m[3]}_${m[4]}_${m[5]}_${m[6]}` } : {}) });
  }
  return out;
}
