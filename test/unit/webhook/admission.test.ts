import { describe, expect, it } from 'vitest';
import {
  admissionResponse,
  decodeAdmissionReview,
  MalformedAdmissionReview,
} from '../../../src/webhook/admission.ts';

const valid = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace: 'orders',
    object: { metadata: { generateName: 'orders-' }, spec: {} },
    dryRun: true,
  },
};

describe('decodeAdmissionReview', () => {
  it('decodes a valid request, keeping the raw object', () => {
    const request = decodeAdmissionReview(valid);
    expect(request).toMatchObject({ uid: 'u-1', operation: 'CREATE', namespace: 'orders', dryRun: true });
    expect(request.object).toBe(valid.request.object);
  });

  it.each([
    ['a string', 'hello', /not a JSON object/],
    ['an array', [], /not a JSON object/],
    [
      'the v1beta1 API',
      { ...valid, apiVersion: 'admission.k8s.io/v1beta1' },
      /apiVersion must be admission.k8s.io\/v1/,
    ],
    ['another kind', { ...valid, kind: 'Pod' }, /kind must be AdmissionReview/],
    ['no request', { apiVersion: valid.apiVersion, kind: valid.kind }, /request is missing/],
    ['no uid', { ...valid, request: { ...valid.request, uid: '' } }, /request.uid is missing/],
    ['no kind', { ...valid, request: { ...valid.request, kind: 'Pod' } }, /request.kind is missing/],
    [
      'a bad operation',
      { ...valid, request: { ...valid.request, operation: 'PATCH' } },
      /operation is invalid/,
    ],
    ['no object', { ...valid, request: { ...valid.request, object: null } }, /request.object is missing/],
    [
      'a numeric namespace',
      { ...valid, request: { ...valid.request, namespace: 7 } },
      /namespace is not a string/,
    ],
  ])('refuses %s with a reason', (_what, body, reason) => {
    expect(() => decodeAdmissionReview(body)).toThrow(MalformedAdmissionReview);
    expect(() => decodeAdmissionReview(body)).toThrow(reason);
  });
});

describe('admissionResponse', () => {
  it('carries a base64 JSONPatch only when there is something to change', () => {
    const patch = [{ op: 'add' as const, path: '/metadata/labels', value: { a: 'b' } }];
    const patched = admissionResponse('u', { patch, warnings: [] }).response;
    expect(patched).toMatchObject({ uid: 'u', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(patched.patch ?? '', 'base64').toString())).toEqual(patch);

    const unchanged = admissionResponse('u', { patch: [], warnings: [] }).response;
    expect(unchanged).toEqual({ uid: 'u', allowed: true });
  });

  it('denies with 403 and the message, and passes warnings on', () => {
    expect(admissionResponse('u', { patch: [], warnings: [], denied: 'no' }).response).toEqual({
      uid: 'u',
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: 'no' },
    });
    expect(admissionResponse('u', { patch: [], warnings: ['w'] }).response.warnings).toEqual(['w']);
  });
});
