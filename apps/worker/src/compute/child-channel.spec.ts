import { fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { WORKER_GONE_EXIT } from './child-channel';

describe("the compute child's channel", () => {
  it('leaves through the disconnect exit when its worker vanishes mid-send, not an unhandled EPIPE', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const child = fork(path.join(__dirname, 'fixtures/chatty-child.ts'), [], { execArgv: ['-r', '@swc-node/register'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      // The worker's side goes away while the child is sending (as a kill -9 of the worker does).
      // The code before the channel helper died with an unhandled EPIPE in 2 of 3 tries here.
      const exited = once(child, 'exit');
      let first = true;
      child.on('message', () => {
        if (first) setImmediate(() => child.disconnect());
        first = false;
      });
      const [code] = (await exited) as [number | null];
      expect({ code, stderr }).toEqual({ code: WORKER_GONE_EXIT, stderr: 'chatty child up\n' });
    }
  }, 60_000);
});
