-- CreateTable
CREATE TABLE "train_losses" (
    "run_id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "step" INTEGER NOT NULL,
    "loss" DOUBLE PRECISION NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "train_losses_pkey" PRIMARY KEY ("run_id","step")
);

-- CreateTable
CREATE TABLE "run_samples" (
    "run_id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "step" INTEGER NOT NULL,
    "path" TEXT NOT NULL,
    "png" BYTEA NOT NULL,
    "n" INTEGER NOT NULL,
    "sampler" TEXT NOT NULL,
    "sampler_steps" INTEGER NOT NULL,
    "seed" INTEGER NOT NULL,
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "seconds" DOUBLE PRECISION NOT NULL,
    "backend" TEXT NOT NULL,
    "worker_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "run_samples_pkey" PRIMARY KEY ("run_id","step")
);

-- CreateIndex
CREATE INDEX "train_losses_sweep_id_idx" ON "train_losses"("sweep_id");

-- CreateIndex
CREATE INDEX "run_samples_sweep_id_idx" ON "run_samples"("sweep_id");

-- AddForeignKey
ALTER TABLE "train_losses" ADD CONSTRAINT "train_losses_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "run_samples" ADD CONSTRAINT "run_samples_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
