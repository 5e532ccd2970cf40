import { rawEnv, setEnv } from '@ddae/config';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeGpuAdapter, formatGpuSelector, parseGpuSelector, type GpuAdapter, type GpuSelector } from '@ddae/contracts';
import { DeviceLimitError } from '@ddae/diffusion';
import { registerWebGpuKernels, type ReadTracking } from './webgpu-kernels';
import { GpuSelectionError, dawnDeviceSlug, parseDawnAdapterList, parseDeviceSelectList, planAdapter, type ListedAdapter } from './gpu-adapters';

/**
 * The `webgpu` backend: @tensorflow/tfjs-backend-webgpu on Dawn (the npm package `webgpu`, a
 * prebuilt dawn.node that needs only libvulkan1 and a Vulkan driver). We choose the adapter and
 * create the device ourselves (GPU.md), watch the device for asynchronous errors, and make every
 * read of a tensor fail once the device has reported one: a dropped command buffer would otherwise
 * let training go on silently with wrong values.
 */

/** The parts of Dawn's WebGPU objects used here (dawn.node implements the WebGPU IDL). */
interface GpuAdapterInfoLike {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter?: boolean;
}
interface GpuDeviceLike {
  limits: Record<string, number>;
  features: Set<string>;
  lost: Promise<{ reason: string; message: string }>;
  addEventListener(type: 'uncapturederror', listener: (event: { error: GpuErrorLike }) => void): void;
  destroy(): void;
}
interface GpuAdapterLike {
  info: GpuAdapterInfoLike;
  limits: Record<string, number>;
  features: Set<string>;
  requestDevice(descriptor: { requiredLimits?: Record<string, number>; requiredFeatures?: string[] }): Promise<GpuDeviceLike>;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** The device reported an error (validation, internal; out of memory is GpuOutOfMemoryError): results since then are wrong. */
export class GpuDeviceError extends Error {
  override name = 'GpuDeviceError';
}

/** The device was lost (driver reset, GPU removed): a fresh process gets a fresh device. */
export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
}

/**
 * The GPU ran out of memory (a WebGPU `out-of-memory` error, GPUOutOfMemoryError): a limit of the
 * device like DeviceLimitError, and as deterministic: the same model and batch need the same memory
 * again, so it is not retried. The message names the GPU, the memory tfjs held and the fix.
 */
export class GpuOutOfMemoryError extends DeviceLimitError {
  override name = 'GpuOutOfMemoryError';
}

/** A WebGPU error as the device reports it (GPUValidationError, GPUOutOfMemoryError, GPUInternalError). */
export interface GpuErrorLike {
  constructor: { name: string };
  message: string;
}

/** GPU memory tfjs's buffer pool held when an error arrived (tf.memory() on webgpu), in bytes. */
export interface GpuPoolMemory {
  allocated?: number;
  used?: number;
}

/**
 * The task's error for an error the device reported: GpuOutOfMemoryError for an out-of-memory
 * error (Dawn's GPUOutOfMemoryError), else GpuDeviceError.
 * @param gpu the adapter, as messages name it (`GPU 0 "NVIDIA H200"`)
 * @param memory what tfjs's buffer pool held at the time (WebGPU does not tell a GPU's total memory)
 * @param limits the adapter's buffer limits, named in the out-of-memory message
 */
export function deviceErrorOf(error: GpuErrorLike, gpu: string, memory: GpuPoolMemory = {}, limits: Record<string, number> = {}): GpuDeviceError | GpuOutOfMemoryError {
  const reported = `${error.constructor.name}: ${error.message}`;
  if (error.constructor.name !== 'GPUOutOfMemoryError') {
    return new GpuDeviceError(`the GPU device reported an error, so results computed since are wrong and the task fails: ${reported}`);
  }
  const mib = (b: number | undefined) => (b === undefined ? 'unknown' : `${Math.round(b / 2 ** 20)} MiB`);
  const largest = limits['maxBufferSize'] === undefined ? '' : `, buffers of at most ${mib(limits['maxBufferSize'])} (maxBufferSize)`;
  return new GpuOutOfMemoryError(
    `${gpu} ran out of memory (${reported}), so the task fails: tfjs's buffer pool held ${mib(memory.allocated)} of GPU memory (${mib(memory.used)} in use by tensors)${largest}; ` +
      'WebGPU does not report how much memory the GPU has. Use a smaller batch (pretrain.batchSize in the sweep spec, --batch of ddae pretrain: a step is split into micro-batches ' +
      'only to fit the largest buffer, not to fit the memory), a smaller model, or a GPU with more free memory',
  );
}

