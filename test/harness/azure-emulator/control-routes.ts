// The control API (/_emulator/*) tests use to set up the world and look inside it. No auth: the
// emulator is a loopback test tool. Errors are `{"error": "<message>"}` with status 400/404.
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { containerScope, normalizeScope } from './arm-scopes.ts';
import { applySettingsPatch } from './config.ts';
import { type EmulatorContext, resetContext } from './context.ts';
import { parseFaultRule } from './faults.ts';
import { parseRoleAssignmentBody, type RoleAssignment, roleAssignmentResource } from './role-assignments.ts';
import { roleByName, roleDefinitionId } from './role-definitions.ts';
import {
  checkFicPut,
  ficResource,
  type Identity,
  identityArmId,
  type NewIdentity,
  parseFicBody,
  putFic,
} from './state.ts';

/** An identity as the control API shows it: its ARM id and fields, without the FIC map. */
export type IdentityView = Omit<Identity, 'fics' | 'writeInFlight' | 'createdAt'> & { id: string };

function view(identity: Identity): IdentityView {
  return {
    id: identityArmId(identity),
    subscriptionId: identity.subscriptionId,
    resourceGroup: identity.resourceGroup,
    name: identity.name,
    location: identity.location,
    clientId: identity.clientId,
    principalId: identity.principalId,
    tenantId: identity.tenantId,
  };
}

function parseNewIdentity(body: unknown): NewIdentity {
  if (typeof body !== 'object' || body === null) throw new Error('expected a JSON object');
  const b = body as Record<string, unknown>;
  const text = (key: string, required: boolean): string | undefined => {
    const value = b[key];
    if (value === undefined || value === null) {
      if (required) throw new Error(`${key} is required`);
      return undefined;
    }
    if (typeof value !== 'string' || value === '') throw new Error(`${key} must be a non-empty string`);
    return value;
  };
  const spec: NewIdentity = {
    subscriptionId: text('subscriptionId', true)!,
    resourceGroup: text('resourceGroup', true)!,
    name: text('name', true)!,
  };
  const location = text('location', false);
  if (location) spec.location = location;
  const clientId = text('clientId', false);
  if (clientId) spec.clientId = clientId;
  const principalId = text('principalId', false);
  if (principalId) spec.principalId = principalId;
  return spec;
}

/** A role assignment as the control API shows it: ARM's resource plus how it came to be. */
export type RoleAssignmentView = ReturnType<typeof roleAssignmentResource> & {
  /** Made through the control API: effective at once, whatever the propagation delay. */
  seeded: boolean;
};

function assignmentView(a: RoleAssignment): RoleAssignmentView {
  return { ...roleAssignmentResource(a), seeded: a.seeded };
}

export interface SeedRoleAssignment {
  scope: string;
  /** A built-in role's name (`roleName`) or its roleDefinitionId (GUID or full ID). */
  roleName?: string;
  roleDefinitionId?: string;
  principalId: string;
  principalType?: string;
  /** The assignment's GUID; a random one when absent. */
  name?: string;
  condition?: string;
  conditionVersion?: string;
  description?: string;
}

export interface StorageAccountView {
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  containers: Array<{ name: string; id: string; blobs: string[] }>;
}

