// The status a reconcile writes and how it writes it (src/controller/reconcile/status.ts): the
// JSON merge patch between two statuses (RFC 7386: applied to the old status it gives exactly the
// new one), whether anything but condition timestamps changed, and the status built from a kind's
// step outcomes. Pure.
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../src/api/types.ts';
import {
  mergePatchBetween,
  nextStatus,
  type ReconciledStatus,
  refusedStatus,
  type StepOutcome,
  stableJson,
  statusChanged,
} from '../../../src/controller/reconcile/status.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** RFC 7386 MergePatch(Target, Patch), as the apiserver applies a merge patch. */
function applyPatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyPatch(result[key], value);
  }
  return result;
}

/** What goes over the wire: undefined members are not sent. */
const wire = (value: unknown): unknown =>
  value === undefined ? undefined : JSON.parse(JSON.stringify(value));

describe('mergePatchBetween', () => {
  it.each<{ case: string; previous: Json | undefined; next: Json | undefined; patch: unknown }>([
    {
      case: 'no change: an empty patch',
      previous: { a: 1, b: { c: [1] } },
      next: { a: 1, b: { c: [1] } },
      patch: {},
    },
    {
      case: 'key order is no change',
      previous: { a: { x: 1, y: 2 }, b: 1 },
      next: { b: 1, a: { y: 2, x: 1 } },
      patch: {},
    },
    {
      case: 'no previous status: the next one whole',
      previous: undefined,
      next: { a: 1, b: { c: 2 } },
      patch: { a: 1, b: { c: 2 } },
    },
    { case: 'a new member', previous: { a: 1 }, next: { a: 1, b: 'x' }, patch: { b: 'x' } },
    {
      case: 'a changed scalar, unchanged ones left out',
      previous: { a: 1, b: 2 },
      next: { a: 1, b: 3 },
      patch: { b: 3 },
    },
    { case: 'a removed member becomes null', previous: { a: 1, b: 2 }, next: { a: 1 }, patch: { b: null } },
    {
      case: 'a member set to undefined is removed',
      previous: { a: 1, b: 2 },
      next: { a: 1, b: undefined },
      patch: { b: null },
    },
    {
      case: 'a member that was undefined and still is absent: no change',
      previous: { a: 1, b: undefined },
      next: { a: 1 },
      patch: {},
    },
    { case: 'everything removed', previous: { a: 1, b: { c: 2 } }, next: {}, patch: { a: null, b: null } },
    {
      case: 'a removed nested member becomes a nested null, its siblings left out',
      previous: { applied: { role: 'app', memberOf: ['readers'], database: 'shop' } },
      next: { applied: { role: 'app', database: 'shop' } },
      patch: { applied: { memberOf: null } },
    },
    {
      case: 'an emptied object: each member null',
      previous: { applied: { role: 'app', server: 'pg' }, x: 1 },
      next: { applied: {}, x: 1 },
      patch: { applied: { role: null, server: null } },
    },
    {
      case: 'nested objects merge recursively',
      previous: { identity: { resourceId: 'r', clientId: 'c1', tenantId: 't' }, other: { k: 1 } },
      next: { identity: { resourceId: 'r', clientId: 'c2', tenantId: 't' }, other: { k: 1 } },
      patch: { identity: { clientId: 'c2' } },
    },
    {
      case: 'three levels deep',
      previous: { a: { b: { c: 1, d: 2 }, e: 3 } },
      next: { a: { b: { c: 1 }, e: 3, f: 4 } },
      patch: { a: { b: { d: null }, f: 4 } },
    },
    {
      case: 'a shorter array replaces the old one whole',
      previous: { m: ['a', 'b'] },
      next: { m: ['a'] },
      patch: { m: ['a'] },
    },
    {
      case: 'an emptied array is sent empty, not null',
      previous: { m: ['a'] },
      next: { m: [] },
      patch: { m: [] },
    },
    {
      case: 'an array of objects with one member changed: the whole array',
      previous: {
        stale: [
          { name: 'f1', id: 'x' },
          { name: 'f2', id: 'y' },
        ],
      },
      next: { stale: [{ name: 'f1', id: 'x' }, { name: 'f2' }] },
      patch: { stale: [{ name: 'f1', id: 'x' }, { name: 'f2' }] },
    },
    {
      case: 'reordered array: a change',
      previous: { m: ['a', 'b'] },
      next: { m: ['b', 'a'] },
      patch: { m: ['b', 'a'] },
    },
    { case: 'an object becomes a scalar', previous: { a: { b: 1 } }, next: { a: 'x' }, patch: { a: 'x' } },
    {
      case: 'a scalar becomes an object',
      previous: { a: 'x' },
      next: { a: { b: 1 } },
      patch: { a: { b: 1 } },
    },
    { case: 'an object becomes an array', previous: { a: { b: 1 } }, next: { a: [1] }, patch: { a: [1] } },
    {
      case: 'an array becomes an object',
      previous: { a: [1] },
      next: { a: { b: 1 } },
      patch: { a: { b: 1 } },
    },
    {
      case: 'zero, false and empty string are values',
      previous: { a: 1, b: true, c: 'x' },
      next: { a: 0, b: false, c: '' },
      patch: { a: 0, b: false, c: '' },
    },
    {
      case: 'a status as the controller writes it: FIC moved to stale, applied emptied, condition changed',
      previous: {
        observedGeneration: 1,
        identity: { resourceId: 'x', clientId: 'c' },
        federatedCredential: { name: 'f', identityResourceId: 'x' },
        applied: { role: 'app', memberOf: ['readers'] },
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'ok', lastTransitionTime: 't1' },
        ],
      },
      next: {
        observedGeneration: 2,
        identity: { resourceId: 'x', clientId: 'c' },
        staleFederatedCredentials: [{ name: 'f', identityResourceId: 'x' }],
        applied: {},
        conditions: [
          { type: 'Ready', status: 'False', reason: 'Failed', message: 'no', lastTransitionTime: 't2' },
        ],
      },
      patch: {
        observedGeneration: 2,
        federatedCredential: null,
        staleFederatedCredentials: [{ name: 'f', identityResourceId: 'x' }],
        applied: { role: null, memberOf: null },
        conditions: [
          { type: 'Ready', status: 'False', reason: 'Failed', message: 'no', lastTransitionTime: 't2' },
        ],
      },
    },
  ])('$case', ({ previous, next, patch }) => {
    const computed = mergePatchBetween(previous, next);
    expect(wire(computed)).toStrictEqual(patch);
    // Applied to the previous status (as sent), the patch gives exactly the next one.
    expect(applyPatch(wire(previous), wire(computed))).toStrictEqual(wire(next));
  });

  it('never modifies its inputs', () => {
    const previous = { a: { b: 1, c: 2 } };
    const next = { a: { b: 1 } };
    mergePatchBetween(previous, next);
    expect(previous).toEqual({ a: { b: 1, c: 2 } });
    expect(next).toEqual({ a: { b: 1 } });
  });
});

