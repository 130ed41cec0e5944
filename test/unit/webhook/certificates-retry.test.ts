import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../../src/observability/logger.ts';
import { CertificateManager } from '../../../src/webhook/certificates/manager.ts';
import { ObjectWatch } from '../../../src/webhook/certificates/object-watch.ts';
import { CertificateSecretStore } from '../../../src/webhook/certificates/secret-store.ts';

// How the certificate manager and its watches retry. No I/O: the Secret store and client-node's
// Watch are stubbed, the clock is fake.

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function fakeLogger() {
  const warn = vi.fn();
  const debug = vi.fn();
  const logger = { warn, debug, info: vi.fn(), error: vi.fn() } as Record<string, unknown>;
  logger.child = () => logger;
  return { logger: logger as unknown as Logger, warn, debug };
}

function kubeConfig(): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return config;
}

describe('CertificateManager.start', () => {
  it('retries a failing first pass after 1 s, doubling up to a minute, until stopped', async () => {
    vi.spyOn(CertificateSecretStore.prototype, 'read').mockRejectedValue(new Error('apiserver unavailable'));
    const { logger, warn } = fakeLogger();
    const manager = new CertificateManager({
      kubeConfig: kubeConfig(),
      logger,
      namespace: 'entra-access',
      secretName: 'entra-access-webhook-tls',
      webhookConfigurationName: 'entra-access',
      certDir: '/nonexistent',
      commonName: 'entra-access.entra-access.svc',
      dnsNames: ['entra-access.entra-access.svc'],
      caValidityMs: 1,
      certValidityMs: 1,
      renewBeforeMs: 1,
      watch: false,
    });
    const started = manager.start();
    const expected = [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000];
    for (const delay of expected) await vi.advanceTimersByTimeAsync(delay);
    const delays = warn.mock.calls.map(([fields]) => (fields as { retryInMs: number }).retryInMs);
    expect(delays).toEqual([...expected, 60_000]);
    await manager.stop();
    await started;
    expect(manager.ready).toBe(false);
  });
});

describe('ObjectWatch', () => {
  /** An ObjectWatch on a stubbed Watch; `end(error)` ends the current stream as client-node does. */
  function watching() {
    const starts: number[] = [];
    let done: ((error: unknown) => void) | undefined;
    let onEvent: ((phase: string, object: unknown) => void) | undefined;
    vi.spyOn(k8s.Watch.prototype, 'watch').mockImplementation(async (_path, _query, callback, onDone) => {
      starts.push(Date.now());
      done = onDone;
      onEvent = callback as typeof onEvent;
      return new AbortController();
    });
    const { logger, debug } = fakeLogger();
    const events = vi.fn();
    const watch = new ObjectWatch(kubeConfig(), '/api/v1/namespaces/n/secrets', 's', events, logger);
    return {
      watch,
      events,
      /** When each stream started (the fake clock). */
      starts,
      end: (error: unknown) => done?.(error),
      event: () => onEvent?.('MODIFIED', {}),
      logged: () => debug.mock.calls.map(([fields]) => (fields as { retryInMs: number }).retryInMs),
    };
  }

  /** Ends the current stream with `error` and returns how long the watch waited to start again. */
  async function gapAfter(w: ReturnType<typeof watching>, error: unknown): Promise<number> {
    const endedAt = Date.now();
    const before = w.starts.length;
    w.end(error);
    while (w.starts.length === before) await vi.advanceTimersByTimeAsync(100);
    return w.starts.at(-1)! - endedAt;
  }

  it('backs off failures 1 s, 2 s, 4 s … 30 s, and an event starts over', async () => {
    const w = watching();
    w.watch.start();
    await vi.advanceTimersByTimeAsync(0);
    const gaps: number[] = [];
    for (let i = 0; i < 7; i += 1) gaps.push(await gapAfter(w, new Error('stream reset')));
    expect(gaps).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(w.logged()).toEqual(gaps);
    w.event();
    expect(w.events).toHaveBeenCalledTimes(1);
    expect(await gapAfter(w, new Error('stream reset'))).toBe(1000);
    w.watch.stop();
  });

  it('reconnects after 200 ms when the stream ends without an error', async () => {
    const w = watching();
    w.watch.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(await gapAfter(w, new Error('stream reset'))).toBe(1000);
    expect([await gapAfter(w, null), await gapAfter(w, null)]).toEqual([200, 200]);
    w.watch.stop();
  });
});
