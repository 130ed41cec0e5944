// Verifies a client assertion (a Kubernetes service-account token) against the identity's
// federated identity credentials, for real: the issuer's keys come from its OIDC discovery
// document, and issuer, subject and audience must match a FIC, as Entra does it.
import {
  compactVerify,
  createLocalJWKSet,
  decodeJwt,
  type JSONWebKeySet,
  type JWTPayload,
  errors as joseErrors,
} from 'jose';
import {
  assertionOutsideValidTime,
  externalOidcFailed,
  invalidSignature,
  malformedAssertion,
  noMatchingFederatedIdentity,
} from './entra-errors.ts';
import type { Fic } from './state.ts';

const ALGORITHMS = ['RS256', 'ES256'];
const FETCH_TIMEOUT_MS = 5000;

async function fetchJson(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.json();
}

/**
 * Public keys per issuer, fetched by OIDC discovery. Cached so every token request does not hit
 * the issuer; re-fetched when an assertion names a key we have not seen (key rotation).
 */
export class IssuerKeyCache {
  readonly #cache = new Map<string, Promise<JSONWebKeySet>>();

  get(issuer: string, refresh = false): Promise<JSONWebKeySet> {
    let entry = refresh ? undefined : this.#cache.get(issuer);
    if (!entry) {
      entry = this.#discover(issuer);
      this.#cache.set(issuer, entry);
      // A failure is not remembered: the next request tries again.
      entry.catch(() => {
        if (this.#cache.get(issuer) === entry) this.#cache.delete(issuer);
      });
    }
    return entry;
  }

  async #discover(issuer: string): Promise<JSONWebKeySet> {
    const discoveryUrl = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const discovery = (await fetchJson(discoveryUrl)) as { issuer?: unknown; jwks_uri?: unknown };
    if (discovery.issuer !== issuer) {
      throw new Error(`discovery document at ${discoveryUrl} names issuer '${String(discovery.issuer)}'`);
    }
    if (typeof discovery.jwks_uri !== 'string')
      throw new Error(`discovery document at ${discoveryUrl} has no jwks_uri`);
    const jwks = (await fetchJson(discovery.jwks_uri)) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new Error(`${discovery.jwks_uri} is not a JWK set`);
    return jwks;
  }
}

function describeAudience(aud: JWTPayload['aud']): string {
  if (Array.isArray(aud)) return aud.join(', ');
  return aud ?? '';
}

async function verifySignature(assertion: string, issuer: string, keys: IssuerKeyCache): Promise<void> {
  let jwks: JSONWebKeySet;
  try {
    jwks = await keys.get(issuer);
  } catch (error) {
    throw externalOidcFailed(issuer, (error as Error).message);
  }
  try {
    await compactVerify(assertion, createLocalJWKSet(jwks), { algorithms: ALGORITHMS });
    return;
  } catch (error) {
    if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw invalidSignature((error as Error).message);
  }
  // Unknown key id: the issuer may have rotated its keys since we cached them.
  try {
    jwks = await keys.get(issuer, true);
  } catch (error) {
    throw externalOidcFailed(issuer, (error as Error).message);
  }
  try {
    await compactVerify(assertion, createLocalJWKSet(jwks), { algorithms: ALGORITHMS });
  } catch (error) {
    throw invalidSignature((error as Error).message);
  }
}

/**
 * Checks `assertion` against `fics` (the identity's FICs that Entra already knows about).
 * Resolves with the matching FIC or rejects with an EntraError.
 */
export async function verifyClientAssertion(
  assertion: string,
  fics: Fic[],
  keys: IssuerKeyCache,
  now: Date,
): Promise<Fic> {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(assertion);
  } catch (error) {
    throw malformedAssertion((error as Error).message);
  }
  const issuer = typeof claims.iss === 'string' ? claims.iss : '';
  const subject = typeof claims.sub === 'string' ? claims.sub : '';
  const audience = describeAudience(claims.aud);
  // Entra only trusts issuers the identity has FICs for; it never fetches keys of other issuers.
  const sameIssuer = fics.filter((fic) => fic.issuer === issuer);
  if (sameIssuer.length === 0) throw noMatchingFederatedIdentity(issuer, subject, audience);

  await verifySignature(assertion, issuer, keys);

  const nowSeconds = now.getTime() / 1000;
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  const nbf = typeof claims.nbf === 'number' ? claims.nbf : undefined;
  if (exp === undefined || nowSeconds >= exp || (nbf !== undefined && nowSeconds < nbf)) {
    throw assertionOutsideValidTime(
      now,
      nbf === undefined ? undefined : new Date(nbf * 1000),
      exp === undefined ? undefined : new Date(exp * 1000),
    );
  }

  const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud === undefined ? [] : [claims.aud];
  const match = sameIssuer.find(
    (fic) => fic.subject === subject && audiences.includes(fic.audiences[0] ?? ''),
  );
  if (!match) throw noMatchingFederatedIdentity(issuer, subject, audience);
  return match;
}
