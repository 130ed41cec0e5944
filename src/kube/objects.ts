// Small facts about Kubernetes objects as @kubernetes/client-node hands them over.

/** Milliseconds since epoch: lists carry Date objects, watch events ISO strings (docs/design.md §6). */
export function createdAt(object: { metadata?: { creationTimestamp?: Date | string } }): number {
  const t = object.metadata?.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}
