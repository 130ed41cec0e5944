// Microsoft.Authorization at any scope, as @azure/arm-authorization (api-version 2022-04-01) calls
// it: role assignments (PUT, GET, DELETE, list at scope with $filter) and the built-in role
// definitions (GET, list with `roleName eq '…'`). ARM's authentication and api-version check,
// injected faults, ARM's request throttling (on by default), and the caller's own rights: a role
// assignment write or delete needs an effective assignment at or above the scope of a role that
// grants `Microsoft.Authorization/roleAssignments/write` (or `/delete`), with its ABAC condition
// (role-conditions.ts) fulfilled; reads need `…/roleAssignments/read`. The rules themselves are in
// role-assignments.ts.
//
// Differences from Azure, on purpose: the resource a scope names is not looked up (Azure answers
// an unknown resource group or resource with a 404 of its own); role definition reads need no
// rights; only built-in roles exist; there is no paging (no nextLink).
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  Router,
} from 'express';
import { sendArmError } from './arm-errors.ts';
import { authenticate, requireApiVersion } from './arm-routes.ts';
import {
  type AuthorizationPath,
  normalizeScope,
  parseAuthorizationPath,
  subscriptionOf,
} from './arm-scopes.ts';
import { ARM_GLOBAL_LIMIT_FACTOR, type ArmRequestOperation } from './config.ts';
import type { EmulatorContext } from './context.ts';
import type { AuthorizationOperation } from './counters.ts';
import { faultMiddleware } from './fault-middleware.ts';
import {
  type ArmError,
  authorizationFailed,
  grantingAssignment,
  listAtScope,
  parseListFilter,
  parseRoleAssignmentBody,
  roleAssignmentResource,
} from './role-assignments.ts';
import { BUILT_IN_ROLES, roleById, roleByName, roleDefinitionResource } from './role-definitions.ts';
import type { AccessTokenClaims } from './tokens.ts';

const ACTION = {
  read: 'Microsoft.Authorization/roleAssignments/read',
  write: 'Microsoft.Authorization/roleAssignments/write',
  delete: 'Microsoft.Authorization/roleAssignments/delete',
} as const;

interface Located {
  path: AuthorizationPath;
  operation: AuthorizationOperation;
}

function operationOf(method: string, path: AuthorizationPath): AuthorizationOperation | undefined {
  switch (path.kind) {
    case 'roleAssignment':
      if (method === 'PUT') return 'roleAssignmentPut';
      if (method === 'GET') return 'roleAssignmentGet';
      if (method === 'DELETE') return 'roleAssignmentDelete';
      return undefined;
    case 'roleAssignments':
      return method === 'GET' ? 'roleAssignmentList' : undefined;
    case 'roleDefinition':
      return method === 'GET' ? 'roleDefinitionGet' : undefined;
    case 'roleDefinitions':
      return method === 'GET' ? 'roleDefinitionList' : undefined;
  }
}

function fail(res: Response, error: ArmError, headers: Record<string, string> = {}): void {
  sendArmError(res, error.status, error.code, error.message, headers);
}

function located(res: Response): Located {
  return res.locals.authorization as Located;
}

function caller(res: Response): { objectId: string; clientId: string } {
  const claims = res.locals.armCaller as AccessTokenClaims;
  return { objectId: String(claims.oid), clientId: String(claims.appid) };
}

function countRequests(ctx: EmulatorContext): RequestHandler {
  return (_req, res, next) => {
    res.on('finish', () => {
      const { operation } = located(res);
      ctx.counters.recordSurface('authorization', operation, res.statusCode, {
        write: operation === 'roleAssignmentPut' || operation === 'roleAssignmentDelete',
        errorCode: res.statusCode >= 400 ? (res.locals.armErrorCode as string | undefined) : undefined,
        throttledBy: res.locals.throttledBy as string | undefined,
      });
    });
    next();
  };
}

