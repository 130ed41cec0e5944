import { describe, expect, it } from 'vitest';
import { FIC_NAME_PATTERN, ficName, ficSubject } from '../../../src/azure/fic-name.ts';

describe('ficSubject', () => {
  it('is the service-account subject of Kubernetes tokens', () => {
    expect(ficSubject('orders', 'orders-api')).toBe('system:serviceaccount:orders:orders-api');
  });
});

describe('ficName', () => {
  it('is readable and deterministic for ordinary names', () => {
    expect(ficName('aks-prod', 'orders', 'orders-api')).toBe('aks-prod_orders_orders-api');
    expect(ficName('aks-prod', 'orders', 'orders-api')).toBe(ficName('aks-prod', 'orders', 'orders-api'));
    expect(ficName('', 'orders', 'api')).toBe('orders_api');
  });

  it('keeps the parts apart: hyphens inside parts never make two triples meet', () => {
    expect(ficName('a-b', 'c', 'd')).not.toBe(ficName('a', 'b-c', 'd'));
    expect(ficName('a', 'b-c', 'd')).not.toBe(ficName('a', 'b', 'c-d'));
  });

  it('adds a hash when a character had to be replaced, so sanitised forms never collide', () => {
    const dotted = ficName('aks', 'orders', 'orders.api');
    const dashed = ficName('aks', 'orders', 'orders-api');
    expect(dashed).toBe('aks_orders_orders-api');
    expect(dotted).toMatch(/^aks_orders_orders-api-[0-9a-f]{12}$/);
    expect(dotted).not.toBe(dashed);
    expect(ficName('my.cluster', 'ns', 'sa')).not.toBe(ficName('my-cluster', 'ns', 'sa'));
  });

  it('adds a hash when the cluster name contains the separator', () => {
    // "a_b_c_d" would not say where the cluster name ends, so `_` in it is replaced, and hashed.
    expect(ficName('a_b', 'c', 'd')).toMatch(/^a-b_c_d-[0-9a-f]{12}$/);
    expect(ficName('a_b', 'c', 'd')).not.toBe(ficName('a-b', 'c', 'd'));
  });

  it('shortens long names with a stable hash, and different inputs with the same prefix differ', () => {
    const cluster = 'c'.repeat(40);
    const ns = 'n'.repeat(63);
    const a = ficName(cluster, ns, `${'s'.repeat(60)}-a`);
    const b = ficName(cluster, ns, `${'s'.repeat(60)}-b`);
    for (const name of [a, b]) {
      expect(name).toMatch(FIC_NAME_PATTERN);
      expect(name.length).toBe(120);
    }
    expect(a.slice(0, 107)).toBe(b.slice(0, 107));
    expect(a).not.toBe(b);
    expect(ficName(cluster, ns, `${'s'.repeat(60)}-a`)).toBe(a);
  });

  it('uses the full length when it fits exactly, and hashes one character beyond', () => {
    const sa = 's'.repeat(120 - 'k_n_'.length);
    expect(ficName('k', 'n', sa)).toBe(`k_n_${sa}`);
    expect(ficName('k', 'n', `${sa}s`)).toMatch(/^k_n_s+-[0-9a-f]{12}$/);
  });

  it.each([
    ['-cluster', 'ns', 'sa'],
    ['__', 'ns', 'sa'],
    ['клас', 'ns', 'sa'],
    ['c', 'n', 's'],
    ['cluster with spaces/and:colons', 'ns', 'a.b.c'],
    ['x'.repeat(300), 'n'.repeat(63), 's'.repeat(253)],
  ])('always matches the ARM pattern: (%s, %s, %s)', (cluster, ns, sa) => {
    expect(ficName(cluster, ns, sa)).toMatch(FIC_NAME_PATTERN);
  });

  it('needs a namespace and a service account', () => {
    expect(() => ficName('c', '', 'sa')).toThrow(/namespace and a service account/);
    expect(() => ficName('c', 'ns', '')).toThrow(/namespace and a service account/);
  });

  it('gives 10,000 distinct service accounts 10,000 distinct names', () => {
    const names = new Set<string>();
    for (let i = 0; i < 10_000; i++) names.add(ficName('cluster', 'ns', `sa.${i}`));
    expect(names.size).toBe(10_000);
  });
});