describe('stableJson', () => {
  it.each<{ case: string; a: unknown; b: unknown; same: boolean }>([
    { case: 'keys in another order', a: { b: 1, a: 2 }, b: { a: 2, b: 1 }, same: true },
    {
      case: 'nested keys in another order',
      a: { x: [{ b: 1, a: 2 }] },
      b: { x: [{ a: 2, b: 1 }] },
      same: true,
    },
    { case: 'undefined members dropped', a: { a: 1, b: undefined }, b: { a: 1 }, same: true },
    { case: 'array order kept', a: [1, 2], b: [2, 1], same: false },
    { case: 'a different value', a: { a: 1 }, b: { a: 2 }, same: false },
    { case: 'null is not absent', a: { a: null }, b: {}, same: false },
  ])('$case → same: $same', ({ a, b, same }) => {
    expect(stableJson(a) === stableJson(b)).toBe(same);
  });

  it('prints keys sorted at every level', () => {
    expect(stableJson({ z: 1, a: { y: [{ d: 1, c: 2 }], b: null } })).toBe(
      '{"a":{"b":null,"y":[{"c":2,"d":1}]},"z":1}',
    );
  });
});

describe('statusChanged', () => {
  const ready = (over: Partial<Condition> = {}): Condition => ({
    type: 'Ready',
    status: 'True',
    observedGeneration: 1,
    lastTransitionTime: '2026-01-01T00:00:00Z',
    reason: 'Reconciled',
    message: 'ok',
    ...over,
  });
  const step = (over: Partial<Condition> = {}): Condition =>
    ready({ type: 'Alpha', reason: 'Done', ...over });
  interface S extends ReconciledStatus {
    identity?: { clientId?: string; tenantId?: string };
    memberOf?: string[];
  }
  const base: S = {
    observedGeneration: 1,
    conditions: [step(), ready()],
    identity: { clientId: 'c', tenantId: 't' },
  };

  it.each<{ case: string; previous: S | undefined; next: S; changed: boolean }>([
    { case: 'the same status', previous: base, next: structuredClone(base), changed: false },
    {
      case: 'only lastTransitionTime differs',
      previous: base,
      next: { ...base, conditions: [step({ lastTransitionTime: 'x' }), ready({ lastTransitionTime: 'y' })] },
      changed: false,
    },
    {
      case: 'conditions in another order',
      previous: base,
      next: { ...base, conditions: [ready(), step()] },
      changed: false,
    },
    {
      case: 'fields in another key order',
      previous: base,
      next: {
        identity: { tenantId: 't', clientId: 'c' },
        conditions: base.conditions,
        observedGeneration: 1,
      },
      changed: false,
    },
    {
      case: 'a field set to undefined that was absent',
      previous: base,
      next: { ...base, memberOf: undefined },
      changed: false,
    },
    { case: 'no previous status, an empty one', previous: undefined, next: {}, changed: false },
    { case: 'no previous status, a real one', previous: undefined, next: base, changed: true },
    {
      case: 'a condition status',
      previous: base,
      next: { ...base, conditions: [step(), ready({ status: 'False' })] },
      changed: true,
    },
    {
      case: 'a condition reason',
      previous: base,
      next: { ...base, conditions: [step({ reason: 'Other' }), ready()] },
      changed: true,
    },
    {
      case: 'a condition message',
      previous: base,
      next: { ...base, conditions: [step(), ready({ message: 'm' })] },
      changed: true,
    },
    {
      case: "a condition's observedGeneration",
      previous: base,
      next: { ...base, conditions: [step({ observedGeneration: 2 }), ready()] },
      changed: true,
    },
    {
      case: 'a condition added',
      previous: base,
      next: { ...base, conditions: [step(), ready(), step({ type: 'Beta' })] },
      changed: true,
    },
    { case: 'a condition removed', previous: base, next: { ...base, conditions: [ready()] }, changed: true },
    {
      case: 'a condition of another type',
      previous: base,
      next: { ...base, conditions: [step({ type: 'Beta' }), ready()] },
      changed: true,
    },
    { case: 'observedGeneration', previous: base, next: { ...base, observedGeneration: 2 }, changed: true },
    {
      case: 'a nested field',
      previous: base,
      next: { ...base, identity: { clientId: 'c2', tenantId: 't' } },
      changed: true,
    },
    {
      case: 'a field removed',
      previous: base,
      next: { observedGeneration: 1, conditions: base.conditions },
      changed: true,
    },
    { case: 'a field added', previous: base, next: { ...base, memberOf: [] }, changed: true },
  ])('$case → $changed', ({ previous, next, changed }) => {
    expect(statusChanged(previous, next)).toBe(changed);
  });
});

