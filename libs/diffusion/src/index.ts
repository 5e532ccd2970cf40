export * from './rng';
export * from './schedules';
export * from './conv';
export * from './unet';
export * from './checkpoint';
export * from './train';
export * from './features';
export * from './sampling';
