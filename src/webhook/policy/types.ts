// The contract between the webhook's I/O (handlers: decode, look up, respond) and its pure
// mutation policies: plain data in, a JSON Patch and findings out. No policy does I/O.

/** One RFC 6902 operation. Paths are JSON Pointers (RFC 6901): `/` in a key is `~1`, `~` is `~0`. */
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** `auto` is resolved by the caller before a policy runs. */
export type InjectionMode = 'label' | 'inject';

export interface PolicyResult {
  /** Empty when nothing needs to change (including on reinvocation of an already mutated object). */
  patch: PatchOperation[];
  /**
   * Problems the user should see that do not block admission, e.g. an invalid entry in the
   * namespace's extra-pod-labels annotation. The handler turns each into a Warning Event (never
   * for a dry-run request) and an AdmissionResponse warning.
   */
  warnings: string[];
  /** Set when the object must be refused; a message that says what to change. */
  denied?: string;
}

/** What a Namespace says about entra-access, parsed from its annotations. */
export interface NamespaceFacts {
  name: string;
  optedIn: boolean;
  /** `entra-access.io/client-id`, when set. */
  defaultClientId?: string;
  /** Valid entries of `entra-access.io/extra-pod-labels`. */
  extraPodLabels: Record<string, string>;
  /** One message per invalid entry of `entra-access.io/extra-pod-labels`, naming the entry. */
  extraPodLabelErrors: string[];
}

/** The identity an EntraDatabaseAccess binds to a service account, once the controller resolved it. */
export interface IdentityBinding {
  clientId: string;
  tenantId: string;
  /** namespace/name of the EntraDatabaseAccess, for messages. */
  source: string;
}

export interface ServiceAccountPolicyInput {
  /** The ServiceAccount exactly as in the AdmissionRequest (`object`), never re-serialised. */
  serviceAccount: Record<string, unknown>;
  namespace: NamespaceFacts;
  /** From an EntraDatabaseAccess naming this service account, if any and resolved. */
  binding?: IdentityBinding;
  /** The operator's --tenant-id, used with a namespace default client ID. */
  tenantId: string;
}

export interface ServiceAccountPolicyResult extends PolicyResult {
  /**
   * The service account carries a different client-id than the one wanted. It is left as the
   * user set it; the controller reports this on the access resource.
   */
  conflict?: { existing: string; wanted: string };
}

export interface PodPolicySettings {
  mode: InjectionMode;
  /** --extra-pod-labels, merged under the namespace's (neither overwrites a label already on the pod). */
  extraPodLabels: Record<string, string>;
  /** --tenant-id: AZURE_TENANT_ID when the service account has no tenant-id annotation. */
  tenantId: string;
  /** AZURE_AUTHORITY_HOST, e.g. https://login.microsoftonline.com/ */
  authorityHost: string;
}

export interface PodPolicyInput {
  /** The Pod exactly as in the AdmissionRequest (`object`), never re-serialised. */
  pod: Record<string, unknown>;
  /** The request's namespace (a pod being created may not carry metadata.namespace yet). */
  namespace: NamespaceFacts;
  /** The pod's ServiceAccount (empty serviceAccountName means `default`), if it exists. */
  serviceAccount?: Record<string, unknown>;
  /** From an EntraDatabaseAccess naming the pod's service account, if any and resolved. */
  binding?: IdentityBinding;
  settings: PodPolicySettings;
}
