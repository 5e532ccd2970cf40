export * from './linear-probe';
export * from './pool-features';
export * from './metrics';
