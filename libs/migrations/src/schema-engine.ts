/**
 * Prisma's schema engine compiled to WebAssembly (@prisma/schema-engine-wasm, the same version as
 * @prisma/engines-version), driven through @prisma/adapter-pg: what `prisma migrate diff/dev`
 * needs, without the native binary the offline CLI cannot download.
 *
 * Works around two adapter-pg 7.10 bugs:
 * - its `connectToShadowDb()` spreads `{ ...config, database }`, which pg ignores when the config
 *   holds a `connectionString` (the "shadow" is then the main database), and drops the shadow
 *   without FORCE: we give every adapter discrete fields and create/drop our own shadow database;
 * - its result decoding throws on builtin types it has no mapping for, such as pg_catalog's
 *   `"char"` (OID 18), which the engine's introspection queries return: we report them as text.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type { DiffTarget, MigrationList, SchemaEngine, SchemaFilter } from '@prisma/schema-engine-wasm';
import { Client } from 'pg';
import { quoteIdent, withDatabase, type PgConnectionFields } from '@ddae/db';
import { MIGRATION_LOCK_CONTENT, MIGRATION_LOCK_FILE, readMigrationLock, readMigrations } from './migrations-dir';

type WasmBindings = typeof import('@prisma/schema-engine-wasm') & {
  __wbg_set_wasm(exports: Record<string, unknown>): void;
};

/** The slice of the WebAssembly global used here (lib ES2022 has no WebAssembly types). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, object>) => { exports: Record<string, unknown> };
}

let bindings: WasmBindings | undefined;

/** Loads and instantiates the wasm module once (the package's own entry imports a .wasm file, which Node cannot). */
function loadBindings(): WasmBindings {
  if (bindings) return bindings;
  const dir = path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg'));
  // An ES module: Node >= 20.19 loads it through require().
  const bg = require(path.join(dir, 'schema_engine_bg.js')) as WasmBindings;
  const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
  const module = new wasm.Module(readFileSync(path.join(dir, 'schema_engine_bg.wasm')));
  const instance = new wasm.Instance(module, { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  (instance.exports['__wbindgen_start'] as () => void)();
  // The engine reports Rust panics here before it traps.
  const registry = { message: '', set_message(message: string) { this.message = message; } };
  (globalThis as Record<string, unknown>)['PRISMA_WASM_PANIC_REGISTRY'] ??= registry;
  bindings = bg;
  return bg;
}

export function schemaEngineVersion(): string {
  return loadBindings().version();
}

/** Builtin OIDs adapter-pg 7.10 can decode (its fieldToColumnType); any other builtin becomes text. */
const DECODABLE_BUILTIN_OIDS = new Set([
  16, 17, 19, 20, 21, 23, 25, 26, 114, 142, 650, 700, 701, 790, 869, 1042, 1043, 1082, 1083, 1114, 1184, 1266,
  1560, 1562, 1700, 2950, 3802,
  // arrays
  143, 199, 651, 791, 1000, 1001, 1002, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1041, 1115, 1182,
  1183, 1185, 1231, 1561, 1563, 2951, 3807,
]);
const FIRST_NORMAL_OBJECT_ID = 16384;
const TEXT_OID = 25;

interface PerformsIO {
  performIO(query: unknown): Promise<{ fields: { dataTypeID: number }[] }>;
  startTransaction?: (...args: unknown[]) => Promise<unknown>;
}

/** Patches an adapter (or transaction) so that unknown builtin column types decode as text. */
function decodeUnknownBuiltinsAsText<T extends object>(queryable: T): T {
  const target = queryable as unknown as PerformsIO;
  const performIO = target.performIO.bind(queryable);
  target.performIO = async (query) => {
    const result = await performIO(query);
    for (const field of result.fields) {
      if (field.dataTypeID < FIRST_NORMAL_OBJECT_ID && !DECODABLE_BUILTIN_OIDS.has(field.dataTypeID)) {
        field.dataTypeID = TEXT_OID;
      }
    }
    return result;
  };
  if (typeof target.startTransaction === 'function') {
    const startTransaction = target.startTransaction.bind(queryable);
    target.startTransaction = async (...args) => decodeUnknownBuiltinsAsText((await startTransaction(...args)) as object);
  }
  return queryable;
}

async function adminQuery(fields: PgConnectionFields, sql: string): Promise<void> {
  const admin = new Client({ ...withDatabase(fields, 'postgres'), application_name: 'ddae-migrate' });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** connect(): the main database; connectToShadowDb(): a fresh `<db>_shadow_<random>` of our own, dropped WITH (FORCE). */
class OwnShadowAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres' as const;
  readonly adapterName = '@prisma/adapter-pg';
  private readonly shadows = new Set<string>();

  constructor(
    private readonly main: PgConnectionFields,
    private readonly shadowPrefix: string,
  ) {}

  async connect(): Promise<SqlDriverAdapter> {
    return decodeUnknownBuiltinsAsText(await new PrismaPg({ ...this.main, max: 2 }).connect());
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = `${this.shadowPrefix.slice(0, 40)}_shadow_${randomBytes(5).toString('hex')}`;
    await adminQuery(this.main, `CREATE DATABASE ${quoteIdent(name)}`);
    this.shadows.add(name);
    const adapter = await new PrismaPg({ ...withDatabase(this.main, name), max: 2 }).connect();
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await this.dropShadow(name);
    };
    return decodeUnknownBuiltinsAsText(adapter);
  }

  private async dropShadow(name: string): Promise<void> {
    if (!this.shadows.delete(name)) return;
    await adminQuery(this.main, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  }

  /** Drops every shadow database still around (the engine normally disposes of them itself). */
  async dropShadows(): Promise<void> {
    for (const name of [...this.shadows]) await this.dropShadow(name);
  }
}

const NO_FILTER: SchemaFilter = { externalTables: [], externalEnums: [] };

export interface SchemaEngineSession {
  engine: SchemaEngine;
  /** The migrations directory as the engine reads it (migration_lock.toml assumed standard when absent). */
  migrationsList(): MigrationList;
  /** SQL from one target to another; empty string when there is no difference. */
  diffScript(from: DiffTarget, to: DiffTarget): Promise<string>;
  schemaTarget(): DiffTarget;
  migrationsTarget(): DiffTarget;
  databaseTarget(): DiffTarget;
  close(): Promise<void>;
}

export interface OpenSchemaEngineOptions {
  /** The database the engine connects to (must exist). */
  database: PgConnectionFields;
  schemaPath: string;
  migrationsDir: string;
  /** Shadow databases are named `<shadowPrefix>_shadow_<random>` (default: the database's name). */
  shadowPrefix?: string;
  verbose?: boolean;
}

export async function openSchemaEngine(options: OpenSchemaEngineOptions): Promise<SchemaEngineSession> {
  const { SchemaEngine: Engine } = loadBindings();
  const schema = { path: path.basename(options.schemaPath), content: readFileSync(options.schemaPath, 'utf8') };
  const factory = new OwnShadowAdapterFactory(options.database, options.shadowPrefix ?? options.database.database);
  const log = (line: string) => {
    if (options.verbose) process.stderr.write(`[schema-engine] ${line}\n`);
  };
  const engine = await Engine.new({ datamodels: [[schema.path, schema.content]] }, log, bindMigrationAwareSqlAdapterFactory(factory));

  const migrationsList = (): MigrationList => ({
    baseDir: options.migrationsDir,
    lockfile: { path: MIGRATION_LOCK_FILE, content: readMigrationLock(options.migrationsDir) ?? MIGRATION_LOCK_CONTENT },
    shadowDbInitScript: '',
    migrationDirectories: readMigrations(options.migrationsDir).map((m) => ({
      path: m.name,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: m.script } },
    })),
  });

  let closed = false;
  return {
    engine,
    migrationsList,
    schemaTarget: () => ({ tag: 'schemaDatamodel', files: [schema] }),
    migrationsTarget: () => ({ tag: 'migrations', ...migrationsList() }),
    // The live database = the engine's main connection (Prisma 7 dropped `url` targets).
    databaseTarget: () => ({ tag: 'schemaDatasource', files: [schema], configDir: path.dirname(options.schemaPath) }),
    async diffScript(from, to) {
      try {
        const result = await engine.diff({ from, to, script: true, exitCode: true, filters: NO_FILTER });
        return result.exitCode === 2 ? (result.stdout ?? '') : '';
      } finally {
        await factory.dropShadows();
      }
    },
    async close() {
      await factory.dropShadows();
      if (!closed) {
        closed = true;
        engine.free();
      }
    },
  };
}
