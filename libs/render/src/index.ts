// PNG rendering without TensorFlow.js (pngjs only): image grids of samples and layer x noise heatmaps,
// shared by the CLI and the compute workers.
export * from './image-grid';
export * from './heatmap-png';
export * from './line-chart-png';
