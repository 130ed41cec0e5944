import { describe, expect, it } from 'vitest';
import {
  formatIdentityId,
  InvalidIdentityId,
  identityAllowed,
  identityKey,
  parseAllowList,
  parseIdentityId,
  tryParseIdentityId,
} from '../../../src/azure/identity-id.ts';

const SUB = '0b1f6471-1bf0-4dda-aec3-111122223333';
const SUB2 = '0b1f6471-1bf0-4dda-aec3-999988887777';
const id = (sub: string, rg: string, name: string) =>
  `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

describe('parseIdentityId / formatIdentityId', () => {
  it('parses the documented form and formats it back', () => {
    const ref = parseIdentityId(id(SUB, 'rg-apps', 'orders-api'));
    expect(ref).toEqual({ subscriptionId: SUB, resourceGroup: 'rg-apps', name: 'orders-api' });
    expect(formatIdentityId(ref)).toBe(id(SUB, 'rg-apps', 'orders-api'));
  });

  it('accepts any casing of the fixed segments, as ARM returns them', () => {
    const armForm = `/subscriptions/${SUB.toUpperCase()}/resourcegroups/RG.Apps(1)/providers/microsoft.managedidentity/userassignedidentities/Orders_API`;
    expect(parseIdentityId(armForm)).toEqual({
      subscriptionId: SUB.toUpperCase(),
      resourceGroup: 'RG.Apps(1)',
      name: 'Orders_API',
    });
    expect(identityKey(parseIdentityId(armForm))).toBe(
      identityKey(parseIdentityId(id(SUB, 'rg.apps(1)', 'orders_api'))),
    );
  });

  it('tolerates surrounding whitespace', () => {
    expect(parseIdentityId(`  ${id(SUB, 'rg', 'abc')}\n`).name).toBe('abc');
  });

  it.each([
    ['empty', ''],
    ['no leading slash', id(SUB, 'rg', 'abc').slice(1)],
    ['trailing slash', `${id(SUB, 'rg', 'abc')}/`],
    ['double slash', id(SUB, 'rg', 'abc').replace('/resourceGroups', '//resourceGroups')],
    ['subscription not a GUID', id('my-sub', 'rg', 'abc')],
    ['wrong provider', id(SUB, 'rg', 'abc').replace('Microsoft.ManagedIdentity', 'Microsoft.Compute')],
    ['wrong type', id(SUB, 'rg', 'abc').replace('userAssignedIdentities', 'identities')],
    ['a FIC under it', `${id(SUB, 'rg', 'abc')}/federatedIdentityCredentials/x`],
    ['identity name too short', id(SUB, 'rg', 'ab')],
    ['identity name starting with -', id(SUB, 'rg', '-abc')],
    ['identity name with a dot', id(SUB, 'rg', 'a.bc')],
    ['resource group ending in a period', id(SUB, 'rg.', 'abc')],
    ['resource group too long', id(SUB, 'r'.repeat(91), 'abc')],
  ])('rejects %s', (_what, value) => {
    expect(() => parseIdentityId(value)).toThrow(InvalidIdentityId);
    expect(tryParseIdentityId(value)).toBeUndefined();
  });

  it('says what is wrong', () => {
    expect(() => parseIdentityId(id('my-sub', 'rg', 'abc'))).toThrow(/subscription "my-sub" is not a GUID/);
  });
});

describe('identityAllowed', () => {
  const orders = id(SUB, 'rg', 'orders-api');
  it.each([
    // [allow-list annotation, identity, allowed?]
    ['', orders, false],
    [' , ,', orders, false],
    [orders, orders, true],
    [orders.toUpperCase().replace(SUB.toUpperCase(), SUB), orders, true],
    [
      `/subscriptions/${SUB}/resourcegroups/RG/providers/microsoft.managedidentity/userassignedidentities/ORDERS-API`,
      orders,
      true,
    ],
    [id(SUB, 'rg', 'orders-api2'), orders, false],
    [id(SUB, 'rg', 'orders'), orders, false],
    [`${id(SUB, 'rg', 'other')}, ${orders}`, orders, true],
    // Resource-group prefix: whole segments only.
    [`/subscriptions/${SUB}/resourceGroups/rg/*`, orders, true],
    [`/subscriptions/${SUB}/resourceGroups/RG/*`, orders, true],
    [`/subscriptions/${SUB}/resourceGroups/rg/*`, id(SUB, 'rg2', 'orders-api'), false],
    [`/subscriptions/${SUB}/resourceGroups/rg2/*`, orders, false],
    [`/subscriptions/${SUB}/resourceGroups/r/*`, orders, false],
    [`/subscriptions/${SUB}/resourceGroups/rg/*`, id(SUB2, 'rg', 'orders-api'), false],
    [
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/*`,
      orders,
      true,
    ],
    // Subscription prefix.
    [`/subscriptions/${SUB}/*`, orders, true],
    [`/subscriptions/${SUB.toUpperCase()}/*`, orders, true],
    [`/subscriptions/${SUB}/*`, id(SUB2, 'rg', 'orders-api'), false],
    // A prefix of the subscription GUID is not a subscription.
    [`/subscriptions/${SUB.slice(0, 8)}/*`, orders, false],
    // Wildcards that are not at a segment boundary, or too broad, allow nothing.
    [`/subscriptions/${SUB}/resourceGroups/r*`, orders, false],
    [`/subscriptions/${SUB}/resourceGroups/rg*`, orders, false],
    [`/subscriptions/${SUB}/resourceGroups/*`, orders, false],
    ['/*', orders, false],
    ['/subscriptions/*', orders, false],
    ['*', orders, false],
    [`${id(SUB, 'rg', 'orders-*')}`, orders, false],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Compute/*`, orders, false],
    // The exact entry is not a prefix.
    [`/subscriptions/${SUB}/resourceGroups/rg`, orders, false],
    // A prefix never allows the thing it names as if it were an identity.
    [`/subscriptions/${SUB}/resourceGroups/rg/*`, `/subscriptions/${SUB}/resourceGroups/rg`, false],
    // An identity ID that does not parse is never allowed.
    [`/subscriptions/${SUB}/*`, `${orders}/federatedIdentityCredentials/x`, false],
    [`/subscriptions/${SUB}/*`, `${orders}/../other`, false],
  ])('%j allows %s: %s', (annotation, identity, allowed) => {
    expect(identityAllowed(identity, annotation)).toBe(allowed);
  });

  it('allows nothing with no annotation', () => {
    expect(identityAllowed(orders, undefined)).toBe(false);
  });

  it('takes a parsed list, and reports entries it cannot use', () => {
    const list = parseAllowList(
      `${orders}, /subscriptions/${SUB}/resourceGroups/rg*, /*, garbage ,/subscriptions/${SUB2}/*`,
    );
    expect(list.invalid).toEqual([`/subscriptions/${SUB}/resourceGroups/rg*`, '/*', 'garbage']);
    expect(list.entries).toHaveLength(2);
    expect(identityAllowed(id(SUB2, 'any', 'thing'), list)).toBe(true);
    expect(identityAllowed(id(SUB, 'rg', 'thing'), list)).toBe(false);
  });
});
