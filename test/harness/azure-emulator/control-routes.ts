// The control API (/_emulator/*) tests use to set up the world and look inside it. No auth: the
// emulator is a loopback test tool. Errors are `{"error": "<message>"}` with status 400/404.
import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { applySettingsPatch } from './config.ts';
import { type EmulatorContext, resetContext } from './context.ts';
import { parseFaultRule } from './faults.ts';
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
export type IdentityView = Omit<Identity, 'fics' | 'writeInFlight'> & { id: string };

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
