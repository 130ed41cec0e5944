// The second migration of the Prefect-like app (see 1700000000000_flows.ts): a schema of its own,
// which CREATE on the database allows, with a table in it and a view over the first migration's.
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  pgm.createSchema('app_logs');
  pgm.createTable(
    { schema: 'app_logs', name: 'log' },
    {
      id: 'id',
      flow_run_id: { type: 'uuid', references: 'flow_run', onDelete: 'SET NULL' },
      message: { type: 'text', notNull: true },
    },
  );
  pgm.createView('flow_run_count', {}, 'SELECT flow_id, count(*) AS runs FROM flow_run GROUP BY flow_id');
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropView('flow_run_count');
  pgm.dropSchema('app_logs', { cascade: true });
}
