import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { Logger } from '@nestjs/common';
import { toErrorBody, wireErrorBody } from './error.filter';

export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/**
 * Our own body parsers (Nest's are off) so that their errors, a malformed or oversized body, are
 * answered by the same error translation as everything else instead of express' HTML page.
 */
export function installBodyParsers(app: Express, limit: string): void {
  app.use(express.json({ limit, type: ['application/json', 'application/*+json'] }));
  app.use(express.text({ limit, type: YAML_TYPES }));
  const logger = new Logger('Errors');
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const body = toErrorBody(error, logger);
    res.status(body.statusCode).json(wireErrorBody(body, logger));
  });
}
