export * from './env.schema';
export * from './process-env';
