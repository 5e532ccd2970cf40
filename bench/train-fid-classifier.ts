/**
 * Trains the feature extractor of FID/KID (libs/compute/src/gen-quality/classifier.ts) once, with a
 * fixed seed, and writes libs/compute/assets/ddae-fmnist-cnn-v1.safetensors; prints its sha256 and
 * test accuracy (pin the sha256 in classifier.ts and commit both). The committed v1 is the default
 * recipe (seed 14, 2 epochs over the first 16,000 images of the seeded order, Adam 1e-3, batch 64:
 * 85.03 % test accuracy, ~13 minutes on 2 loaded cores with the native kernels).
 *   npm run -s train-fid-classifier [-- --epochs N --train-limit N --seed S --out FILE]
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { FID_CLASSIFIER_FILE, selectBackend, sha256, trainFidClassifier } from '@ddae/compute';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { epochs: { type: 'string' }, 'train-limit': { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' } } });
  const backend = await selectBackend('auto');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(`backend: ${backend.backend} (${backend.detail})`);
  const epochs = Number(values.epochs ?? 2);
  const seed = Number(values.seed ?? 14);
  const trainLimit = Number(values['train-limit'] ?? 16_000);
  const { bytes, testAccuracy, trainImages } = await trainFidClassifier({ seed, epochs, batch: 64, learningRate: 1e-3, trainLimit, log });
  const out = values.out ?? FID_CLASSIFIER_FILE;
  fs.writeFileSync(out, bytes);
  process.stdout.write(`${JSON.stringify({ out, bytes: bytes.length, sha256: sha256(bytes), testAccuracy, trainImages, epochs, seed })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`train-fid-classifier: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
