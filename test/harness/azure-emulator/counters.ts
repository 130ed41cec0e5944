// Request counters, so tests can assert how many ARM calls and token requests the code under test
// made (steady state must cost zero writes; retries must be bounded).

export type ArmOperation = 'identityGet' | 'ficPut' | 'ficGet' | 'ficDelete' | 'ficList' | 'other';

const WRITE_OPERATIONS: ReadonlySet<ArmOperation> = new Set(['ficPut', 'ficDelete']);

export interface CountersSnapshot {
  arm: {
    total: number;
    reads: number;
    writes: number;
    byOperation: Record<string, number>;
    byStatus: Record<string, number>;
    /** operation → status → count, e.g. `{ ficPut: { "201": 1, "409": 1 } }`. */
    byOperationAndStatus: Record<string, Record<string, number>>;
    /** 429 answers, throttling and injected faults alike. */
    throttled: {
      total: number;
      /** operation → 429s, e.g. `{ ficList: 3 }`. */
      byOperation: Record<string, number>;
      /** The limit that refused them (`list/perResource`, …), or `injected` for a fault rule. */
      byLimit: Record<string, number>;
    };
    /** Reads (identity GET, FIC GET and LIST) by subscription and by identity (lower-cased ids). */
    readsBySubscription: Record<string, number>;
    readsByIdentity: Record<string, number>;
  };
  token: {
    total: number;
    byScope: Record<string, number>;
    /** `success` or the error, e.g. `AADSTS70021`, `fault-429`. */
    byOutcome: Record<string, number>;
  };
  /** Microsoft.Authorization requests (authorization-routes.ts). */
  authorization: SurfaceCounters;
  /** Blob data-plane requests (blob-routes.ts); codes are the storage error codes. */
  blob: SurfaceCounters;
}

export type AuthorizationOperation =
  | 'roleAssignmentPut'
  | 'roleAssignmentGet'
  | 'roleAssignmentDelete'
  | 'roleAssignmentList'
  | 'roleDefinitionGet'
  | 'roleDefinitionList';

export type BlobOperation = 'blobGet' | 'blobHead' | 'blobPut' | 'other';

export interface SurfaceCounters {
  total: number;
  writes: number;
  byOperation: Record<string, number>;
  /** operation → status → count. */
  byOperationAndStatus: Record<string, Record<string, number>>;
  /** Error code → count (`RoleAssignmentExists`, `AuthorizationPermissionMismatch`, …). */
  byErrorCode: Record<string, number>;
  /** 429s by the limit that refused them (`writes/perPrincipal`, …; `injected` for a fault rule). */
  throttledByLimit: Record<string, number>;
}

function emptySurface(): SurfaceCounters {
  return {
    total: 0,
    writes: 0,
    byOperation: {},
    byOperationAndStatus: {},
    byErrorCode: {},
    throttledByLimit: {},
  };
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

function empty(): CountersSnapshot {
  return {
    arm: {
      total: 0,
      reads: 0,
      writes: 0,
      byOperation: {},
      byStatus: {},
      byOperationAndStatus: {},
      throttled: { total: 0, byOperation: {}, byLimit: {} },
      readsBySubscription: {},
      readsByIdentity: {},
    },
    token: { total: 0, byScope: {}, byOutcome: {} },
    authorization: emptySurface(),
    blob: emptySurface(),
  };
}

export class Counters {
  #data = empty();

  /**
   * `throttledBy`: the limit a 429 came from (absent: an injected fault); `identity`: the identity
   * the request's path names, if any.
   */
  recordArm(
    operation: ArmOperation,
    status: number,
    about: { throttledBy?: string; identity?: { subscription: string; identity: string } | undefined } = {},
  ): void {
    const arm = this.#data.arm;
    arm.total++;
    const write = WRITE_OPERATIONS.has(operation);
    if (write) arm.writes++;
    else arm.reads++;
    bump(arm.byOperation, operation);
    bump(arm.byStatus, String(status));
    arm.byOperationAndStatus[operation] ??= {};
    bump(arm.byOperationAndStatus[operation], String(status));
    if (status === 429) {
      arm.throttled.total++;
      bump(arm.throttled.byOperation, operation);
      bump(arm.throttled.byLimit, about.throttledBy ?? 'injected');
    }
    if (!write && operation !== 'other' && about.identity) {
      bump(arm.readsBySubscription, about.identity.subscription);
      bump(arm.readsByIdentity, about.identity.identity);
    }
  }

  /** One Microsoft.Authorization or Blob request: its operation, status and error code if any. */
  recordSurface(
    surface: 'authorization' | 'blob',
    operation: string,
    status: number,
    about: { write: boolean; errorCode?: string | undefined; throttledBy?: string | undefined },
  ): void {
    const s = this.#data[surface];
    s.total++;
    if (about.write) s.writes++;
    bump(s.byOperation, operation);
    s.byOperationAndStatus[operation] ??= {};
    bump(s.byOperationAndStatus[operation], String(status));
    if (about.errorCode) bump(s.byErrorCode, about.errorCode);
    if (status === 429) bump(s.throttledByLimit, about.throttledBy ?? 'injected');
  }

  recordToken(scope: string, outcome: string): void {
    const token = this.#data.token;
    token.total++;
    bump(token.byScope, scope);
    bump(token.byOutcome, outcome);
  }

  snapshot(): CountersSnapshot {
    return structuredClone(this.#data);
  }

  reset(): void {
    this.#data = empty();
  }
}

/** Names the ARM operation a request is, from its method and path, for counting. */
export function classifyArmOperation(method: string, path: string): ArmOperation {
  const p = path.toLowerCase().replace(/\/+$/, '');
  const identityPath =
    /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+/;
  const rest = identityPath.exec(p);
  if (!rest) return 'other';
  const tail = p.slice(rest[0].length);
  if (tail === '') return method === 'GET' ? 'identityGet' : 'other';
  if (tail === '/federatedidentitycredentials') return method === 'GET' ? 'ficList' : 'other';
  if (/^\/federatedidentitycredentials\/[^/]+$/.test(tail)) {
    if (method === 'PUT') return 'ficPut';
    if (method === 'GET') return 'ficGet';
    if (method === 'DELETE') return 'ficDelete';
  }
  return 'other';
}
