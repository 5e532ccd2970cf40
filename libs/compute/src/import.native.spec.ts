import { describeImport } from './import.fixture';

// The native kernels (CI builds them) compute an imported model's features as PyTorch does.
jest.setTimeout(60_000);
describeImport('native');
