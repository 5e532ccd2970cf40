-- Generation quality of a run's checkpoint (FID and KID in a named classifier's feature space), apart from probe accuracy.
-- CreateTable
CREATE TABLE "run_generation_quality" (
    "run_id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "step" INTEGER NOT NULL,
    "extractor" TEXT NOT NULL,
    "extractor_sha256" TEXT NOT NULL,
    "fid" DOUBLE PRECISION NOT NULL,
    "kid_mean" DOUBLE PRECISION NOT NULL,
    "kid_std" DOUBLE PRECISION NOT NULL,
    "kid_subsets" INTEGER NOT NULL,
    "kid_subset_size" INTEGER NOT NULL,
    "samples" INTEGER NOT NULL,
    "reference" TEXT NOT NULL,
    "reference_count" INTEGER NOT NULL,
    "sampler" TEXT NOT NULL,
    "sampler_steps" INTEGER NOT NULL,
    "seed" INTEGER NOT NULL,
    "seconds" DOUBLE PRECISION NOT NULL,
    "backend" TEXT NOT NULL,
    "worker_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "run_generation_quality_pkey" PRIMARY KEY ("run_id","step")
);

-- CreateIndex
CREATE INDEX "run_generation_quality_sweep_id_idx" ON "run_generation_quality"("sweep_id");

-- AddForeignKey
ALTER TABLE "run_generation_quality" ADD CONSTRAINT "run_generation_quality_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
