// Which ServiceAccount each resource binds to which managed identity, across every kind that
// binds one (EntraDatabaseAccess today, EntraWorkloadIdentity next), indexed by identity and by
// namespace/ServiceAccount. One index answers every cross-resource question the operator asks:
// - is a federated credential (identity + subject) still used by another resource;
// - is a ServiceAccount already bound to another identity by an earlier resource;
// - which identity does the webhook give a ServiceAccount;
// - whose admission verdict can a change to this one change (so only they are re-queued).
// Asking any of these of one kind's objects alone would let deleting one kind remove a FIC the
// other still uses. Pure: the caller feeds it objects from its informer caches.
import { identityIdKey } from '../azure/identity-id.ts';
import { createdAt } from '../kube/objects.ts';
import { MultiMap } from '../util/multimap.ts';

/** A federated credential a resource recorded as made (and not yet deleted). */
export interface RecordedCredential {
  identityResourceId: string;
  name: string;
  subject?: string;
}

/** What one resource binds, as the index keeps it. */
export interface Binding {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  /** Milliseconds since epoch; with the key, decides which of two claims came first. */
  createdAt: number;
  deleting: boolean;
  serviceAccountName: string;
  /** spec.identity.resourceId as written. */
  identityResourceId: string;
  /** status.identity once resolved: what the webhook writes on the ServiceAccount and pods. */
  resolved?: { clientId: string; tenantId: string };
  /** Every federated credential its status records (in force, and stale ones not yet deleted). */
  recorded: RecordedCredential[];
}

/** How a kind's objects read as bindings. */
export type BindingOf<T> = (object: T) => Binding | undefined;

export function bindingKey(binding: Pick<Binding, 'kind' | 'namespace' | 'name'>): string {
  return `${binding.kind}/${binding.namespace}/${binding.name}`;
}

/** `namespace/name`, as the work queue and messages name a namespaced object. */
export function objectKey(binding: Pick<Binding, 'namespace' | 'name'>): string {
  return `${binding.namespace}/${binding.name}`;
}

function serviceAccountKey(namespace: string, serviceAccountName: string): string {
  return `${namespace}/${serviceAccountName}`;
}

/**
 * Whether `a` came first: the first claimant keeps a contested claim, so a conflict never takes
 * down a working app. Ties (same second) go by kind and key, so every reader agrees.
 */
export function cameFirst(a: Binding, b: Binding): boolean {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return bindingKey(a) < bindingKey(b);
}

export class BindingIndex {
  readonly #bindings = new Map<string, Binding>();
  readonly #byIdentity = new MultiMap<Binding>(bindingKey);
  readonly #byServiceAccount = new MultiMap<Binding>(bindingKey);

  /** Adds or replaces `binding`; returns the one it replaced. */
  set(binding: Binding): Binding | undefined {
    const key = bindingKey(binding);
    const previous = this.#bindings.get(key);
    if (previous) this.#unlink(previous);
    this.#bindings.set(key, binding);
    for (const identity of identitiesOf(binding)) this.#byIdentity.add(identity, binding);
    this.#byServiceAccount.add(serviceAccountKey(binding.namespace, binding.serviceAccountName), binding);
    return previous;
  }

  /** Removes the binding of kind/namespace/name; returns it. */
  delete(kind: string, namespace: string, name: string): Binding | undefined {
    const key = bindingKey({ kind, namespace, name });
    const previous = this.#bindings.get(key);
    if (!previous) return undefined;
    this.#unlink(previous);
    this.#bindings.delete(key);
    return previous;
  }

  get(kind: string, namespace: string, name: string): Binding | undefined {
    return this.#bindings.get(bindingKey({ kind, namespace, name }));
  }

  get size(): number {
    return this.#bindings.size;
  }

  /** Every binding whose spec names `identityResourceId` or whose status records a FIC on it. */
  onIdentity(identityResourceId: string): Binding[] {
    return this.#byIdentity.get(identityIdKey(identityResourceId));
  }

  /** Identities some binding names or records, as keys (lower-cased resource IDs). */
  identities(): string[] {
    return this.#byIdentity.keys();
  }

  /** Every binding of this ServiceAccount (any kind, any identity). */
  ofServiceAccount(namespace: string, serviceAccountName: string): Binding[] {
    return this.#byServiceAccount.get(serviceAccountKey(namespace, serviceAccountName));
  }

  /**
   * Whether a resource other than `except` (live, not being deleted) binds `namespace/sa` to
   * `identityResourceId`: then the FIC for that subject on that identity is still needed.
   */
  credentialInUse(
    identityResourceId: string,
    namespace: string,
    serviceAccountName: string,
    except?: Pick<Binding, 'kind' | 'namespace' | 'name'>,
  ): boolean {
    const identity = identityIdKey(identityResourceId);
    const skip = except ? bindingKey(except) : undefined;
    return this.ofServiceAccount(namespace, serviceAccountName).some(
      (other) =>
        bindingKey(other) !== skip && !other.deleting && identityIdKey(other.identityResourceId) === identity,
    );
  }