/** What tfjs's buffer pool holds now (webgpu's tf.memory() figures), if the backend reports it. */
export function gpuPoolMemory(): GpuPoolMemory {
  try {
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
    return { ...(m.numBytesAllocatedInGPU !== undefined ? { allocated: m.numBytesAllocatedInGPU } : {}), ...(m.numBytesInGPU !== undefined ? { used: m.numBytesInGPU } : {}) };
  } catch {
    return {};
  }
}

/** The first asynchronous fault of the device, if any. */
interface DeviceFaults {
  error?: GpuDeviceError | GpuOutOfMemoryError | GpuDeviceLostError;
  /** Every error message the device reported (a failed pipeline cascades into several). */
  messages: string[];
}

/** What `useWebGpu` set up. */
export interface WebGpuSetup {
  adapter: GpuAdapter;
  /** Human-readable: the package, the adapter and its limits. */
  detail: string;
}

/** Largest number of device messages kept (an invalid pipeline reports itself at every use). */
const MAX_MESSAGES = 20;
/** Device limits raised from WebGPU's defaults to the adapter's own: tfjs asks for the first six; more storage buffers per shader let more kernels fit. */
const RAISED_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
] as const;

let setup: { dawn: DawnModule; device: GpuDeviceLike; faults: DeviceFaults } | undefined;

/**
 * Loads dawn.node itself: the package's index.js is an ES module (jest's CommonJS loader cannot
 * load it) and adds only a buffer-unmapping patch for device.destroy() that we do not depend on.
 */
function dawnNodePath(): string {
  const root = path.dirname(require.resolve('webgpu/package.json'));
  const platform = process.platform === 'darwin' ? 'darwin-universal' : `${process.platform}-${process.arch}`;
  return path.join(root, 'dist', platform, 'dawn.node');
}

function loadDawn(): DawnModule {
  const file = dawnNodePath();
  try {
    return require(file) as DawnModule;
  } catch (error) {
    throw new Error(`dawn.node (${file}) failed to load: ${(error as Error).message} (it needs libvulkan.so.1: apt-get install libvulkan1)`);
  }
}

/** Dawn flags of every GPU object: Vulkan on Linux (Dawn's default there too, made explicit). */
function baseFlags(): string[] {
  return process.platform === 'linux' ? ['backend=vulkan'] : [];
}

/** A name no adapter has: requestAdapter then rejects with Dawn's list of every adapter. */
const NO_ADAPTER = 'ddae-list-adapters-\u0001';

/** Every adapter Dawn offers, in its order, with whether each is a software adapter. */
export async function listAdapters(dawn: DawnModule = loadDawn()): Promise<ListedAdapter[]> {
  let named: { api: string; name: string }[] = [];
  try {
    await dawn.create([...baseFlags(), `adapter=${NO_ADAPTER}`]).requestAdapter();
  } catch (error) {
    named = parseDawnAdapterList(String((error as Error).message ?? error));
  }
  const out: ListedAdapter[] = [];
  for (const [index, a] of named.entries()) {
    // Requesting an adapter by name (no device) tells whether it is a software one. With
    // identical names Dawn answers for the first; they are the same model, so the answer holds.
    const adapter = await dawn.create([...baseFlags(), `adapter=${a.name}`]).requestAdapter();
    out.push({ index, name: a.name, api: a.api, fallback: adapter?.info.isFallbackAdapter === true });
  }
  return out;
}

