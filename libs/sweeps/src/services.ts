import {
  BaselineRepository,
  EventRepository,
  TokenRepository,
  LeaderboardRepository,
  ProbeRepository,
  ProgressProbeRepository,
  ResultsRepository,
  RunRepository,
  RunSampleRepository,
  RunGenerationQualityRepository,
  SweepRepository,
  TrainLossRepository,
  WorkerRepository,
  type PrismaClient,
} from '@ddae/db';
import type { Provider } from '@nestjs/common';
import type { ComputeQueue } from '@ddae/queue';
import { SweepOrchestrator } from './orchestrator';

/** Every repository and the orchestrator over one Prisma client and one queue producer. */
export interface SweepServices {
  prisma: PrismaClient;
  queue: ComputeQueue;
  sweeps: SweepRepository;
  runs: RunRepository;
  probes: ProbeRepository;
  progressProbes: ProgressProbeRepository;
  trainLosses: TrainLossRepository;
  samples: RunSampleRepository;
  generation: RunGenerationQualityRepository;
  results: ResultsRepository;
  baselines: BaselineRepository;
  workers: WorkerRepository;
  leaderboard: LeaderboardRepository;
  events: EventRepository;
  tokens: TokenRepository;
  orchestrator: SweepOrchestrator;
}

export function createSweepServices(prisma: PrismaClient, queue: ComputeQueue): SweepServices {
  const sweeps = new SweepRepository(prisma);
  const runs = new RunRepository(prisma);
  const probes = new ProbeRepository(prisma);
  const progressProbes = new ProgressProbeRepository(prisma);
  const baselines = new BaselineRepository(prisma);
  return {
    prisma,
    queue,
    sweeps,
    runs,
    probes,
    progressProbes,
    trainLosses: new TrainLossRepository(prisma),
    samples: new RunSampleRepository(prisma),
    generation: new RunGenerationQualityRepository(prisma),
    results: new ResultsRepository(prisma),
    baselines,
    workers: new WorkerRepository(prisma),
    leaderboard: new LeaderboardRepository(prisma),
    events: new EventRepository(prisma),
    tokens: new TokenRepository(prisma),
    orchestrator: new SweepOrchestrator({ prisma, sweeps, runs, probes, progressProbes, baselines, queue }),
  };
}

/** The classes an app can inject, each provided from one SweepServices. */
export const SERVICE_CLASSES = {
  sweeps: SweepRepository,
  runs: RunRepository,
  probes: ProbeRepository,
  progressProbes: ProgressProbeRepository,
  trainLosses: TrainLossRepository,
  samples: RunSampleRepository,
  generation: RunGenerationQualityRepository,
  results: ResultsRepository,
  baselines: BaselineRepository,
  workers: WorkerRepository,
  leaderboard: LeaderboardRepository,
  events: EventRepository,
  tokens: TokenRepository,
  orchestrator: SweepOrchestrator,
} as const;

/** Nest providers: each class above, injectable by class, from the SweepServices under `token`. */
export function serviceProviders(token: symbol): Provider[] {
  return Object.entries(SERVICE_CLASSES).map(([key, cls]) => ({
    provide: cls,
    useFactory: (s: SweepServices) => s[key as keyof typeof SERVICE_CLASSES],
    inject: [token],
  }));
}
