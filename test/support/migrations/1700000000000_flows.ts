// A Prefect-like app's first migration, run by node-pg-migrate as the app's own role in
// test/integration/controller-owned-objects.test.ts: what a self-migrating app does with CREATE
// on the database and the schema (a trusted extension, tables with keys and defaults, an index).
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  // pgcrypto is trusted (PostgreSQL 13+): CREATE on the database is enough to install it.
  pgm.createExtension('pgcrypto', { ifNotExists: true });
  pgm.createTable('flow', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    name: { type: 'text', notNull: true, unique: true },
    created: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createTable('flow_run', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    flow_id: { type: 'uuid', notNull: true, references: 'flow', onDelete: 'CASCADE' },
    state: { type: 'text', notNull: true, default: 'PENDING' },
    attempt: { type: 'serial' },
  });
  pgm.createIndex('flow_run', ['flow_id', 'state']);
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable('flow_run');
  pgm.dropTable('flow');
  pgm.dropExtension('pgcrypto');
}