/**
 * Leaves only the GPU at PCI address `tag` visible to Vulkan, through Mesa's device-select layer
 * (`DRI_PRIME=<tag>!`), before Dawn creates its Vulkan instance. Checked first in a child process
 * with `MESA_VK_DEVICE_SELECT=list` (the layer prints every GPU with its address, then exits): a
 * missing layer or an address that is not there is an error, never a silent pick of another GPU.
 */
function isolateByPci(tag: string): string {
  const script = `require(${JSON.stringify(dawnNodePath())}).create(${JSON.stringify(baseFlags())}).requestAdapter().then(() => process.exit(0), () => process.exit(0))`;
  const probe = spawnSync(process.execPath, ['-e', script], { env: { ...rawEnv(), MESA_VK_DEVICE_SELECT: 'list' }, encoding: 'utf8', timeout: 30_000 });
  const devices = parseDeviceSelectList(`${probe.stderr ?? ''}`);
  if (!devices) {
    throw new GpuSelectionError(`DDAE_GPU=${tag} needs Mesa's Vulkan device-select layer (Debian/Ubuntu: apt-get install mesa-vulkan-drivers; it works for NVIDIA GPUs too), which did not answer here`);
  }
  const hit = devices.find((d) => d.tag === tag);
  if (!hit) {
    const known = devices.map((d) => `  ${d.tag ?? '(no PCI address)'} "${d.name}" ${d.type}`).join('\n');
    throw new GpuSelectionError(`DDAE_GPU=${tag}: no GPU at that PCI address. Vulkan sees:\n${known}`);
  }
  setEnv('DRI_PRIME', `${tag}!`);
  return hit.name;
}

function adapterOf(index: number, name: string, api: string, a: GpuAdapterLike, device: GpuDeviceLike, pci?: string): GpuAdapter {
  return {
    index,
    name,
    api,
    vendor: a.info.vendor,
    architecture: a.info.architecture,
    description: a.info.description,
    fallback: a.info.isFallbackAdapter === true,
    ...(pci ? { pci } : {}),
    limits: {
      maxBufferSize: device.limits['maxBufferSize'],
      maxStorageBufferBindingSize: device.limits['maxStorageBufferBindingSize'],
      maxStorageBuffersPerShaderStage: device.limits['maxStorageBuffersPerShaderStage'],
      maxComputeWorkgroupStorageSize: device.limits['maxComputeWorkgroupStorageSize'],
      maxComputeInvocationsPerWorkgroup: device.limits['maxComputeInvocationsPerWorkgroup'],
    },
  };
}

/** Fails every later read once the device has reported a fault (see the class comment above). */
function checkedBackend(base: typeof import('@tensorflow/tfjs-backend-webgpu').WebGPUBackend, faults: DeviceFaults) {
  return class CheckedWebGPUBackend extends base implements ReadTracking {
    /** Reads not yet returned, per dataId: our kernels write a buffer in place only when none is (webgpu-kernels/program.ts exclusivelyOwned). */
    readonly readsInFlight = new Map<object, number>();

    override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
      if (faults.error) throw faults.error;
      this.readsInFlight.set(dataId, (this.readsInFlight.get(dataId) ?? 0) + 1);
      let values: tf.backend_util.BackendValues;
      try {
        values = await super.read(dataId);
      } finally {
        const left = (this.readsInFlight.get(dataId) ?? 1) - 1;
        if (left > 0) this.readsInFlight.set(dataId, left);
        else this.readsInFlight.delete(dataId);
      }
      // An error of the work that produced these values arrives before the read completes.
      if (faults.error) throw faults.error;
      return values;
    }
  };
}

/**
 * Selects the webgpu backend on the adapter `selector` names.
 * @param allowSoftware true when webgpu was asked for by name (DDAE_BACKEND=webgpu): a software
 *   adapter may then be used; under `auto` only a hardware adapter is.
 * @returns the setup, or `{ skip }` when `auto` finds no hardware adapter (the next backend is tried)
 */
