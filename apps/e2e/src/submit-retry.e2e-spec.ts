import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '@ddae/testing';
import { startStack, type Stack } from './stack';

/**
 * A proxy in front of the API that passes every request on and, for the first `drop` POSTs to
 * /api/sweeps, throws the API's answer away and cuts the connection: the submission counted, but
 * the client never hears so. It records the headers of every POST it saw.
 */
async function lossyProxy(target: string, drop: number): Promise<{ url: string; posts: IncomingHttpHeaders[]; close(): Promise<void> }> {
  const posts: IncomingHttpHeaders[] = [];
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const isSubmit = req.method === 'POST' && req.url?.startsWith('/api/sweeps');
    if (isSubmit) posts.push(req.headers);
    const lose = isSubmit && posts.length <= drop;
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (lose) {
        answer.resume();
        answer.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, posts, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const ROOT = path.resolve(__dirname, '../../..');

/** The CLI as a process (async: the proxy runs in this one). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/cli/src/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('sweep submit over a connection that loses the answer (real API process, the CLI as a process)', () => {
  let stack: Stack;
  let dir: string;

  beforeAll(async () => {
    stack = await startStack({ workers: 0 });
    dir = await mkdtemp(path.join(tmpdir(), 'ddae-submit-'));
  });

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sends an Idempotency-Key of its own and retries with it: one sweep, and the CLI prints its id', async () => {
    const file = path.join(dir, 'tiny.yaml');
    await writeFile(
      file,
      stringify({ name: 'lost-answer', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 10, batchSize: 4 }, probe: { layers: ['out_1'], timesteps: [5] }, baselines: [] }),
    );
    const proxy = await lossyProxy(stack.base, 1);
    try {
      const cli = await runCli(['sweep', 'submit', file, '--json', '--api', proxy.url], { DDAE_API_TOKEN: stack.token });
      expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
      const printed = JSON.parse(cli.stdout) as { id: string; created: boolean };
      // Two attempts reached the API, with the same key the CLI made up; the second was a replay.
      expect(proxy.posts).toHaveLength(2);
      const keys = proxy.posts.map((h) => h['idempotency-key']);
      expect(keys[0]).toMatch(/^cli-[0-9a-f-]{36}$/);
      expect(keys[1]).toBe(keys[0]);
      expect(printed.created).toBe(false);
      const sweeps = await stack.db.prisma.sweep.findMany({ where: { name: 'lost-answer' } });
      expect(sweeps.map((s) => s.id)).toEqual([printed.id]);
    } finally {
      await proxy.close();
    }

    // Tables (no --json): the id on the first line, as for a first-time answer; a new key, a new sweep.
    const again = await lossyProxy(stack.base, 1);
    try {
      const cli = await runCli(['sweep', 'submit', file, '--api', again.url], { DDAE_API_TOKEN: stack.token });
      expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
      const [firstLine, secondLine] = cli.stdout.trim().split('\n');
      const sweeps = await stack.db.prisma.sweep.findMany({ where: { name: 'lost-answer' }, orderBy: { createdAt: 'asc' } });
      expect(sweeps).toHaveLength(2);
      expect(firstLine).toBe(sweeps[1].id);
      expect(secondLine).toMatch(/^planned /);
    } finally {
      await again.close();
    }
  });
});
