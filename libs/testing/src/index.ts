export { createTestDatabase, type CreateTestDatabaseOptions, type TestDatabase } from './database';
