// AdmissionReview admission.k8s.io/v1: decoding a request strictly enough that the handlers can
// trust its shape, and encoding a response with a base64 JSONPatch. Pure.
import type { PatchOperation, PolicyResult } from './policy/types.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: Operation;
  namespace?: string;
  name?: string;
  /** The object as the apiserver sent it; policies patch against exactly this. */
  object: Record<string, unknown>;
  dryRun: boolean;
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    warnings?: string[];
    status?: { code: number; reason: string; message: string };
  };
}

/** A request the webhook cannot answer: the HTTP handler replies 400 with this message. */
export class MalformedAdmissionReview extends Error {
  override name = 'MalformedAdmissionReview';
}

const OPERATIONS: ReadonlySet<string> = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function decodeAdmissionReview(body: unknown): AdmissionRequest {
  const fail = (why: string): never => {
    throw new MalformedAdmissionReview(`malformed AdmissionReview: ${why}`);
  };
  if (!isObject(body)) return fail('the body is not a JSON object');
  if (body.apiVersion !== 'admission.k8s.io/v1') {
    return fail(`apiVersion must be admission.k8s.io/v1, got ${JSON.stringify(body.apiVersion ?? null)}`);
  }
  if (body.kind !== 'AdmissionReview')
    return fail(`kind must be AdmissionReview, got ${JSON.stringify(body.kind ?? null)}`);
  const request = body.request;
  if (!isObject(request)) return fail('request is missing');
  const { uid, kind, operation, namespace, name, object, dryRun } = request;
  if (typeof uid !== 'string' || uid === '') return fail('request.uid is missing');
  if (!isObject(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string') {
    return fail('request.kind is missing');
  }
  if (typeof operation !== 'string' || !OPERATIONS.has(operation))
    return fail('request.operation is invalid');
  if (namespace !== undefined && typeof namespace !== 'string')
    return fail('request.namespace is not a string');
  if (name !== undefined && typeof name !== 'string') return fail('request.name is not a string');
  if (operation !== 'DELETE' && !isObject(object)) return fail('request.object is missing');
  const decoded: AdmissionRequest = {
    uid,
    kind: { group: typeof kind.group === 'string' ? kind.group : '', version: kind.version, kind: kind.kind },
    operation: operation as Operation,
    object: isObject(object) ? object : {},
    dryRun: dryRun === true,
  };
  if (typeof namespace === 'string' && namespace !== '') decoded.namespace = namespace;
  if (typeof name === 'string' && name !== '') decoded.name = name;
  return decoded;
}

function review(response: AdmissionReviewResponse['response']): AdmissionReviewResponse {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export function encodePatch(patch: PatchOperation[]): string {
  return Buffer.from(JSON.stringify(patch)).toString('base64');
}

/** The answer for a policy result: allowed with the patch (if any) and warnings, or denied. */
export function admissionResponse(uid: string, result: PolicyResult): AdmissionReviewResponse {
  if (result.denied !== undefined) {
    return review({
      uid,
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: result.denied },
    });
  }
  const response: AdmissionReviewResponse['response'] = { uid, allowed: true };
  if (result.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = encodePatch(result.patch);
  }
  if (result.warnings.length > 0) response.warnings = result.warnings;
  return review(response);
}

export function allow(uid: string): AdmissionReviewResponse {
  return review({ uid, allowed: true });
}
