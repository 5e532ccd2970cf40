import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../api-client';
import { CliError, UsageError } from '../api-client';
import { SWEEP_STATUSES, type SweepDetail, type SweepDryRun, type SweepSubmitted } from '@ddae/contracts';
import { table } from '../table';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const isStatus = (s: string): s is (typeof SWEEP_STATUSES)[number] => STATUSES.includes(s);
const STATUSES: readonly string[] = SWEEP_STATUSES;

/** Rows of a status count, whatever else the object carries. */
const total = (c: Record<(typeof SWEEP_STATUSES)[number], number>): number => SWEEP_STATUSES.reduce((n, s) => n + c[s], 0);

/**
 * POSTs a spec file. Every submit carries an Idempotency-Key (`--idempotency-key`, else a fresh
 * one) and is retried with it while its outcome is unknown (`retryDelaysMs`, default
 * SUBMIT_RETRY_DELAYS_MS).
 */
export async function submitSweep(api: ApiClient, file: string, opts: { dryRun: boolean; idempotencyKey?: string; json: boolean; retryDelaysMs?: number[] }): Promise<{ text: string; submitted?: SweepSubmitted }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new CliError(`cannot read the spec file "${file}": check the path (examples/fashion-mnist.yaml is a starting point)`);
  }
  const isJson = path.extname(file).toLowerCase() === '.json';
  // A key of our own on every submit: a retry after a lost answer returns the same sweep.
  const key = opts.idempotencyKey ?? `cli-${randomUUID()}`;
  const body = { text, contentType: isJson ? ('application/json' as const) : ('application/yaml' as const) };
  const countsOf = (r: SweepDryRun | SweepSubmitted) => Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(', ');
  if (opts.dryRun) {
    const plan = await api.dryRunSweep(body);
    return { text: opts.json ? JSON.stringify(plan) : `valid; would plan ${countsOf(plan)}` };
  }
  const result = await withRetries(() => api.submitSweep(body, { idempotencyKey: key }), key, opts.retryDelaysMs ?? SUBMIT_RETRY_DELAYS_MS);
  if (opts.json) return { text: JSON.stringify(result), submitted: result };
  // A replay answers our own retry too: only a key the user chose was "already submitted" by them.
  if (!result.created && opts.idempotencyKey) return { text: `${result.id} (already submitted with this idempotency key)`, submitted: result };
  return { text: `${result.id}\nplanned ${countsOf(result)}${result.queued === false ? `\n${result.note ?? 'stored; not queued yet'}` : ''}`, submitted: result };
}

/** Waits before each retry of a submit whose answer was lost (no answer, or a 5xx). */
export const SUBMIT_RETRY_DELAYS_MS = [1_000, 3_000];

/**
 * Sends the submit again, with the same idempotency key, when no answer came back or the API
 * failed (5xx): the outcome of the attempt is unknown, and the key makes the retry safe. When every
 * attempt fails, the error names the key to retry with by hand.
 */
async function withRetries<T>(post: () => Promise<T>, key: string, delaysMs: number[]): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await post();
    } catch (error) {
      const status = error instanceof CliError ? error.status : undefined;
      const unknownOutcome = status === 0 || (status !== undefined && status >= 500);
      if (!unknownOutcome) throw error;
      if (attempt >= delaysMs.length) {
        throw new CliError(`${(error as Error).message}\nthe sweep may or may not be stored: submit again with --idempotency-key ${key} (the same key never makes a second sweep)`, status);
      }
      await new Promise((resolve) => setTimeout(resolve, delaysMs[attempt]));
    }
  }
}

export function renderSweep(s: SweepDetail): string {
  const p = s.progress;
  const done = (c: SweepDetail['progress']['probeTasks']) => `${c.SUCCEEDED ?? 0}/${total(c)}`;
  const lines = [
    `sweep ${s.id}  ${s.name}  [${s.status}]  ${s.dataset}`,
    `runs ${done(p.runs)} (steps ${p.runs.stepsDone}/${p.runs.steps})  probe tasks ${done(p.probeTasks)}  baselines ${done(p.baselines)}`,
    '',
    table(
      ['run', 'status', 'steps', 'loss', 'attempts', 'worker'],
      s.runs.map((r) => [r.key, r.status + (r.error ? ` (${r.error.slice(0, 60)})` : ''), `${r.stepsDone}/${r.steps}`, r.lastLoss === null ? null : r.lastLoss.toFixed(4), r.attempts, r.workerId]),
    ),
  ];
  if (s.probeTasks.length) {
    lines.push('', table(['probe of', 'noise', 'layers', 'status'], s.probeTasks.map((t) => [t.run, t.noiseLevel, t.layers.length, t.status + (t.error ? ` (${t.error.slice(0, 60)})` : '')])));
  }
  return lines.join('\n');
}

export async function sweepStatus(api: ApiClient, id: string, opts: { json: boolean }): Promise<string> {
  const s = await api.getSweep(id);
  return opts.json ? JSON.stringify(s) : renderSweep(s);
}

/** Polls a sweep until it ends, printing a progress line on change; returns its final view. */
export async function waitForSweep(api: ApiClient, id: string, opts: { intervalMs: number; timeoutMs: number; print: (line: string) => void }): Promise<SweepDetail> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    const s = await api.getSweep(id);
    const p = s.progress;
    const line = `[${new Date().toISOString().slice(11, 19)}] ${s.status}: steps ${p.runs.stepsDone}/${p.runs.steps}, runs done ${p.runs.SUCCEEDED}, probes done ${p.probeTasks.SUCCEEDED}/${total(p.probeTasks)}, baselines done ${p.baselines.SUCCEEDED}`;
    if (line.slice(11) !== last) opts.print(line);
    last = line.slice(11);
    if (TERMINAL.has(s.status)) return s;
    if (Date.now() > deadline) throw new CliError(`sweep ${id} still ${s.status} after ${Math.round(opts.timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
}

/** `sweep list [--status S] [--limit N]`: newest first; the table shows short ids (any command takes them). */
export async function listSweeps(api: ApiClient, opts: { status?: string; limit?: string; json: boolean }): Promise<string> {
  const status = opts.status?.toUpperCase();
  if (status !== undefined && !isStatus(status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')} (any case), got "${opts.status}"`);
  const r = await api.listSweeps({ status, limit: opts.limit });
  if (opts.json) return JSON.stringify(r);
  if (!r.sweeps.length) return opts.status ? `(no ${opts.status.toUpperCase()} sweeps)` : '(no sweeps yet)';
  return table(['id', 'name', 'status', 'dataset', 'created'], r.sweeps.map((s) => [s.id.slice(0, 8), s.name, s.status, s.dataset, s.createdAt]));
}

export async function pauseSweep(api: ApiClient, id: string, action: 'pause' | 'resume', opts: { json: boolean }): Promise<string> {
  const r = action === 'pause' ? await api.pause(id) : await api.resume(id);
  return opts.json ? JSON.stringify(r) : `${r.id} ${r.status}${r.paused ? ' (paused)' : ''}`;
}

export async function retryFailed(api: ApiClient, id: string, opts: { json: boolean }): Promise<string> {
  const r = await api.retryFailed(id);
  return opts.json ? JSON.stringify(r) : `${r.id} ${r.status}: retried ${Object.entries(r.retried).map(([k, v]) => `${v} ${k}`).join(', ')}`;
}

export async function cancelSweep(api: ApiClient, id: string, opts: { json: boolean }): Promise<string> {
  const r = await api.cancel(id);
  return opts.json ? JSON.stringify(r) : `${r.id} ${r.status}`;
}