  /**
   * The earliest other binding of the same ServiceAccount to a different identity, if it came
   * before `binding`: a ServiceAccount has one identity, and the first claim keeps it until its
   * resource is gone (while it is being deleted its clean-up still acts on that ServiceAccount).
   */
  earlierConflict(binding: Binding): Binding | undefined {
    const identity = identityIdKey(binding.identityResourceId);
    return this.ofServiceAccount(binding.namespace, binding.serviceAccountName)
      .filter(
        (other) =>
          bindingKey(other) !== bindingKey(binding) &&
          identityIdKey(other.identityResourceId) !== identity &&
          cameFirst(other, binding),
      )
      .sort((a, b) => (cameFirst(a, b) ? -1 : 1))[0];
  }

  /**
   * What the webhook gives a ServiceAccount: the identity of the oldest binding that has resolved
   * one. Oldest first, so two resources that disagree (the later one is refused with
   * ServiceAccountConflict) still give every admission the same answer.
   */
  resolvedFor(namespace: string, serviceAccountName: string): Binding | undefined {
    return this.ofServiceAccount(namespace, serviceAccountName)
      .filter((binding) => binding.resolved?.clientId)
      .sort((a, b) => (cameFirst(a, b) ? -1 : 1))[0];
  }

  /**
   * The bindings whose admission verdict a change to `binding` (its creation, edit or deletion)
   * can change: the others of its ServiceAccount bound to another identity (ServiceAccountConflict
   * goes to the earlier one). Those on the same identity are not: sharing a FIC or a role needs no
   * reconcile of the sharer, and re-queueing them cost several reconciles per change.
   */
  contenders(binding: Binding): Binding[] {
    const identity = identityIdKey(binding.identityResourceId);
    const self = bindingKey(binding);
    return this.ofServiceAccount(binding.namespace, binding.serviceAccountName).filter(
      (other) => bindingKey(other) !== self && identityIdKey(other.identityResourceId) !== identity,
    );
  }

  #unlink(binding: Binding): void {
    for (const identity of identitiesOf(binding)) this.#byIdentity.delete(identity, binding);
    this.#byServiceAccount.delete(serviceAccountKey(binding.namespace, binding.serviceAccountName), binding);
  }
}

function identitiesOf(binding: Binding): Set<string> {
  const identities = new Set([identityIdKey(binding.identityResourceId)]);
  for (const fic of binding.recorded) identities.add(identityIdKey(fic.identityResourceId));
  return identities;
}

/** The fields every binding kind shares, read from its object. */
export interface BindingFields {
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    creationTimestamp?: Date | string;
    deletionTimestamp?: Date | string;
  };
  spec?: { serviceAccountName?: string; identity?: { resourceId?: string } };
  status?: {
    identity?: { resourceId?: string; clientId?: string; tenantId?: string };
    federatedCredential?: { name?: string; subject?: string; identityResourceId?: string };
    staleFederatedCredentials?: Array<{ name?: string; subject?: string; identityResourceId?: string }>;
  };
}

/**
 * The binding of any kind whose objects carry spec.serviceAccountName, spec.identity and the
 * shared status fields; undefined for an object that binds nothing readable. `kind` is given by
 * the caller: list items of built-in clients do not always carry it.
 */
export function bindingOf(object: BindingFields, kind: string): Binding | undefined {
  const { metadata, spec, status } = object;
  if (!metadata.name || !metadata.namespace || !spec?.serviceAccountName || !spec.identity?.resourceId)
    return undefined;
  const recorded: RecordedCredential[] = [];
  const current = status?.federatedCredential;
  // The credential in force is on the identity it names, else (written before that field existed)
  // on the identity the status names.
  const currentIdentity = current?.identityResourceId || status?.identity?.resourceId;
  if (current?.name && currentIdentity) {
    recorded.push({
      identityResourceId: currentIdentity,
      name: current.name,
      ...(current.subject ? { subject: current.subject } : {}),
    });
  }
  for (const stale of status?.staleFederatedCredentials ?? []) {
    if (stale.name && stale.identityResourceId) {
      recorded.push({
        identityResourceId: stale.identityResourceId,
        name: stale.name,
        ...(stale.subject ? { subject: stale.subject } : {}),
      });
    }
  }
  const clientId = status?.identity?.clientId;
  return {
    kind,
    namespace: metadata.namespace,
    name: metadata.name,
    uid: metadata.uid ?? '',
    generation: metadata.generation ?? 0,
    createdAt: createdAt(object),
    deleting: Boolean(metadata.deletionTimestamp),
    serviceAccountName: spec.serviceAccountName,
    identityResourceId: spec.identity.resourceId,
    ...(clientId ? { resolved: { clientId, tenantId: status?.identity?.tenantId ?? '' } } : {}),
    recorded,
  };
}