/** ARM's per-principal and global buckets for the request's subscription (config.ts). */
function throttle(ctx: EmulatorContext): RequestHandler {
  return (_req, res, next) => {
    const { path, operation } = located(res);
    const kind: ArmRequestOperation =
      operation === 'roleAssignmentPut'
        ? 'writes'
        : operation === 'roleAssignmentDelete'
          ? 'deletes'
          : 'reads';
    const admission = ctx.armThrottle.take(
      kind,
      ctx.settings.authorizationRateLimits,
      { subscription: subscriptionOf(path.scope) ?? 'tenant', principal: caller(res).objectId },
      Date.now(),
    );
    if (admission.allowed) return next();
    res.locals.throttledBy = admission.by;
    const who = admission.by.endsWith('/global')
      ? `all callers together (${ARM_GLOBAL_LIMIT_FACTOR} times one caller's limit)`
      : 'this caller';
    sendArmError(
      res,
      429,
      'TooManyRequests',
      `The request is being throttled: too many ${kind} for this subscription by ${who}. Retry after ${admission.retryAfterSeconds} seconds.`,
      { 'Retry-After': String(admission.retryAfterSeconds) },
    );
  };
}

/** Refuses with 403 AuthorizationFailed unless the caller holds `action` at the scope. */
function authorized(
  ctx: EmulatorContext,
  res: Response,
  action: string,
  scope: string,
  target: string,
  roleDefinitionGuid?: string,
): boolean {
  const who = caller(res);
  const grant = grantingAssignment(ctx.roleAssignments, {
    principalId: who.objectId,
    action,
    kind: 'control',
    scope,
    now: Date.now(),
    propagationSeconds: ctx.settings.roleAssignmentPropagationSeconds,
    ...(roleDefinitionGuid ? { roleDefinitionGuid } : {}),
  });
  if (grant) return true;
  fail(res, authorizationFailed(who, action, target));
  return false;
}

function assignmentTarget(scope: string, name: string): string {
  return `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/roleAssignments/${name}`;
}

function putAssignment(ctx: EmulatorContext, req: Request, res: Response) {
  const { path } = located(res);
  if (path.kind !== 'roleAssignment') return;
  const props = parseRoleAssignmentBody(req.body);
  if ('status' in props) return fail(res, props);
  const guid = (props.roleDefinitionId.split('/').pop() ?? '').toLowerCase();
  if (!authorized(ctx, res, ACTION.write, path.scope, assignmentTarget(path.scope, path.name), guid)) return;
  const now = Date.now();
  const principal = ctx.identities.byPrincipalId(props.principalId);
  const problem = ctx.roleAssignments.checkPut(path.scope, path.name, props, {
    now,
    tenantId: ctx.config.tenantId,
    principalCreatedAt: principal?.createdAt,
    principalActualType: 'ServicePrincipal',
    replicationSeconds: ctx.settings.principalReplicationSeconds,
    replicationSecondsWithType: ctx.settings.principalReplicationSecondsWithType,
    maxPerSubscription: ctx.settings.roleAssignmentsPerSubscription,
  });
  if (problem) return fail(res, problem);
  const { created, assignment } = ctx.roleAssignments.put(path.scope, path.name, props, {
    now,
    createdBy: caller(res).objectId,
    principalType: 'ServicePrincipal',
  });
  res.status(created ? 201 : 200).json(roleAssignmentResource(assignment));
}

function getAssignment(ctx: EmulatorContext, res: Response) {
  const { path } = located(res);
  if (path.kind !== 'roleAssignment') return;
  if (!authorized(ctx, res, ACTION.read, path.scope, assignmentTarget(path.scope, path.name))) return;
  const assignment = ctx.roleAssignments.get(path.scope, path.name);
  if (!assignment) {
    return fail(res, {
      status: 404,
      code: 'RoleAssignmentNotFound',
      message: `The role assignment '${path.name}' is not found.`,
    });
  }
  res.json(roleAssignmentResource(assignment));
}

function deleteAssignment(ctx: EmulatorContext, res: Response) {
  const { path } = located(res);
  if (path.kind !== 'roleAssignment') return;
  const existing = ctx.roleAssignments.get(path.scope, path.name);
  const target = assignmentTarget(path.scope, path.name);
  if (!authorized(ctx, res, ACTION.delete, path.scope, target, existing?.role.id)) return;
  const removed = ctx.roleAssignments.delete(path.scope, path.name, Date.now());
  if (!removed) {
    res.status(204).end();
    return;
  }
  res.json(roleAssignmentResource(removed));
}

