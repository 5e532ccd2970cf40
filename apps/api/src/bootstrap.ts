import 'reflect-metadata';
import { Logger, RequestMethod, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { ApiEnv } from '@ddae/config';
import { AppModule } from './app.module';
import { installBodyParsers } from './core/body-parsers';
import { installHttpPolicy } from './core/http-policy';

const LEVELS: LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

/** Builds the API application exactly as `main` runs it (tests use the same function). */
export async function createApiApp(env: ApiEnv): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(env), {
    bodyParser: false,
    logger: LEVELS.slice(0, LEVELS.indexOf(env.LOG_LEVEL) + 1),
  });
  installHttpPolicy(app, env);
  installBodyParsers(app.getHttpAdapter().getInstance(), env.BODY_LIMIT);
  app.setGlobalPrefix('api', {
    exclude: [
      { path: 'health', method: RequestMethod.GET },
      { path: '/', method: RequestMethod.GET },
    ],
  });
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('DDAE sweeps')
      .setDescription('Submit sweeps of diffusion pretraining and linear probing; read the leaderboard.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });
  return app;
}

export const apiLogger = new Logger('Api');
