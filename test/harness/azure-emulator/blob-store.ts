// In-memory storage accounts, containers and block blobs for the minimal Blob data plane
// (blob-routes.ts). Accounts and containers are made through the control API, as a platform team
// makes them out of band; blobs through the control API or the data plane.
import { createHash } from 'node:crypto';

export interface StorageAccount {
  subscriptionId: string;
  resourceGroup: string;
  /** 3–24 lower-case letters and digits, as Azure requires. */
  name: string;
  /** Keyed by container name (lower-case, as Azure requires). */
  containers: Map<string, Map<string, Blob>>;
}

export interface Blob {
  content: Buffer;
  contentType: string;
  lastModified: Date;
  etag: string;
}

export const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
/** Azure: 3–63 characters, lower-case letters, digits and single hyphens, starting and ending alphanumeric. */
export const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

export class BlobStore {
  readonly #accounts = new Map<string, StorageAccount>();

  createAccount(spec: { subscriptionId: string; resourceGroup: string; name: string }): StorageAccount {
    if (!ACCOUNT_NAME.test(spec.name)) throw new Error(`storage account name ${spec.name} is not valid`);
    if (this.#accounts.has(spec.name)) throw new Error(`storage account ${spec.name} already exists`);
    const account: StorageAccount = { ...spec, containers: new Map() };
    this.#accounts.set(spec.name, account);
    return account;
  }

  account(name: string): StorageAccount | undefined {
    return this.#accounts.get(name);
  }

  createContainer(accountName: string, container: string): void {
    const account = this.#accounts.get(accountName);
    if (!account) throw new Error(`no storage account ${accountName}`);
    if (!CONTAINER_NAME.test(container)) throw new Error(`container name ${container} is not valid`);
    if (!account.containers.has(container)) account.containers.set(container, new Map());
  }

  putBlob(accountName: string, container: string, name: string, content: Buffer, contentType: string): Blob {
    const blobs = this.#accounts.get(accountName)?.containers.get(container);
    if (!blobs) throw new Error(`no container ${accountName}/${container}`);
    const blob: Blob = {
      content,
      contentType,
      lastModified: new Date(),
      etag: `"0x${createHash('sha256').update(content).update(String(Date.now())).digest('hex').slice(0, 15).toUpperCase()}"`,
    };
    blobs.set(name, blob);
    return blob;
  }

  all(): StorageAccount[] {
    return [...this.#accounts.values()];
  }

  clear(): void {
    this.#accounts.clear();
  }
}
