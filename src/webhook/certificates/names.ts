// The names the webhook's serving certificate must carry. Pure.

/**
 * The DNS names by which the apiserver may reach a Service: `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`
 * and `<svc>.<ns>.svc.cluster.local`. The apiserver itself dials `<svc>.<ns>.svc`.
 */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** The subject common name of the serving certificate: the name the apiserver dials. */
export function serviceCommonName(service: string, namespace: string): string {
  return `${service}.${namespace}.svc`;
}
