import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../src/api/types.ts';
import {
  conditionsEqual,
  formatConditionTime,
  getCondition,
  isTrue,
  MAX_MESSAGE_LENGTH,
  readyFrom,
  setCondition,
} from '../../../src/kube/conditions.ts';

const t1 = new Date('2026-11-22T10:00:00.123Z');
const t2 = new Date('2026-11-22T10:05:00.987Z');

const identityOk = {
  type: 'IdentityResolved',
  status: 'True',
  reason: 'Resolved',
  message: 'found',
} as const;
const ficFailed = {
  type: 'FederatedCredentialReady',
  status: 'False',
  reason: 'FederatedCredentialLimitReached',
  message: 'the identity has 20 federated credentials; remove one',
} as const;

describe('setCondition', () => {
  it('appends a new condition with the transition time in whole seconds and the generation', () => {
    const list = setCondition(undefined, identityOk, 3, t1);
    expect(list).toEqual([
      { ...identityOk, observedGeneration: 3, lastTransitionTime: '2026-11-22T10:00:00Z' },
    ]);
  });

  it('keeps lastTransitionTime when the status does not flip, even if reason and message change', () => {
    const first = setCondition([], identityOk, 1, t1);
    const second = setCondition(first, { ...identityOk, reason: 'Adopted', message: 'other' }, 2, t2);
    expect(second).toEqual([
      {
        ...identityOk,
        reason: 'Adopted',
        message: 'other',
        observedGeneration: 2,
        lastTransitionTime: '2026-11-22T10:00:00Z',
      },
    ]);
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], identityOk, 1, t1);
    const second = setCondition(first, { ...identityOk, status: 'False', reason: 'IdentityNotFound' }, 1, t2);
    expect(second[0]?.lastTransitionTime).toBe('2026-11-22T10:05:00Z');
    expect(second[0]?.status).toBe('False');
  });

  it('replaces in place, keeps the other conditions and does not modify its input', () => {
    const start = setCondition(setCondition([], identityOk, 1, t1), ficFailed, 1, t1);
    const frozen = structuredClone(start);
    const next = setCondition(
      start,
      { ...ficFailed, status: 'True', reason: 'Created', message: 'ok' },
      2,
      t2,
    );
    expect(start).toEqual(frozen);
    expect(next.map((c) => c.type)).toEqual(['IdentityResolved', 'FederatedCredentialReady']);
    expect(next[0]).toBe(start[0]);
    expect(next[1]?.status).toBe('True');
  });

  it('omits observedGeneration when unknown and caps the message length', () => {
    const [c] = setCondition(
      [],
      { ...identityOk, message: 'x'.repeat(MAX_MESSAGE_LENGTH + 10) },
      undefined,
      t1,
    );
    expect(c).not.toHaveProperty('observedGeneration');
    expect(c?.message).toHaveLength(MAX_MESSAGE_LENGTH);
  });
});

describe('getCondition and isTrue', () => {
  const list = setCondition(setCondition([], identityOk, 1, t1), ficFailed, 1, t1);
  it('find by type', () => {
    expect(getCondition(list, 'FederatedCredentialReady')?.reason).toBe('FederatedCredentialLimitReached');
    expect(getCondition(list, 'Ready')).toBeUndefined();
    expect(getCondition(undefined, 'Ready')).toBeUndefined();
    expect(isTrue(list, 'IdentityResolved')).toBe(true);
    expect(isTrue(list, 'FederatedCredentialReady')).toBe(false);
    expect(isTrue(list, 'Missing')).toBe(false);
    expect(isTrue(undefined, 'Ready')).toBe(false);
  });
});

describe('readyFrom', () => {
  const required = ['IdentityResolved', 'FederatedCredentialReady', 'ServiceAccountReady'];
  const build = (...updates: Parameters<typeof setCondition>[1][]) =>
    updates.reduce<Condition[]>((list, u) => setCondition(list, u, 1, t1), []);
  const saOk = {
    type: 'ServiceAccountReady',
    status: 'True',
    reason: 'UpToDate',
    message: 'annotated',
  } as const;
  const saUnknown = {
    ...saOk,
    status: 'Unknown',
    reason: 'Waiting',
    message: 'waiting for the identity',
  } as const;

  it('is True when every required condition is True', () => {
    const ficOk = { ...ficFailed, status: 'True', reason: 'Created', message: 'created' } as const;
    expect(readyFrom(build(identityOk, ficOk, saOk), required)).toEqual({
      type: 'Ready',
      status: 'True',
      reason: 'Reconciled',
      message: 'IdentityResolved, FederatedCredentialReady, ServiceAccountReady: True',
    });
  });

  it('is False naming the first False condition, even when a later one is Unknown', () => {
    expect(readyFrom(build(saUnknown, identityOk, ficFailed), required)).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'FederatedCredentialLimitReached',
      message: 'FederatedCredentialReady: the identity has 20 federated credentials; remove one',
    });
  });

  it('is Unknown when none is False and one is Unknown or missing', () => {
    const ficOk = { ...ficFailed, status: 'True', reason: 'Created', message: 'created' } as const;
    expect(readyFrom(build(identityOk, ficOk, saUnknown), required)).toMatchObject({
      status: 'Unknown',
      reason: 'Waiting',
      message: 'ServiceAccountReady: waiting for the identity',
    });
    expect(readyFrom(build(identityOk), required)).toMatchObject({
      status: 'Unknown',
      reason: 'Waiting',
      message: 'FederatedCredentialReady: not checked yet',
    });
  });

  it('ignores conditions that are not required', () => {
    const other = { type: 'Other', status: 'False', reason: 'Nope', message: 'irrelevant' } as const;
    expect(readyFrom(build(other, identityOk), ['IdentityResolved']).status).toBe('True');
  });
});

describe('conditionsEqual', () => {
  const list = setCondition(setCondition([], identityOk, 1, t1), ficFailed, 1, t1);

  it('ignores lastTransitionTime and order', () => {
    const later = list.map((c) => ({ ...c, lastTransitionTime: formatConditionTime(t2) })).reverse();
    expect(conditionsEqual(list, later)).toBe(true);
    expect(conditionsEqual(undefined, [])).toBe(true);
  });

  it('treats a re-application of the same updates as no change', () => {
    const again = setCondition(setCondition(list, identityOk, 1, t2), ficFailed, 1, t2);
    expect(conditionsEqual(list, again)).toBe(true);
  });

  it('sees a change of status, reason, message, generation or membership', () => {
    const changed = (patch: Partial<Condition>) =>
      conditionsEqual(list, [{ ...list[0]!, ...patch }, list[1]!]);
    expect(changed({ status: 'False' })).toBe(false);
    expect(changed({ reason: 'Adopted' })).toBe(false);
    expect(changed({ message: 'different' })).toBe(false);
    expect(changed({ observedGeneration: 2 })).toBe(false);
    expect(changed({ lastTransitionTime: 'whenever' })).toBe(true);
    expect(conditionsEqual(list, [list[0]!])).toBe(false);
    expect(conditionsEqual(list, [list[0]!, { ...list[1]!, type: 'Other' }])).toBe(false);
  });
});
