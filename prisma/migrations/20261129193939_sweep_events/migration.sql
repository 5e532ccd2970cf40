-- CreateTable
CREATE TABLE "sweep_events" (
    "id" BIGSERIAL NOT NULL,
    "sweep_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "data" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sweep_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "sweep_events_sweep_id_id_idx" ON "sweep_events"("sweep_id", "id");

-- AddForeignKey
ALTER TABLE "sweep_events" ADD CONSTRAINT "sweep_events_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;
