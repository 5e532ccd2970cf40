export * from './unet-layout';
export * from './sweep-spec.schema';
export * from './jobs.schema';
export * from './gpu-selector';
export * from './api';
export * from './dit-layout';
export * from './backbone';
