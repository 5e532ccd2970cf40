-- A worker that met an environment fault during a job stops taking jobs and says why.
ALTER TABLE "workers" ADD COLUMN "unhealthy_reason" TEXT;
