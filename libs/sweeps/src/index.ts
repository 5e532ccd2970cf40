export * from './plan';
export * from './validate';
export * from './orchestrator';
export * from './services';
export * from './noise-search';
export * from './plan-view';
