export * from './frechet';
export * from './classifier';
