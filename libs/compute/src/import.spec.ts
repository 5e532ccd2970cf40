import { describeImport } from './import.fixture';

jest.setTimeout(60_000);
describeImport('wasm');
