export * from './connection';
export * from './compute-queue';
export * from './metrics';
export * from './redis-durability';
export * from './redis-outage';