describe('nextStatus (steps Alpha, Beta, Gamma)', () => {
  const STEPS = ['Alpha', 'Beta', 'Gamma'] as const;
  const t1 = new Date('2026-03-01T10:00:00.500Z');
  const t2 = new Date('2026-03-01T11:00:00Z');
  const ok = (type: string): StepOutcome => ({
    type,
    ok: true,
    reason: `${type}Done`,
    message: `${type} is fine`,
  });
  const bad = (type: string): StepOutcome => ({
    type,
    ok: false,
    reason: `${type}Broke`,
    message: `${type} failed`,
  });
  interface S extends ReconciledStatus {
    note?: string;
    kept?: string;
  }
  /** Conditions as `type → [status, reason, message]`. */
  const summary = (s: S) =>
    Object.fromEntries((s.conditions ?? []).map((c) => [c.type, [c.status, c.reason, c.message]]));

  it.each<{ case: string; outcomes: StepOutcome[]; conditions: Record<string, [string, string, string]> }>([
    {
      case: 'every step ok: Ready True naming them',
      outcomes: [ok('Alpha'), ok('Beta'), ok('Gamma')],
      conditions: {
        Alpha: ['True', 'AlphaDone', 'Alpha is fine'],
        Beta: ['True', 'BetaDone', 'Beta is fine'],
        Gamma: ['True', 'GammaDone', 'Gamma is fine'],
        Ready: ['True', 'Reconciled', 'Alpha, Beta, Gamma: True'],
      },
    },
    {
      case: 'the second step failed: later ones wait for it, Ready False naming it',
      outcomes: [ok('Alpha'), bad('Beta')],
      conditions: {
        Alpha: ['True', 'AlphaDone', 'Alpha is fine'],
        Beta: ['False', 'BetaBroke', 'Beta failed'],
        Gamma: ['Unknown', 'Waiting', 'waiting for Beta: BetaBroke'],
        Ready: ['False', 'BetaBroke', 'Beta: Beta failed'],
      },
    },
    {
      case: 'the first step failed: every later one waits for it',
      outcomes: [bad('Alpha')],
      conditions: {
        Alpha: ['False', 'AlphaBroke', 'Alpha failed'],
        Beta: ['Unknown', 'Waiting', 'waiting for Alpha: AlphaBroke'],
        Gamma: ['Unknown', 'Waiting', 'waiting for Alpha: AlphaBroke'],
        Ready: ['False', 'AlphaBroke', 'Alpha: Alpha failed'],
      },
    },
    {
      case: 'the last step failed',
      outcomes: [ok('Alpha'), ok('Beta'), bad('Gamma')],
      conditions: {
        Alpha: ['True', 'AlphaDone', 'Alpha is fine'],
        Beta: ['True', 'BetaDone', 'Beta is fine'],
        Gamma: ['False', 'GammaBroke', 'Gamma failed'],
        Ready: ['False', 'GammaBroke', 'Gamma: Gamma failed'],
      },
    },
    {
      case: 'no step ran: all unknown, Ready Unknown naming the first',
      outcomes: [],
      conditions: {
        Alpha: ['Unknown', 'Waiting', 'not checked yet'],
        Beta: ['Unknown', 'Waiting', 'not checked yet'],
        Gamma: ['Unknown', 'Waiting', 'not checked yet'],
        Ready: ['Unknown', 'Waiting', 'Alpha: not checked yet'],
      },
    },
    {
      case: 'two failed: Ready names the first in step order',
      outcomes: [bad('Alpha'), ok('Beta'), bad('Gamma')],
      conditions: {
        Alpha: ['False', 'AlphaBroke', 'Alpha failed'],
        Beta: ['True', 'BetaDone', 'Beta is fine'],
        Gamma: ['False', 'GammaBroke', 'Gamma failed'],
        Ready: ['False', 'AlphaBroke', 'Alpha: Alpha failed'],
      },
    },
    {
      case: 'an outcome of a type the kind does not list gets no condition',
      outcomes: [ok('Alpha'), ok('Beta'), ok('Gamma'), bad('Delta')],
      conditions: {
        Alpha: ['True', 'AlphaDone', 'Alpha is fine'],
        Beta: ['True', 'BetaDone', 'Beta is fine'],
        Gamma: ['True', 'GammaDone', 'Gamma is fine'],
        Ready: ['True', 'Reconciled', 'Alpha, Beta, Gamma: True'],
      },
    },
  ])('$case', ({ outcomes, conditions }) => {
    const status = nextStatus<S>(undefined, STEPS, outcomes, {}, 4, t1);
    expect(summary(status)).toEqual(conditions);
    expect(status.observedGeneration).toBe(4);
    for (const c of status.conditions ?? []) {
      expect(c.observedGeneration).toBe(4);
      expect(c.lastTransitionTime).toBe('2026-03-01T10:00:00Z');
    }
  });

  it('keeps the kind’s other fields and conditions, sets the fields given, and keeps unflipped transition times', () => {
    const first = nextStatus<S>({ kept: 'k', note: 'old' }, STEPS, [ok('Alpha'), bad('Beta')], {}, 1, t1);
    const withForeign: S = {
      ...first,
      conditions: [
        ...(first.conditions ?? []),
        { type: 'Foreign', status: 'True', reason: 'R', message: 'm', lastTransitionTime: 'then' },
      ],
    };
    const second = nextStatus<S>(
      withForeign,
      STEPS,
      [ok('Alpha'), ok('Beta'), ok('Gamma')],
      { note: 'new' },
      2,
      t2,
    );
    expect(second.kept).toBe('k');
    expect(second.note).toBe('new');
    expect(second.observedGeneration).toBe(2);
    const at = (type: string) => second.conditions?.find((c) => c.type === type);
    expect(at('Foreign')).toEqual(withForeign.conditions?.at(-1));
    expect(at('Alpha')).toMatchObject({
      status: 'True',
      lastTransitionTime: '2026-03-01T10:00:00Z',
      observedGeneration: 2,
    });
    expect(at('Beta')).toMatchObject({ status: 'True', lastTransitionTime: '2026-03-01T11:00:00Z' });
    expect(at('Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-03-01T11:00:00Z' });
    // One condition per type, however many reconciles.
    expect(second.conditions?.map((c) => c.type).sort()).toEqual([
      'Alpha',
      'Beta',
      'Foreign',
      'Gamma',
      'Ready',
    ]);
  });

  it('a kind with other steps gets exactly those conditions', () => {
    const status = nextStatus<S>(undefined, ['Only'], [ok('Only')], {}, 1, t1);
    expect(summary(status)).toEqual({
      Only: ['True', 'OnlyDone', 'Only is fine'],
      Ready: ['True', 'Reconciled', 'Only: True'],
    });
  });
});

