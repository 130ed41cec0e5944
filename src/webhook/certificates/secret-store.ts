// Reading and writing the certificate Secret in the release namespace. Every write is
// conditional: create fails if the Secret exists, replace carries the resourceVersion that was
// read. A replica that loses either race gets a WriteConflict, re-reads, and uses the winner's.
import * as k8s from '@kubernetes/client-node';
import { statusOf } from '../../kube/client.ts';
import type { CertificateContents, StoredCertificates } from './plan.ts';
import { decodeCertificateSecret, encodeCertificateSecret } from './secret.ts';

export interface StoredSecret extends StoredCertificates {
  resourceVersion: string;
}

/** Another writer got there first (409 AlreadyExists on create, 409 Conflict on replace). */
export class WriteConflict extends Error {
  override name = 'WriteConflict';
}

export class CertificateSecretStore {
  readonly #core: k8s.CoreV1Api;
  readonly #namespace: string;
  readonly #name: string;

  constructor(kubeConfig: k8s.KubeConfig, namespace: string, name: string) {
    this.#core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.#namespace = namespace;
    this.#name = name;
  }

  get description(): string {
    return `Secret ${this.#namespace}/${this.#name}`;
  }

  /** The Secret as stored now, or undefined if there is none. */
  async read(): Promise<StoredSecret | undefined> {
    try {
      const secret = await this.#core.readNamespacedSecret({ namespace: this.#namespace, name: this.#name });
      return this.#decode(secret);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Writes `stored`: a create when `resourceVersion` is undefined, else a replace of that version. */
  async write(
    stored: StoredCertificates & { contents: CertificateContents },
    resourceVersion: string | undefined,
  ): Promise<StoredSecret> {
    const body = encodeCertificateSecret({
      name: this.#name,
      namespace: this.#namespace,
      stored,
      ...(resourceVersion ? { resourceVersion } : {}),
    });
    try {
      const written =
        resourceVersion === undefined
          ? await this.#core.createNamespacedSecret({ namespace: this.#namespace, body })
          : await this.#core.replaceNamespacedSecret({ namespace: this.#namespace, name: this.#name, body });
      return this.#decode(written);
    } catch (error) {
      const status = statusOf(error);
      // 404 on replace: deleted since it was read; re-reading shows it absent and creates it.
      if (status === 409 || (status === 404 && resourceVersion !== undefined)) {
        throw new WriteConflict(`${this.description} was changed by another writer`);
      }
      throw error;
    }
  }

  #decode(secret: k8s.V1Secret): StoredSecret {
    return { ...decodeCertificateSecret(secret), resourceVersion: secret.metadata?.resourceVersion ?? '' };
  }
}
