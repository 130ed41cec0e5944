// The server CA is read from its Secret once per TTL, not on every reconcile. The connection
// itself goes to a closed local port and fails at once: only the Secret reads are counted.
import type * as k8s from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EntraDatabaseServer } from '../../../src/api/types.ts';
import type { TokenSource } from '../../../src/azure/credentials.ts';
import { PostgresDatabase } from '../../../src/controller/database.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const server: EntraDatabaseServer = {
  apiVersion: 'entra-access.io/v1alpha1',
  kind: 'EntraDatabaseServer',
  metadata: { name: 'pg' },
  spec: {
    host: '127.0.0.1',
    port: 1,
    sslMode: 'verify-full',
    sslRootCertSecretRef: { name: 'pg-ca', namespace: 'ops' },
    adminRole: 'admin',
  },
};

function database(reads: { count: number }): PostgresDatabase {
  const core = {
    readNamespacedSecret: async () => {
      reads.count++;
      return { data: { 'ca.crt': Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64') } };
    },
  } as unknown as k8s.CoreV1Api;
  const tokens = { getPostgresToken: async () => 'token', invalidate: () => {} } as unknown as TokenSource;
  return new PostgresDatabase({
    core,
    tokensFor: () => tokens,
    defaultScope: 's',
    logger: createLogger('error'),
  });
}

describe('the server CA Secret', () => {
  afterEach(() => vi.useRealTimers());

  it('is read once per 30 s, whatever the number of reconciles', async () => {
    const reads = { count: 0 };
    const db = database(reads);
    for (let i = 0; i < 5; i++) await expect(db.probe(server)).rejects.toThrow();
    expect(reads.count).toBe(1);

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 31_000);
    await expect(db.probe(server)).rejects.toThrow();
    expect(reads.count).toBe(2);
  });
});
