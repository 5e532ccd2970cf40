-- CreateEnum
CREATE TYPE "SweepStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "TaskStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateTable
CREATE TABLE "sweeps" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "dataset" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "spec_hash" TEXT NOT NULL,
    "idempotency_key" TEXT,
    "status" "SweepStatus" NOT NULL DEFAULT 'QUEUED',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "sweeps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "runs" (
    "id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "model_name" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "unet" JSONB NOT NULL,
    "parameters" INTEGER,
    "dataset" TEXT NOT NULL,
    "seed" INTEGER NOT NULL,
    "hyper" JSONB NOT NULL,
    "steps" INTEGER NOT NULL,
    "steps_done" INTEGER NOT NULL DEFAULT 0,
    "last_loss" DOUBLE PRECISION,
    "status" "TaskStatus" NOT NULL DEFAULT 'QUEUED',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "worker_id" TEXT,
    "backend" TEXT,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checkpoints" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "step" INTEGER NOT NULL,
    "path" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "loss" DOUBLE PRECISION,
    "final" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "checkpoints_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "probe_tasks" (
    "id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "noise_level" DOUBLE PRECISION NOT NULL,
    "layers" TEXT[],
    "protocol" JSONB NOT NULL,
    "protocol_key" TEXT NOT NULL,
    "status" "TaskStatus" NOT NULL DEFAULT 'QUEUED',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "worker_id" TEXT,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "probe_tasks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "probe_results" (
    "id" UUID NOT NULL,
    "checkpoint_id" UUID NOT NULL,
    "layer" TEXT NOT NULL,
    "noise_level" DOUBLE PRECISION NOT NULL,
    "protocol_key" TEXT NOT NULL,
    "protocol" JSONB NOT NULL,
    "accuracy" DOUBLE PRECISION NOT NULL,
    "train_accuracy" DOUBLE PRECISION,
    "feature_dim" INTEGER NOT NULL,
    "sweep_id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "probe_task_id" UUID NOT NULL,
    "dataset" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "backend" TEXT NOT NULL,
    "worker_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "probe_results_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "baselines" (
    "id" UUID NOT NULL,
    "dataset" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "protocol_key" TEXT NOT NULL,
    "protocol" JSONB NOT NULL,
    "status" "TaskStatus" NOT NULL DEFAULT 'QUEUED',
    "accuracy" DOUBLE PRECISION,
    "feature_dim" INTEGER,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "backend" TEXT,
    "worker_id" TEXT,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "baselines_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sweep_baselines" (
    "sweep_id" UUID NOT NULL,
    "baseline_id" UUID NOT NULL,

    CONSTRAINT "sweep_baselines_pkey" PRIMARY KEY ("sweep_id","baseline_id")
);

-- CreateTable
CREATE TABLE "workers" (
    "id" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "backend" TEXT NOT NULL,
    "device" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "current_job_id" TEXT,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_heartbeat_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workers_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "sweeps_idempotency_key_key" ON "sweeps"("idempotency_key");

-- CreateIndex
CREATE INDEX "sweeps_created_at_idx" ON "sweeps"("created_at");

-- CreateIndex
CREATE INDEX "runs_status_idx" ON "runs"("status");

-- CreateIndex
CREATE UNIQUE INDEX "runs_sweep_id_key_key" ON "runs"("sweep_id", "key");

-- CreateIndex
CREATE UNIQUE INDEX "checkpoints_run_id_step_key" ON "checkpoints"("run_id", "step");

-- CreateIndex
CREATE INDEX "probe_tasks_status_idx" ON "probe_tasks"("status");

-- CreateIndex
CREATE UNIQUE INDEX "probe_tasks_run_id_noise_level_protocol_key_key" ON "probe_tasks"("run_id", "noise_level", "protocol_key");

-- CreateIndex
CREATE INDEX "probe_results_accuracy_idx" ON "probe_results"("accuracy" DESC);

-- CreateIndex
CREATE INDEX "probe_results_dataset_accuracy_idx" ON "probe_results"("dataset", "accuracy" DESC);

-- CreateIndex
CREATE INDEX "probe_results_method_accuracy_idx" ON "probe_results"("method", "accuracy" DESC);

-- CreateIndex
CREATE INDEX "probe_results_sweep_id_accuracy_idx" ON "probe_results"("sweep_id", "accuracy" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "probe_results_checkpoint_id_layer_noise_level_protocol_key_key" ON "probe_results"("checkpoint_id", "layer", "noise_level", "protocol_key");

-- CreateIndex
CREATE UNIQUE INDEX "baselines_dataset_kind_protocol_key_key" ON "baselines"("dataset", "kind", "protocol_key");

-- CreateIndex
CREATE INDEX "workers_last_heartbeat_at_idx" ON "workers"("last_heartbeat_at");

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "checkpoints" ADD CONSTRAINT "checkpoints_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "probe_tasks" ADD CONSTRAINT "probe_tasks_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "probe_tasks" ADD CONSTRAINT "probe_tasks_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "probe_results" ADD CONSTRAINT "probe_results_checkpoint_id_fkey" FOREIGN KEY ("checkpoint_id") REFERENCES "checkpoints"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sweep_baselines" ADD CONSTRAINT "sweep_baselines_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sweep_baselines" ADD CONSTRAINT "sweep_baselines_baseline_id_fkey" FOREIGN KEY ("baseline_id") REFERENCES "baselines"("id") ON DELETE CASCADE ON UPDATE CASCADE;
