import { describe, expect, it } from 'vitest';
import { type ExistingFic, planFederatedCredential } from '../../../src/azure/fic-plan.ts';

const ISSUER = 'https://oidc.example/cluster/';
const AUD = 'api://AzureADTokenExchange';
const desired = { name: 'aks_ns_sa', issuer: ISSUER, subject: 'system:serviceaccount:ns:sa', audience: AUD };
const fic = (name: string, subject: string, extra: Partial<ExistingFic> = {}): ExistingFic => ({
  name,
  issuer: ISSUER,
  subject,
  audiences: [AUD],
  ...extra,
});

describe('planFederatedCredential', () => {
  it('creates when nothing matches', () => {
    expect(planFederatedCredential([fic('other', 'system:serviceaccount:ns:other')], desired)).toEqual({
      write: true,
      action: 'created',
      name: 'aks_ns_sa',
    });
  });

  it('writes nothing when its own FIC is already right (names compare case-insensitively)', () => {
    expect(planFederatedCredential([fic('AKS_ns_SA', desired.subject)], desired)).toEqual({
      write: false,
      action: 'unchanged',
      name: 'AKS_ns_SA',
    });
  });

  it('adopts a FIC with the same issuer and subject under another name, without writing', () => {
    expect(planFederatedCredential([fic('hand-made', desired.subject)], desired)).toEqual({
      write: false,
      action: 'adopted',
      name: 'hand-made',
    });
  });

  it('updates the matching FIC in place, under its own name, when the audience differs', () => {
    expect(
      planFederatedCredential([fic('hand-made', desired.subject, { audiences: ['api://other'] })], desired),
    ).toEqual({ write: true, action: 'updated', name: 'hand-made' });
    expect(
      planFederatedCredential(
        [fic('hand-made', desired.subject, { audiences: [AUD, 'api://other'] })],
        desired,
      ),
    ).toEqual({ write: true, action: 'updated', name: 'hand-made' });
  });

  it('overwrites its own name when it holds other content (e.g. a changed issuer)', () => {
    const stale = fic('aks_ns_sa', desired.subject, { issuer: 'https://old-issuer.example/' });
    expect(planFederatedCredential([stale], desired)).toEqual({
      write: true,
      action: 'updated',
      name: 'aks_ns_sa',
    });
  });

  it('compares issuer and subject exactly', () => {
    const near = [
      fic('a', desired.subject, { issuer: ISSUER.slice(0, -1) }),
      fic('b', desired.subject.toUpperCase()),
    ];
    expect(planFederatedCredential(near, desired).action).toBe('created');
  });

  it('reports the limit instead of writing when a create would make 21', () => {
    const full = Array.from({ length: 20 }, (_, i) => fic(`f${i}`, `system:serviceaccount:ns:sa${i}`));
    expect(planFederatedCredential(full, desired)).toEqual({ write: false, action: 'limit', count: 20 });
    // A full identity still allows adopting, updating and overwriting.
    full[3] = fic('f3', desired.subject);
    expect(planFederatedCredential(full, desired).action).toBe('adopted');
    full[3] = fic('aks_ns_sa', 'system:serviceaccount:ns:gone');
    expect(planFederatedCredential(full, desired).action).toBe('updated');
  });
});
