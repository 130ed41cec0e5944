import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { loadKubeConfig, shareDispatchers } from '../../../src/kube/client.ts';

const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

function kubeConfig(caData = ca): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData, skipTLSVerify: false }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

async function dispatcherOf(kc: k8s.KubeConfig): Promise<unknown> {
  const context = new k8s.RequestContext('https://127.0.0.1:6443/api/v1/namespaces', k8s.HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  return context.getDispatcher();
}

describe('shareDispatchers', () => {
  it('client-node alone builds a new dispatcher per request (the cost being fixed)', async () => {
    const kc = kubeConfig();
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).not.toBe(first);
  });

  it('gives every request of a kubeconfig the same dispatcher, and still the bearer token', async () => {
    const kc = shareDispatchers(kubeConfig());
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).toBe(first);
    const context = new k8s.RequestContext('https://127.0.0.1:6443/api', k8s.HttpMethod.GET);
    await kc.applySecurityAuthentication(context);
    expect(context.getHeaders().Authorization).toBe('Bearer secret-token');
  });

  it('builds a new dispatcher when the TLS settings change, and closes the old one', async () => {
    const kc = shareDispatchers(kubeConfig());
    const first = (await dispatcherOf(kc)) as { closed?: boolean; close(): Promise<void> };
    const cluster = kc.getCurrentCluster() as k8s.Cluster;
    (cluster as { caData?: string }).caData = Buffer.from('another CA').toString('base64');
    const second = await dispatcherOf(kc);
    expect(second).not.toBe(first);
    expect(await dispatcherOf(kc)).toBe(second);
    // undici's Agent sets `closed` once close() was called.
    expect(first.closed).toBe(true);
  });

  it('is applied by loadKubeConfig', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
    try {
      const file = join(dir, 'kubeconfig');
      writeFileSync(file, kubeConfig().exportConfig());
      const kc = loadKubeConfig(file);
      expect(await dispatcherOf(kc)).toBe(await dispatcherOf(kc));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
