// The Entra subset MSAL (inside @azure/identity's WorkloadIdentityCredential and
// ClientAssertionCredential) needs with `disableInstanceDiscovery: true`: the tenant's OpenID
// discovery document and the token endpoint's client-credentials grant with a client assertion.
// Instance discovery and the key set are answered too, for clients that ask; asked as the
// well-known authority host (well-known.ts), instance discovery answers as Entra does.
import express, { type Request, type Response, Router } from 'express';
import { verifyClientAssertion } from './assertions.ts';
import type { EmulatorContext } from './context.ts';
import { applicationNotFound, EntraError, entraErrorBody } from './entra-errors.ts';
import { faultMiddleware } from './fault-middleware.ts';
import { POSTGRES_SCOPES } from './postgres-logins.ts';
import { propagatedFics } from './state.ts';
import { audienceForScope } from './tokens.ts';
import { instanceDiscovery, isWellKnownHost } from './well-known.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Scopes MSAL may add to every request; they do not name a resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access']);

function baseUrl(req: Request): string {
  return `https://${req.headers.host}`;
}

function sendEntraError(res: Response, error: EntraError): void {
  res.locals.tokenOutcome = error.outcome;
  res.status(error.status).json(entraErrorBody(error.error, error.message, [error.code]));
}

function tenantNotFound(tenant: string): EntraError {
  return new EntraError(
    400,
    'invalid_request',
    90002,
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the ` +
      'correct cloud.',
  );
}

function checkTenant(ctx: EmulatorContext, tenant: string): void {
  if (tenant.toLowerCase() !== ctx.config.tenantId.toLowerCase()) throw tenantNotFound(tenant);
}

function openIdConfiguration(req: Request, tenantId: string) {
  const base = `${baseUrl(req)}/${tenantId}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${base}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${baseUrl(req)}/oidc/userinfo`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'oid', 'tid'],
    kerberos_endpoint: `${base}/kerberos`,
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/** The one resource a client-credentials request may name, as `<resource>/.default`. */
function requestedScope(raw: unknown): string {
  const scopes = (typeof raw === 'string' ? raw : '').split(/\s+/).filter((s) => s && !OIDC_SCOPES.has(s));
  const scope = scopes[0];
  if (scopes.length !== 1 || scope === undefined || !scope.endsWith('/.default')) {
    throw new EntraError(
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${scopes.join(' ') || '(none)'} is not valid. Client credential flows must ` +
        'have a scope value with /.default suffixed to the resource identifier (application ID URI).',
    );
  }
  return scope;
}

async function issueToken(ctx: EmulatorContext, req: Request, res: Response): Promise<void> {
  const body = (req.body ?? {}) as Record<string, unknown>;
  checkTenant(ctx, String(req.params.tenant));
  if (body.grant_type !== 'client_credentials') {
    throw new EntraError(
      400,
      'unsupported_grant_type',
      70003,
      `The app requested an unsupported grant type '${String(body.grant_type ?? '')}'.`,
    );
  }
  if (typeof body.client_id !== 'string' || body.client_id === '') {
    throw new EntraError(
      400,
      'invalid_request',
      900144,
      "The request body must contain the following parameter: 'client_id'.",
    );
  }
  const identity = ctx.identities.byClientId(body.client_id);
  if (!identity) throw applicationNotFound(body.client_id, ctx.config.tenantId);
  const scope = requestedScope(body.scope);
  if (body.client_assertion_type !== JWT_BEARER || typeof body.client_assertion !== 'string') {
    throw new EntraError(
      401,
      'invalid_client',
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    );
  }
  const now = Date.now();
  const fics = propagatedFics(identity, now, ctx.settings.ficPropagationSeconds);
  await verifyClientAssertion(body.client_assertion, fics, ctx.issuerKeys, new Date(now));

  const lifetime =
    ctx.settings.tokenLifetimeSecondsByClientId[identity.clientId.toLowerCase()] ??
    ctx.settings.tokenLifetimeSeconds;
  const issued = await ctx.tokens.issue(identity, audienceForScope(scope), lifetime, now);
  ctx.issued.recordAccessToken({
    token: issued.token,
    audience: issued.audience,
    scope,
    clientId: identity.clientId,
    issuedAt: new Date(now).toISOString(),
  });
  if (ctx.postgres && POSTGRES_SCOPES.has(scope.toLowerCase())) {
    ctx.postgres.remember(identity.principalId, issued.token);
  }
  res.locals.tokenOutcome = 'success';
  res.json({
    token_type: 'Bearer',
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: issued.token,
  });
}

export function entraRouter(ctx: EmulatorContext): Router {
  const router = Router({ caseSensitive: false });
  const faults = faultMiddleware(ctx, 'entra');

  router.get('/:tenant/v2.0/.well-known/openid-configuration', faults, (req, res) => {
    try {
      checkTenant(ctx, String(req.params.tenant));
    } catch (error) {
      return sendEntraError(res, error as EntraError);
    }
    res.json(openIdConfiguration(req, ctx.config.tenantId));
  });

  router.get('/:tenant/discovery/instance', faults, (req, res) => {
    const host = req.headers.host ?? '';
    if (isWellKnownHost(host)) {
      // Asked as login.microsoftonline.com: Entra's own answer, which knows only its own hosts.
      const endpoint = req.query.authorization_endpoint;
      const answer = instanceDiscovery(typeof endpoint === 'string' ? endpoint : undefined);
      res.status(answer.status).json(answer.body);
      return;
    }
    res.json({
      tenant_discovery_endpoint: `${baseUrl(req)}/${req.params.tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });

  router.get('/:tenant/discovery/v2.0/keys', faults, (_req, res) => {
    res.json(ctx.tokens.jwks());
  });

  router.post(
    '/:tenant/oauth2/v2.0/token',
    express.urlencoded({ extended: false, limit: '1mb' }),
    (req, res, next) => {
      res.on('finish', () => {
        const scope = typeof req.body?.scope === 'string' ? req.body.scope : '(none)';
        const outcome =
          res.locals.tokenOutcome ??
          (res.locals.injectedFault ? `fault-${res.locals.injectedFault}` : 'error');
        ctx.counters.recordToken(scope, outcome);
        // Every assertion received is a secret the code under test held, refused or not.
        const assertion = req.body?.client_assertion;
        if (typeof assertion === 'string' && assertion !== '') {
          ctx.issued.recordClientAssertion({
            assertion,
            clientId: typeof req.body?.client_id === 'string' ? req.body.client_id : '',
            outcome,
            receivedAt: new Date().toISOString(),
          });
        }
      });
      next();
    },
    faults,
    async (req, res) => {
      try {
        await issueToken(ctx, req, res);
      } catch (error) {
        if (error instanceof EntraError) return sendEntraError(res, error);
        process.stderr.write(`azure-emulator: token request failed: ${(error as Error).stack}\n`);
        res.locals.tokenOutcome = 'server_error';
        res
          .status(500)
          .json(entraErrorBody('server_error', `AADSTS90000: ${(error as Error).message}`, [90000]));
      }
    },
  );
  return router;
}
