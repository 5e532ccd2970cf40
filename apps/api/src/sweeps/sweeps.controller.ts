import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { RequireScope } from '../core/auth.guard';
import type { Request, Response } from 'express';
import { z } from 'zod';
import {
  labelBudgetOf,
  labelCurvesSchema,
  labelsFromQuery,
  labelsQuerySchema,
  listSweepsQuerySchema,
  lossCurvesSchema,
  progressSchema,
  sampleListSchema,
  generationListSchema,
  submitSweepQuerySchema,
  sweepCancelledSchema,
  sweepDryRunSchema,
  sweepListSchema,
  sweepPausedSchema,
  sweepRetriedSchema,
  sweepSubmittedSchema,
  verdictSchema,
} from '@ddae/contracts';
import { LeaderboardRepository, ProgressProbeRepository, RunGenerationQualityRepository, RunSampleRepository, SweepRepository, TrainLossRepository, type PrismaClient } from '@ddae/db';
import { parseSpecText, planView, SweepOrchestrator, validateSweepSpec } from '@ddae/sweeps';
import { ApiError } from '../core/api-error';
import { PRISMA } from '../core/tokens';
import { parseOr400 } from '../core/zod-query';
import { YAML_TYPES } from '../core/body-parsers';
import { reply, sendJsonText } from '../core/reply';
import { SweepIdResolver } from './sweep-id';

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const idempotencyKey = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').optional();

@Controller('sweeps')
export class SweepsController {
  constructor(
    private readonly orchestrator: SweepOrchestrator,
    private readonly sweeps: SweepRepository,
    private readonly leaderboard: LeaderboardRepository,
    private readonly progressProbes: ProgressProbeRepository,
    private readonly trainLosses: TrainLossRepository,
    private readonly samples: RunSampleRepository,
    private readonly generation: RunGenerationQualityRepository,
    private readonly ids: SweepIdResolver,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
  ) {}

  @Post()
  @RequireScope('submit')
  @HttpCode(201)
  async submit(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Body() body: unknown,
    @Query() query: unknown,
    @Headers('idempotency-key') key: string | undefined,
  ) {
    const { dryRun } = parseOr400(submitSweepQuerySchema, query, 'query');
    const idemKey = parseOr400(idempotencyKey, key, 'header.Idempotency-Key');
    const document = readSpecDocument(req, body);
    const result = validateSweepSpec(document);
    if (!result.ok) throw new ApiError('invalid_spec', `invalid sweep spec: ${result.issues.length} problem(s)`, result.issues);
    const { spec, plan } = result;
    if (dryRun === 'true') {
      res.status(200);
      // Every row of a small plan; the first rows of a big one (plan.sampled says so), never 100,000.
      return reply(sweepDryRunSchema, { dryRun: true, counts: plan.counts, plan: planView(plan), spec });
    }
    const created = await this.orchestrator.submit(spec, plan, idemKey);
    if (!created.created && created.sweep.specHash !== plan.specHash) {
      throw new ApiError('conflict', `Idempotency-Key "${idemKey}" was already used for a different spec (sweep ${created.sweep.id})`);
    }
    const view = { id: created.sweep.id, name: created.sweep.name, status: created.sweep.status, created: created.created, counts: plan.counts };
    // A replay of an earlier submission: 200 with the stored sweep, nothing new enqueued.
    if (!created.created) {
      res.status(200);
      return reply(sweepSubmittedSchema, view);
    }
    if (created.queued) return reply(sweepSubmittedSchema, { ...view, queued: true });
    // Stored, but Redis did not take its jobs: accepted, and the reconciler queues them.
    res.status(202);
    return reply(sweepSubmittedSchema, { ...view, queued: false, note: 'stored; the queue (Redis) is unreachable: the reconciler queues its jobs as soon as it answers' });
  }

  @Get()
  async list(@Query() query: unknown) {
    const q = parseOr400(listSweepsQuerySchema, query, 'query');
    const rows = await this.sweeps.list({ limit: q.limit, status: q.status, before: q.before ? new Date(q.before) : undefined });
    return reply(sweepListSchema, { sweeps: rows });
  }

  @Get(':id')
  async get(@Param('id') id: string, @Res({ passthrough: true }) res: Response) {
    const sweepId = await this.ids.resolve(id);
    // Postgres builds the whole body (sweepDetailSchema's wire form) in one statement: a sweep's
    // hundreds of probe tasks are one round trip and one string, never row objects here.
    const body = await this.sweeps.detailJson(sweepId);
    if (body === null) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return sendJsonText(res, body);
  }

  @Get(':id/heatmap')
  async heatmap(@Param('id') id: string, @Query() query: unknown, @Res({ passthrough: true }) res: Response) {
    const labels = labelsFromQuery(parseOr400(labelsQuerySchema, query, 'query').labels);
    const sweepId = await this.ids.resolve(id);
    // One statement for the existence check, the cells and the budgets (heatmapSchema's wire form).
    const body = await this.leaderboard.heatmapJson(sweepId, labels);
    if (body === null) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return sendJsonText(res, body);
  }

