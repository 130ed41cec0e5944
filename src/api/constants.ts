// Every name the product shares with Kubernetes, Azure and its users, in one place: API group and
// kinds, the annotations and labels it reads and writes, and the conventions of Azure Workload
// Identity that the Azure SDKs in a pod rely on. Values here are contracts; change none lightly.

export const GROUP = 'entra-access.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const SERVER_KIND = 'EntraDatabaseServer';
export const SERVER_PLURAL = 'entradatabaseservers';
export const ACCESS_KIND = 'EntraDatabaseAccess';
export const ACCESS_PLURAL = 'entradatabaseaccesses';

/** Finalizer on EntraDatabaseAccess: cleanup (FIC, grants, role) runs before the object goes. */
export const FINALIZER = 'entra-access.io/cleanup';
/**
 * Annotation the operator sets on a ServiceAccount when a resource binding it is deleted with
 * deletionPolicy Orphan: the ARM IDs (comma-separated) of the federated credentials left in place
 * on purpose, which the sweep of orphaned credentials must not delete.
 */
export const RETAINED_CREDENTIALS_ANNOTATION = 'entra-access.io/retained-federated-credentials';

// --- Namespace opt-in, set by the platform team (docs/design.md §3) ---

/** Annotation a platform team sets on a Namespace to opt it in; its value must be OPT_IN_VALUE. */
export const NAMESPACE_OPT_IN_ANNOTATION = 'entra-access.io/workload-identity';
/**
 * Label mirrored from the annotation by the webhook and the controller, because admission
 * namespaceSelectors match labels only. Pod and ServiceAccount webhooks select on it.
 */
export const NAMESPACE_OPT_IN_LABEL = 'entra-access.io/workload-identity';
export const OPT_IN_VALUE = 'enabled';
/** Comma-separated UAMI resource IDs (each may end in `/*`) that access resources here may bind. */
export const ALLOWED_IDENTITIES_ANNOTATION = 'entra-access.io/allowed-identities';
/** Default client ID for service accounts in the namespace that no EntraDatabaseAccess names. */
export const NAMESPACE_CLIENT_ID_ANNOTATION = 'entra-access.io/client-id';
/** Extra labels for pods of the namespace, `k=v,k2=v2`. */
export const EXTRA_POD_LABELS_ANNOTATION = 'entra-access.io/extra-pod-labels';

// --- Azure Workload Identity conventions (the AKS add-on and its open-source webhook) ---

export const WI_USE_LABEL = 'azure.workload.identity/use';
export const WI_USE_VALUE = 'true';
export const WI_CLIENT_ID_ANNOTATION = 'azure.workload.identity/client-id';
export const WI_TENANT_ID_ANNOTATION = 'azure.workload.identity/tenant-id';
export const WI_TOKEN_EXPIRATION_ANNOTATION = 'azure.workload.identity/service-account-token-expiration';
/** `;`-separated container names that injection skips. */
export const WI_SKIP_CONTAINERS_ANNOTATION = 'azure.workload.identity/skip-containers';

export const ENV_AZURE_CLIENT_ID = 'AZURE_CLIENT_ID';
export const ENV_AZURE_TENANT_ID = 'AZURE_TENANT_ID';
export const ENV_AZURE_FEDERATED_TOKEN_FILE = 'AZURE_FEDERATED_TOKEN_FILE';
export const ENV_AZURE_AUTHORITY_HOST = 'AZURE_AUTHORITY_HOST';

export const TOKEN_VOLUME_NAME = 'azure-identity-token';
export const TOKEN_MOUNT_PATH = '/var/run/secrets/azure/tokens';
export const TOKEN_FILE_NAME = 'azure-identity-token';
export const TOKEN_FILE_PATH = `${TOKEN_MOUNT_PATH}/${TOKEN_FILE_NAME}`;
/** The audience Entra expects in a federated service-account token. */
export const TOKEN_AUDIENCE = 'api://AzureADTokenExchange';
export const TOKEN_EXPIRATION_DEFAULT_SECONDS = 3600;
export const TOKEN_EXPIRATION_MIN_SECONDS = 3600;
export const TOKEN_EXPIRATION_MAX_SECONDS = 86400;

/**
 * The AKS add-on's webhook configuration. Mutating webhook configurations run in order of their
 * names, and that webhook fires only if `azure.workload.identity/use` is already on the pod when
 * its turn comes, so ours must sort before it.
 */
export const AZURE_WI_WEBHOOK_CONFIGURATION_NAME = 'azure-wi-webhook-mutating-webhook-configuration';
/** Our default configuration name: "aks-" sorts before "azure-". */
export const DEFAULT_WEBHOOK_CONFIGURATION_NAME = 'aks-entra-access';

// --- Webhook endpoints (docs/design.md §4) ---

export const POD_WEBHOOK_PATH = '/mutate-v1-pod';
export const SERVICE_ACCOUNT_WEBHOOK_PATH = '/mutate-v1-serviceaccount';
export const NAMESPACE_WEBHOOK_PATH = '/mutate-v1-namespace';

// --- Status conditions of EntraDatabaseAccess and EntraDatabaseServer ---

export const ConditionType = {
  Ready: 'Ready',
  IdentityResolved: 'IdentityResolved',
  FederatedCredentialReady: 'FederatedCredentialReady',
  ServiceAccountReady: 'ServiceAccountReady',
  DatabaseRoleReady: 'DatabaseRoleReady',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/**
 * Condition reasons. Each failure reason has an entry in docs/troubleshooting.md saying what it
 * means and what to change.
 */
export const Reason = {
  // Ready and successes
  Reconciled: 'Reconciled',
  Resolved: 'Resolved',
  Created: 'Created',
  Adopted: 'Adopted',
  UpToDate: 'UpToDate',
  Connected: 'Connected',
  // Admission checks (nothing is written to Azure or the database)
  NamespaceNotOptedIn: 'NamespaceNotOptedIn',
  IdentityNotAllowed: 'IdentityNotAllowed',
  ServerNotFound: 'ServerNotFound',
  ServerNotAllowed: 'ServerNotAllowed',
  DatabaseNotAllowed: 'DatabaseNotAllowed',
  MemberOfNotAllowed: 'MemberOfNotAllowed',
  ReassignTargetNotAllowed: 'ReassignTargetNotAllowed',
  RoleNameReserved: 'RoleNameReserved',
  RoleNameInUse: 'RoleNameInUse',
  ServiceAccountConflict: 'ServiceAccountConflict',
  // Azure
  IdentityNotFound: 'IdentityNotFound',
  FederatedCredentialLimitReached: 'FederatedCredentialLimitReached',
  FederatedCredentialRejected: 'FederatedCredentialRejected',
  FederatedCredentialsUnsupported: 'FederatedCredentialsUnsupported',
  AzureRequestFailed: 'AzureRequestFailed',
  // Kubernetes
  ServiceAccountClientIdConflict: 'ServiceAccountClientIdConflict',
  KubernetesRequestFailed: 'KubernetesRequestFailed',
  // PostgreSQL
  ServerNotReady: 'ServerNotReady',
  RoleConflict: 'RoleConflict',
  RoleOwnsObjects: 'RoleOwnsObjects',
  ReassignOwnedFailed: 'ReassignOwnedFailed',
  DatabaseRequestFailed: 'DatabaseRequestFailed',
  GrantTargetNotFound: 'GrantTargetNotFound',
  GrantNotPermitted: 'GrantNotPermitted',
  PrincipalNotValidated: 'PrincipalNotValidated',
  EntraAuthUnavailable: 'EntraAuthUnavailable',
  // A step that waits for an earlier one
  Waiting: 'Waiting',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
