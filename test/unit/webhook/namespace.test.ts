import { describe, expect, it } from 'vitest';
import { mutateNamespace, namespaceFacts } from '../../../src/webhook/policy/namespace.ts';
import type { NamespaceFacts, PatchOperation } from '../../../src/webhook/policy/types.ts';
import { applyPatch, changedLeaves, deepFreeze } from './apply-patch.ts';

const OPT_IN = 'entra-access.io/workload-identity';
const LABEL_PATH = '/metadata/labels/entra-access.io~1workload-identity';

function ns(metadata: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', ...metadata } };
}

describe('namespaceFacts', () => {
  it.each<[string, Record<string, unknown>, NamespaceFacts]>([
    [
      'no annotations',
      ns({}),
      { name: 'team-a', optedIn: false, extraPodLabels: {}, extraPodLabelErrors: [] },
    ],
    [
      'opted in, with default client id and extra labels',
      ns({
        annotations: {
          [OPT_IN]: 'enabled',
          'entra-access.io/client-id': ' 11111111-2222-3333-4444-555555555555 ',
          'entra-access.io/extra-pod-labels': 'team=orders,cost-center=42',
        },
      }),
      {
        name: 'team-a',
        optedIn: true,
        defaultClientId: '11111111-2222-3333-4444-555555555555',
        extraPodLabels: { team: 'orders', 'cost-center': '42' },
        extraPodLabelErrors: [],
      },
    ],
    [
      'the opt-in value is exact: "Enabled" does not opt in',
      ns({ annotations: { [OPT_IN]: 'Enabled' } }),
      { name: 'team-a', optedIn: false, extraPodLabels: {}, extraPodLabelErrors: [] },
    ],
    [
      'the label alone does not opt in',
      ns({ labels: { [OPT_IN]: 'enabled' } }),
      { name: 'team-a', optedIn: false, extraPodLabels: {}, extraPodLabelErrors: [] },
    ],
    [
      'a blank client id counts as unset',
      ns({ annotations: { [OPT_IN]: 'enabled', 'entra-access.io/client-id': '  ' } }),
      { name: 'team-a', optedIn: true, extraPodLabels: {}, extraPodLabelErrors: [] },
    ],
  ])('%s', (_name, namespace, expected) => {
    expect(namespaceFacts(deepFreeze(namespace))).toEqual(expected);
  });

  it('keeps valid extra labels and names the namespace, annotation and entry of each invalid one', () => {
    const facts = namespaceFacts(
      ns({ annotations: { 'entra-access.io/extra-pod-labels': 'good=1,Bad Key=x,also-good=2' } }),
    );
    expect(facts.extraPodLabels).toEqual({ good: '1', 'also-good': '2' });
    expect(facts.extraPodLabelErrors).toHaveLength(1);
    expect(facts.extraPodLabelErrors[0]).toMatch(
      /^namespace "team-a" annotation entra-access.io\/extra-pod-labels: entry "Bad Key=x": .*ignored$/,
    );
  });
});

describe('mutateNamespace', () => {
  it.each<[string, Record<string, unknown>, PatchOperation[], Record<string, unknown> | undefined]>([
    [
      'opted in, labels map exists: label added',
      ns({ labels: { team: 'a' }, annotations: { [OPT_IN]: 'enabled' } }),
      [{ op: 'add', path: LABEL_PATH, value: 'enabled' }],
      { team: 'a', [OPT_IN]: 'enabled' },
    ],
    [
      'opted in, no labels map: the map is added whole',
      ns({ annotations: { [OPT_IN]: 'enabled' } }),
      [{ op: 'add', path: '/metadata/labels', value: { [OPT_IN]: 'enabled' } }],
      { [OPT_IN]: 'enabled' },
    ],
    [
      'opted in, labels null: the map is added whole',
      ns({ labels: null, annotations: { [OPT_IN]: 'enabled' } }),
      [{ op: 'add', path: '/metadata/labels', value: { [OPT_IN]: 'enabled' } }],
      { [OPT_IN]: 'enabled' },
    ],
    [
      'opted in, label already there: kept, no patch',
      ns({ labels: { [OPT_IN]: 'enabled' }, annotations: { [OPT_IN]: 'enabled' } }),
      [],
      { [OPT_IN]: 'enabled' },
    ],
    [
      'opted in, label with another value: set to enabled',
      ns({ labels: { [OPT_IN]: 'disabled' }, annotations: { [OPT_IN]: 'enabled' } }),
      [{ op: 'add', path: LABEL_PATH, value: 'enabled' }],
      { [OPT_IN]: 'enabled' },
    ],
    [
      'annotation gone: label removed',
      ns({ labels: { team: 'a', [OPT_IN]: 'enabled' } }),
      [{ op: 'remove', path: LABEL_PATH }],
      { team: 'a' },
    ],
    [
      'annotation not "enabled": label removed',
      ns({ labels: { [OPT_IN]: 'enabled' }, annotations: { [OPT_IN]: 'disabled' } }),
      [{ op: 'remove', path: LABEL_PATH }],
      {},
    ],
    ['not opted in, no label: untouched', ns({ labels: { team: 'a' } }), [], { team: 'a' }],
    ['not opted in, no labels map: untouched', ns({}), [], undefined],
  ])('%s', (_name, namespace, patch, labelsAfter) => {
    const result = mutateNamespace(deepFreeze(namespace));
    expect(result.patch).toEqual(patch);
    expect(result.warnings).toEqual([]);
    const after = applyPatch(namespace, result.patch);
    expect((after.metadata as Record<string, unknown>).labels).toEqual(labelsAfter);
    // Nothing but the mirrored label (or a null labels field) changes.
    const intended = [LABEL_PATH, '/metadata/labels'];
    expect(changedLeaves(namespace, after).filter((path) => !intended.includes(path))).toEqual([]);
    // The only `remove` any policy produces is this one, and only when the label must go.
    for (const operation of result.patch) {
      if (operation.op === 'remove') expect(operation.path).toBe(LABEL_PATH);
    }
    // Reinvocation on the result changes nothing.
    expect(mutateNamespace(deepFreeze(after)).patch).toEqual([]);
  });

  it('returns invalid extra-pod-labels entries as warnings, so whoever annotates hears of them', () => {
    const result = mutateNamespace(
      ns({ annotations: { [OPT_IN]: 'enabled', 'entra-access.io/extra-pod-labels': 'ok=1,-bad=2' } }),
    );
    expect(result.patch).toHaveLength(1);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain('entry "-bad=2"');
  });
});