function listAssignments(ctx: EmulatorContext, req: Request, res: Response) {
  const { path } = located(res);
  if (path.kind !== 'roleAssignments') return;
  if (!authorized(ctx, res, ACTION.read, path.scope, path.scope)) return;
  const raw = req.query.$filter;
  const filter = parseListFilter(typeof raw === 'string' ? raw : undefined);
  if (!filter) {
    return fail(res, {
      status: 400,
      code: 'UnsupportedQuery',
      message: `The filter '${String(raw)}' is not supported. Supported: atScope(), principalId eq '{id}', assignedTo('{id}').`,
    });
  }
  res.json({ value: listAtScope(ctx.roleAssignments, path.scope, filter).map(roleAssignmentResource) });
}

function getDefinition(res: Response) {
  const { path } = located(res);
  if (path.kind !== 'roleDefinition') return;
  const role = roleById(path.name);
  if (!role) {
    return fail(res, {
      status: 404,
      code: 'RoleDefinitionDoesNotExist',
      message: `The specified role definition with ID '${path.name.replace(/-/g, '')}' does not exist.`,
    });
  }
  res.json(roleDefinitionResource(role, subscriptionOf(path.scope)));
}

function listDefinitions(req: Request, res: Response) {
  const { path } = located(res);
  if (path.kind !== 'roleDefinitions') return;
  const raw = typeof req.query.$filter === 'string' ? req.query.$filter.trim() : '';
  const byName = /^roleName\s+eq\s+'([^']*)'$/i.exec(raw);
  let roles = [...BUILT_IN_ROLES];
  if (byName) {
    const role = roleByName(byName[1]!);
    roles = role ? [role] : [];
  } else if (raw !== '' && !/^type\s+eq\s+'BuiltInRole'$/i.test(raw)) {
    return fail(res, {
      status: 400,
      code: 'UnsupportedQuery',
      message: `The filter '${raw}' is not supported. Supported: roleName eq '{name}', type eq 'BuiltInRole'.`,
    });
  }
  res.json({ value: roles.map((role) => roleDefinitionResource(role, subscriptionOf(path.scope))) });
}

function handle(ctx: EmulatorContext): RequestHandler {
  return (req, res) => {
    switch (located(res).operation) {
      case 'roleAssignmentPut':
        return putAssignment(ctx, req, res);
      case 'roleAssignmentGet':
        return getAssignment(ctx, res);
      case 'roleAssignmentDelete':
        return deleteAssignment(ctx, res);
      case 'roleAssignmentList':
        return listAssignments(ctx, req, res);
      case 'roleDefinitionGet':
        return getDefinition(res);
      case 'roleDefinitionList':
        return listDefinitions(req, res);
    }
  };
}

/**
 * Serves any path with `/providers/Microsoft.Authorization/roleAssignments|roleDefinitions`; other
 * requests pass on. Mount before the MSI routes, which answer 404 for every path they do not know.
 */
export function authorizationRoutes(ctx: EmulatorContext): RequestHandler {
  const chain = Router();
  chain.use(
    countRequests(ctx),
    authenticate(ctx),
    requireApiVersion,
    faultMiddleware(ctx, 'arm'),
    throttle(ctx),
    express.json({ limit: '1mb' }),
    handle(ctx),
  );
  chain.use((error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = error.status && error.status >= 400 && error.status < 500 ? error.status : 500;
    sendArmError(
      res,
      status,
      status === 500 ? 'InternalServerError' : 'InvalidRequestContent',
      error.message,
    );
  });
  return (req, res, next) => {
    const [rawPath = '', query] = req.originalUrl.split('?', 2) as [string, string | undefined];
    const path = parseAuthorizationPath(rawPath);
    if (!path) return next();
    const operation = operationOf(req.method, path);
    if (!operation) {
      sendArmError(res, 405, 'MethodNotAllowed', `The emulator does not serve ${req.method} on ${rawPath}.`);
      return;
    }
    // One spelling of the path for the fault rules: the SDK sends `//subscriptions/…` for a scope
    // given with its leading slash, which URL parsers read as a host.
    const clean = normalizeScope(rawPath) + (query !== undefined ? `?${query}` : '');
    req.originalUrl = clean;
    req.url = clean;
    res.locals.authorization = { path, operation } satisfies Located;
    chain(req, res, next);
  };
}
