import { describeTraining } from './training.fixture';

// Training on the native kernels (CI builds them): same weights for the same seed, and a resume
// that ends bit-identical to an uninterrupted run, with multi-threaded kernels.
jest.setTimeout(60_000);
describeTraining('native');
