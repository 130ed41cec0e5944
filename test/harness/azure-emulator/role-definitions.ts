// Azure's built-in role definitions the product names (by name or ID), with the permissions Azure
// lists for them, and the wildcard matching Azure RBAC uses to decide whether a role grants an
// action. Pure data and functions.
//
// IDs and permissions: learn.microsoft.com/azure/role-based-access-control/built-in-roles
// (…/built-in-roles/privileged, …/general, …/storage, …/security). Built-in role IDs are the same
// in every tenant. Action strings compare case-insensitively and `*` matches any run of characters
// (learn.microsoft.com/azure/role-based-access-control/role-definitions, "Actions").

export interface RolePermissions {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

export interface RoleDefinition extends RolePermissions {
  /** The role's GUID, the last segment of its roleDefinitionId. */
  id: string;
  roleName: string;
  description: string;
}

const none: string[] = [];

function role(
  id: string,
  roleName: string,
  description: string,
  p: Partial<RolePermissions>,
): RoleDefinition {
  return {
    id,
    roleName,
    description,
    actions: p.actions ?? none,
    notActions: p.notActions ?? none,
    dataActions: p.dataActions ?? none,
    notDataActions: p.notDataActions ?? none,
  };
}

const BLOBS = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs';
const CONTAINERS = 'Microsoft.Storage/storageAccounts/blobServices/containers';

export const ROLE_IDS = {
  owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  userAccessAdministrator: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  roleBasedAccessControlAdministrator: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
} as const;

export const BUILT_IN_ROLES: readonly RoleDefinition[] = Object.freeze([
  role(
    ROLE_IDS.owner,
    'Owner',
    'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.',
    {
      actions: ['*'],
    },
  ),
  role(
    ROLE_IDS.contributor,
    'Contributor',
    'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.',
    {
      actions: ['*'],
      notActions: [
        'Microsoft.Authorization/*/Delete',
        'Microsoft.Authorization/*/Write',
        'Microsoft.Authorization/elevateAccess/Action',
        'Microsoft.Blueprint/blueprintAssignments/write',
        'Microsoft.Blueprint/blueprintAssignments/delete',
        'Microsoft.Compute/galleries/share/action',
        'Microsoft.Purview/consents/write',
        'Microsoft.Purview/consents/delete',
        'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
        'Microsoft.Subscription/cancel/action',
        'Microsoft.Subscription/enable/action',
      ],
    },
  ),
  role(ROLE_IDS.reader, 'Reader', 'View all resources, but does not allow you to make any changes.', {
    actions: ['*/read'],
  }),
  role(
    ROLE_IDS.userAccessAdministrator,
    'User Access Administrator',
    'Lets you manage user access to Azure resources.',
    {
      actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'],
    },
  ),
  role(
    ROLE_IDS.roleBasedAccessControlAdministrator,
    'Role Based Access Control Administrator',
    'Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.',
    {
      actions: [
        'Microsoft.Authorization/roleAssignments/write',
        'Microsoft.Authorization/roleAssignments/delete',
        '*/read',
        'Microsoft.Support/*',
      ],
    },
  ),
  role(
    ROLE_IDS.storageBlobDataReader,
    'Storage Blob Data Reader',
    'Read and list Azure Storage containers and blobs.',
    {
      actions: [
        `${CONTAINERS}/read`,
        'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action',
      ],
      dataActions: [`${BLOBS}/read`],
    },
  ),
  role(
    ROLE_IDS.storageBlobDataContributor,
    'Storage Blob Data Contributor',
    'Read, write, and delete Azure Storage containers and blobs.',
    {
      actions: [
        `${CONTAINERS}/delete`,
        `${CONTAINERS}/read`,
        `${CONTAINERS}/write`,
        'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action',
      ],
      dataActions: [
        `${BLOBS}/delete`,
        `${BLOBS}/read`,
        `${BLOBS}/write`,
        `${BLOBS}/move/action`,
        `${BLOBS}/add/action`,
      ],
    },
  ),
  role(
    ROLE_IDS.storageBlobDataOwner,
    'Storage Blob Data Owner',
    'Provides full access to Azure Storage blob containers and data, including assigning POSIX access control.',
    {
      actions: [
        `${CONTAINERS}/*`,
        'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action',
      ],
      dataActions: [`${BLOBS}/*`],
    },
  ),
  role(
    ROLE_IDS.keyVaultSecretsUser,
    'Key Vault Secrets User',
    'Read secret contents. Only works for key vaults that use the Azure role-based access control permission model.',
    {
      dataActions: [
        'Microsoft.KeyVault/vaults/secrets/getSecret/action',
        'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
      ],
    },
  ),
]);

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(text: string): boolean {
  return GUID.test(text);
}

/**
 * The built-in role a roleDefinitionId names: a bare GUID, or an ID ending in
 * `/providers/Microsoft.Authorization/roleDefinitions/{guid}` (at the tenant root or under a
 * subscription, as ARM accepts both).
 */
export function roleById(roleDefinitionId: string): RoleDefinition | undefined {
  const match = /(?:^|\/providers\/microsoft\.authorization\/roledefinitions\/)([0-9a-f-]{36})$/i.exec(
    roleDefinitionId.trim(),
  );
  const guid = match?.[1]?.toLowerCase();
  return guid ? BUILT_IN_ROLES.find((r) => r.id === guid) : undefined;
}

/** Role names compare case-insensitively, as ARM's `roleName eq '…'` filter does. */
export function roleByName(roleName: string): RoleDefinition | undefined {
  const wanted = roleName.toLowerCase();
  return BUILT_IN_ROLES.find((r) => r.roleName.toLowerCase() === wanted);
}

/** The subscription-relative roleDefinitionId ARM stores on assignments under a subscription. */
export function roleDefinitionId(role: RoleDefinition, subscriptionId: string | undefined): string {
  const prefix = subscriptionId ? `/subscriptions/${subscriptionId}` : '';
  return `${prefix}/providers/Microsoft.Authorization/roleDefinitions/${role.id}`;
}

/** The role definition as ARM returns it (2022-04-01). */
export function roleDefinitionResource(role: RoleDefinition, subscriptionId: string | undefined) {
  return {
    id: roleDefinitionId(role, subscriptionId),
    name: role.id,
    type: 'Microsoft.Authorization/roleDefinitions',
    properties: {
      roleName: role.roleName,
      type: 'BuiltInRole',
      description: role.description,
      assignableScopes: ['/'],
      permissions: [
        {
          actions: [...role.actions],
          notActions: [...role.notActions],
          dataActions: [...role.dataActions],
          notDataActions: [...role.notDataActions],
        },
      ],
      createdOn: '2015-02-02T21:55:09.8806423Z',
      updatedOn: '2024-01-01T00:00:00.0000000Z',
      createdBy: null,
      updatedBy: null,
    },
  };
}

const patternCache = new Map<string, RegExp>();

/** Whether an RBAC action pattern (`*` wildcards, case-insensitive) covers `action`. */
export function actionMatches(pattern: string, action: string): boolean {
  let regex = patternCache.get(pattern);
  if (!regex) {
    const body = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    regex = new RegExp(`^${body}$`, 'i');
    patternCache.set(pattern, regex);
  }
  return regex.test(action);
}

/**
 * Whether the role grants `action`: listed in Actions (DataActions for a data action) and not in
 * NotActions (NotDataActions). Control and data actions never grant each other.
 */
export function roleGrants(role: RoleDefinition, action: string, kind: 'control' | 'data'): boolean {
  const [allowed, denied] =
    kind === 'control' ? [role.actions, role.notActions] : [role.dataActions, role.notDataActions];
  return allowed.some((p) => actionMatches(p, action)) && !denied.some((p) => actionMatches(p, action));
}

/** Roles that may write role assignments: what Azure calls privileged for our purposes. */
export function canWriteRoleAssignments(role: RoleDefinition): boolean {
  return roleGrants(role, 'Microsoft.Authorization/roleAssignments/write', 'control');
}
