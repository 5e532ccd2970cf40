export * from './env.schema';
export * from './process-env';
export * from './logging';
