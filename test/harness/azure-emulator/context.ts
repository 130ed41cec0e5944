// Everything the route handlers share: configuration, the in-memory world, and the services.
import { ArmRequestThrottle } from './arm-request-limits.ts';
import { IssuerKeyCache } from './assertions.ts';
import { BlobStore } from './blob-store.ts';
import { type EmulatorConfig, initialSettings, type RuntimeSettings } from './config.ts';
import { Counters } from './counters.ts';
import { FaultRules } from './faults.ts';
import { IssuedTokens } from './issued-tokens.ts';
import { PostgresLogins } from './postgres-logins.ts';
import { RequestThrottle } from './rate-limits.ts';
import { RoleAssignmentStore } from './role-assignments.ts';
import { IdentityStore } from './state.ts';
import { TokenIssuer } from './tokens.ts';

export interface EmulatorContext {
  config: EmulatorConfig;
  settings: RuntimeSettings;
  identities: IdentityStore;
  counters: Counters;
  faults: FaultRules;
  throttle: RequestThrottle;
  /** Role assignments at any scope (authorization-routes.ts). */
  roleAssignments: RoleAssignmentStore;
  /** ARM's own request limits, for the Microsoft.Authorization routes. */
  armThrottle: ArmRequestThrottle;
  /** Storage accounts, containers and blobs of the Blob data plane (blob-routes.ts). */
  blobs: BlobStore;
  tokens: TokenIssuer;
  /** Every access token issued and client assertion received (GET /_emulator/issued-tokens). */
  issued: IssuedTokens;
  issuerKeys: IssuerKeyCache;
  postgres: PostgresLogins | undefined;
}

export async function createContext(config: EmulatorConfig): Promise<EmulatorContext> {
  const tokens = await TokenIssuer.create(config.tenantId);
  return {
    config,
    settings: initialSettings(config),
    identities: new IdentityStore(config.tenantId),
    counters: new Counters(),
    faults: new FaultRules(),
    throttle: new RequestThrottle(),
    roleAssignments: new RoleAssignmentStore(),
    armThrottle: new ArmRequestThrottle(),
    blobs: new BlobStore(),
    tokens,
    issued: new IssuedTokens(),
    issuerKeys: new IssuerKeyCache(),
    postgres: config.postgres ? new PostgresLogins(config.postgres.adminUrl, tokens) : undefined,
  };
}

/**
 * Back to a fresh start (identities, role assignments, storage, faults, counters, runtime
 * settings), keeping keys, pool and
 * the record of issued tokens (a secret scan wants every token of the run).
 */
export function resetContext(ctx: EmulatorContext): void {
  ctx.identities.clear();
  ctx.faults.clear();
  ctx.counters.reset();
  ctx.throttle.reset();
  ctx.roleAssignments.clear();
  ctx.armThrottle.reset();
  ctx.blobs.clear();
  ctx.settings = initialSettings(ctx.config);
}