  @Get(':id/verdict')
  async verdict(@Param('id') id: string, @Query() query: unknown) {
    const labels = labelsFromQuery(parseOr400(labelsQuerySchema, query, 'query').labels);
    const sweepId = await this.ids.resolve(id);
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);
    const v = await this.leaderboard.verdict(sweepId, labels);
    const row = (r: typeof v.best) => (r ? { ...r, labels: labelBudgetOf(r.labels), finetuned: r.finetuned ? { ...r.finetuned, labels: labelBudgetOf(r.finetuned.labels) } : null } : null);
    return reply(verdictSchema, { sweepId, ...v, labels: labelBudgetOf(v.labels), best: row(v.best), untrained: row(v.untrained) });
  }

  @Get(':id/labels')
  async labelCurves(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);
    const curves = await this.leaderboard.labelCurves(sweepId);
    return reply(labelCurvesSchema, {
      sweepId,
      budgets: curves.budgets.map(labelBudgetOf),
      models: curves.models.map((m) => ({ ...m, points: m.points.map((p) => ({ ...p, labels: labelBudgetOf(p.labels) })) })),
      pixels: curves.pixels.map((p) => ({ ...p, labels: labelBudgetOf(p.labels) })),
    });
  }

  @Get(':id/loss')
  async loss(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    const sweep = await this.sweeps.findById(sweepId);
    if (!sweep) throw new ApiError('not_found', `no sweep ${sweepId}`);
    const lossEvery = (sweep.spec as { pretrain?: { lossEvery?: number } }).pretrain?.lossEvery ?? 50;
    return reply(lossCurvesSchema, { sweepId, lossEvery, runs: await this.trainLosses.ofSweep(sweepId) });
  }

  @Get(':id/samples')
  async sampleList(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);
    const rows = await this.samples.ofSweep(sweepId);
    return reply(sampleListSchema, { sweepId, samples: rows.map((r) => ({ ...r, url: `/api/sweeps/${sweepId}/runs/${r.runId}/samples.png` })) });
  }

  @Get(':id/generation')
  async generationList(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return reply(generationListSchema, { sweepId, runs: await this.generation.ofSweep(sweepId) });
  }

  @Get(':id/runs/:run/samples.png')
  async samplePng(@Param('id') id: string, @Param('run') run: string, @Res() res: Response) {
    const sweepId = await this.ids.resolve(id);
    const key = parseOr400(z.string().min(1).max(200), run, 'path.run');
    const row = await this.prisma.run.findFirst({ where: { sweepId, ...(RUN_ID.test(key) ? { id: key.toLowerCase() } : { key }) }, select: { id: true, key: true } });
    if (!row) throw new ApiError('not_found', `sweep ${sweepId} has no run "${key}"`);
    const sample = await this.samples.latest(row.id);
    if (!sample) throw new ApiError('not_found', `run ${row.key} has no sample grid (yet): it is written after pretraining`);
    const etag = `"${row.id}-${sample.step}-${sample.updatedAt.getTime()}"`;
    res.set({ 'content-type': 'image/png', 'cache-control': 'no-cache', etag, 'x-content-type-options': 'nosniff' });
    if (res.req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    res.status(200).end(Buffer.from(sample.png));
  }

  @Get(':id/progress')
  async progress(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    if (!(await this.sweeps.findById(sweepId))) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return reply(progressSchema, { sweepId, runs: await this.progressProbes.ofSweep(sweepId) });
  }

  @Post(':id/pause')
  @RequireScope('submit')
  @HttpCode(200)
  async pause(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    const sweep = await this.orchestrator.pause(sweepId);
    if (!sweep) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return reply(sweepPausedSchema, { id: sweep.id, status: sweep.status, paused: sweep.pausedAt !== null });
  }

  @Post(':id/resume')
  @RequireScope('submit')
  @HttpCode(200)
  async resume(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    const sweep = await this.orchestrator.resume(sweepId);
    if (!sweep) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return reply(sweepPausedSchema, { id: sweep.id, status: sweep.status, paused: sweep.pausedAt !== null });
  }

  @Post(':id/retry-failed')
  @RequireScope('submit')
  @HttpCode(200)
  async retryFailed(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    const result = await this.orchestrator.retryFailed(sweepId);
    if (!result) throw new ApiError('not_found', `no sweep ${sweepId}`);
    if (result === 'cancelled') throw new ApiError('conflict', `sweep ${sweepId} was cancelled: submit it again instead`);
    return reply(sweepRetriedSchema, { id: result.sweep.id, status: result.sweep.status, retried: result.retried });
  }

  @Post(':id/cancel')
  @RequireScope('submit')
  @HttpCode(200)
  async cancel(@Param('id') id: string) {
    const sweepId = await this.ids.resolve(id);
    const sweep = await this.orchestrator.cancel(sweepId);
    if (!sweep) throw new ApiError('not_found', `no sweep ${sweepId}`);
    return reply(sweepCancelledSchema, { id: sweep.id, status: sweep.status });
  }
}

/** The spec document of a request: a parsed JSON body, or YAML text. */
function readSpecDocument(req: Request, body: unknown): unknown {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (YAML_TYPES.includes(type)) {
    if (typeof body !== 'string' || body.trim() === '') throw new ApiError('invalid_spec', 'empty YAML body', [{ path: '', message: 'empty document' }]);
    const parsed = parseSpecText(body);
    if (!parsed.ok) throw new ApiError('invalid_spec', 'the body is not valid YAML', parsed.issues);
    return parsed.value;
  }
  if (type === 'application/json' || type.endsWith('+json')) return body;
  throw new ApiError('unsupported_media_type', `send the spec as application/json or application/yaml, not "${type || 'no content type'}"`);
}
