import { describeTraining } from './training.fixture';

// Training on wasm, the CPU fallback (the pure-JS cpu backend is too slow for these).
jest.setTimeout(60_000);
describeTraining('wasm');
