export * from './types';
export * from './sweep.repository';
export * from './run.repository';
export * from './probe.repository';
export * from './baseline.repository';
export * from './worker.repository';
export * from './leaderboard.repository';
export * from './event.repository';
