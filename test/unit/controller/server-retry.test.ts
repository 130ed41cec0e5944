import { describe, expect, it } from 'vitest';
import { serverRetryMs } from '../../../src/controller/server-reconciler.ts';

describe('serverRetryMs: the retry after failed server probes in a row', () => {
  it.each([
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [5, 16_000],
    [6, 30_000],
    [50, 30_000],
  ])('after %i failures: %i ms', (failed, ms) => {
    expect(serverRetryMs(failed)).toBe(ms);
  });
});
