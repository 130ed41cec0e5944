// What a Namespace says about entra-access, and the Namespace mutation: admission
// namespaceSelectors match labels only, so the opt-in annotation is mirrored into a label.

import {
  EXTRA_POD_LABELS_ANNOTATION,
  NAMESPACE_CLIENT_ID_ANNOTATION,
  NAMESPACE_OPT_IN_ANNOTATION,
  NAMESPACE_OPT_IN_LABEL,
  OPT_IN_VALUE,
} from '../../api/constants.ts';
import { pointer } from './json-pointer.ts';
import { parseLabelList } from './labels.ts';
import { addMapEntries, annotation, at, labelsOf, nonBlank, own } from './plain.ts';
import type { NamespaceFacts, PatchOperation, PolicyResult } from './types.ts';

/**
 * Reads a Namespace's entra-access annotations. Opted in means the opt-in annotation is exactly
 * `enabled`. The default client ID is trimmed; a blank one counts as unset. Invalid entries of
 * the extra-pod-labels annotation are left out and described in `extraPodLabelErrors`.
 */
export function namespaceFacts(ns: Record<string, unknown>): NamespaceFacts {
  const name = nonBlank(at(ns, 'metadata', 'name')) ?? nonBlank(at(ns, 'metadata', 'generateName')) ?? '';
  const optedIn = annotation(ns, NAMESPACE_OPT_IN_ANNOTATION) === OPT_IN_VALUE;
  const defaultClientId = nonBlank(annotation(ns, NAMESPACE_CLIENT_ID_ANNOTATION));
  const { labels, errors } = parseLabelList(annotation(ns, EXTRA_POD_LABELS_ANNOTATION) ?? '');
  const facts: NamespaceFacts = {
    name,
    optedIn,
    extraPodLabels: labels,
    extraPodLabelErrors: errors.map(
      (error) =>
        `namespace "${name}" annotation ${EXTRA_POD_LABELS_ANNOTATION}: ${error}; the entry is ignored`,
    ),
  };
  if (defaultClientId !== undefined) facts.defaultClientId = defaultClientId;
  return facts;
}

/**
 * Mirrors the opt-in annotation into the label `entra-access.io/workload-identity: enabled`.
 * Opted in: the label is added (the labels map whole when missing) or set to `enabled` when it
 * holds another value. Not opted in: the label, whatever its value, is removed; the key belongs
 * to entra-access and the label must mirror the annotation exactly. That removal is the only
 * `remove` any policy produces. Invalid extra-pod-labels entries come back as warnings, so
 * whoever sets the annotation hears of them at once.
 */
export function mutateNamespace(ns: Record<string, unknown>): PolicyResult {
  const facts = namespaceFacts(ns);
  const labels = labelsOf(ns);
  const present = Object.hasOwn(labels, NAMESPACE_OPT_IN_LABEL);
  let patch: PatchOperation[] = [];
  if (facts.optedIn && own(labels, NAMESPACE_OPT_IN_LABEL) !== OPT_IN_VALUE) {
    patch = addMapEntries(ns, ['metadata', 'labels'], [[NAMESPACE_OPT_IN_LABEL, OPT_IN_VALUE]]);
  } else if (!facts.optedIn && present) {
    patch = [{ op: 'remove', path: pointer('metadata', 'labels', NAMESPACE_OPT_IN_LABEL) }];
  }
  return { patch, warnings: facts.extraPodLabelErrors };
}
