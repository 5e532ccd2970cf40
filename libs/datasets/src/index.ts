export * from './idx';
export * from './load-dataset';
export * from './readable-datasets';
export * from './dataset-info';
export * from './seeded-order';
export * from './model-input';
export * from './augmentation';
export * from './balanced-subset';
