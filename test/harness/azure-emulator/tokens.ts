// The emulator's own access tokens: Entra-like JWTs signed with a key made at start-up, verified
// again by the ARM routes. Claims follow Entra's v1 app-only tokens for managed identities.
import { randomUUID } from 'node:crypto';
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { Identity } from './state.ts';
import { identityArmId } from './state.ts';

export interface IssuedToken {
  token: string;
  expiresOn: Date;
  audience: string;
}

export interface AccessTokenClaims extends JWTPayload {
  oid: string;
  tid: string;
  appid: string;
  azp: string;
  idtyp: string;
}

/** Resources whose v1 audience carries a trailing slash, as Entra issues them. */
const SLASHED_AUDIENCES = new Set(['https://management.azure.com', 'https://management.core.windows.net']);

/** `https://management.azure.com/.default` → `https://management.azure.com/`. */
export function audienceForScope(scope: string): string {
  const resource = scope.replace(/\/\.default$/, '');
  return SLASHED_AUDIENCES.has(resource) ? `${resource}/` : resource;
}

export class TokenIssuer {
  readonly #tenantId: string;
  readonly #privateKey: CryptoKey;
  readonly #publicKey: CryptoKey;
  readonly #kid: string;
  readonly #jwk: JWK;

  private constructor(tenantId: string, keys: { privateKey: CryptoKey; publicKey: CryptoKey }, jwk: JWK) {
    this.#tenantId = tenantId;
    this.#privateKey = keys.privateKey;
    this.#publicKey = keys.publicKey;
    this.#kid = jwk.kid ?? 'emulator';
    this.#jwk = jwk;
  }

  static async create(tenantId: string): Promise<TokenIssuer> {
    const keys = await generateKeyPair('RS256', { extractable: true });
    const jwk = await exportJWK(keys.publicKey);
    jwk.kid = randomUUID();
    jwk.use = 'sig';
    jwk.alg = 'RS256';
    return new TokenIssuer(tenantId, keys, jwk);
  }

  get issuer(): string {
    return `https://sts.windows.net/${this.#tenantId}/`;
  }

  /** Public keys, served at the jwks_uri of the emulator's discovery document. */
  jwks(): { keys: JWK[] } {
    return { keys: [{ ...this.#jwk }] };
  }

  async issue(
    identity: Identity,
    audience: string,
    lifetimeSeconds: number,
    now = Date.now(),
  ): Promise<IssuedToken> {
    const iat = Math.floor(now / 1000);
    const exp = iat + Math.max(1, Math.floor(lifetimeSeconds));
    const token = await new SignJWT({
      aud: audience,
      oid: identity.principalId,
      sub: identity.principalId,
      tid: identity.tenantId,
      appid: identity.clientId,
      azp: identity.clientId,
      appidacr: '2',
      idp: this.issuer,
      idtyp: 'app',
      ver: '1.0',
      // Random per token, so each issued token differs (the database feature depends on it).
      uti: randomUUID(),
      xms_mirid: identityArmId(identity),
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.#kid })
      .setIssuer(this.issuer)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .sign(this.#privateKey);
    return { token, expiresOn: new Date(exp * 1000), audience };
  }

  /** Verifies signature, issuer, lifetime and that the audience is one of `audiences`. */
  async verify(token: string, audiences: string[]): Promise<AccessTokenClaims> {
    const { payload } = await jwtVerify(token, this.#publicKey, {
      issuer: this.issuer,
      audience: audiences,
      algorithms: ['RS256'],
    });
    return payload as AccessTokenClaims;
  }
}
