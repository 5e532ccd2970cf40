export * from './api-error.schema';
export * from './api-query.schema';
export * from './api-response.schema';
export * from './api-operations';
export * from './openapi';
