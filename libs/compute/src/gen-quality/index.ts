export * from './frechet';
export * from './classifier';
export * from './evaluate';