describe('refusedStatus (steps Alpha, Beta)', () => {
  const now = new Date('2026-03-01T10:00:00Z');
  interface S extends ReconciledStatus {
    kept?: string;
    note?: string;
  }

  it('Ready False with the refusal, every step waiting, the generation observed', () => {
    const previous: S = {
      kept: 'k',
      observedGeneration: 1,
      conditions: [
        { type: 'Alpha', status: 'True', reason: 'Done', message: 'fine', lastTransitionTime: 'then' },
        { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'ok', lastTransitionTime: 'then' },
      ],
    };
    const status = refusedStatus<S>(
      previous,
      ['Alpha', 'Beta'],
      { reason: 'ServiceAccountConflict', message: 'taken by apps/a' },
      { note: 'n' },
      3,
      now,
    );
    expect(status).toEqual({
      kept: 'k',
      note: 'n',
      observedGeneration: 3,
      conditions: [
        {
          type: 'Alpha',
          status: 'Unknown',
          reason: 'Waiting',
          message: 'not started: ServiceAccountConflict',
          observedGeneration: 3,
          lastTransitionTime: '2026-03-01T10:00:00Z',
        },
        {
          type: 'Ready',
          status: 'False',
          reason: 'ServiceAccountConflict',
          message: 'taken by apps/a',
          observedGeneration: 3,
          lastTransitionTime: '2026-03-01T10:00:00Z',
        },
        {
          type: 'Beta',
          status: 'Unknown',
          reason: 'Waiting',
          message: 'not started: ServiceAccountConflict',
          observedGeneration: 3,
          lastTransitionTime: '2026-03-01T10:00:00Z',
        },
      ],
    });
  });

  it('from no status at all', () => {
    const status = refusedStatus<S>(undefined, ['Alpha'], { reason: 'Nope', message: 'no' }, {}, 1, now);
    expect(status.observedGeneration).toBe(1);
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Alpha', 'Unknown', 'Waiting'],
      ['Ready', 'False', 'Nope'],
    ]);
  });
});
