import 'reflect-metadata';
import { Logger, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApiDocument } from '@ddae/contracts';
import { nestLogLevels, type ApiEnv } from '@ddae/config';
import { Logger as PinoLogger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { installBodyParsers } from './core/body-parsers';
import { installHttpPolicy } from './core/http-policy';
import { ApiMetrics } from './core/metrics';

/** Builds the API application exactly as `main` runs it (tests use the same function). */
export async function createApiApp(env: ApiEnv): Promise<NestExpressApplication> {
  const json = env.LOG_FORMAT === 'json';
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(env), {
    bodyParser: false,
    // JSON: what Nest logs while starting waits for pino (nestjs-pino's Logger, set just below).
    ...(json ? { bufferLogs: true } : { logger: nestLogLevels(env.LOG_LEVEL) }),
  });
  if (json) app.useLogger(app.get(PinoLogger));
  // First: the latency histogram times every request, those the policy refuses included.
  app.use(app.get(ApiMetrics).httpMiddleware());
  installHttpPolicy(app, env);
  installBodyParsers(app.getHttpAdapter().getInstance(), env.BODY_LIMIT);
  app.setGlobalPrefix('api', {
    exclude: [
      { path: 'health', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
      { path: '/', method: RequestMethod.GET },
    ],
  });
  // The document is generated from libs/contracts' operations table (`npm run -s openapi` prints it).
  const document = buildOpenApiDocument() as unknown as OpenAPIObject;
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });
  return app;
}

export const apiLogger = new Logger('Api');