export function controlRouter(ctx: EmulatorContext): Router {
  const router = Router();
  router.use(express.json({ limit: '1mb' }));

  router.get('/health', (_req, res) => {
    res.json({ ok: true });
  });

  router.post('/identities', (req, res) => {
    const identity = ctx.identities.create(parseNewIdentity(req.body));
    res.status(201).json(view(identity));
  });

  router.get('/identities', (_req, res) => {
    res.json({
      value: ctx.identities.all().map((identity) => ({
        ...view(identity),
        federatedIdentityCredentials: [...identity.fics.values()].map((fic) => ({
          ...ficResource(identity, fic),
          changedAt: new Date(fic.changedAt).toISOString(),
          seeded: fic.seeded,
        })),
      })),
    });
  });

  router.delete('/identities/:subscriptionId/:resourceGroup/:name', (req, res) => {
    const { subscriptionId, resourceGroup, name } = req.params;
    if (!ctx.identities.delete(subscriptionId, resourceGroup, name)) {
      return res.status(404).json({ error: `no identity ${subscriptionId}/${resourceGroup}/${name}` });
    }
    res.json({ deleted: true });
  });

  // Seeds a FIC without ARM (no token, latency, throttling or propagation delay), for identities
  // whose FICs an administrator made out of band, such as the controller's own. Azure's PUT rules
  // still apply. Body: {issuer, subject, audiences}.
  router.put(
    '/identities/:subscriptionId/:resourceGroup/:name/federatedIdentityCredentials/:ficName',
    (req, res) => {
      const { subscriptionId, resourceGroup, name, ficName } = req.params;
      const identity = ctx.identities.get(subscriptionId, resourceGroup, name);
      if (!identity)
        return res.status(404).json({ error: `no identity ${subscriptionId}/${resourceGroup}/${name}` });
      const props = parseFicBody({ properties: req.body });
      if (typeof props === 'string') throw new Error(props);
      const problem = checkFicPut(identity, ficName, props);
      if (problem) throw new Error(problem);
      const { created, fic } = putFic(identity, ficName, props, Date.now(), true);
      res.status(created ? 201 : 200).json(ficResource(identity, fic));
    },
  );

  // Seeds a role assignment without ARM (no token, rights, throttling, replication or propagation
  // delay), as an administrator would have made it out of band: the operator's own Role Based
  // Access Control Administrator, say. Azure's PUT rules (duplicate, limit) still apply.
  router.post('/roleAssignments', (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (typeof b.scope !== 'string' || !b.scope.startsWith('/')) throw new Error('scope must be an ARM id');
    let roleId = typeof b.roleDefinitionId === 'string' ? b.roleDefinitionId : undefined;
    if (!roleId && typeof b.roleName === 'string') {
      const role = roleByName(b.roleName);
      if (!role) throw new Error(`no built-in role named ${b.roleName}`);
      roleId = roleDefinitionId(role, undefined);
    }
    const props = parseRoleAssignmentBody({ properties: { ...b, roleDefinitionId: roleId } });
    if ('status' in props) throw new Error(props.message);
    const name = typeof b.name === 'string' ? b.name : randomUUID();
    const scope = normalizeScope(b.scope);
    const now = Date.now();
    const problem = ctx.roleAssignments.checkPut(scope, name, props, {
      now,
      tenantId: ctx.config.tenantId,
      principalCreatedAt: 0,
      principalActualType: props.principalType ?? 'ServicePrincipal',
      replicationSeconds: 0,
      replicationSecondsWithType: 0,
      maxPerSubscription: ctx.settings.roleAssignmentsPerSubscription,
    });
    if (problem) throw new Error(`${problem.code}: ${problem.message}`);
    const { created, assignment } = ctx.roleAssignments.put(scope, name, props, {
      now,
      createdBy: 'emulator',
      principalType: 'ServicePrincipal',
      seeded: true,
    });
    res.status(created ? 201 : 200).json(assignmentView(assignment));
  });

  router.get('/roleAssignments', (_req, res) => {
    res.json({ value: ctx.roleAssignments.all().map(assignmentView) });
  });

  // Removes at once (no propagation delay). Query: scope (ARM id) and name (the GUID).
  router.delete('/roleAssignments', (req, res) => {
    const { scope, name } = req.query;
    if (typeof scope !== 'string' || typeof name !== 'string') throw new Error('scope and name are required');
    if (!ctx.roleAssignments.delete(scope, name, Date.now(), true))
      return res.status(404).json({ error: `no role assignment ${name} at ${scope}` });
    res.json({ deleted: true });
  });

  router.post('/storageAccounts', (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    for (const key of ['subscriptionId', 'resourceGroup', 'name'])
      if (typeof b[key] !== 'string' || b[key] === '') throw new Error(`${key} is required`);
    const account = ctx.blobs.createAccount({
      subscriptionId: b.subscriptionId as string,
      resourceGroup: b.resourceGroup as string,
      name: b.name as string,
    });
    const containers = Array.isArray(b.containers) ? b.containers : [];
    for (const container of containers) ctx.blobs.createContainer(account.name, String(container));
    res.status(201).json(storageView(ctx, account.name));
  });

  router.get('/storageAccounts', (_req, res) => {
    res.json({ value: ctx.blobs.all().map((a) => storageView(ctx, a.name)) });
  });

  router.put('/storageAccounts/:account/containers/:container', (req, res) => {
    ctx.blobs.createContainer(req.params.account, req.params.container);
    res.json(storageView(ctx, req.params.account));
  });

  // Body: {account, container, name, content (UTF-8 text), contentType?}.
  router.post('/blobs', (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    for (const key of ['account', 'container', 'name'])
      if (typeof b[key] !== 'string' || b[key] === '') throw new Error(`${key} is required`);
    if (typeof b.content !== 'string') throw new Error('content must be a string');
    const blob = ctx.blobs.putBlob(
      b.account as string,
      b.container as string,
      b.name as string,
      Buffer.from(b.content, 'utf8'),
      typeof b.contentType === 'string' ? b.contentType : 'text/plain',
    );
    res.status(201).json({ etag: blob.etag, size: blob.content.length });
  });

  router.get('/config', (_req, res) => {
    res.json(ctx.settings);
  });

  router.post('/config', (req, res) => {
    applySettingsPatch(ctx.settings, req.body);
    res.json(ctx.settings);
  });

  router.post('/faults', (req, res) => {
    const rule = parseFaultRule(req.body);
    ctx.faults.add(rule);
    res.status(201).json({ id: rule.id });
  });

  router.get('/faults', (_req, res) => {
    res.json({ value: ctx.faults.list() });
  });

  router.delete('/faults', (_req, res) => {
    ctx.faults.clear();
    res.json({ cleared: true });
  });

  router.delete('/faults/:id', (req, res) => {
    if (!ctx.faults.remove(req.params.id))
      return res.status(404).json({ error: `no fault ${req.params.id}` });
    res.json({ deleted: true });
  });

  router.get('/counters', (_req, res) => {
    res.json(ctx.counters.snapshot());
  });

  router.post('/counters/reset', (_req, res) => {
    ctx.counters.reset();
    res.json(ctx.counters.snapshot());
  });

  router.get('/issued-tokens', (_req, res) => {
    res.json(ctx.issued.snapshot());
  });

  router.delete('/issued-tokens', (_req, res) => {
    ctx.issued.clear();
    res.json({ cleared: true });
  });

  router.post('/revoke', async (req, res) => {
    const principalId = (req.body as { principalId?: unknown } | undefined)?.principalId;
    if (typeof principalId !== 'string' || principalId === '') throw new Error('principalId is required');
    if (!ctx.postgres) throw new Error('revoke needs the postgres section in the emulator config');
    const role = await ctx.postgres.revoke(principalId);
    res.json({ role: role ?? null });
  });

  router.post('/reset', (_req, res) => {
    resetContext(ctx);
    res.json({ reset: true });
  });

  router.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(400).json({ error: error.message });
  });
  return router;
}

function storageView(ctx: EmulatorContext, name: string): StorageAccountView {
  const account = ctx.blobs.account(name);
  if (!account) throw new Error(`no storage account ${name}`);
  const id =
    `/subscriptions/${account.subscriptionId}/resourceGroups/${account.resourceGroup}` +
    `/providers/Microsoft.Storage/storageAccounts/${account.name}`;
  return {
    id,
    subscriptionId: account.subscriptionId,
    resourceGroup: account.resourceGroup,
    name: account.name,
    containers: [...account.containers].map(([container, blobs]) => ({
      name: container,
      id: containerScope(account, container),
      blobs: [...blobs.keys()],
    })),
  };
}
