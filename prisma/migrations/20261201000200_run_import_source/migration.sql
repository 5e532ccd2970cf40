-- A run can be a model pretrained elsewhere and imported (models[].checkpoint): its provenance.
ALTER TABLE "runs" ADD COLUMN "source_path" TEXT,
ADD COLUMN "source_sha256" TEXT;
