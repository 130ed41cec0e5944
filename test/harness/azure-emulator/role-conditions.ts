// The one kind of Azure ABAC condition the emulator evaluates: the condition Microsoft documents for
// delegating role assignment management with constraints ("Allow user to only assign selected
// roles"), which limits which role definitions a Role Based Access Control Administrator (or
// User Access Administrator) may assign and remove:
//
//   ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR
//    (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {g1, g2}))
//   AND
//   ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR
//    (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {g1, g2}))
//
// Sources: learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-examples
// and …/conditions-authorization-actions-attributes. An action the condition does not mention is
// unconstrained; an action it mentions without a role list the emulator can read is refused, so a
// condition the emulator does not understand fails closed. Pure.

export interface ConditionRequest {
  /** `Microsoft.Authorization/roleAssignments/write` or `/delete`. */
  action: string;
  /** The GUID of the role definition being assigned (write) or of the assignment removed (delete). */
  roleDefinitionGuid: string;
}

function guidList(condition: string, source: 'Request' | 'Resource'): string[] | undefined {
  const pattern = new RegExp(
    `@${source}\\[Microsoft\\.Authorization/roleAssignments:RoleDefinitionId\\]\\s+ForAnyOfAnyValues:GuidEquals\\s*\\{([^}]*)\\}`,
    'i',
  );
  const match = pattern.exec(condition);
  if (!match) return undefined;
  return match[1]!
    .split(',')
    .map((g) => g.trim().toLowerCase())
    .filter((g) => g !== '');
}

function mentions(condition: string, action: string): boolean {
  return condition.toLowerCase().includes(`actionmatches{'${action.toLowerCase()}'}`);
}

/** Whether an assignment's condition (absent: no condition) lets its holder perform `request`. */
export function conditionAllows(condition: string | undefined, request: ConditionRequest): boolean {
  if (condition === undefined || condition.trim() === '') return true;
  const action = request.action.toLowerCase();
  if (!mentions(condition, action)) return true;
  const source = action.endsWith('/delete') ? 'Resource' : 'Request';
  const allowed = guidList(condition, source);
  return allowed?.includes(request.roleDefinitionGuid.toLowerCase()) ?? false;
}
