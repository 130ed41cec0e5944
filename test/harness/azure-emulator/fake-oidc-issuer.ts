// A tiny HTTPS OIDC issuer for tests that need client assertions without a kube-apiserver: it
// serves the same discovery paths as the apiserver (/.well-known/openid-configuration and
// /openid/v1/jwks) and mints service-account-like JWTs with its own key.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface MintOptions {
  subject: string;
  audience: string | string[];
  /** Seconds from now; negative for an already expired token. Default 3600. */
  expiresInSeconds?: number;
  /** Overrides the `iss` claim (the signature still uses this issuer's key). */
  issuer?: string;
  /** Sign with a key the issuer does not publish (for bad-signature tests). */
  foreignKey?: boolean;
}

export interface FakeOidcIssuer {
  /** `https://127.0.0.1:<port>`, exactly as it appears in `iss` and in the discovery document. */
  issuer: string;
  mint(options: MintOptions): Promise<string>;
  /** Replaces the signing key; the JWK set then publishes only the new one. */
  rotateKey(): Promise<void>;
  /** Number of JWK set fetches served, to observe caching. */
  jwksFetches(): number;
  close(): Promise<void>;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' };
  return { kid, privateKey, jwk };
}

export async function startFakeOidcIssuer(tls: { certPem: string; keyPem: string }): Promise<FakeOidcIssuer> {
  let key = await newKey();
  let fetches = 0;
  let issuer = '';
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const send = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send({
        issuer,
        jwks_uri: `${issuer}/openid/v1/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    } else if (req.url === '/openid/v1/jwks') {
      fetches++;
      send({ keys: [key.jwk] });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    async mint(options) {
      const signing = options.foreignKey ? await newKey() : key;
      const now = Math.floor(Date.now() / 1000);
      const exp = now + (options.expiresInSeconds ?? 3600);
      return new SignJWT({ 'kubernetes.io': { namespace: 'test' } })
        .setProtectedHeader({ alg: 'RS256', kid: options.foreignKey ? key.kid : signing.kid })
        .setIssuer(options.issuer ?? issuer)
        .setSubject(options.subject)
        .setAudience(options.audience)
        .setIssuedAt(Math.min(now, exp - 60))
        .setNotBefore(Math.min(now, exp - 60))
        .setExpirationTime(exp)
        .sign(signing.privateKey);
    },
    async rotateKey() {
      key = await newKey();
    },
    jwksFetches: () => fetches,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