export async function useWebGpu(selector: GpuSelector, allowSoftware: boolean): Promise<WebGpuSetup | { skip: string }> {
  if (setup) throw new Error('the webgpu backend is already set up in this process');
  const pci = selector.kind === 'pci' ? selector.tag : undefined;
  const expectedName = pci ? isolateByPci(pci) : undefined;
  const dawn = loadDawn();
  const adapters = await listAdapters(dawn);
  const plan = planAdapter(selector, adapters, allowSoftware);
  if ('skip' in plan) return plan;
  const chosen = adapters[plan.index];
  if (expectedName !== undefined && chosen.name !== expectedName) {
    throw new GpuSelectionError(`DDAE_GPU=${pci}: the device-select layer listed "${expectedName}" there, but Dawn now offers "${chosen.name}"`);
  }
  const gpu = dawn.create([...baseFlags(), `adapter=${plan.nameFilter}`]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new GpuSelectionError(`Dawn returned no adapter for "${plan.nameFilter}"`);
  if (adapter.info.device !== dawnDeviceSlug(chosen.name)) {
    throw new GpuSelectionError(`asked Dawn for adapter ${chosen.index} "${chosen.name}" but got "${adapter.info.device}"`);
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of RAISED_LIMITS) if (adapter.limits[k] !== undefined) requiredLimits[k] = adapter.limits[k];
  // Timestamps let tf.profile/tf.time report GPU time per kernel (where a step's time goes).
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const faults: DeviceFaults = { messages: [] };
  device.addEventListener('uncapturederror', (event) => {
    const message = `${event.error.constructor.name}: ${event.error.message}`;
    if (faults.messages.length < MAX_MESSAGES) faults.messages.push(message);
    faults.error ??= deviceErrorOf(event.error, `GPU ${chosen.index} "${chosen.name}"`, gpuPoolMemory(), device.limits);
  });
  void device.lost.then((info) => {
    if (info.reason === 'destroyed' && !setup) return; // our own release at the end
    faults.error ??= new GpuDeviceLostError(`the GPU device was lost (${info.reason}): ${info.message}`);
  });

  // tfjs-backend-webgpu checks navigator.gpu when it is imported and when a backend is built.
  Object.assign(globalThis, dawn.globals);
  (globalThis as { navigator?: { gpu?: GpuLike } }).navigator = { gpu };
  const webgpu = require('@tensorflow/tfjs-backend-webgpu') as typeof import('@tensorflow/tfjs-backend-webgpu');
  // Its import registered a factory that would request an adapter of its own: ours replaces it.
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  const Backend = checkedBackend(webgpu.WebGPUBackend, faults);
  tf.registerBackend('webgpu', () => new Backend(device as never, adapter.info as never), 3);
  setup = { dawn, device, faults };
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
  await tf.ready();
  registerWebGpuKernels();
  const info = adapterOf(chosen.index, chosen.name, chosen.api, adapter, device, pci);
  return { adapter: info, detail: `@tensorflow/tfjs-backend-webgpu on Dawn (webgpu ${dawnVersion()}), ${describeGpuAdapter(info)}` };
}

function dawnVersion(): string {
  try {
    return (require('webgpu/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

/** The device's first fault, when it reported one (also thrown by every read after it). */
export function webGpuFault(): Error | undefined {
  return setup?.faults.error;
}

/** Every message the device reported so far (at most 20). */
export function webGpuMessages(): string[] {
  return setup ? [...setup.faults.messages] : [];
}

/**
 * Drops the GPU at the end of the process: without this the process never exits (Dawn keeps its
 * event loop alive). Disposes the backend's buffers, destroys the device, removes navigator.gpu.
 */
export function releaseWebGpu(): void {
  if (!setup) return;
  const { device } = setup;
  setup = undefined;
  if (tf.findBackend('webgpu')) tf.removeBackend('webgpu');
  device.destroy();
  delete (globalThis as { navigator?: unknown }).navigator;
}

/** The GPU selector of `DDAE_GPU` (`auto` when unset); throws naming the accepted forms. */
export function gpuFromEnv(env: NodeJS.ProcessEnv = rawEnv()): GpuSelector {
  try {
    return parseGpuSelector(env['DDAE_GPU']);
  } catch (error) {
    throw new GpuSelectionError((error as Error).message);
  }
}

export { formatGpuSelector };
