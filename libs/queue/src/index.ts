export * from './connection';
export * from './compute-queue';
