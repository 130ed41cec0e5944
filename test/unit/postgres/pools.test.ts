import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { SSL_MODES } from '../../../src/api/types.ts';
import {
  isAuthFailure,
  PoolRegistry,
  type PoolTarget,
  poolKey,
  tlsOptions,
} from '../../../src/postgres/pools.ts';

const target: PoolTarget = {
  host: 'orders.postgres.database.azure.com',
  port: 5432,
  database: 'postgres',
  user: 'entra-access-operator',
  sslMode: 'verify-full',
};
const tokens = { getToken: async () => 'token' };

describe('pool settings', () => {
  it('keys a pool by host, port, database and user', () => {
    expect(poolKey(target)).toBe('orders.postgres.database.azure.com:5432:postgres:entra-access-operator');
  });

  it.each<[string, Pick<PoolTarget, 'sslMode' | 'caPem'>, object]>([
    [
      'verify-full with a CA',
      { sslMode: 'verify-full', caPem: 'PEM' },
      { rejectUnauthorized: true, ca: 'PEM' },
    ],
    ['verify-full with the system store', { sslMode: 'verify-full' }, { rejectUnauthorized: true }],
    [
      'verify-ca with a CA',
      { sslMode: 'verify-ca', caPem: 'PEM' },
      { rejectUnauthorized: true, ca: 'PEM', checkServerIdentity: expect.any(Function) },
    ],
    [
      'verify-ca with the system store',
      { sslMode: 'verify-ca' },
      { rejectUnauthorized: true, checkServerIdentity: expect.any(Function) },
    ],
    ['require (TLS, no verification)', { sslMode: 'require', caPem: 'PEM' }, { rejectUnauthorized: false }],
  ])('TLS for %s', (_, settings, expected) => {
    expect(tlsOptions(settings)).toEqual(expected);
  });

  it('checks the chain in every mode but require, and the host name in verify-full only', () => {
    // A certificate for the server's public name, reached through another name (a private
    // endpoint's IP address): node's own check, which verify-full keeps, refuses it.
    const cert = {
      subject: { CN: 'orders.postgres.database.azure.com' },
      subjectaltname: 'DNS:orders.postgres.database.azure.com',
    } as PeerCertificate;
    expect(checkServerIdentity('10.1.2.3', cert)?.message).toMatch(/does not match certificate's altnames/);
    for (const sslMode of SSL_MODES) {
      const options = tlsOptions({ sslMode, caPem: 'PEM' });
      expect(options.rejectUnauthorized, sslMode).toBe(sslMode !== 'require');
      const nameChecked = options.rejectUnauthorized === true && options.checkServerIdentity === undefined;
      expect(nameChecked, sslMode).toBe(sslMode === 'verify-full');
    }
    expect(tlsOptions({ sslMode: 'verify-ca' }).checkServerIdentity?.('10.1.2.3', cert)).toBeUndefined();
  });

  it('recognises a refused login by its SQLSTATE', () => {
    expect(isAuthFailure(Object.assign(new Error('password authentication failed'), { code: '28P01' }))).toBe(
      true,
    );
    expect(isAuthFailure(Object.assign(new Error('no such database'), { code: '3D000' }))).toBe(false);
    expect(isAuthFailure(undefined)).toBe(false);
  });
});

describe('PoolRegistry', () => {
  let registry: PoolRegistry;
  afterEach(async () => {
    await registry.end();
  });

  it('reuses the pool of a server and database, and gives another database its own', () => {
    registry = new PoolRegistry();
    const admin = registry.get(target, tokens);
    expect(registry.get({ ...target }, tokens)).toBe(admin);
    const orders = registry.get({ ...target, database: 'orders' }, tokens);
    expect(orders).not.toBe(admin);
    expect(registry.size).toBe(2);
  });

  it('replaces a pool when its TLS settings change (a rotated CA)', () => {
    registry = new PoolRegistry();
    const first = registry.get({ ...target, caPem: 'old' }, tokens);
    const second = registry.get({ ...target, caPem: 'new' }, tokens);
    expect(second).not.toBe(first);
    expect(registry.size).toBe(1);
  });

  it('builds small pools with a token password function and TLS', () => {
    registry = new PoolRegistry({ max: 3, idleTimeoutMillis: 1234 });
    const pool = registry.get({ ...target, caPem: 'PEM' }, tokens);
    expect(pool.options).toMatchObject({ max: 3, idleTimeoutMillis: 1234, ssl: { ca: 'PEM' } });
    expect(typeof (pool.options as { password?: unknown }).password).toBe('function');
  });

  it('ends the pools of one server only', async () => {
    registry = new PoolRegistry();
    registry.get(target, tokens);
    registry.get({ ...target, database: 'orders' }, tokens);
    registry.get({ ...target, host: 'other' }, tokens);
    await registry.endServer(target.host, target.port);
    expect(registry.size).toBe(1);
  });
});
