import type { FromChild } from './child-protocol';

/** Exit code of a compute child whose worker is gone: its job is retried elsewhere. */
export const WORKER_GONE_EXIT = 70;

/**
 * The compute child's side of the IPC channel. When the worker dies (kill -9), the channel closes
 * while the child may be sending (a progress line, a checkpoint): that send fails with EPIPE or
 * ERR_IPC_CHANNEL_CLOSED. Every send here has a callback, so such a failure never becomes an
 * unhandled 'error' that kills the child with a stack trace: the child leaves the one way a child
 * whose worker is gone leaves, through `leave` (the disconnect handler's exit).
 */
export function childChannel(proc: NodeJS.Process, leave: () => void = () => proc.exit(WORKER_GONE_EXIT)) {
  const gone = () => !proc.send || !proc.connected;
  proc.on('disconnect', leave);
  return {
    send(message: FromChild): void {
      if (gone()) return leave();
      proc.send?.(message, undefined, {}, (error: Error | null) => {
        if (error) leave();
      });
    },
    /** Sends the last message and exits once it has left (IPC sends are asynchronous). */
    sendAndExit(message: FromChild, code: number): void {
      if (gone()) return code === 0 ? leave() : proc.exit(code);
      proc.send?.(message, undefined, {}, (error: Error | null) => (error ? leave() : proc.exit(code)));
    },
  };
}
