/** Injection tokens of the plain (Nest-agnostic) library objects the API wires together. */
export const API_ENV = Symbol('API_ENV');
export const PRISMA = Symbol('PRISMA');
export const COMPUTE_QUEUE = Symbol('COMPUTE_QUEUE');
export const SERVICES = Symbol('SERVICES');
export const REDIS_WATCH = Symbol('REDIS_WATCH');
